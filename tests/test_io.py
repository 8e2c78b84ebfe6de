"""Persistence: model.save / fastmix.load round trips in the documented .npz layout,
refusal of tampered or foreign files (never unpickling), pickle and clone."""

import io
import json
import pickle
import warnings
import zipfile

import numpy as np
import pytest
from conftest import COV_TYPES, fit_quiet, run_python, three_blobs
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

import fastmix
from fastmix import BayesianGaussianMixture, GaussianMixture
from fastmix._io import FORMAT_VERSION

PRIOR_TYPES = ["dirichlet_process", "dirichlet_distribution"]
DTYPES = [np.float64, np.float32]


# Tiny fits: one numba and one BLAS thread keep them fast on a shared machine.
pytestmark = pytest.mark.usefixtures("one_thread")


def make(kind, covariance_type="full", prior_type="dirichlet_process", **kw):
    if kind == "gmm":
        return GaussianMixture(
            n_components=3, covariance_type=covariance_type, max_iter=20, random_state=0, **kw
        )
    return BayesianGaussianMixture(
        n_components=4,
        covariance_type=covariance_type,
        weight_concentration_prior_type=prior_type,
        max_iter=20,
        random_state=0,
        **kw,
    )


def assert_same_state(a, b):
    """Same class, same parameters, same fitted attributes with the same types and dtypes."""
    assert type(a) is type(b)
    pa, pb = a.get_params(), b.get_params()
    assert pa.keys() == pb.keys()
    for name, value in pa.items():
        if isinstance(value, np.random.RandomState):
            assert np.array_equal(value.get_state()[1], pb[name].get_state()[1])
        elif value is not None and np.ndim(value) > 0:
            np.testing.assert_array_equal(pb[name], value)
        else:
            assert pb[name] == value and type(pb[name]) is type(value), name
    fitted = {k for k in vars(a) if k.endswith("_") and not k.startswith("_")}
    assert fitted == {k for k in vars(b) if k.endswith("_") and not k.startswith("_")}
    for name in fitted:
        va, vb = getattr(a, name), getattr(b, name)
        if name == "lower_bounds_":
            assert isinstance(vb, list)
            assert [(type(v), float(v)) for v in vb] == [(type(v), float(v)) for v in va]
        elif isinstance(va, tuple):
            assert isinstance(vb, tuple) and len(va) == len(vb)
            for x, y in zip(va, vb, strict=True):
                assert x.dtype == y.dtype
                np.testing.assert_array_equal(x, y)
        elif isinstance(va, (np.ndarray, np.generic)):
            assert type(va) is type(vb) and va.dtype == vb.dtype, name
            np.testing.assert_array_equal(va, vb)
        else:
            assert type(va) is type(vb) and va == vb, name


def assert_same_predictions(a, b, X):
    for method in ("predict_proba", "score_samples", "predict"):
        ya, yb = getattr(a, method)(X), getattr(b, method)(X)
        assert ya.dtype == yb.dtype
        assert ya.tobytes() == yb.tobytes(), method  # bitwise
    assert a.score(X) == b.score(X)


# ------------------------------------------------------------ round trips
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_round_trip_gaussian_mixture(tmp_path, covariance_type, dtype):
    X = three_blobs(dtype=dtype)
    model = fit_quiet(make("gmm", covariance_type), X)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = fastmix.load(path)
    assert_same_state(model, loaded)
    assert loaded.means_.dtype == dtype
    assert all(type(v) is np.float64 for v in loaded.lower_bounds_)  # as scikit-learn's
    assert_same_predictions(model, loaded, X)
    assert model.bic(X) == loaded.bic(X)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_round_trip_bayesian_mixture(tmp_path, covariance_type, prior_type, dtype):
    X = three_blobs(dtype=dtype)
    model = fit_quiet(make("bgmm", covariance_type, prior_type), X)
    path = tmp_path / "model.npz"
    model.save(str(path))
    loaded = fastmix.load(str(path))
    assert_same_state(model, loaded)
    if prior_type == "dirichlet_process":
        assert isinstance(loaded.weight_concentration_, tuple)
        assert len(loaded.weight_concentration_) == 2
    else:
        assert isinstance(loaded.weight_concentration_, np.ndarray)
    assert loaded.means_.dtype == dtype
    assert all(type(v) is np.float64 for v in loaded.lower_bounds_)  # as scikit-learn's
    assert_same_predictions(model, loaded, X)


