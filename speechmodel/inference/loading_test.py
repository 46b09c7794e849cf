import os
import zipfile

import keras
import numpy as np
import pytest

from speechmodel import errors, presets
from speechmodel.inference import loading
from speechmodel.models.recognizer import EmotionRecognizer
from speechmodel.tests.inference_fixtures import CLASSES


def test_load_model_rejects_what_is_not_a_model_of_this_project(tmp_path, model_path):
    def reason(path):
        with pytest.raises(loading.ModelError) as info:
            loading.load_model(path)
        assert str(path) in str(info.value)
        return info.value.reason

    assert "not found" in reason(tmp_path / "missing.keras")
    assert "is a directory" in reason(tmp_path)
    (tmp_path / "empty.keras").write_bytes(b"")
    assert "empty" in reason(tmp_path / "empty.keras")
    (tmp_path / "random.keras").write_bytes(np.random.default_rng(0).bytes(4000))
    assert "not a zip archive" in reason(tmp_path / "random.keras")
    data = open(model_path, "rb").read()
    (tmp_path / "truncated.keras").write_bytes(data[: len(data) // 2])
    assert "truncated download" in reason(tmp_path / "truncated.keras")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("hello.txt", "hi")
    assert "without a Keras config.json" in reason(tmp_path / "other.zip")
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    plain.save(tmp_path / "plain.keras")
    assert "another kind (Sequential)" in reason(tmp_path / "plain.keras")
    # A well-formed archive whose weights are damaged.
    with zipfile.ZipFile(model_path) as src, zipfile.ZipFile(tmp_path / "bad_weights.keras", "w") as dst:
        for item in src.namelist():
            body = src.read(item)
            dst.writestr(item, body[:100] if item.endswith(".h5") else body)
    assert "cannot load the model" in reason(tmp_path / "bad_weights.keras")


def test_model_error_is_a_value_error_of_the_toolkit():
    exc = loading.ModelError("m.keras", "model file is empty (0 bytes)")
    assert isinstance(exc, errors.Error) and isinstance(exc, ValueError)
    assert str(exc) == "m.keras: model file is empty (0 bytes)" and exc.path == "m.keras"


def test_loading_never_runs_code_from_the_file(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    monkeypatch.setenv("SPEECHMODEL_TEST_MARKER", str(marker))
    segments = keras.Input((None, 64, 64, 3), name="segments")
    mask = keras.Input((None,), dtype="bool", name="mask")
    # Code in the file: creates the marker file whenever it runs.
    x = keras.layers.Lambda(
        lambda t: t + float(open(__import__("os").environ["SPEECHMODEL_TEST_MARKER"], "w").close() or 0)
    )(segments)
    x = keras.layers.TimeDistributed(keras.layers.GlobalAveragePooling2D())(x)
    x = keras.layers.GlobalAveragePooling1D()(x, mask=mask)
    out = keras.layers.Dense(3, activation="softmax")(x)
    classifier = keras.Model({"segments": segments, "mask": mask}, out)
    EmotionRecognizer(classifier, class_names=CLASSES).save(tmp_path / "lambda.keras")
    marker.unlink()
    with pytest.raises(loading.ModelError, match=r"refused: it holds a Python lambda \(at config\."):
        loading.load_model(tmp_path / "lambda.keras")
    assert not marker.exists()


@pytest.mark.parametrize("module, name", [("os", "system"), ("builtins", "exec"), ("subprocess", "Popen")])
def test_a_model_naming_code_outside_keras_is_refused_saying_what(tmp_path, model_path, module, name):
    import json

    with zipfile.ZipFile(model_path) as src:
        entries = {item: src.read(item) for item in src.namelist()}
    config = json.loads(entries["config.json"])
    layer = {"module": module, "class_name": name, "config": {"command": "touch /tmp/x"}, "registered_name": name}
    config["config"]["classifier"]["config"].setdefault("layers", []).append(layer)
    entries["config.json"] = json.dumps(config).encode()
    crafted = tmp_path / "crafted.keras"
    with zipfile.ZipFile(crafted, "w") as dst:
        for item, body in entries.items():
            dst.writestr(item, body)
    with pytest.raises(loading.ModelError) as info:
        loading.load_model(crafted)
    reason = info.value.reason
    assert reason.startswith(f"refused: it names {module}.{name} (at config.config.classifier.config.layers[")
    assert "neither a Keras class nor one of speechmodel's registered classes" in reason and "\n" not in reason


def test_resolve_model_names_shipped_models_and_run_directories(tmp_path):
    fast = loading.resolve_model("fast")
    assert fast.endswith(".keras") and os.path.isfile(fast)
    assert loading.resolve_model(None) == loading.resolve_model("default") == presets.preset_path(presets.DEFAULT)
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(b"")
    assert loading.resolve_model(str(run)) == str(run / "model.keras")
    # A classical run: its model.skz, as a deep run's model.keras.
    classical = tmp_path / "classical"
    classical.mkdir()
    (classical / "model.skz").write_bytes(b"")
    assert loading.resolve_model(classical) == str(classical / "model.skz")
    (tmp_path / "mine.keras").write_bytes(b"")
    assert loading.resolve_model(str(tmp_path / "mine.keras")) == str(tmp_path / "mine.keras")
    with pytest.raises(loading.ModelError, match="is a directory without a model"):
        loading.resolve_model(tmp_path / "run" / "..")
    with pytest.raises(loading.ModelError, match="other.keras: model file not found"):
        loading.resolve_model(str(tmp_path / "other.keras"))
    with pytest.raises(loading.ModelError, match="nonesuch: no such model file, and no shipped model of that name"):
        loading.load_model("nonesuch")
    with pytest.raises(loading.ModelError, match=r"fats: .*did you mean 'fast'\? shipped models: default, fast"):
        loading.load_model("fats")


def test_a_classical_run_directory_loads_its_model(tmp_path):
    from speechmodel.classical import persistence
    from speechmodel.classical.classifiers import ClassicalModel
    from speechmodel.classical.features import ClassicalFeatureConfig

    rng = np.random.default_rng(0)
    y = np.arange(30) % len(CLASSES)
    config = ClassicalFeatureConfig(features=("mfcc", "zcr"), aggregators=("mean", "std"), n_mfcc=3)
    model = ClassicalModel("svm", feature_config=config, class_names=list(CLASSES)).fit(rng.normal(size=(30, 8)), y)
    run = tmp_path / "run"
    run.mkdir()
    persistence.save_model(model, str(run / "model.skz"))
    loaded = loading.load_model(run)
    assert loaded.kind == "classical" and loaded.path == str(run / "model.skz")


def test_check_config_size_refuses_a_huge_config_naming_the_file(tmp_path):
    big = tmp_path / "big.keras"
    with zipfile.ZipFile(big, "w") as zf:
        zf.writestr("config.json", b" " * 200)
    loading.check_config_size(big)
    with pytest.raises(loading.ModelError, match=r"big.keras: its config.json is 0 MB, over the 0 MB"):
        loading.check_config_size(big, limit=100)
