"""model.save / fastgmm.load: exact round trips without pickle, and a clear ModelFileError for every damaged or
foreign file (the "Model files" table of docs/robustness.md). Pickle and joblib keep working."""

import io
import json
import os
import pickle
import warnings

import joblib
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import fastgmm
from fastgmm import GaussianMixture, ModelFileError

from .oracles import make_blobs

X = make_blobs(400, 3, 3, seed=40)
FITTED = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_", "converged_", "n_iter_",
          "lower_bound_", "lower_bounds_", "n_features_in_", "backend_")


def assert_same_estimator(restored, model):
    assert type(restored) is GaussianMixture
    assert set(vars(restored)) == set(vars(model))
    for name in FITTED:
        a, b = getattr(restored, name), getattr(model, name)
        if isinstance(b, np.ndarray):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
        else:
            assert type(a) is type(b) and a == b, name
    params, expected = restored.get_params(), model.get_params()
    for name, value in expected.items():
        if isinstance(value, np.random.RandomState):
            state, other = params[name].get_state(), value.get_state()
            np.testing.assert_array_equal(state[1], other[1])
            assert state[2:] == other[2:]
        elif value is not None and name.endswith("_init"):
            np.testing.assert_array_equal(params[name], value)
        else:
            assert params[name] == value, name
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))


def round_trip(model):
    buffer = io.BytesIO()
    model.save(buffer)
    return fastgmm.load(io.BytesIO(buffer.getvalue()))