def test_layout_is_documented_npz(tmp_path):
    """The file is a plain .npz of non-object arrays with the documented entries."""
    model = fit_quiet(make("bgmm", "tied"), three_blobs(dtype=np.float32))
    path = tmp_path / "model.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as data:
        entries = {name: data[name] for name in data.files}
    assert int(entries["fastmix_format_version"]) == FORMAT_VERSION == 1
    assert str(entries["class_name"]) == "BayesianGaussianMixture"
    assert str(entries["fastmix_version"]) == fastmix.__version__
    assert all(a.dtype != object for a in entries.values())
    assert entries["attr.means_"].dtype == np.float32
    assert entries["attr.weight_concentration_.0"].shape == (4,)
    assert entries["attr.weight_concentration_.1"].shape == (4,)
    assert entries["attr.lower_bounds_"].tolist() == model.lower_bounds_
    import json

    params = json.loads(str(entries["params_json"]))
    assert params == {k: v for k, v in model.get_params().items()}
    kinds = json.loads(str(entries["attributes_json"]))
    assert kinds["weight_concentration_"] == "tuple:2"
    assert kinds["lower_bounds_"] == "float_list"
    assert kinds["degrees_of_freedom_"] == "scalar"  # tied: one np.float32


def test_array_params_and_random_state_round_trip(tmp_path):
    """Array-valued parameters come back as arrays; a RandomState keeps its state,
    so the loaded model samples as the saved one would."""
    X = three_blobs()
    means_init = np.array([[0.0, 0, 0], [5, 5, 5], [-5, 0, 5]])
    precisions_init = np.ones((3, 3)) * [[1.0], [2.0], [3.0]]
    model = fit_quiet(
        GaussianMixture(
            3,
            covariance_type="diag",
            means_init=means_init.tolist(),
            precisions_init=precisions_init,
            weights_init=[0.2, 0.3, 0.5],
            random_state=np.random.RandomState(5),
            max_iter=5,
        ),
        X,
    )
    model.save(tmp_path / "m.npz")
    loaded = fastmix.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.means_init, means_init)
    np.testing.assert_array_equal(loaded.precisions_init, precisions_init)
    np.testing.assert_array_equal(loaded.weights_init, [0.2, 0.3, 0.5])
    assert isinstance(loaded.random_state, np.random.RandomState)
    xs, ys = model.sample(7)
    xl, yl = loaded.sample(7)
    np.testing.assert_array_equal(xs, xl)
    np.testing.assert_array_equal(ys, yl)

    bayes = fit_quiet(
        BayesianGaussianMixture(
            n_components=3,
            covariance_type="spherical",
            mean_prior=np.zeros(3, dtype=np.float32),
            covariance_prior=2.0,
            degrees_of_freedom_prior=4.5,
            weight_concentration_prior=0.1,
            max_iter=5,
            random_state=1,
        ),
        X,
    )
    bayes.save(tmp_path / "b.npz")
    again = fastmix.load(tmp_path / "b.npz")
    assert_same_state(bayes, again)
    assert again.mean_prior.dtype == np.float32
    assert_same_predictions(bayes, again, X)


def test_feature_names_round_trip_without_pandas(tmp_path):
    """feature_names_in_ is stored as a unicode array and restored as scikit-learn
    keeps it (an object array of str)."""
    X = three_blobs()
    model = fit_quiet(make("gmm"), X)
    model.feature_names_in_ = np.asarray(["a", "b", "ç"], dtype=object)
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:
        assert data["attr.feature_names_in_"].dtype.kind == "U"
    loaded = fastmix.load(tmp_path / "m.npz")
    assert loaded.feature_names_in_.dtype == object
    assert loaded.feature_names_in_.tolist() == ["a", "b", "ç"]
    assert all(type(v) is str for v in loaded.feature_names_in_)


