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
on the command line override the file (named flags, or any key as a dotted
override: ``train.py --set training.segment_epochs=4``, see
:func:`parse_override` and :func:`set_key`), and the resolved config is
saved in the run directory (``config.json``).

This module is the one description of an experiment and the one place it is
validated (:func:`validate`): every key has a type and a range or a list of
values, the ``model`` keys are those of the chosen model (its segment shape
is derived from ``features``: a ``model.segment_shape`` that disagrees is
refused), and :func:`inapplicable` lists the keys set to something the run
would not use (``training.segment_epochs`` outside ``two_stage``,
``protocol.k`` outside ``kfold``/``multi``, the deep-training keys of a
classical model, ...), which ``train.py`` refuses. Validation imports no
TensorFlow (the augmentation settings, checked by ``speechmodel.augment``,
are checked with ``deep=True``), so a mistyped value fails in well under a
second.
"""

import copy
import difflib
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
        "init_from": None,
        "final_model": True,
    },
    "output_dir": None,
}

SECTIONS = tuple(DEFAULTS)
MODES = ("end_to_end", "two_stage", "frozen")
BALANCES = ("none", "oversample", "class_weights")
SEGMENT_SCHEDULES = ("constant", "cosine")
PROTOCOLS = ("loso", "kfold", "session", "holdout", "cross", "all", "loco", "multi")
GROUPINGS = ("contiguous", "shuffled")
OPTIMIZERS = ("adam", "adamw", "sgd")
MONITORS = ("val_uar", "val_wa", "val_loss")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16", "auto")
STRATEGIES = ("default", "mirrored", "multiworker")
AUGMENTATIONS = ("noise", "speed", "pitch", "specaugment", "mixup")

# The model names, without importing the models (and so TensorFlow); the
# registries they mirror are checked against these in config_test.py.
BACKBONES = (
    "alexnet", "alexnet_gap", "cnn4", "resnet18", "resnet34", "vgg11", "vgg11_bn",
    "vgg16_bn", "resnet50", "resnet50v2", "vgg16", "mobilenetv2", "efficientnetb0",
)
FRONT_ENDS = ("whisper_base",)
DEEP_MODELS = ("speechmodel",) + BACKBONES
CLASSICAL_MODELS = ("bagging", "hgb", "knn", "mlp", "rf", "svm")
MODEL_NAMES = DEEP_MODELS + CLASSICAL_MODELS

# The model keys (constructor arguments) of each kind of model.
_HEAD_KEYS = ("lstm_units", "lstm_layers", "attention_units", "dense_units", "dropout")
_CNN_KEYS = ("segment_shape", "input_size", "preprocessing", "trainable_backbone")
SPEECHMODEL_KEYS = ("name", "backbone", "weights") + _CNN_KEYS + _HEAD_KEYS
FRONT_END_KEYS = (
    "name", "backbone", "weights", "fine_tune_blocks", "input_dropout", "speaker_normalization",
) + _HEAD_KEYS
BASELINE_KEYS = ("name", "backbone", "weights", "dropout") + _CNN_KEYS
CLASSICAL_KEYS = ("name", "weights")
CLASSICAL_SETTINGS = ("features", "grid", "params", "n_jobs", "cache_dir")
# Weights a CNN backbone takes by name (else: a file).
CNN_WEIGHT_NAMES = ("imagenet",)
FRONT_END_WEIGHT_NAMES = ("pretrained", "random") + FRONT_ENDS

# The dict sections whose keys are not fixed here (checked by validate()
# against the chosen model, the corpus loader or speechmodel.augment).
FREE_SECTIONS = ("model", "training.augment", "dataset.options", "training.classical")

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


class ConfigError(Error, ValueError):
    """A config that cannot be used; the message quotes the value."""


def closest(name, candidates):
    """`` (did you mean `x`?)`` for the candidate nearest ``name``, or ``""``."""
    match = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f" (did you mean `{match[0]}`?)" if match else ""


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
            ``speechmodel.augment`` (imports TensorFlow).
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


# ------------------------------------------------------ dotted overrides


def parse_override(text):
    """``"training.segment_epochs=4"`` -> ``("training.segment_epochs", 4)``.

    The value is read as JSON (``4``, ``0.5``, ``true``, ``null``,
    ``[256, 128]``, ``{"p": 0.5}``, ``"text"``); anything that is not JSON is
    the plain string (``--set training.optimizer=adamw``).
    """
    key, sep, raw = str(text).partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(
            "--set takes KEY=VALUE with a dotted key, e.g. --set training.segment_epochs=4. "
            f"Received: --set {text!r}"
        )
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


def parse_augment(value, configured):
    """``--augment noise,specaugment`` -> those sections of the configured
    ``training.augment`` (or ``{}`` each); ``none`` -> ``{}``."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    if names in ([], ["none"]):
        return {}
    unknown = sorted(set(names) - set(AUGMENTATIONS))
    if unknown:
        raise ConfigError(
            f"--augment takes none or a comma list of {', '.join(AUGMENTATIONS)}"
            f"{closest(unknown[0], AUGMENTATIONS)}. Received: augment={value}"
        )
    return {name: dict((configured or {}).get(name) or {}) for name in names}


