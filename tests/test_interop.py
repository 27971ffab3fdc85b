"""fastgmm models in the tools that take scikit-learn's: to_sklearn, from_sklearn, and ONNX through skl2onnx (run
when skl2onnx and onnxruntime are installed: the test extra has them)."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

from fastgmm import GaussianMixture

from .oracles import make_blobs
from .processes import run_python

DTYPES = (np.float32, np.float64)


def _fitted(covariance_type, dtype, **settings):
    # Near the origin: scikit-learn's diag and spherical log-probabilities (and skl2onnx's graph of them) expand
    # |x - mu|^2, which in float32 loses eps32 |x|^2 (5e-4 of probability at an offset of 50, measured).
    X = make_blobs(3000, 4, 3, seed=7).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return X, GaussianMixture(3, covariance_type=covariance_type, random_state=0, **settings).fit(X)


@pytest.mark.parametrize("dtype", DTYPES)
def test_to_sklearn_predicts_the_same(covariance_type, dtype):
    X, model = _fitted(covariance_type, dtype, tol=1e-4)
    twin = model.to_sklearn()
    assert type(twin) is SklearnGaussianMixture
    assert twin.get_params()["tol"] == 1e-4 and twin.covariance_type == covariance_type
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert getattr(twin, name).dtype == dtype
        np.testing.assert_array_equal(getattr(twin, name), getattr(model, name))
        assert not np.shares_memory(getattr(twin, name), getattr(model, name))
    assert (twin.n_iter_, twin.converged_, twin.lower_bound_) == (model.n_iter_, model.converged_, model.lower_bound_)
    np.testing.assert_array_equal(twin.predict(X), model.predict(X))
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(twin.predict_proba(X), model.predict_proba(X), rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(twin.score_samples(X), model.score_samples(X), rtol=rtol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_from_sklearn_round_trip(covariance_type, dtype):
    X = make_blobs(2000, 3, 3, seed=8).astype(dtype)
    theirs = SklearnGaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    ours = GaussianMixture.from_sklearn(theirs, backend="numpy")
    assert ours.backend == "numpy" and ours.random_state == 0 and ours.backend_ == "numpy"
    assert ours.means_.dtype == dtype and ours.n_features_in_ == 3
    np.testing.assert_array_equal(ours.means_, theirs.means_)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-5 if dtype == np.float32
                               else 1e-12)
    back = ours.to_sklearn()
    np.testing.assert_array_equal(back.precisions_cholesky_, theirs.precisions_cholesky_)
    # A converted model continues with warm_start.
    ours.set_params(warm_start=True, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X)
    assert ours.n_iter_ <= 2


def test_from_sklearn_rejects_other_models():
    with pytest.raises(TypeError, match="expects a fitted sklearn.mixture.GaussianMixture"):
        GaussianMixture.from_sklearn(GaussianMixture())
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        GaussianMixture.from_sklearn(SklearnGaussianMixture())
    with pytest.raises(NotFittedError):
        GaussianMixture().to_sklearn()


# --------------------------------------------------------------------------------------------------------- ONNX


@pytest.mark.parametrize("dtype", DTYPES)
def test_onnx_export_reproduces_predictions(covariance_type, dtype):
    skl2onnx = pytest.importorskip("skl2onnx")
    ort = pytest.importorskip("onnxruntime")
    X, model = _fitted(covariance_type, dtype)
    onx = skl2onnx.to_onnx(model, X[:1], options={id(model): {"score_samples": True}})
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    labels, proba, scores = session.run(None, {session.get_inputs()[0].name: X})
    assert proba.dtype == dtype
    np.testing.assert_array_equal(labels.ravel(), model.predict(X))
    np.testing.assert_allclose(proba, model.predict_proba(X), atol=1e-4)
    np.testing.assert_allclose(scores.ravel(), model.score_samples(X), rtol=1e-4)


def test_onnx_export_without_options_has_label_and_probabilities():
    skl2onnx = pytest.importorskip("skl2onnx")
    _, model = _fitted("full", np.float64)
    onx = skl2onnx.to_onnx(model, model.means_[:1])
    assert [output.name for output in onx.graph.output] == ["label", "probabilities"]


@pytest.mark.parametrize("order", ["fastgmm first", "skl2onnx first"])
def test_registration_happens_in_either_import_order(order):
    """A fresh interpreter: fastgmm registers with skl2onnx whichever of the two is imported first."""
    pytest.importorskip("skl2onnx")
    imports = "import fastgmm; import skl2onnx" if order == "fastgmm first" else "import skl2onnx; import fastgmm"
    code = (
        f"{imports}\n"
        "import numpy as np\n"
        "X = np.random.RandomState(0).randn(200, 2)\n"
        "model = fastgmm.GaussianMixture(2, random_state=0, backend='numpy').fit(X)\n"
        "print(len(skl2onnx.to_onnx(model, X[:1]).graph.output))\n"
    )
    assert run_python(code, timeout=300) == "2"