def test_feature_names_round_trip_with_pandas(tmp_path):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(three_blobs(dtype=np.float32), columns=["height", "width", "depth"])
    model = fit_quiet(make("bgmm", "diag"), X)
    model.save(tmp_path / "m.npz")
    loaded = fastmix.load(tmp_path / "m.npz")
    assert_same_state(model, loaded)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names"
        assert_same_predictions(model, loaded, X)
    renamed = X.rename(columns={"width": "breadth"})
    with pytest.raises(ValueError, match="feature names"):
        loaded.predict(renamed)


def test_save_to_exact_path_and_file_objects(tmp_path):
    """No suffix is added to the path; file objects work both ways; no temp file is left."""
    X = three_blobs()
    model = fit_quiet(make("gmm", "tied"), X)
    path = tmp_path / "model.bin"
    model.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin"]
    (tmp_path / "plain").write_bytes(b"")
    assert path.stat().st_mode == (tmp_path / "plain").stat().st_mode  # the umask applies
    assert_same_predictions(model, fastmix.load(path), X)
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    assert_same_predictions(model, fastmix.load(buffer), X)


def test_loaded_model_warm_starts_like_the_original(tmp_path):
    X = three_blobs()
    model = fit_quiet(make("bgmm", "full", warm_start=True, tol=0.0), X)
    model.save(tmp_path / "m.npz")
    loaded = fastmix.load(tmp_path / "m.npz")
    fit_quiet(model, X)
    fit_quiet(loaded, X)
    assert_same_state(model, loaded)


def test_unfitted_model_cannot_be_saved(tmp_path):
    with pytest.raises(NotFittedError):
        GaussianMixture(2).save(tmp_path / "m.npz")
    with pytest.raises(NotFittedError):
        BayesianGaussianMixture().save(tmp_path / "m.npz")
    assert not list(tmp_path.iterdir())


def test_subclass_is_not_saved(tmp_path):
    class MyMixture(GaussianMixture):
        pass

    model = fit_quiet(MyMixture(2, max_iter=5, random_state=0), three_blobs())
    with pytest.raises(TypeError, match="Only BayesianGaussianMixture and GaussianMixture"):
        model.save(tmp_path / "m.npz")


# ------------------------------------------------------- tampered files
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A valid model file's bytes and entries, to tamper with."""
    X = three_blobs()
    model = fit_quiet(make("bgmm", "full"), X)
    path = tmp_path_factory.mktemp("saved") / "model.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as data:
        entries = {name: data[name] for name in data.files}
    return path.read_bytes(), entries


def write_entries(path, entries):
    with open(path, "wb") as fh:
        np.savez(fh, **entries)
    return path


def load_error(path, match):
    with pytest.raises(ValueError, match=match) as info:
        fastmix.load(path)
    assert str(path) in str(info.value)
    return str(info.value)


def test_valid_fixture_loads(saved, tmp_path):
    path = tmp_path / "ok.npz"
    path.write_bytes(saved[0])
    assert isinstance(fastmix.load(path), BayesianGaussianMixture)


def test_random_bytes_are_refused(tmp_path):
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.RandomState(0).bytes(4096))
    load_error(path, "not a fastmix model file")
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    load_error(empty, "not a fastmix model file")
    text = tmp_path / "data.csv"
    text.write_text("a,b\n1,2\n")
    load_error(text, "not a fastmix model file")


def test_other_programs_files_are_refused(tmp_path):
    path = tmp_path / "arrays.npz"
    np.savez(path, weights=np.ones(3), means=np.zeros((3, 2)))
    load_error(path, "no 'fastmix_format_version' entry")
    single = tmp_path / "array.npy"
    np.save(single, np.arange(5))
    load_error(single, "single .npy array")
    other_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(other_zip, "w") as zf:
        zf.writestr("readme.txt", "hello")
    load_error(other_zip, "no 'fastmix_format_version' entry")