def known_keys():
    """Every dotted key a config can set (the model keys of every model)."""
    keys = []

    def walk(section, path):
        for key, value in section.items():
            dotted = f"{path}{key}"
            if isinstance(value, dict) and value and dotted not in FREE_SECTIONS:
                walk(value, dotted + ".")
            else:
                keys.append(dotted)

    walk(DEFAULTS, "")
    model_keys = set(SPEECHMODEL_KEYS + FRONT_END_KEYS + BASELINE_KEYS + CLASSICAL_KEYS)
    keys += [f"model.{k}" for k in sorted(model_keys) if f"model.{k}" not in keys]
    keys += [f"training.augment.{a}" for a in AUGMENTATIONS]
    keys += [f"training.classical.{k}" for k in CLASSICAL_SETTINGS]
    keys += ["dataset.corpora", "dataset.options"]
    return sorted(set(keys))


def set_key(config, key, value):
    """Sets the dotted ``key`` of ``config`` (a dict, changed in place;
    missing sections are created).

    Raises:
        ConfigError: a key that no config has; the message names the
            closest valid key.
    """
    parts = key.split(".")
    if not all(p.strip() for p in parts):
        raise ConfigError(f"Empty part in the dotted key `{key}`. Received: {key}={value!r}")
    _check_settable(key, value)
    target = config
    for i, part in enumerate(parts[:-1]):
        here = ".".join(parts[: i + 1])
        if target.get(part) is None:
            target[part] = {}
        if not isinstance(target[part], dict):
            raise ConfigError(
                f"`{here}` is a value, not a section, so `{key}` cannot be set. "
                f"Received: {key}={value!r}"
            )
        target = target[part]
    target[parts[-1]] = copy.deepcopy(value)
    return config


def _check_settable(key, value):
    known = known_keys()
    if key in known or any(k.startswith(key + ".") for k in known):
        return
    parts = key.split(".")
    # Inside the free sections: the first level is checked here, what is
    # below by the section's own validation.
    for section, names in (("training.augment", AUGMENTATIONS),
                           ("training.classical", CLASSICAL_SETTINGS),
                           ("dataset.options", None)):
        depth = section.count(".") + 1
        if key.startswith(section + ".") and len(parts) > depth:
            if names is None or parts[depth] in names:
                return
            candidates = [f"{section}.{n}" for n in names]
            raise ConfigError(
                f"Unknown config key `{key}`{closest('.'.join(parts[:depth + 1]), candidates)}; "
                f"known keys of {section}: {list(names)}. Received: {key}={value!r}"
            )
    raise ConfigError(
        f"Unknown config key `{key}`{closest(key, known)}. "
        f"`--print_config` shows every key. Received: {key}={value!r}"
    )


