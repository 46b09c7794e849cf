"""Experiment configuration: JSON data, defaults, overrides, validation.

A config is a JSON object with these sections (every key optional; the
defaults below fill the rest)::

    {
      "dataset":  {"name": "ravdess", "data_dir": null, "emotions": null,
                   "options": {}},
      "protocol": {"name": "kfold", "k": null, "seed": 0, ...},
      "features": {FeatureConfig fields},
      "model":    {"name": "speechmodel", "weights": null, ... constructor args},
      "training": {"epochs": 30, "batch_size": 16, ...},
      "output_dir": null
    }

Configs are data: they are parsed with ``json``, never executed. Values set
on the command line override the file, and the resolved config is saved in
the run directory (``config.json``).
"""

import copy
import hashlib
import json
import os

from speechmodel.config import FeatureConfig

DEFAULTS = {
    "dataset": {
        "name": "ravdess",
        "data_dir": None,
        "emotions": None,
        "options": {},
        "test_name": None,
        "test_data_dir": None,
    },
    "protocol": {
        "name": "kfold",
        "k": None,
        "seed": 0,
        "val_speakers": None,
        "holdout_speakers": None,
        "grouping": None,
        "random_split": False,
        "folds": None,
    },
    "features": FeatureConfig().to_dict(),
    "model": {"name": "speechmodel", "weights": None},
    "training": {
        "mode": "end_to_end",
        "epochs": 30,
        "batch_size": 16,
        "learning_rate": 1e-3,
        "optimizer": "adam",
        "weight_decay": 0.0,
        "label_smoothing": 0.0,
        "patience": 10,
        "reduce_lr_patience": 4,
        "min_learning_rate": 1e-5,
        "monitor": "val_uar",
        "balance": "none",
        "augment": {},
        "mixed_precision": "float32",
        "strategy": "default",
        "seed": 0,
        "cache": "memory",
        "segment_epochs": 5,
        "segment_batch_size": 128,
        "segment_schedule": "constant",
        "embedding_cache": None,
        "classical": {},
    },
    "output_dir": None,
}

SECTIONS = tuple(DEFAULTS)
MODES = ("end_to_end", "two_stage", "frozen")
BALANCES = ("none", "oversample", "class_weights")
SEGMENT_SCHEDULES = ("constant", "cosine")


class ConfigError(ValueError):
    """A config that cannot be used; the message quotes the value."""


def merge(base, override, *, path=""):
    """Deep-merges ``override`` into a copy of ``base``; unknown keys are
    refused in the sections whose keys are fixed."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        where = f"{path}{key}"
        free = path.rstrip(".") in ("model", "training.augment", "dataset.options", "training.classical")
        if key not in out and not free:
            raise ConfigError(
                f"Unknown config key `{where}`; known keys here: "
                f"{sorted(out)}. Received: {where}={value!r}"
            )
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not free:
            out[key] = merge(out[key], value, path=where + ".")
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(path):
    """Reads a JSON config file (data only) and fills in the defaults."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config must be a JSON object. Received: {type(raw).__name__}")
    raw.pop("description", None)
    try:
        return resolve(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def resolve(config):
    """Defaults + ``config``, validated."""
    config = dict(config or {})
    config.pop("description", None)
    out = merge(DEFAULTS, config)
    validate(out)
    return out


def validate(config):
    training = config["training"]
    if training["mode"] not in MODES:
        raise ConfigError(f"training.mode must be one of {MODES}. Received: mode={training['mode']!r}")
    if training["balance"] not in BALANCES:
        raise ConfigError(
            f"training.balance must be one of {BALANCES}. Received: balance={training['balance']!r}"
        )
    if training["segment_schedule"] not in SEGMENT_SCHEDULES:
        raise ConfigError(
            f"training.segment_schedule must be one of {SEGMENT_SCHEDULES}. "
            f"Received: segment_schedule={training['segment_schedule']!r}"
        )
    for key in ("epochs", "batch_size", "segment_epochs", "segment_batch_size"):
        value = training[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "segment_epochs" else 1):
            raise ConfigError(f"training.{key} must be a positive integer. Received: {key}={value!r}")
    if not (isinstance(training["learning_rate"], (int, float)) and training["learning_rate"] > 0):
        raise ConfigError(
            f"training.learning_rate must be positive. Received: learning_rate={training['learning_rate']!r}"
        )
    try:
        FeatureConfig.from_dict(config["features"])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if training["augment"]:
        from speechmodel.augment import Augmentation

        try:
            Augmentation.from_dict(training["augment"])
        except ValueError as exc:
            raise ConfigError(f"training.augment: {exc}") from None
    if not isinstance(config["model"].get("name"), str):
        raise ConfigError(f"model.name must be a string. Received: {config['model'].get('name')!r}")


def digest(config):
    """A short hash of everything that determines a run's results."""
    keyed = {k: v for k, v in config.items() if k != "output_dir"}
    keyed = json.loads(json.dumps(keyed, sort_keys=True, default=str))
    keyed.get("dataset", {}).pop("data_dir", None)
    keyed.get("dataset", {}).pop("test_data_dir", None)
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:10]


def default_output_dir(config, root="runs"):
    """``runs/<dataset>-<model>-<protocol>-<hash>``: the same command always
    maps to the same directory, so a rerun after a kill resumes."""
    name = "-".join(
        [config["dataset"]["name"], config["model"]["name"], config["protocol"]["name"], digest(config)]
    )
    return os.path.join(root, name)