@pytest.mark.parametrize(
    "settings",
    [
        dict(random_state=0),
        dict(random_state=None, tol=1e-4, reg_covar=1e-5, n_init=2, init_params="k-means++", backend="numpy"),
        dict(random_state=np.random.RandomState(3), warm_start=True, n_jobs=1, init_sample_size=None),
        dict(weights_init=[0.2, 0.3, 0.5], means_init=X[:3], random_state=1, verbose_interval=5),
        dict(max_iter=0, random_state=0),
    ],
    ids=["defaults", "options", "random-state-object", "initial-arrays", "max-iter-0"],
)
def test_round_trip_is_exact(covariance_type, settings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianMixture(3, covariance_type=covariance_type, **settings).fit(X)
    assert_same_estimator(round_trip(model), model)


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_round_trip_of_precisions_init_float32_fit_and_feature_names():
    pd = pytest.importorskip("pandas")
    precisions = np.stack([np.eye(3) * (k + 1) for k in range(3)])
    frame = pd.DataFrame(X.astype(np.float32), columns=["a", "b", "c"])
    model = GaussianMixture(3, precisions_init=precisions, random_state=0).fit(frame)
    restored = round_trip(model)
    assert_same_estimator(restored, model)
    assert list(restored.feature_names_in_) == ["a", "b", "c"]
    with pytest.warns(UserWarning, match="feature names"):
        restored.predict(X)  # scikit-learn's check of the names still applies


def test_save_to_a_path_writes_exactly_that_file(tmp_path):
    model = GaussianMixture(2, random_state=0).fit(X)
    path = tmp_path / "model.gmm"
    model.save(path)
    assert sorted(os.listdir(tmp_path)) == ["model.gmm"]  # no suffix added, no temporary left
    assert_same_estimator(fastgmm.load(str(path)), model)
    # Plain numpy reads it without pickle.
    with np.load(path, allow_pickle=False) as archive:
        assert str(archive["format"]) == "fastgmm.GaussianMixture" and int(archive["format_version"]) == 4


def test_float32_model_round_trips_exactly(tmp_path):
    """The file holds the float64 parameters: the loaded float32 model has the same float32 attributes, the same
    hidden float64 parameters, and so predicts and continues (warm_start) bit for bit as the saved one."""
    X32 = X.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianMixture(3, random_state=0, max_iter=5, warm_start=True).fit(X32)
        restored = round_trip(model)
        assert_same_estimator(restored, model)
        assert restored.means_.dtype == np.float32
        for name in ("weights", "means", "covariances", "precisions_cholesky"):
            exact = getattr(model._float64_parameters, name)
            assert exact.dtype == np.float64
            np.testing.assert_array_equal(getattr(restored._float64_parameters, name), exact)
        np.testing.assert_array_equal(restored.score_samples(X32), model.score_samples(X32))
        model.fit(X32)
        restored.fit(X32)
    np.testing.assert_array_equal(restored._float64_parameters.means, model._float64_parameters.means)
    assert restored.lower_bounds_ == model.lower_bounds_


def saved_members(model):
    """The members of ``model``'s file, as a dict of arrays."""
    buffer = io.BytesIO()
    model.save(buffer)
    with np.load(io.BytesIO(buffer.getvalue()), allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def load_members(members):
    """``fastgmm.load`` of a file holding ``members``."""
    buffer = io.BytesIO()
    np.savez(buffer, **members)
    return fastgmm.load(io.BytesIO(buffer.getvalue()))


def test_version_1_files_are_read_as_float64():
    model = GaussianMixture(2, random_state=0).fit(X)
    members = saved_members(model)
    fitted = json.loads(str(members["fitted"]))
    del fitted["dtype"]
    members["fitted"], members["format_version"] = np.array(json.dumps(fitted)), np.array(1)
    assert_same_estimator(load_members(members), model)


@pytest.mark.parametrize(
    "version, added, defaults",
    [
        (2, ("learning_decay", "learning_offset", "step_size", "batch_size"), (0.7, 10.0, None, None)),
        (3, ("missing_values",), ("error",)),
    ],
)
def test_older_files_without_later_parameters_get_their_defaults(version, added, defaults):
    model = GaussianMixture(2, random_state=0).fit(X)
    members = saved_members(model)
    params = json.loads(str(members["params"]))
    for name in added:
        del params[name]
    members["params"], members["format_version"] = np.array(json.dumps(params)), np.array(version)
    restored = load_members(members)
    assert_same_estimator(restored, model)
    assert tuple(getattr(restored, name) for name in added) == defaults
    members["format_version"] = np.array(version + 1)  # the next version names them
    with pytest.raises(fastgmm.ModelFileError, match="params must name exactly"):
        load_members(members)


def test_save_unfitted_raises_and_failed_save_leaves_no_file(tmp_path):
    with pytest.raises(NotFittedError):
        GaussianMixture(2).save(tmp_path / "m.npz")
    model = GaussianMixture(2, random_state=0).fit(X)
    model.set_params(n_components=2)
    model.tol = object()  # a value the format cannot store
    with pytest.raises(TypeError, match="cannot save parameter tol"):
        model.save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


def test_pickle_and_joblib_still_work(tmp_path):
    model = GaussianMixture(3, random_state=0).fit(X)
    assert_same_estimator(pickle.loads(pickle.dumps(model)), model)
    joblib.dump(model, tmp_path / "m.joblib")
    assert_same_estimator(joblib.load(tmp_path / "m.joblib"), model)


# ------------------------------------------------------------------------------------------- damaged files

MODEL = GaussianMixture(2, random_state=0).fit(X)


def members_of(model):
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def saved(members, **kwargs):
    buffer = io.BytesIO()
    np.savez(buffer, **members, **kwargs)
    return io.BytesIO(buffer.getvalue())


def with_json(key, **changes):
    def change(members):
        value = json.loads(str(members[key]))
        value.update(changes)
        members[key] = np.array(json.dumps(value))

    return change


def setter(key, value):
    def change(members):
        members[key] = value(members[key]) if callable(value) else value

    return change


def remover(key):
    return lambda members: members.pop(key)


def non_spd(cov):
    cov = cov.copy()
    cov[0] = -cov[0]
    return cov


def lower_nonzero(U):
    U = U.copy()
    U[0, 2, 0] = 1.0
    return U


TAMPERED = [
    ("missing member", remover("means_"), r"missing member\(s\) \['means_'\]"),
    ("unexpected member", setter("extra", np.zeros(2)), r"unexpected member\(s\) \['extra'\]"),
    ("other format", setter("format", np.array("something else")), "no member 'format' equal to"),
    ("format not text", setter("format", np.zeros(3)), "'format' must be a string"),
    ("newer format version", setter("format_version", np.array(5)),
     "format version 5; this fastgmm reads versions 1, 2, 3, 4"),
    ("version 1 with a dtype", setter("format_version", np.array(1)), "fitted must name exactly"),
    ("unknown dtype", with_json("fitted", dtype="float16"), "dtype 'float16' is not one of"),
    ("params not JSON", setter("params", np.array("{not json")), "'params' is not valid JSON"),
    ("params a list", setter("params", np.array("[1, 2]")), "'params' must be a JSON object"),
    ("unknown parameter", with_json("params", bogus=1), "params must name exactly"),
    ("invalid parameter", with_json("params", n_components=0), "invalid parameters: The 'n_components' parameter"),
    ("wrong covariance type", with_json("params", covariance_type="diag"), r"covariances_ has shape \(2, 3, 3\)"),
    ("bad random state", with_json("params", random_state="x"), "random_state must be null, an integer"),
    ("fitted scalar type", with_json("fitted", n_iter_="3"), "fitted n_iter_ must be int"),
    ("bad backend", with_json("fitted", backend_="gpu"), "backend_ 'gpu' is not one of"),
    ("wrong width", with_json("fitted", n_features_in_=4), r"means_ has shape \(2, 3\), expected \(2, 4\)"),
    ("weights float32", setter("weights_", lambda w: w.astype(np.float32)), "weights_ must be float64"),
    ("means NaN", setter("means_", lambda m: np.where(m == m[0, 0], np.nan, m)), "means_ contains NaN or infinity"),
    ("weights not summing to 1", setter("weights_", lambda w: w * 0.9), "weights_ must be non-negative and sum to 1"),
    ("negative weight", setter("weights_", lambda w: np.array([1.5, -0.5])), "non-negative and sum to 1"),
    ("covariance not SPD", setter("covariances_", non_spd), "covariances_ are not all symmetric positive definite"),
    ("Cholesky factor of another matrix", setter("precisions_cholesky_", lambda U: U * 1.01), "is not the Cholesky"),
    ("Cholesky factor not triangular", setter("precisions_cholesky_", lower_nonzero), "not upper triangular"),
    ("precisions inconsistent", setter("precisions_", lambda P: P * (1 + 1e-6)), "precisions_ is not"),
    ("lower bound NaN", setter("lower_bound_", np.array(np.nan)), "lower_bound_ must be a float64 scalar"),
    ("lower bounds 2-D", setter("lower_bounds_", np.zeros((2, 2))), "lower_bounds_ must be a 1-D float64"),
    ("feature names of wrong length", setter("feature_names_in_", np.array(["a"])), "feature_names_in_ must hold 3"),
]


@pytest.mark.parametrize("change, message", [case[1:] for case in TAMPERED], ids=[case[0] for case in TAMPERED])
def test_tampered_files_are_rejected(change, message):
    members = members_of(MODEL)
    change(members)
    with pytest.raises(ModelFileError, match=message):
        fastgmm.load(saved(members))


def test_object_arrays_are_never_unpickled():
    members = members_of(MODEL)
    members["means_"] = np.array([object(), None], dtype=object)
    with pytest.raises(ModelFileError, match="Object arrays cannot be loaded when allow_pickle=False"):
        fastgmm.load(saved(members))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a fastgmm model file: not an .npz"),
        (b"hello, world" * 10, "not a fastgmm model file: not an .npz"),
        (None, "not a fastgmm model file: not an .npz"),
    ],
    ids=["empty", "text", "npy"],
)
def test_foreign_files_are_rejected(tmp_path, content, message):
    path = tmp_path / "model.npz"
    if content is None:
        np.save(path, np.zeros(3))
        path = tmp_path / "model.npz.npy"
    else:
        path.write_bytes(content)
    with pytest.raises(ModelFileError, match=message) as error:
        fastgmm.load(path)
    assert str(path) in str(error.value)


def test_a_single_npy_array_in_a_file_object_is_rejected():
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(3))
    with pytest.raises(ModelFileError, match="a single .npy array"):
        fastgmm.load(io.BytesIO(buffer.getvalue()))


def test_truncated_file_is_rejected():
    buffer = io.BytesIO()
    MODEL.save(buffer)
    data = buffer.getvalue()
    for size in (10, len(data) // 2, len(data) - 1):
        with pytest.raises(ModelFileError, match="not a fastgmm model file"):
            fastgmm.load(io.BytesIO(data[:size]))


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        fastgmm.load(tmp_path / "nothing.npz")
