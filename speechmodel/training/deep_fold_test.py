import numpy as np
import pytest

import keras

from speechmodel.training import deep_fold
from speechmodel.training.config import resolve
from speechmodel.training.folds import RunError


def _saved():
    from speechmodel.inference.loading import load_keras_model

    return load_keras_model("fast")


def test_init_from_keeps_every_weight_and_the_output_weights_of_known_classes():
    saved = _saved()
    said = []
    classes = ["angry", "neutral", "boredom"]
    model = deep_fold._initial_model("fast", classes, said.append)
    assert model.output_shape[-1] == 3 and model is not saved.classifier
    [line] = said
    assert line.startswith("Fine-tuning ") and line.endswith(
        "every weight kept, the output weights of angry, neutral too; boredom starts afresh"
    )
    before = {w.path.split("/")[-2] + "/" + w.path.split("/")[-1]: w for w in saved.classifier.weights}
    for old, new in zip(saved.classifier.weights, model.weights):
        old, new = keras.ops.convert_to_numpy(old.value), keras.ops.convert_to_numpy(new.value)
        if old.shape == new.shape:
            np.testing.assert_array_equal(old, new)
    kernel = keras.ops.convert_to_numpy(before["logits/kernel"].value)
    new_kernel = keras.ops.convert_to_numpy(model.sequence_head.logits.kernel.value)
    np.testing.assert_array_equal(new_kernel[:, 0], kernel[:, saved.class_names.index("angry")])
    np.testing.assert_array_equal(new_kernel[:, 1], kernel[:, saved.class_names.index("neutral")])
    assert not np.array_equal(new_kernel[:, 2], kernel[:, 0])
    # The same classes in the same order: the saved classifier as it is.
    said.clear()
    same = deep_fold._initial_model("fast", list(saved.class_names), said.append)
    assert same.output_shape[-1] == 8 and "its 8 classes" in said[0]


def test_init_from_takes_the_saved_feature_settings_and_names_the_model(tmp_path):
    config = resolve({"features": {"n_mels": 40}, "model": {"name": "speechmodel", "lstm_units": 4}})
    config["training"]["init_from"] = "fast"
    deep_fold.adopt_init_from(config)
    assert config["features"]["n_mels"] == 64
    assert config["model"] == {"name": "speechmodel", "backbone": "cnn4"}
    for bad in (str(tmp_path / "missing.keras"), str(tmp_path)):
        config["training"]["init_from"] = bad
        with pytest.raises(RunError, match="init_from"):
            deep_fold.adopt_init_from(config)
    not_a_model = tmp_path / "x.keras"
    not_a_model.write_bytes(b"not a zip")
    config["training"]["init_from"] = str(not_a_model)
    with pytest.raises(RunError, match="not a model saved by this toolkit"):
        deep_fold.adopt_init_from(config)


def test_a_keras_file_of_another_model_is_refused_in_words(tmp_path):
    import json
    import zipfile

    other = tmp_path / "other.keras"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {"layers": []}}))
    with pytest.raises(RunError, match="describes Sequential, with no classifier to fine-tune") as info:
        deep_fold.saved_model_config(str(other))
    assert "'classifier'" not in str(info.value)
    empty = tmp_path / "empty.keras"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("metadata.json", "{}")
    with pytest.raises(RunError, match="it holds no config.json"):
        deep_fold.saved_model_config(str(empty))