def test_truncated_file_is_refused(saved, tmp_path):
    data = saved[0]
    for cut in (10, len(data) // 2, len(data) - 10):
        path = tmp_path / f"cut{cut}.npz"
        path.write_bytes(data[:cut])
        load_error(path, "not a fastmix model file|damaged|truncated")


def test_corrupted_member_is_refused(saved, tmp_path):
    """Flipped bytes inside a member: the zip CRC check fails, reported as damage."""
    data, entries = saved
    raw = bytearray(data)
    # The means are stored uncompressed: overwrite their bytes in place.
    needle = entries["attr.means_"].tobytes()
    start = bytes(raw).index(needle)
    raw[start : start + 8] = b"\xff" * 8
    path = tmp_path / "flipped.npz"
    path.write_bytes(bytes(raw))
    load_error(path, "'attr.means_' is damaged")


@pytest.mark.parametrize(
    ("estimator", "change", "match"),
    [
        ("gmm", {"n_components": 5}, "n_components=5, but this model was fitted with 3"),
        ("gmm", {"covariance_type": "diag"}, "covariance_type='diag' with 3 components"),
        ("bgmm", {"n_components": 2}, "n_components=2, but this model was fitted with 4"),
        (
            "bgmm",
            {"weight_concentration_prior_type": "dirichlet_distribution"},
            "dirichlet_distribution', but this model was fitted with 'dirichlet_process'",
        ),
    ],
)
@pytest.mark.parametrize("saver", ["method", "function"])
def test_save_refuses_parameters_changed_after_the_fit(estimator, change, match, saver, tmp_path):
    """set_params after the fit: save used to write a file that load refused,
    and fastmix.save(model, path) still did after model.save(path) refused."""
    model = fit_quiet(make(estimator, "full"), three_blobs())
    model.set_params(**change)
    path = tmp_path / "model.npz"
    with pytest.raises(ValueError, match=match):
        model.save(path) if saver == "method" else fastmix.save(model, path)
    assert not path.exists()
    model.set_params(**{name: make(estimator, "full").get_params()[name] for name in change})
    model.save(path)
    np.testing.assert_array_equal(fastmix.load(path).means_, model.means_)


@pytest.mark.parametrize(("fitted", "changed"), [("diag", "tied"), ("tied", "diag")])
def test_a_covariance_type_changed_with_the_same_shapes_is_refused(fitted, changed, tmp_path):
    """With K == D a 'diag' model's factors have the shape of a 'tied' one's
    (and back), so the shape checks let a model whose covariance_type was
    changed after the fit be saved, and loaded as another model. The factors'
    structure (upper-triangular with a positive diagonal; positive) is
    checked too. (Spherical read as tied-diagonal stays indistinguishable.)"""
    X = three_blobs()  # 3 features
    model = fit_quiet(make("gmm", fitted), X)  # 3 components
    model.set_params(covariance_type=changed)
    path = tmp_path / "model.npz"
    with pytest.raises(ValueError, match="precisions_cholesky_' should be .*changed after"):
        model.save(path)
    assert not path.exists()


def _user_attribute(model):
    model.label_names_ = np.array([1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (_user_attribute, "unknown fitted attribute 'label_names_'"),
        (lambda m: setattr(m, "lower_bounds_", np.array(m.lower_bounds_)), "a list of floats"),
        (lambda m: setattr(m, "means_", m.means_.astype(">f8")), "'means_' should be a float"),
        (lambda m: m.set_params(tol=float("nan")), "invalid parameters"),
        (
            lambda m: setattr(m, "feature_names_in_", np.array(["a", "b"])),
            "'feature_names_in_' should be an array of 2 names",
        ),
        (
            lambda m: setattr(m, "feature_names_in_", np.array(["a", "a\0"], dtype=object)),
            "a name ends with a NUL character",
        ),
    ],
    ids=["own_attribute", "bounds_array", "big_endian", "nan_tol", "str_names", "nul_name"],
)
def test_save_refuses_a_file_that_would_not_load_back(edit, match, tmp_path):
    """A model that predicts in memory but whose file load refuses (or reads
    back as another model: NumPy drops a name's trailing NULs) is refused
    before anything is written; a file already at the path is left as it was.
    save wrote such files, and load refused them (or changed them) later."""
    model = fit_quiet(make("gmm", "diag"), three_blobs()[:, :2])
    path = tmp_path / "model.npz"
    path.write_bytes(b"earlier")
    edit(model)
    for saver in (model.save, lambda p: fastmix.save(model, p)):
        with pytest.raises(ValueError, match=match):
            saver(path)
        assert path.read_bytes() == b"earlier"
        buffer = io.BytesIO()
        with pytest.raises(ValueError, match=match):
            saver(buffer)
        assert buffer.getvalue() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]  # no temp file left


