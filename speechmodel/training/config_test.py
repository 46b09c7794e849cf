import json

import pytest

from speechmodel.training import config as C
from speechmodel.training.cli import parse_augment
from tests.paths import REPO


def test_every_shipped_config_resolves():
    for path in sorted((REPO / "configs").glob("*.json")):
        resolved = C.load_config(path)
        # configs/<dataset>.json is train.py's default for --dataset; the
        # others are named <dataset>_<variant> (or name their corpora).
        assert path.stem.split("_")[0] in resolved["dataset"]["name"].split(",") or path.stem == "default"
        assert set(resolved) == set(C.DEFAULTS)


def test_defaults_overrides_and_unknown_keys():
    resolved = C.resolve({"training": {"epochs": 3}, "model": {"name": "svm", "C": 1.0}})
    assert resolved["training"]["epochs"] == 3
    assert resolved["training"]["batch_size"] == C.DEFAULTS["training"]["batch_size"]
    assert resolved["model"] == {"name": "svm", "weights": None, "C": 1.0}
    with pytest.raises(C.ConfigError, match="Received: training.epoch=3"):
        C.resolve({"training": {"epoch": 3}})
    with pytest.raises(C.ConfigError, match="Received: mode='three_stage'"):
        C.resolve({"training": {"mode": "three_stage"}})
    with pytest.raises(C.ConfigError, match="training.augment"):
        C.resolve({"training": {"augment": {"noise": {"snr_db": [20, 5]}}}})
    with pytest.raises(C.ConfigError, match="Received: segment_schedule='step'"):
        C.resolve({"training": {"segment_schedule": "step"}})


def test_config_files_are_data(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{'training': __import__('os').system('echo pwned')}")
    with pytest.raises(C.ConfigError, match="not valid JSON"):
        C.load_config(path)
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(C.ConfigError, match="JSON object"):
        C.load_config(path)


def test_output_dir_is_stable_for_the_same_experiment():
    a = C.resolve({"training": {"epochs": 3}})
    b = C.resolve({"training": {"epochs": 3}, "dataset": {"data_dir": "/elsewhere"}})
    c = C.resolve({"training": {"epochs": 4}})
    assert C.default_output_dir(a) == C.default_output_dir(b) != C.default_output_dir(c)


def test_augment_flag():
    configured = {"noise": {"snr_db": [5, 10]}}
    assert parse_augment("noise,mixup", configured) == {"noise": {"snr_db": [5, 10]}, "mixup": {}}
    assert parse_augment("none", configured) == {}
    with pytest.raises(C.ConfigError, match="Received: augment=reverb"):
        parse_augment("reverb", {})
