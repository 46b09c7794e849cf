"""Experiment configuration: JSON data, defaults, overrides, validation.

A config is a JSON object with these sections (every key optional; the
defaults below fill the rest)::

    {
      "dataset":  {"name": "ravdess", "data_dir": null, "emotions": null,
                   "options": {}, "corpora": null},
      "protocol": {"name": "kfold", "k": null, "seed": 0, ...},
      "features": {FeatureConfig fields},
      "model":    {"name": "speechmodel", "weights": null, ... constructor args},
      "training": {"epochs": 30, "batch_size": 16, ...},
      "output_dir": null
    }

Several corpora (trained on together, or left out one at a time with the
``loco`` protocol) are either listed::

    "dataset": {"corpora": [{"name": "ravdess", "data_dir": "/data/ravdess"},
                            {"name": "nemo", "data_dir": "/data/nemo",
                             "options": {}}]}

(``name`` then defaults to ``"ravdess,nemo"``; if given it must name the
same corpora, in order, separated by ``,`` or ``+``), or given as comma
lists, which is what ``train.py --dataset ravdess,nemo --data_dir A,B``
writes::

    "dataset": {"name": "ravdess,nemo", "data_dir": "/data/ravdess,/data/nemo"}

``data_dir`` may also be a JSON list. A top-level ``data_dir`` given with
``corpora`` overrides the entries' directories (one per corpus).
:func:`corpus_specs` turns either form into the list of corpora.

Configs are data: they are parsed with ``json``, never executed. Values set
on the command line override the file, and the resolved config is saved in
the run directory (``config.json``).
"""

import copy
import hashlib
import json
import os

from speechmodel.config import FeatureConfig
from speechmodel.errors import Error

DEFAULTS = {
    "dataset": {
        "name": "ravdess",
        "data_dir": None,
        "emotions": None,
        "options": {},
        "test_name": None,
        "test_data_dir": None,
        "corpora": None,
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
        "segment_dropout": 0.3,
        "embedding_cache": None,
        "classical": {},
    },
    "output_dir": None,
}

SECTIONS = tuple(DEFAULTS)
MODES = ("end_to_end", "two_stage", "frozen")
BALANCES = ("none", "oversample", "class_weights")
SEGMENT_SCHEDULES = ("constant", "cosine")


class ConfigError(Error, ValueError):
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
    dataset = config.get("dataset")
    if isinstance(dataset, dict) and dataset.get("corpora") and "name" not in dataset:
        # A list of corpora names the run: "ravdess,nemo", not the default.
        entries = dataset["corpora"]
        if isinstance(entries, list) and all(
            isinstance(e, dict) and isinstance(e.get("name"), str) for e in entries
        ):
            config["dataset"] = dict(dataset, name=",".join(e["name"] for e in entries))
    out = merge(DEFAULTS, config)
    validate(out)
    return out


_CORPUS_KEYS = ("name", "data_dir", "options")


def _split_list(value):
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value]
    return [v.strip() for v in str(value).split(",")]


def corpus_specs(dataset):
    """The corpora of a ``dataset`` section: a list of ``{"name",
    "data_dir", "options"}`` dicts (one for a single corpus).

    Raises:
        ConfigError: an inconsistent description of several corpora (see the
            module docstring); the message quotes the value.
    """
    name, data_dir, options = dataset.get("name"), dataset.get("data_dir"), dataset.get("options")
    entries = dataset.get("corpora")
    if entries is None:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"dataset.name must be a corpus name. Received: name={name!r}")
        names = [n.strip() for n in name.replace("+", ",").split(",")]
        if len(names) == 1:
            return [{"name": name.strip(), "data_dir": data_dir, "options": options or {}}]
        if options:
            raise ConfigError(
                "dataset.options apply to a single corpus; give each corpus its options in "
                f"dataset.corpora. Received: name={name!r}, options={options!r}"
            )
        entries = [{"name": n} for n in names]
    else:
        if not isinstance(entries, list) or not entries:
            raise ConfigError(
                "dataset.corpora must be a non-empty list of {\"name\", \"data_dir\", \"options\"} "
                f"objects. Received: corpora={entries!r}"
            )
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise ConfigError(
                    f"Each of dataset.corpora needs a \"name\". Received: {entry!r}"
                )
            unknown = sorted(set(entry) - set(_CORPUS_KEYS))
            if unknown:
                raise ConfigError(
                    f"Unknown key in dataset.corpora: {unknown}; known: {list(_CORPUS_KEYS)}. "
                    f"Received: {entry!r}"
                )
            if not isinstance(entry.get("options") or {}, dict):
                raise ConfigError(
                    f"dataset.corpora[].options must be an object. Received: {entry!r}"
                )
        listed = [e["name"].strip() for e in entries]
        named = [n.strip() for n in str(name).replace("+", ",").split(",")]
        if [n.lower() for n in named] != [n.lower() for n in listed]:
            raise ConfigError(
                "dataset.name must name the corpora of dataset.corpora, in order "
                f"(or be left out): {','.join(listed)!r}. Received: name={name!r}"
            )
        if options:
            raise ConfigError(
                "With dataset.corpora, give options per corpus (dataset.corpora[].options). "
                f"Received: options={options!r}"
            )
    names = [e["name"].strip() for e in entries]
    if not all(names):
        raise ConfigError(f"Empty corpus name in the list. Received: name={name!r}")
    repeated = sorted({n for n in names if [m.lower() for m in names].count(n.lower()) > 1})
    if repeated:
        raise ConfigError(
            "A corpus is listed twice, so the same speakers could be in training and "
            f"test. Received: {repeated}"
        )
    dirs = [e.get("data_dir") for e in entries]
    if data_dir not in (None, ""):
        dirs = _split_list(data_dir)
        if len(dirs) != len(entries):
            raise ConfigError(
                f"dataset.data_dir must give one directory per corpus ({len(entries)}: "
                f"{', '.join(names)}), separated by commas (--data_dir A,B; $SER_DATA_DIR "
                f"sets it when --data_dir is not given). Received: data_dir={data_dir!r}"
            )
    return [
        {"name": n, "data_dir": d or None, "options": dict(e.get("options") or {})}
        for n, d, e in zip(names, dirs, entries)
    ]