def test_save_replaces_a_file_keeping_its_mode_and_writes_through_a_link(tmp_path):
    """Overwriting keeps the replaced file's permission bits; a symbolic link
    keeps pointing at its file, which is replaced (it was replaced by a file,
    and its target kept the old model). A bytes path works as load's does."""
    X = three_blobs()
    model = fit_quiet(make("gmm", "diag"), X)
    target = tmp_path / "real.npz"
    target.write_bytes(b"old")
    target.chmod(0o600)
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    model.save(link)
    assert link.is_symlink() and (target.stat().st_mode & 0o777) == 0o600
    assert_same_predictions(model, fastmix.load(target), X)
    fastmix.save(model, bytes(tmp_path / "b.npz"))
    assert_same_predictions(model, fastmix.load(bytes(tmp_path / "b.npz")), X)


def test_save_errors_name_the_path_given(tmp_path):
    """Not the hidden temporary file's name."""
    model = fit_quiet(make("gmm", "diag"), three_blobs())
    with pytest.raises(IsADirectoryError, match=str(tmp_path)) as info:
        model.save(tmp_path)
    assert ".tmp" not in str(info.value)
    missing = tmp_path / "no" / "model.npz"
    with pytest.raises(FileNotFoundError) as info:
        model.save(missing)
    assert str(missing) in str(info.value) and ".tmp" not in str(info.value)


def test_an_entry_stored_twice_is_refused(saved, tmp_path):
    """'attr.means_.npy' and a second member 'attr.means_': the header that
    load judged was one member's and the data it read the other's, so a
    small file could inflate hundreds of MB before it was refused."""
    entries = saved[1]
    path = tmp_path / "twice.npz"
    write_entries(path, entries)
    with zipfile.ZipFile(path, "a") as zf:
        buf = io.BytesIO()
        np.save(buf, entries["attr.means_"], allow_pickle=False)
        zf.writestr("attr.means_", buf.getvalue())
    load_error(path, "'attr.means_' appears twice")