def _default_at(path):
    """The DEFAULTS section at ``"training."`` (``""``: the top), or None."""
    section = DEFAULTS
    for part in [p for p in path.split(".") if p]:
        section = section.get(part) if isinstance(section, dict) else None
        if not isinstance(section, dict):
            return None
    return section


def get_key(config, key, default=None):
    """The value at the dotted ``key`` of ``config`` (``default`` if unset)."""
    value = config
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return default
        value = value[part]
    return value


# --------------------------------------------------------------- corpora


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


# --------------------------------------------------------------- checks


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _whole(low):
    return (lambda v: _is_int(v) and v >= low), f"a whole number >= {low}"


def _number(low, high=None, *, above=False):
    def check(v):
        if not _is_number(v) or v < low or (above and v == low):
            return False
        return high is None or v < high

    text = f"a number {'>' if above else '>='} {low}" + (f" and < {high}" if high is not None else "")
    return check, text


def _one_of(choices):
    return (lambda v: v in choices), "one of " + ", ".join(repr(c) for c in choices), choices


def _nullable(rule):
    check, text, *choices = rule
    return ((lambda v: v is None or check(v)), f"{text}, or null", *choices)


_BOOL = ((lambda v: isinstance(v, bool)), "true or false")
_TEXT = ((lambda v: isinstance(v, str) and bool(v.strip())), "a non-empty string")
_OBJECT = ((lambda v: isinstance(v, dict)), "a JSON object")
_TEXTS = (
    (lambda v: isinstance(v, (str, list)) and (isinstance(v, str) or all(isinstance(x, str) for x in v))),
    "a string or a list of strings",
)
_SPEAKERS = (
    (lambda v: isinstance(v, list) and bool(v) and all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in v)),
    "a non-empty list of speaker ids",
)

# The type and range of every key of the fixed sections.
SCHEMA = {
    "dataset.name": _TEXT,
    "dataset.data_dir": _nullable(_TEXTS),
    "dataset.emotions": _nullable(_TEXTS),
    "dataset.options": _OBJECT,
    "dataset.test_name": _nullable(_TEXT),
    "dataset.test_data_dir": _nullable(_TEXT),
    "protocol.name": _one_of(PROTOCOLS),
    "protocol.k": _nullable(_whole(2)),
    "protocol.seed": _whole(0),
    "protocol.val_speakers": (
        (lambda v: v is None or (_is_int(v) and v >= 0) or _SPEAKERS[0](v)),
        "a count (a whole number >= 0), a list of speaker ids, or null",
    ),
    "protocol.holdout_speakers": _nullable(_SPEAKERS),
    "protocol.grouping": _nullable(_one_of(GROUPINGS)),
    "protocol.random_split": _BOOL,
    "protocol.folds": _nullable(_TEXT),
    "training.mode": _one_of(MODES),
    "training.epochs": _whole(1),
    "training.batch_size": _whole(1),
    "training.learning_rate": _number(0, above=True),
    "training.optimizer": _one_of(OPTIMIZERS),
    "training.weight_decay": _number(0),
    "training.label_smoothing": _number(0, 1),
    "training.patience": _whole(0),
    "training.reduce_lr_patience": _whole(0),
    "training.min_learning_rate": _number(0),
    "training.monitor": _one_of(MONITORS),
    "training.balance": _one_of(BALANCES),
    "training.augment": _OBJECT,
    "training.mixed_precision": _one_of(PRECISIONS),
    "training.strategy": _one_of(STRATEGIES),
    "training.seed": _whole(0),
    "training.cache": _nullable(_TEXT),
    "training.segment_epochs": _whole(0),
    "training.segment_batch_size": _whole(1),
    "training.segment_schedule": _one_of(SEGMENT_SCHEDULES),
    "training.segment_dropout": _number(0, 1),
    "training.embedding_cache": _nullable(_TEXT),
    "training.classical": _OBJECT,
    "training.init_from": _nullable(_TEXT),
    "training.final_model": _BOOL,
    "output_dir": _nullable(_TEXT),
}

