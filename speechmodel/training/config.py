"""Experiment configuration: JSON data, defaults, config files, merging.

A config is a JSON object with these sections (every key optional; the
defaults (``speechmodel.training.defaults``) fill the rest)::

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
:func:`speechmodel.training.corpora.corpus_specs` turns either form into
the list of corpora.

Configs are data: they are parsed with ``json``, never executed. Values set
on the command line override the file (named flags, or any key as a dotted
override: ``train.py --set training.segment_epochs=4``, see
``speechmodel.training.overrides``), and the resolved config is saved in
the run directory (``config.json``).

This module reads config files (:func:`read_config_file`,
:func:`load_config`, the recipe), merges a config over the defaults
(:func:`merge`) and resolves it (:func:`resolve`: defaults, then the
checks of ``speechmodel.training.schema``), and names a run's directory
(:func:`default_output_dir`). The files and folders a config names are
checked by ``speechmodel.training.paths``.
"""

import copy
import hashlib
import json
import os

from speechmodel.training.defaults import DEFAULTS, ConfigError, closest
from speechmodel.training.schema import FREE_SECTIONS, inapplicable, unused_message, validate

SECTIONS = tuple(DEFAULTS)

# The configs/ folder of a source checkout; installed (pip install .), the
# same files are package data in speechmodel/configs.
_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG_DIRS = (
    os.path.join(_REPO, "configs"),
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs"),
)
# The toolkit's recommended recipe (features, model, training), used for a
# corpus without a configs/<corpus>.json of its own (your folder or CSV).
RECIPE = "ravdess"
RECIPE_SECTIONS = ("features", "model", "training")


def merge(base, override, *, path=""):
    """Deep-merges ``override`` into a copy of ``base``; unknown keys are
    refused in the sections whose keys are fixed."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        where = f"{path}{key}"
        free = path.rstrip(".") in FREE_SECTIONS
        if key not in out and not free:
            raise ConfigError(
                f"Unknown config key `{where}`{closest(where, _keys_under(out, path))}; "
                f"known keys here: {sorted(out)}. Received: {where}={value!r}"
            )
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not free:
            out[key] = merge(out[key], value, path=where + ".")
        else:
            out[key] = copy.deepcopy(value)
    return out


def _keys_under(section, path):
    return [f"{path}{k}" for k in section]


def default_config_path(dataset):
    """``configs/<dataset>.json`` (source checkout or installed package), or
    None when the corpus has no config of its own."""
    for directory in CONFIG_DIRS:
        path = os.path.join(directory, f"{dataset}.json")
        if os.path.exists(path):
            return path
    return None


def recipe_sections():
    """The toolkit's recommended recipe, as written: the ``features``,
    ``model`` and ``training`` sections of ``configs/ravdess.json``
    (SpeechModel's BLSTM + attention + DNN head on frozen Whisper-base
    segment embeddings). ``train.py`` uses it for a corpus without a
    ``configs/<corpus>.json`` of its own (your folder or CSV file)."""
    path = default_config_path(RECIPE)
    if path is None:  # pragma: no cover - the file ships with the package
        raise ConfigError(f"The recipe configs/{RECIPE}.json is missing from {CONFIG_DIRS}")
    raw = read_config_file(path)
    return {key: raw[key] for key in RECIPE_SECTIONS if key in raw}


def recipe_config():
    """:func:`recipe_sections` over the defaults, resolved."""
    return resolve(recipe_sections())


def read_config_file(path):
    """The JSON object of a config file, as written (no defaults; its
    ``description`` dropped).

    Raises:
        ConfigError: missing, unreadable, not UTF-8, not JSON, or not an
            object; the message names the file.
    """
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: a folder, not a JSON config file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror or exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config must be a JSON object. Received: {type(raw).__name__}")
    raw.pop("description", None)
    return raw


def load_config(path, *, deep=True):
    """Reads a JSON config file (data only) and fills in the defaults
    (``deep``: see :func:`resolve`)."""
    raw = read_config_file(path)
    try:
        return resolve(raw, deep=deep)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def resolve(config, *, deep=True, strict=False):
    """Defaults + ``config``, validated (:func:`validate`).

    Args:
        config: a (partial) config dict.
        deep: also check the augmentation settings with
            ``speechmodel.augment.settings``.
        strict: also refuse keys the run would not use
            (:func:`inapplicable`), as ``train.py`` does.
    """
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
    for section in SECTIONS:
        if section != "output_dir" and section in config and not isinstance(config[section], dict):
            raise ConfigError(
                f"`{section}` must be a JSON object of settings. Received: {section}={config[section]!r}"
            )
    out = merge(DEFAULTS, config)
    validate(out, deep=deep)
    if strict:
        unused = inapplicable(out)
        if unused:
            key, why, _ = unused[0]
            raise ConfigError(unused_message(out, key, why))
    return out


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
    # Keys added later keep the digest of configs that leave them at their
    # default; whether a final model is written does not change the results.
    training = keyed.get("training", {})
    training.pop("final_model", None)
    if training.get("init_from", 0) is None:
        training.pop("init_from")
    for key in ("partial_labels", "calibrate"):
        if training.get(key, None) is False:
            training.pop(key)
    for key in ("encoder_lr_scale", "layer_decay", "warmup_steps", "frame_mask"):
        if key in training and training[key] == DEFAULTS["training"][key]:
            training.pop(key)
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:10]


def default_output_dir(config, root="runs"):
    """``runs/<dataset>-<model>-<protocol>-<hash>``: the same command always
    maps to the same directory, so a rerun after a kill resumes."""
    name = "-".join(
        [config["dataset"]["name"], config["model"]["name"], config["protocol"]["name"], digest(config)]
    )
    return os.path.join(root, name)