def _online_entries(tmp_path):
    model = GaussianMixture(3, covariance_type="diag", random_state=0)
    X = three_blobs()
    model.partial_fit(X).partial_fit(X)
    model.save(tmp_path / "online.npz")
    with np.load(tmp_path / "online.npz", allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def _without(entries, name):
    kinds = json.loads(str(entries["attributes_json"]))
    del kinds[name]
    kept = {k: v for k, v in entries.items() if not k.startswith(f"attr.{name}")}
    return dict(kept, attributes_json=np.asarray(json.dumps(kinds)))


@pytest.mark.parametrize(
    ("tamper", "match"),
    [
        (
            lambda e: {"attr.online_stats_.1": np.zeros((1, 1))},
            "'online_stats_' should be a tuple",
        ),
        (lambda e: {"attr.online_stats_.0": e["attr.online_stats_.0"][:2]}, "'online_stats_'"),
        (
            lambda e: {"attr.online_stats_.5": e["attr.online_stats_.5"].astype(np.float32)},
            "tuple of float64 arrays",
        ),
        (lambda e: {"attr.n_batches_": np.int64(-7)}, "'n_batches_' should be a positive"),
        (lambda e: {"attr.n_batches_": np.int64(0)}, "'n_batches_' should be a positive"),
        (lambda e: {"attr.n_samples_seen_": np.int64(-1)}, "'n_samples_seen_' should be a non"),
        (lambda e: _without(e, "online_stats_"), "missing fitted attribute\\(s\\): online_stats_"),
        (lambda e: _without(e, "n_batches_"), "missing fitted attribute\\(s\\): n_batches_"),
    ],
)
def test_damaged_online_state_is_refused(tmp_path, tamper, match):
    """The partial_fit state is checked at load like every other fitted array:
    a damaged one used to load and fail (or go wrong) at the next partial_fit."""
    entries = _online_entries(tmp_path)
    changed = tamper(entries)
    entries = changed if "attributes_json" in changed else {**entries, **changed}
    load_error(write_entries(tmp_path / "bad.npz", entries), match)


def test_encrypted_or_malformed_members_are_refused(saved, tmp_path):
    """zipfile's RuntimeError (an encrypted member) and the .npy header
    parser's TokenError (a malformed shape) are damage too, not raw errors."""
    data, entries = saved
    raw = bytearray(data)
    central = bytes(raw).index(b"PK\x01\x02")
    raw[central + 8] |= 1  # the first member's "encrypted" flag
    path = tmp_path / "encrypted.npz"
    path.write_bytes(bytes(raw))
    load_error(path, "is damaged or truncated \\(RuntimeError")

    path = tmp_path / "header.npz"
    with zipfile.ZipFile(path, "w") as out, zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            member = bytearray(archive.read(info))
            if info.filename == "attr.means_.npy":
                end = member.index(b"\n")
                header = member[:end].replace(b"), }", b",  }")
                assert len(header) == end
                member[:end] = header
            out.writestr(info, bytes(member))
    load_error(path, "'attr.means_' is damaged or truncated \\(TokenError")


@pytest.mark.parametrize(
    ("version", "match"),
    [
        (np.int64(2), "format version 2 is newer than this fastmix reads"),
        (np.int64(0), "unsupported format version 0"),
        (np.array("1"), "'fastmix_format_version' is not an integer"),
        (np.ones(2, dtype=np.int64), "'fastmix_format_version' is not an integer"),
    ],
)
def test_wrong_format_version_is_refused(saved, tmp_path, version, match):
    entries = dict(saved[1], fastmix_format_version=np.asarray(version))
    load_error(write_entries(tmp_path / "v.npz", entries), match)


def test_missing_format_version_is_refused(saved, tmp_path):
    entries = dict(saved[1])
    del entries["fastmix_format_version"]
    load_error(write_entries(tmp_path / "v.npz", entries), "no 'fastmix_format_version'")


@pytest.mark.parametrize(
    "name", ["os.system", "sklearn.mixture.GaussianMixture", "Pipeline", "BaseMixture", ""]
)
def test_unknown_class_is_refused(saved, tmp_path, name):
    entries = dict(saved[1], class_name=np.asarray(name))
    message = load_error(write_entries(tmp_path / "c.npz", entries), "unknown model class")
    assert "BayesianGaussianMixture, GaussianMixture" in message


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ("class_name", "the entry 'class_name' is missing"),
        ("params_json", "the entry 'params_json' is missing"),
        ("attributes_json", "the entry 'attributes_json' is missing"),
        ("attr.means_", "the entry 'attr.means_' is missing"),
        ("attr.weight_concentration_.1", "the entry 'attr.weight_concentration_.1' is missing"),
    ],
)
def test_missing_entries_are_refused(saved, tmp_path, entry, match):
    entries = dict(saved[1])
    del entries[entry]
    load_error(write_entries(tmp_path / "m.npz", entries), match)


def test_entries_save_never_writes_are_refused(saved, tmp_path):
    """An extra entry (a stray fitted attribute the manifest does not list) is refused,
    not ignored: the file was edited or written by something else."""
    entries = dict(saved[1], **{"attr.bogus_": np.arange(3.0)})
    load_error(write_entries(tmp_path / "m.npz", entries), "unexpected entry 'attr.bogus_'")


def edit_json(entries, key, edit):
    import json

    doc = json.loads(str(entries[key]))
    edit(doc)
    return dict(entries, **{key: np.asarray(json.dumps(doc))})


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d.pop("means_"), r"missing fitted attribute\(s\): means_"),
        (lambda d: d.pop("n_features_in_"), r"missing fitted attribute\(s\): n_features_in_"),
        (lambda d: d.update(means_="pickle"), "unsupported kind 'pickle'"),
        (lambda d: d.update(means_="tuple:99"), "unsupported kind 'tuple:99'"),
        (lambda d: d.update(__class__="array"), "'__class__' is not a fitted-attribute name"),
        (lambda d: d.update(predict="array"), "'predict' is not a fitted-attribute name"),
        (lambda d: d.update(means_="scalar"), "'attr.means_' has dtype float64 and shape"),
    ],
)
def test_tampered_attribute_manifest_is_refused(saved, tmp_path, edit, match):
    entries = edit_json(saved[1], "attributes_json", edit)
    load_error(write_entries(tmp_path / "a.npz", entries), match)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d.pop("tol"), r"missing parameter\(s\) for BayesianGaussianMixture: tol"),
        (lambda d: d.update(evil=1), r"unknown parameter\(s\) for BayesianGaussianMixture"),
        (lambda d: d.update(covariance_type="bogus"), "invalid parameters"),
        (lambda d: d.update(n_components=[1, 2]), "unsupported stored value"),
        (lambda d: d.update(tol={"kind": "random_state"}), "unsupported stored value"),
        (lambda d: d.update(mean_prior={"kind": "array"}), "'param.mean_prior' is missing"),
    ],
)
def test_tampered_parameters_are_refused(saved, tmp_path, edit, match):
    entries = edit_json(saved[1], "params_json", edit)
    load_error(write_entries(tmp_path / "p.npz", entries), match)