# The type and range of the model keys (whichever model takes them).
MODEL_SCHEMA = {
    "name": _one_of(MODEL_NAMES),
    "backbone": _one_of(BACKBONES + FRONT_ENDS),
    "weights": _nullable(_TEXT),
    "segment_shape": (
        (lambda v: isinstance(v, (list, tuple)) and len(v) == 3 and all(_is_int(x) and x > 0 for x in v)),
        "[frames, bands, 3]",
    ),
    "input_size": (
        (lambda v: v is None or (_is_int(v) and v > 0) or (
            isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_int(x) and x > 0 for x in v))),
        "a positive whole number, [height, width], or null",
    ),
    "preprocessing": _nullable(_one_of(("imagenet", "caffe", "tf", "torch", "scale"))),
    "trainable_backbone": _BOOL,
    "lstm_units": _whole(1),
    "lstm_layers": _whole(1),
    "attention_units": _whole(1),
    "dense_units": (
        (lambda v: isinstance(v, (list, tuple)) and all(_is_int(x) and x > 0 for x in v)),
        "a list of positive whole numbers, e.g. [256]",
    ),
    "dropout": _number(0, 1),
    "input_dropout": _number(0, 1),
    "fine_tune_blocks": _whole(0),
    "speaker_normalization": _BOOL,
}


def _short(key):
    return key.rsplit(".", 1)[-1]


def _check(key, value, rule):
    check, text, *choices = rule
    if not check(value):
        hint = closest(value, choices[0]) if choices and isinstance(value, str) else ""
        raise ConfigError(f"{key} must be {text}{hint}. Received: {_short(key)}={value!r}")


def model_kind(model):
    """``"classical"``, ``"front_end"`` (SpeechModel on a pretrained speech
    encoder), ``"speechmodel"`` (SpeechModel on a CNN) or ``"baseline"``."""
    name = model.get("name")
    if name in CLASSICAL_MODELS:
        return "classical"
    if name == "speechmodel":
        return "front_end" if model.get("backbone") in FRONT_ENDS else "speechmodel"
    return "baseline"


def model_keys(model):
    """The keys the ``model`` section takes for this model."""
    return {
        "classical": CLASSICAL_KEYS,
        "front_end": FRONT_END_KEYS,
        "speechmodel": SPEECHMODEL_KEYS,
        "baseline": BASELINE_KEYS,
    }[model_kind(model)]


