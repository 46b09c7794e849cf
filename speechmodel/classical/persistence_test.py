import json
import os
import pickle
import zipfile

import numpy as np
import pytest
import skops.io as sio
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC

from speechmodel.classical.classifiers import ClassicalModel
from speechmodel.classical.features import ClassicalFeatureConfig
from speechmodel.classical.persistence import (
    UnsafeModelError,
    load_model,
    read_metadata,
    save_model,
)

CONFIG = ClassicalFeatureConfig(features=("mfcc", "zcr"), aggregators=("mean", "std"), n_mfcc=3)
NAMES = ["calm", "angry", "sad"]
FAST = {
    "rf": {"n_estimators": 5},
    "hgb": {"max_iter": 5},
    "bagging": {"n_estimators": 3},
    "mlp": {"hidden_layer_sizes": [8, 4], "max_iter": 50},
}


def data(seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(60) % 3
    X = rng.normal(size=(60, 8))
    X[:, 0] += 2 * y
    return X, y


@pytest.mark.parametrize("name", ["bagging", "hgb", "knn", "mlp", "rf", "svm"])
def test_save_load_gives_identical_probabilities(tmp_path, name):
    X, y = data()
    model = ClassicalModel(
        name, params=FAST.get(name), feature_config=CONFIG, class_names=NAMES, seed=4
    )
    model.fit(X, y)
    path = tmp_path / "sub" / f"{name}.skz"
    save_model(model, path)
    loaded = load_model(path)
    X_new, _ = data(seed=1)
    np.testing.assert_array_equal(loaded.predict_proba(X_new), model.predict_proba(X_new))
    assert loaded.class_names == NAMES
    assert loaded.feature_config == CONFIG
    assert loaded.get_config() == model.get_config()
    assert os.listdir(tmp_path / "sub") == [f"{name}.skz"]  # no temporary file left


def test_a_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    X, y = data()
    model = ClassicalModel("svm", feature_config=CONFIG, class_names=NAMES).fit(X, y)
    path = tmp_path / "m.skz"
    save_model(model, path)
    before = path.read_bytes()
    real = zipfile.ZipFile.writestr

    def dies_on_the_model(self, name, data, *args, **kwargs):
        if name == "model.skops":
            raise OSError(28, "No space left on device")
        return real(self, name, data, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", dies_on_the_model)
    with pytest.raises(OSError, match="No space left"):
        save_model(model, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.skz"]


def test_metadata_is_readable_json(tmp_path):
    X, y = data()
    model = ClassicalModel(
        "knn", feature_config=CONFIG, class_names=NAMES, grid={"n_neighbors": [1, 3]},
        inner_splits=2,
    )
    model.fit(X, y, groups=np.arange(60) % 4)
    path = tmp_path / "m.skz"
    save_model(model, path)
    meta = read_metadata(path)
    assert meta["config"]["class_names"] == NAMES
    assert meta["config"]["feature_config"] == {"feature_set": "statistics", **CONFIG.to_dict()}
    assert meta["config"]["params"] == model.chosen_params_
    assert meta["grid_result"]["best_params"] == model.grid_result_.best_params
    assert meta["feature_names"][0] == "mfcc_00_mean"
    assert "scikit-learn" in meta["versions"]


def test_unfitted_model_is_not_saved(tmp_path):
    with pytest.raises(ValueError, match="unfitted"):
        save_model(ClassicalModel("svm", class_names=NAMES), tmp_path / "m.skz")


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_file_is_refused_without_executing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.skz"
    path.write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(UnsafeModelError, match="pickle/joblib files are never loaded"):
        load_model(path)
    assert not marker.exists()


def _good_archive(tmp_path):
    X, y = data()
    model = ClassicalModel("svm", feature_config=CONFIG, class_names=NAMES).fit(X, y)
    path = tmp_path / "good.skz"
    save_model(model, path)
    with zipfile.ZipFile(path) as zf:
        meta = zf.read("meta.json")
    return meta


def _write_archive(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_pickle_inside_the_archive_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.skz"
    _write_archive(
        path,
        {"meta.json": _good_archive(tmp_path), "model.skops": pickle.dumps(_Exploit(marker))},
    )
    with pytest.raises(UnsafeModelError, match="not a valid skops file"):
        load_model(path)
    assert not marker.exists()


def test_untrusted_function_in_the_pipeline_is_refused(tmp_path):
    X, y = data()
    evil = Pipeline(
        [("scale", FunctionTransformer(os.system)), ("clf", SVC())]
    )
    path = tmp_path / "evil.skz"
    _write_archive(
        path, {"meta.json": _good_archive(tmp_path), "model.skops": sio.dumps(evil)}
    )
    with pytest.raises(UnsafeModelError, match="not trusted: .*system"):
        load_model(path)


def test_malformed_archives_are_refused(tmp_path):
    meta = _good_archive(tmp_path)
    path = tmp_path / "m.skz"
    _write_archive(path, {"meta.json": meta})
    with pytest.raises(UnsafeModelError, match="Received: \\['meta.json'\\]"):
        load_model(path)
    _write_archive(path, {"meta.json": b"{}", "model.skops": b""})
    with pytest.raises(UnsafeModelError, match="does not describe"):
        load_model(path)
    bumped = json.loads(meta)
    bumped["format_version"] = 99
    _write_archive(path, {"meta.json": json.dumps(bumped), "model.skops": b""})
    with pytest.raises(UnsafeModelError, match="Received: 99"):
        load_model(path)
    # A trusted pipeline that is not scale + clf.
    other = Pipeline([("clf", SVC().fit(*data()))])
    _write_archive(path, {"meta.json": meta, "model.skops": sio.dumps(other)})
    with pytest.raises(UnsafeModelError, match="scale \\+ clf"):
        load_model(path)
    # A pipeline of another width than the saved feature configuration.
    X, y = data()
    wide = Pipeline([("scale", StandardScaler()), ("clf", SVC(probability=True))])
    wide.fit(np.hstack([X, X]), y)
    _write_archive(path, {"meta.json": meta, "model.skops": sio.dumps(wide)})
    with pytest.raises(ValueError, match="takes 16 features .* gives 8"):
        load_model(path)
    with pytest.raises(ValueError, match="model file not found"):
        load_model(tmp_path / "absent.skz")


def test_a_speaker_normalised_model_on_egemaps_loads_as_saved(tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    X = rng.normal(size=(60, 88))
    X[:, 0] += 2 * y
    model = ClassicalModel("svm", feature_config="egemaps", class_names=NAMES, speaker_normalization=True)
    model.fit(X, y, groups=np.arange(60) % 4)
    save_model(model, tmp_path / "m.skz")
    loaded = load_model(tmp_path / "m.skz")
    assert loaded.feature_config == model.feature_config and loaded.speaker_normalization
    assert loaded.speaker_statistics == model.speaker_statistics
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))
