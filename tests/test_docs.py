"""The examples in the public docstrings run and print what they say."""

import doctest

import fastgmm._gaussian_mixture


def test_docstring_examples():
    failures, tried = doctest.testmod(fastgmm._gaussian_mixture, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried > 0 and failures == 0
