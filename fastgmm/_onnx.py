"""ONNX export: ``skl2onnx.to_onnx(model, X[:1])`` converts a fitted fastgmm model, without fastgmm depending on
skl2onnx.

fastgmm's estimator is registered with skl2onnx as soon as both are imported, in either order: at fastgmm's import
when skl2onnx is loaded already, else by a one-shot import hook that runs right after skl2onnx's own import. The
graph is skl2onnx's converter for scikit-learn's ``GaussianMixture`` applied to ``model.to_sklearn()``, so the
outputs are the same: ``label`` (int64), ``probabilities`` and, with ``options={"score_samples": True}``,
``score_samples``.
"""

import importlib.abc
import importlib.util
import sys

_ALIAS = "FastgmmGaussianMixture"
_OPTIONS = {"score_samples": [True, False]}


def _parse(scope, model, inputs, custom_parsers=None):
    """skl2onnx parser: the model's scikit-learn twin goes through scikit-learn's parser and converter, with the
    options given for the fastgmm model."""
    from skl2onnx._parse import _parse_sklearn

    twin = model.to_sklearn()
    scope.add_options(id(twin), scope.get_options(model, dict(score_samples=False)))
    return _parse_sklearn(scope, twin, inputs, custom_parsers=custom_parsers)


def register():
    """Register fastgmm's ``GaussianMixture`` with skl2onnx (imported here; idempotent)."""
    from skl2onnx import update_registered_converter
    from skl2onnx.operator_converters.gaussian_mixture import convert_sklearn_gaussian_mixture
    from skl2onnx.shape_calculators.mixture import calculate_gaussian_mixture_output_shapes

    from ._gaussian_mixture import GaussianMixture

    # The parser hands the twin to scikit-learn's own registration; the shape calculator and converter named here
    # are the same functions, for a tool that looks them up by fastgmm's class.
    update_registered_converter(
        GaussianMixture,
        _ALIAS,
        calculate_gaussian_mixture_output_shapes,
        convert_sklearn_gaussian_mixture,
        parser=_parse,
        options=_OPTIONS,
    )


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps skl2onnx's loader so that ``register()`` runs once its import completes."""

    def find_spec(self, name, path=None, target=None):
        if name != "skl2onnx":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        loader_exec = spec.loader.exec_module

        def exec_module(module):
            loader_exec(module)
            register()

        spec.loader.exec_module = exec_module
        return spec


def register_when_imported():
    """Register with skl2onnx now if it is loaded, else as soon as it is imported."""
    if "skl2onnx" in sys.modules:
        register()
    elif not any(isinstance(finder, _RegisterAfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterImport())