def test_malformed_json_is_refused(saved, tmp_path):
    entries = dict(saved[1], params_json=np.asarray("{not json"))
    load_error(write_entries(tmp_path / "j.npz", entries), "'params_json' is not valid JSON")
    entries = dict(saved[1], attributes_json=np.asarray("[1, 2]"))
    load_error(write_entries(tmp_path / "j.npz", entries), "should be a JSON object")


@pytest.mark.parametrize(
    ("entry", "value", "match"),
    [
        ("attr.means_", np.zeros((4, 2)), "'means_' should be of shape"),
        ("attr.means_", np.zeros((4, 3), dtype=np.int64), "'means_' should be a float32"),
        ("attr.precisions_cholesky_", np.zeros((4, 3)), "'precisions_cholesky_' should be"),
        ("attr.weight_concentration_.0", np.zeros(3), "'weight_concentration_' should be"),
        ("attr.n_features_in_", np.int64(-1), "n_features_in_ should be a positive integer"),
        ("attr.lower_bounds_", np.zeros((2, 2)), "should be a 1-d float array"),
    ],
)
def test_inconsistent_fitted_arrays_are_refused(saved, tmp_path, entry, value, match):
    """Arrays that do not match the parameters never reach a kernel."""
    entries = dict(saved[1], **{entry: np.asarray(value)})
    load_error(write_entries(tmp_path / "s.npz", entries), match)


class _Boom:
    """Unpickling this would call _executed: a stand-in for arbitrary code."""

    def __reduce__(self):
        return (_executed.append, ("unpickled",))


_executed = []


@pytest.mark.parametrize("entry", ["attr.means_", "params_json", "fastmix_format_version"])
def test_pickled_object_inside_the_npz_is_refused(saved, tmp_path, entry):
    entries = dict(saved[1], **{entry: np.array([_Boom()], dtype=object)})
    path = write_entries(tmp_path / "evil.npz", entries)  # np.savez pickles object arrays
    load_error(path, "pickled Python objects")
    assert _executed == []


def test_pickled_file_is_refused(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(_Boom()))
    load_error(path, "not a fastmix model file")
    assert _executed == []


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        fastmix.load(tmp_path / "absent.npz")


# --------------------------------------------------------- pickle, clone
@pytest.mark.parametrize("kind", ["gmm", "bgmm"])
def test_pickle_and_clone(tmp_path, kind):
    X = three_blobs(dtype=np.float32)
    model = fit_quiet(make(kind, "diag"), X)
    again = pickle.loads(pickle.dumps(model))
    assert_same_state(model, again)
    assert_same_predictions(model, again, X)

    fresh = clone(model)
    assert fresh.get_params() == model.get_params()
    assert not hasattr(fresh, "means_")
    model.save(tmp_path / "m.npz")
    loaded = fastmix.load(tmp_path / "m.npz")
    refit = fit_quiet(clone(loaded), X)
    assert_same_state(model, refit)
    assert_same_predictions(model, pickle.loads(pickle.dumps(loaded)), X)


def test_load_is_exported():
    assert fastmix.load is fastmix._io.load
    assert "load" in fastmix.__all__


