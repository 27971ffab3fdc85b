"""fastgmm: Gaussian mixture models fitted by EM, fast for large N; a drop-in for scikit-learn's GaussianMixture."""

from . import _onnx
from ._collapse import ComponentCollapseWarning
from ._data import Chunks
from ._gaussian_mixture import GaussianMixture
from ._persistence import ModelFileError, load
from ._selection import select_model
from ._show_versions import show_versions
from ._warmup import warmup

__version__ = "0.1.0.dev0"

_onnx.register_when_imported()

__all__ = [
    "Chunks", "ComponentCollapseWarning", "GaussianMixture", "ModelFileError", "load", "select_model", "show_versions",
    "warmup", "__version__",
]