def validate(config):
    corpus_specs(config["dataset"])
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
    _validate_front_end(config)


def _validate_front_end(config):
    """A model on a pretrained speech front end (``--backbone whisper_base``)
    trains in the modes that make sense for it, or says why not."""
    from speechmodel.models.frontends import is_front_end

    model, training = config["model"], config["training"]
    if not (model["name"] == "speechmodel" and is_front_end(model.get("backbone"))):
        if model.get("fine_tune_blocks"):
            raise ConfigError(
                "model.fine_tune_blocks applies to a pretrained front end "
                f"(e.g. backbone whisper_base). Received: backbone={model.get('backbone')!r}"
            )
        return
    mode, backbone = training["mode"], model["backbone"]
    if mode == "two_stage":
        raise ConfigError(
            f"training.mode two_stage fine-tunes a CNN on segment labels; the front end "
            f"{backbone!r} trains as 'frozen' (embeddings cached once per file, the head "
            "trained on them) or 'end_to_end' (with model.fine_tune_blocks > 0 to train its "
            f"top blocks). Received: mode='two_stage', backbone={backbone!r}"
        )
    blocks = model.get("fine_tune_blocks", 0) or 0
    if not isinstance(blocks, int) or isinstance(blocks, bool) or blocks < 0:
        raise ConfigError(
            f"model.fine_tune_blocks must be a whole number >= 0. Received: fine_tune_blocks={blocks!r}"
        )
    if mode == "frozen" and blocks:
        raise ConfigError(
            "training.mode frozen keeps the encoder fixed; fine-tuning its top blocks needs "
            f"mode end_to_end. Received: mode='frozen', fine_tune_blocks={blocks}"
        )
    if mode == "frozen" and training["augment"]:
        raise ConfigError(
            "training.augment does not apply in the frozen mode of a pretrained front end "
            "(the cached embeddings are of the original audio): set it to {}. "
            f"Received: augment={training['augment']!r}"
        )
    if training["augment"] and any(k in training["augment"] for k in ("specaugment", "mixup")):
        raise ConfigError(
            "specaugment and mixup act on log-mel segments, which a pretrained front end "
            "does not take; use the waveform augmentations (noise, speed, pitch). "
            f"Received: augment={training['augment']!r}"
        )


def digest(config):
    """A short hash of everything that determines a run's results."""
    keyed = {k: v for k, v in config.items() if k != "output_dir"}
    keyed = json.loads(json.dumps(keyed, sort_keys=True, default=str))
    keyed.get("dataset", {}).pop("data_dir", None)
    keyed.get("dataset", {}).pop("test_data_dir", None)
    # Configs written before dataset.corpora existed keep their digest.
    if keyed.get("dataset", {}).get("corpora", 0) is None:
        keyed["dataset"].pop("corpora")
    for entry in keyed.get("dataset", {}).get("corpora") or ():
        if isinstance(entry, dict):
            entry.pop("data_dir", None)
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:10]


def default_output_dir(config, root="runs"):
    """``runs/<dataset>-<model>-<protocol>-<hash>``: the same command always
    maps to the same directory, so a rerun after a kill resumes."""
    name = "-".join(
        [config["dataset"]["name"], config["model"]["name"], config["protocol"]["name"], digest(config)]
    )
    return os.path.join(root, name)