# ------------------------------------------------ entries refused by their header
def write_with_member(path, entries, key, shape, zero_bytes=None, deflate=False):
    """A model file whose ``key`` member is a float64 .npy header declaring
    ``shape`` followed by ``zero_bytes`` zero bytes (by default as many as
    declared), written in 1 MiB pieces (deflated: a zip bomb)."""
    with zipfile.ZipFile(path, "w", allowZip64=True) as zf:
        for name, value in entries.items():
            if name != key:
                buf = io.BytesIO()
                np.save(buf, value, allow_pickle=False)
                zf.writestr(name + ".npy", buf.getvalue())
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "<f8", "fortran_order": False, "shape": shape}
        )
        if zero_bytes is None:
            zero_bytes = 8 * int(np.prod(shape))
        method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
        info = zipfile.ZipInfo(key + ".npy")
        info.compress_type = method
        with zf.open(info, "w", force_zip64=True) as member:
            member.write(header.getvalue())
            piece = bytes(2**20)
            for start in range(0, zero_bytes, len(piece)):
                member.write(piece[: min(len(piece), zero_bytes - start)])
    return path


_BOMB = r"""
import json, resource, sys, tracemalloc
from fastmix import load

load(sys.argv[2])  # a valid file first: every import is done before the measurement


def high_water():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


with open("/proc/self/statm") as f:
    resident = int(f.read().split()[1]) * resource.getpagesize()
# Imports can leave the high-water mark above what is resident now: only a
# load reaching past both shows in getrusage, so tracemalloc (which sees
# every NumPy buffer and every byte string zipfile reads) bounds it too.
baseline = max(resident, high_water())
tracemalloc.start()
try:
    load(sys.argv[1])
    error = None
except Exception as exc:
    error = type(exc).__name__ + ": " + str(exc)
traced = tracemalloc.get_traced_memory()[1]
print(json.dumps({"rss_growth": high_water() - baseline, "traced": traced, "error": error}))
"""


@pytest.mark.parametrize("key", ["attr.means_", "attr.lower_bounds_"])
def test_zip_bomb_is_refused_before_it_is_read(saved, tmp_path, key):
    """A 300 MB array deflated to a few hundred KB: refused from its header
    (a shape other than the model's, or an expansion no model file has),
    reading none of it (main read all 300 MB first)."""
    shape = (300 * 2**20 // 8,) if key.endswith("lower_bounds_") else (300 * 2**20 // 24, 3)
    path = write_with_member(tmp_path / "bomb.npz", saved[1], key, shape, deflate=True)
    assert path.stat().st_size < 2 * 2**20
    valid = tmp_path / "valid.npz"
    valid.write_bytes(saved[0])
    out = run_python(_BOMB, str(path), str(valid), timeout=120)
    assert out["error"] is not None and out["error"].startswith("ValueError"), out
    assert key[len("attr.") :] in out["error"]
    assert out["traced"] < 50 * 2**20, out
    assert out["rss_growth"] < 50 * 2**20, out


def test_entry_declaring_more_than_it_holds_is_refused(saved, tmp_path):
    """1e12 float64 declared, 64 bytes held: a ValueError, not a MemoryError."""
    path = write_with_member(tmp_path / "big.npz", saved[1], "attr.lower_bounds_", (10**12,), 64)
    load_error(path, "'attr.lower_bounds_' is damaged")


def test_class_name_with_trailing_nul_is_refused(saved, tmp_path):
    entries = dict(saved[1], class_name=np.array("BayesianGaussianMixture\x00"))
    assert str(entries["class_name"][()]) == "BayesianGaussianMixture"  # NumPy drops the NUL
    load_error(write_entries(tmp_path / "nul.npz", entries), "NUL")


def test_unknown_fitted_attribute_is_refused(saved, tmp_path):
    entries = edit_json(saved[1], "attributes_json", lambda a: a.update(extra_="float"))
    entries["attr.extra_"] = np.array(1.0)
    load_error(write_entries(tmp_path / "extra.npz", entries), "unknown fitted attribute 'extra_'")


@pytest.mark.parametrize("kind", ["gmm", "bgmm"])
def test_online_state_round_trips(tmp_path, kind):
    """partial_fit's state (n_batches_, n_samples_seen_, online_stats_) is known."""
    X = three_blobs()
    model = make(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.partial_fit(X[:100]).partial_fit(X[100:])
    model.save(tmp_path / "online.npz")
    again = fastmix.load(tmp_path / "online.npz")
    assert again.n_batches_ == model.n_batches_ == 2
    assert again.n_samples_seen_ == model.n_samples_seen_
