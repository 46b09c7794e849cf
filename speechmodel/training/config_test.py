import json

import pytest

from speechmodel.training import config as C
from speechmodel.training import defaults as D
from tests.paths import REPO


def test_every_shipped_config_resolves():
    for path in sorted((REPO / "configs").glob("*.json")):
        resolved = C.load_config(path)
        # configs/<dataset>.json is train.py's default for --dataset; the
        # others are named <dataset>_<variant> (or name their corpora).
        assert path.stem.split("_")[0] in resolved["dataset"]["name"].split(",") or path.stem == "default"
        assert set(resolved) == set(D.DEFAULTS)


def test_defaults_overrides_and_unknown_keys():
    resolved = C.resolve({"training": {"epochs": 3}, "model": {"name": "svm"}})
    assert resolved["training"]["epochs"] == 3
    assert resolved["training"]["batch_size"] == D.DEFAULTS["training"]["batch_size"]
    assert resolved["model"] == {"name": "svm", "weights": None}
    # A classical model's parameters are training.classical.params: a model
    # key it would ignore is refused, naming its keys.
    with pytest.raises(D.ConfigError, match="model.C is not a setting of the classical model 'svm'"):
        C.resolve({"model": {"name": "svm", "C": 1.0}})
    with pytest.raises(D.ConfigError, match="Received: training.epoch=3"):
        C.resolve({"training": {"epoch": 3}})
    with pytest.raises(D.ConfigError, match="Received: mode='three_stage'"):
        C.resolve({"training": {"mode": "three_stage"}})
    with pytest.raises(D.ConfigError, match="training.augment"):
        C.resolve({"training": {"augment": {"noise": {"snr_db": [20, 5]}}}})
    with pytest.raises(D.ConfigError, match="Received: segment_schedule='step'"):
        C.resolve({"training": {"segment_schedule": "step"}})


def test_config_files_are_data(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{'training': __import__('os').system('echo pwned')}")
    with pytest.raises(D.ConfigError, match="not valid JSON"):
        C.load_config(path)
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(D.ConfigError, match="JSON object"):
        C.load_config(path)


def test_output_dir_is_stable_for_the_same_experiment():
    a = C.resolve({"training": {"epochs": 3}})
    b = C.resolve({"training": {"epochs": 3}, "dataset": {"data_dir": "/elsewhere"}})
    c = C.resolve({"training": {"epochs": 4}})
    assert C.default_output_dir(a) == C.default_output_dir(b) != C.default_output_dir(c)


def test_new_keys_keep_the_digest_of_earlier_runs():
    # The run directory of `train.py --dataset ravdess --epochs 30` before
    # training.init_from and training.final_model existed: the same command
    # must find (and resume) it.
    config = C.load_config(REPO / "configs" / "ravdess.json", deep=False)
    config["training"]["epochs"] = 30
    assert C.digest(config) == "b5496a0d9f"
    assert C.digest(dict(config, training=dict(config["training"], final_model=False))) == "b5496a0d9f"
    assert C.digest(dict(config, training=dict(config["training"], init_from="fast"))) != "b5496a0d9f"


def test_recipe_for_a_corpus_without_a_config():
    recipe = C.recipe_config()
    ravdess = C.load_config(REPO / "configs" / "ravdess.json")
    for section in ("features", "model", "training"):
        assert recipe[section] == ravdess[section]
    assert recipe["model"]["backbone"] == "whisper_base" and recipe["training"]["mode"] == "frozen"
    assert C.default_config_path("folder") is None and C.default_config_path("csv") is None
