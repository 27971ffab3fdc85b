"""fastgmm: Gaussian mixture models fitted by EM, fast for large N; a drop-in for scikit-learn's GaussianMixture."""

from . import _onnx
from ._collapse import ComponentCollapseWarning
from .sources.chunks import Chunks
from ._bayesian_mixture import BayesianGaussianMixture
from ._gaussian_mixture import GaussianMixture
from ._load import load
from ._model_file import ModelFileError
from ._selection import select_model
from ._show_versions import show_versions
from ._version import __version__
from ._warmup import warmup

_onnx.register_when_imported()

__all__ = [
    "BayesianGaussianMixture", "Chunks", "ComponentCollapseWarning", "GaussianMixture", "ModelFileError", "load", "select_model", "show_versions",
    "warmup", "__version__",
]
