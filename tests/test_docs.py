"""The examples in the public docstrings run and print what they say."""

import doctest

import pytest

import fastgmm._bayesian_mixture
import fastgmm._gaussian_mixture
import fastgmm._load
import fastgmm._selection
import fastgmm.sources.chunks

MODULES = [fastgmm._bayesian_mixture, fastgmm._gaussian_mixture, fastgmm._load, fastgmm._selection,
           fastgmm.sources.chunks]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module):
    failures, tried = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried > 0 and failures == 0