def validate(config, *, deep=True):
    """Checks every key of a resolved config: type, range or allowed
    values, corpus and emotion names, the model's keys, and the settings
    that contradict each other.

    ``deep=False`` leaves out the augmentation settings (checked by
    ``speechmodel.augment``, which imports TensorFlow); their names are
    checked either way.

    Raises:
        ConfigError: the first problem; the message names the key (with
            the closest valid key or value) and quotes the value.
    """
    for key, rule in SCHEMA.items():
        _check(key, get_key(config, key), rule)
    _validate_dataset(config)
    _validate_protocol(config)
    try:
        features = FeatureConfig.from_dict(config["features"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"features: {exc}") from None
    _validate_model(config, features)
    training = config["training"]
    unknown = sorted(set(training["augment"]) - set(AUGMENTATIONS))
    if unknown:
        raise ConfigError(
            f"training.augment takes {', '.join(AUGMENTATIONS)}; unknown: {unknown}"
            f"{closest(unknown[0], AUGMENTATIONS)}. Received: augment={training['augment']!r}"
        )
    unknown = sorted(set(training["classical"]) - set(CLASSICAL_SETTINGS))
    if unknown:
        raise ConfigError(
            f"training.classical takes {', '.join(CLASSICAL_SETTINGS)}; unknown: {unknown}"
            f"{closest(unknown[0], CLASSICAL_SETTINGS)}. Received: classical={training['classical']!r}"
        )
    if training["augment"] and deep:
        from speechmodel.augment import Augmentation

        try:
            Augmentation.from_dict(training["augment"])
        except ValueError as exc:
            raise ConfigError(f"training.augment: {exc}") from None
    _validate_front_end(config)


def _validate_dataset(config):
    from speechmodel import datasets

    dataset = config["dataset"]
    specs = corpus_specs(dataset)
    for spec in specs:
        try:
            name = datasets.corpus_name(spec["name"])
        except ValueError:
            raise ConfigError(
                f"dataset.name: unknown corpus{closest(spec['name'], datasets.corpus_names())}. "
                f"Known corpora: {', '.join(datasets.corpus_names())}. Received: name={spec['name']!r}"
            ) from None
        accepted = datasets.registry.corpus(name).options
        unknown = sorted(set(spec["options"]) - set(accepted))
        if unknown:
            raise ConfigError(
                f"dataset.options: corpus {name!r} takes {accepted or 'no options'}; unknown: "
                f"{unknown}{closest(unknown[0], accepted)}. Received: options={spec['options']!r}"
            )
    if dataset["test_name"]:
        try:
            datasets.corpus_name(dataset["test_name"])
        except ValueError:
            raise ConfigError(
                f"dataset.test_name: unknown corpus{closest(dataset['test_name'], datasets.corpus_names())}. "
                f"Known corpora: {', '.join(datasets.corpus_names())}. Received: test_name={dataset['test_name']!r}"
            ) from None
    if dataset["emotions"] is not None:
        words = dataset["emotions"]
        words = words.split(",") if isinstance(words, str) else words
        bad = [str(w).strip() for w in words if not _known_emotion(datasets, w)]
        if bad:
            raise ConfigError(
                f"dataset.emotions: unknown emotion {bad[0]!r}{closest(bad[0].lower(), datasets.EMOTIONS)}. "
                f"Valid names: {', '.join(datasets.EMOTIONS)} (synonyms such as anger, happiness, "
                f"fear, sadness, surprise are accepted too). Received: emotions={dataset['emotions']!r}"
            )
        try:
            datasets.parse_emotions(dataset["emotions"])
        except ValueError as exc:
            raise ConfigError(f"dataset.emotions: {exc}") from None


def _known_emotion(datasets, word):
    try:
        datasets.canonical_emotion(str(word).strip())
    except ValueError:
        return False
    return True


def _validate_protocol(config):
    protocol, dataset = config["protocol"], config["dataset"]
    if protocol["name"] == "cross" and not dataset["test_name"]:
        raise ConfigError(
            "protocol cross trains on dataset.name and tests on dataset.test_name "
            "(--test_dataset NAME --test_data_dir DIR). Received: test_name=None"
        )


def _validate_model(config, features):
    model = config["model"]
    name = model.get("name")
    if name not in MODEL_NAMES:
        raise ConfigError(
            f"model.name: unknown model{closest(name, MODEL_NAMES)}. Known: "
            f"{', '.join(DEEP_MODELS)} (deep); {', '.join(CLASSICAL_MODELS)} (classical). "
            f"Received: name={name!r}"
        )
    kind = model_kind(model)
    if kind != "front_end" and model.get("fine_tune_blocks"):
        raise ConfigError(
            "model.fine_tune_blocks applies to a pretrained front end "
            f"(e.g. backbone whisper_base). Received: backbone={model.get('backbone')!r}"
        )
    accepted = model_keys(model)
    for key, value in model.items():
        if key not in accepted:
            if key == "fine_tune_blocks" and not value:
                continue  # 0 or null: nothing to fine-tune
            what = {
                "classical": f"the classical model {name!r}",
                "front_end": f"model 'speechmodel' on the front end {model.get('backbone')!r}",
                "speechmodel": f"model 'speechmodel' on the CNN {model.get('backbone', 'alexnet')!r}",
                "baseline": f"the baseline {name!r}",
            }[kind]
            raise ConfigError(
                f"model.{key} is not a setting of {what}{closest(key, accepted)}; its keys: "
                f"{', '.join(k for k in accepted if k != 'name')}. Received: {key}={value!r}"
            )
        if key in MODEL_SCHEMA and key != "name":
            _check(f"model.{key}", value, MODEL_SCHEMA[key])
    if kind == "classical" and model.get("weights") is not None:
        raise ConfigError(
            f"model.weights does not apply to the classical model {name!r}. "
            f"Received: weights={model['weights']!r}"
        )
    if kind == "baseline" and model.get("backbone", name) != name:
        raise ConfigError(
            f"Model {name!r} is the baseline on backbone {name!r}. "
            f"Received: backbone={model['backbone']!r}"
        )
    if kind in ("speechmodel", "baseline") and model.get("segment_shape") is not None:
        derived = list(features.segment_shape)
        if list(model["segment_shape"]) != derived:
            raise ConfigError(
                "model.segment_shape is derived from the features (features.segment_frames, "
                f"features.n_mels, 3 channels = {derived}); leave it out. "
                f"Received: segment_shape={list(model['segment_shape'])!r}"
            )


def _validate_front_end(config):
    """A model on a pretrained speech front end (``--backbone whisper_base``)
    trains in the modes that make sense for it, or says why not."""
    model, training = config["model"], config["training"]
    if model_kind(model) != "front_end":
        return
    mode, backbone = training["mode"], model["backbone"]
    if mode == "two_stage":
        raise ConfigError(
            f"training.mode two_stage fine-tunes a CNN on segment labels; the front end "
            f"{backbone!r} trains as 'frozen' (embeddings cached once per file, the head "
            "trained on them) or 'end_to_end' (with --fine_tune_blocks N > 0 to train its "
            f"top blocks). Received: mode='two_stage', backbone={backbone!r}"
        )
    blocks = model.get("fine_tune_blocks", 0) or 0
    if mode == "frozen" and blocks:
        raise ConfigError(
            "training.mode frozen keeps the encoder fixed; fine-tuning its top blocks "
            "(model.fine_tune_blocks, --fine_tune_blocks) needs --mode end_to_end. "
            f"Received: mode='frozen', fine_tune_blocks={blocks}"
        )
    if mode != "frozen" and model.get("speaker_normalization"):
        raise ConfigError(
            "model.speaker_normalization standardises each speaker's cached embeddings with "
            "that speaker's statistics, which needs --mode frozen. "
            f"Received: mode={mode!r}, speaker_normalization=True"
        )
    if mode == "frozen" and training["augment"]:
        raise ConfigError(
            "training.augment does not apply in the frozen mode of a pretrained front end "
            "(the cached embeddings are of the original audio): --augment none. "
            f"Received: augment={training['augment']!r}"
        )
    if training["augment"] and any(k in training["augment"] for k in ("specaugment", "mixup")):
        raise ConfigError(
            "specaugment and mixup act on log-mel segments, which a pretrained front end "
            "does not take; use the waveform augmentations (noise, speed, pitch). "
            f"Received: augment={training['augment']!r}"
        )


# ------------------------------------------------- keys a run would not use


_DEEP_ONLY = tuple(
    k for k in DEFAULTS["training"] if k not in ("seed", "classical", "final_model")
)
_STAGE1 = ("segment_epochs", "segment_batch_size", "segment_schedule", "segment_dropout")


def inapplicable(config):
    """The keys of a resolved config set (to other than their default) but
    not used by the run it describes, e.g. ``training.segment_epochs`` in
    the ``frozen`` mode or ``protocol.k`` with the ``loso`` protocol.

    Returns:
        A list of ``(key, why, deciders)``: the dotted key, what it applies
        to, and the keys whose values make it unused (changing one of
        those on the command line resets the file's value of ``key``).
    """
    out = []
    model, training, protocol, dataset = (
        config["model"], config["training"], config["protocol"], config["dataset"]
    )

    def changed(section, key):
        return config[section].get(key) != DEFAULTS[section][key]

    kind = model_kind(model)
    if kind == "classical":
        why = (f"applies to the deep models; model {model['name']!r} is a classical "
               "(scikit-learn) model, set with training.classical")
        out += [(f"training.{k}", why, ("model.name",)) for k in _DEEP_ONLY if changed("training", k)]
        out += [(f"features.{k}", why.replace(", set with training.classical",
                                              ", whose features are training.classical.features"),
                 ("model.name",)) for k in DEFAULTS["features"] if changed("features", k)]
    else:
        if training["classical"]:
            out.append(("training.classical", "applies to the classical models "
                        f"({', '.join(CLASSICAL_MODELS)})", ("model.name",)))
        mode = training["mode"]
        if kind == "baseline" and mode != "end_to_end":
            out.append(("training.mode", f"the baseline {model['name']!r} trains end_to_end only "
                        "(--mode end_to_end; two_stage and frozen are SpeechModel's, --model speechmodel)", ("model.name",)))
        if mode != "two_stage":
            why = ("applies to stage 1 of training.mode two_stage (the CNN fine-tuned on "
                   f"segments: --mode two_stage with a CNN --backbone); this run's mode is {mode!r}")
            out += [(f"training.{k}", why, ("training.mode", "model.backbone", "model.name"))
                    for k in _STAGE1 if changed("training", k)]
        if mode == "end_to_end" and training["embedding_cache"]:
            out.append(("training.embedding_cache", "applies to the two_stage and frozen modes "
                        "(cached embeddings); this run's mode is 'end_to_end'",
                        ("training.mode", "model.backbone", "model.name")))
        if changed("training", "cache") and (
            mode == "frozen" or (mode == "two_stage" and training["segment_epochs"] == 0)
        ):
            out.append(("training.cache", "applies to the decoded audio of end_to_end training "
                        "and of stage 1 of two_stage; the frozen mode reads every file once, into "
                        "training.embedding_cache", ("training.mode", "training.segment_epochs",
                                                     "model.backbone", "model.name")))
        if training["augment"] and kind != "front_end":
            if mode == "frozen":
                out.append(("training.augment", "does not apply in the frozen mode (the head "
                            "trains on embeddings of the original audio)",
                            ("training.mode", "model.backbone", "model.name")))
            elif mode == "two_stage" and training["segment_epochs"] == 0:
                out.append(("training.augment", "applies to stage 1 of two_stage, which "
                            "training.segment_epochs=0 skips", ("training.mode", "training.segment_epochs")))
        if training["weight_decay"] and training["optimizer"] != "adamw":
            out.append(("training.weight_decay", "applies to training.optimizer adamw (--set training.optimizer=adamw); this "
                        f"run's optimizer is {training['optimizer']!r}", ("training.optimizer",)))
    if training["init_from"] and kind != "classical":
        why = ("is the saved model's: training.init_from (--init_from) fine-tunes that model "
               "as it was built (its model and features replace the config's)")
        out += [(f"model.{k}", why, ("training.init_from",))
                for k, v in model.items() if k not in ("name", "weights") and v is not None]
        out += [(f"features.{k}", why, ("training.init_from",))
                for k in DEFAULTS["features"] if changed("features", k)]
    name = protocol["name"]
    if name not in ("kfold", "multi"):
        out += [(f"protocol.{k}", f"applies to the kfold and multi protocols (--protocol kfold); this run's is {name!r}",
                 ("protocol.name",)) for k in ("k", "grouping") if changed("protocol", k)]
    if name != "holdout" and protocol["holdout_speakers"]:
        out.append(("protocol.holdout_speakers", f"applies to the holdout protocol (--protocol holdout); this run's is {name!r}",
                    ("protocol.name",)))
    if name != "cross":
        out += [(f"dataset.{k}", f"applies to the cross protocol (train on one corpus, test on "
                 f"another: --protocol cross); this run's is {name!r}", ("protocol.name",))
                for k in ("test_name", "test_data_dir") if dataset[k]]
    return out


def unused_message(config, key, why):
    """The one line that refuses ``key`` (see :func:`inapplicable`)."""
    return (f"{key} {why}. Remove it, or set what it applies to. "
            f"Received: {_short(key)}={get_key(config, key)!r}")


# ------------------------------------------------------------ files


def check_paths(config, *, output_dir=None):
    """Checks the files and folders a config names, before anything runs:
    corpus folders (or the CSV file of ``csv``), ``protocol.folds``,
    ``model.weights`` and ``training.init_from`` files exist, and the run
    directory (``output_dir``, default the config's) can be created and
    written.

    Raises:
        ConfigError: names the key and the path.
    """
    for spec in corpus_specs(config["dataset"]):
        _check_corpus_path(spec["name"], spec["data_dir"])
    if config["dataset"]["test_name"] and config["dataset"]["test_data_dir"]:
        _check_corpus_path(config["dataset"]["test_name"], config["dataset"]["test_data_dir"])
    folds = config["protocol"]["folds"]
    if folds and not os.path.isfile(folds):
        raise ConfigError(f"protocol.folds: no such file. Received: folds={folds!r}")
    model = config["model"]
    weights = model.get("weights")
    kind = model_kind(model)
    names = FRONT_END_WEIGHT_NAMES if kind == "front_end" else CNN_WEIGHT_NAMES
    if isinstance(weights, str) and weights not in names and not os.path.exists(weights):
        raise ConfigError(
            f"model.weights (--weights): no such file, and not one of {', '.join(names)} or none. "
            f"Received: weights={weights!r}"
        )
    init = config["training"]["init_from"]
    if init is not None:
        from speechmodel import presets

        try:
            path = presets.resolve_model(init)
        except ValueError:
            path = None
        if not (path and path.endswith(".keras") and os.path.isfile(path)):
            why = "no such file or folder" if not os.path.exists(init) else (
                "a folder without model.keras" if os.path.isdir(init) else "not a .keras file")
            raise ConfigError(
                "training.init_from (--init_from) takes a saved .keras model, a shipped model's "
                f"name ({', '.join(sorted(presets.PRESETS))}) or a run directory holding "
                f"model.keras: {why}. Received: init_from={init!r}"
            )
    for key in ("training.embedding_cache",):
        path = get_key(config, key)
        if path:
            check_writable(path, key)
    cache = config["training"]["cache"]
    if cache and cache != "memory":
        check_writable(cache, "training.cache")
    target = output_dir or config["output_dir"]
    if target:
        check_writable(target, "output_dir (--output_dir)")


def check_writable(path, what):
    """``path`` is a folder that exists and can be written, or can be
    created (its nearest existing parent is a writable folder)."""
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise ConfigError(f"{what}: {path} is a file, not a folder.")
        if not os.access(path, os.W_OK | os.X_OK):
            raise ConfigError(f"{what}: {path} is not writable.")
        return
    parent = os.path.dirname(path)
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ConfigError(f"{what}: {path} cannot be created: {parent} is a file, not a folder.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{what}: {path} cannot be created: {parent} is not writable.")


def _check_corpus_path(name, data_dir):
    """A corpus folder that exists (the runner explains a missing one, with
    the download hint); for ``csv``, a CSV file (or a folder holding
    manifest.csv) that is UTF-8 text."""
    if not data_dir or str(name).strip().lower() != "csv":
        return
    path = os.path.abspath(os.path.expanduser(data_dir))
    if os.path.isdir(path):
        path = os.path.join(path, "manifest.csv")
    if not os.path.isfile(path):
        return  # the loader's message names the expected layout
    try:
        with open(path, encoding="utf-8-sig") as f:
            while f.read(1 << 20):
                pass
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"dataset.data_dir: the CSV manifest {path} is not UTF-8 text ({exc.reason} at byte "
            f"{exc.start}); save it as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)."
        ) from None
    except OSError as exc:
        raise ConfigError(f"dataset.data_dir: cannot read {path} ({exc.strerror or exc}).") from None


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
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:10]


def default_output_dir(config, root="runs"):
    """``runs/<dataset>-<model>-<protocol>-<hash>``: the same command always
    maps to the same directory, so a rerun after a kill resumes."""
    name = "-".join(
        [config["dataset"]["name"], config["model"]["name"], config["protocol"]["name"], digest(config)]
    )
    return os.path.join(root, name)
