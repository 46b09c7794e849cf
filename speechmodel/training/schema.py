"""The schema of an experiment config and its validation.

This module is the one description of an experiment and the one place it is
validated (:func:`validate`): every key has a type and a range or a list of
values (:data:`SCHEMA`, :data:`MODEL_SCHEMA`), the ``model`` keys are those
of the chosen model (:func:`model_keys`; its segment shape is derived from
``features``: a ``model.segment_shape`` that disagrees is refused), and
:func:`inapplicable` lists the keys set to something the run would not use
(``training.segment_epochs`` outside ``two_stage``, ``protocol.k`` outside
``kfold``/``multi``, the deep-training keys of a classical model, ...),
which ``train.py`` refuses. Validation imports no TensorFlow (the
augmentation settings, checked by ``speechmodel.augment``, are checked with
``deep=True``), so a mistyped value fails in well under a second.
"""

import math

from speechmodel.config import FeatureConfig
from speechmodel.errors import is_number
from speechmodel.models import frontends, registry
from speechmodel.training.corpora import corpus_specs
from speechmodel.training.defaults import DEFAULTS, ConfigError, closest, get_key

MODES = ("end_to_end", "two_stage", "frozen", "finetune")
BALANCES = ("none", "oversample", "class_weights")
SEGMENT_SCHEDULES = ("constant", "cosine")
PROTOCOLS = ("loso", "kfold", "session", "holdout", "cross", "all", "loco", "multi")
GROUPINGS = ("contiguous", "shuffled")
OPTIMIZERS = ("adam", "adamw", "sgd")
MONITORS = ("val_uar", "val_wa", "val_loss")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16", "auto")
STRATEGIES = ("default", "mirrored", "multiworker")
AUGMENTATIONS = ("noise", "speed", "pitch", "specaugment", "mixup")

# The model names and keys: the registries' own (read without TensorFlow).
BACKBONES = registry.BACKBONE_NAMES
FRONT_ENDS = frontends.FRONT_END_NAMES
DEEP_MODELS = registry.MODEL_NAMES
CLASSICAL_MODELS = ("bagging", "hgb", "knn", "mlp", "rf", "svm")
MODEL_NAMES = DEEP_MODELS + CLASSICAL_MODELS

# The model keys of a classical model (the deep ones: registry.MODEL_CLASSES).
CLASSICAL_KEYS = ("name", "weights")
# Every key a model section can hold, whatever the model.
ALL_MODEL_KEYS = tuple(sorted({k for c in registry.MODEL_CLASSES.values() for k in c.keys} | set(CLASSICAL_KEYS)))
CLASSICAL_SETTINGS = ("features", "grid", "params", "n_jobs", "cache_dir", "speaker_normalization")

# The dict sections whose keys are not fixed here (checked by validate()
# against the chosen model, the corpus loader or speechmodel.augment).
FREE_SECTIONS = ("model", "training.augment", "dataset.options", "training.classical")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _whole(low):
    return (lambda v: _is_int(v) and v >= low), f"a whole number >= {low}"


def _number(low, high=None, *, above=False):
    def check(v):
        # Finite: JSON's 1e999 reads as infinity; NaN too is refused.
        if not (is_number(v) and math.isfinite(v)) or v < low or (above and v == low):
            return False
        return high is None or v < high

    text = f"a finite number {'>' if above else '>='} {low}" + (f" and < {high}" if high is not None else "")
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
    "training.partial_labels": _BOOL,
    "training.calibrate": _BOOL,
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
    "training.encoder_lr_scale": _number(0, above=True),
    "training.layer_decay": _number(0, above=True),
    "training.warmup_steps": _whole(0),
    "training.frame_mask": _number(0, 1),
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
    "lora_rank": _whole(0),
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
    return registry.model_kind(name, model.get("backbone"))


def model_keys(model):
    """The keys the ``model`` section takes for this model."""
    kind = model_kind(model)
    return CLASSICAL_KEYS if kind == "classical" else registry.MODEL_CLASSES[kind].keys


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
    _validate_classical(training["classical"])
    if training["augment"] and deep:
        from speechmodel.augment.settings import Augmentation

        try:
            Augmentation.from_dict(training["augment"])
        except ValueError as exc:
            raise ConfigError(f"training.augment: {exc}") from None
    _validate_front_end(config)
    _validate_partial_labels(config)


def _validate_classical(settings):
    """The feature set (``training.classical.features``: a set's name or
    its settings) and ``speaker_normalization``; the rest is checked where
    it is used (the grid by ``load_grid``, the parameters by the
    classifier)."""
    from speechmodel.classical.features import feature_config

    try:
        feature_config(settings.get("features"))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"training.classical.features: {exc}") from None
    if "speaker_normalization" in settings:
        _check("training.classical.speaker_normalization", settings["speaker_normalization"], _BOOL)


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


def _validate_partial_labels(config):
    training = config["training"]
    mode = training["mode"]
    if training.get("partial_labels") and (
        training["balance"] == "class_weights" or mode == "two_stage" or "mixup" in (training["augment"] or {})
    ):
        raise ConfigError(
            "training.partial_labels (each clip's loss over its corpus' emotions only) trains the "
            "model or its head on class indices: it takes no class weights (use --balance "
            "oversample), no mixup and no two_stage CNN stage. Received: "
            f"mode={mode!r}, balance={training['balance']!r}, augment={training['augment']!r}"
        )


def _validate_front_end(config):
    """A model on a pretrained speech front end (``--backbone whisper_base``)
    trains in the modes that make sense for it, or says why not."""
    model, training = config["model"], config["training"]
    if model_kind(model) != "front_end":
        if training["mode"] == "finetune" and model_kind(model) != "classical":
            raise ConfigError(
                "training.mode finetune trains the top blocks of a pretrained front end "
                "(--backbone whisper_base) from cached states. Received: mode='finetune', "
                f"model={model.get('name')!r}, backbone={model.get('backbone')!r}"
            )
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
    if mode == "finetune" and not blocks:
        raise ConfigError(
            "training.mode finetune trains the encoder's top blocks from their cached input: "
            "say how many with --fine_tune_blocks K (model.fine_tune_blocks, 1 to the encoder's blocks, 6 "
            f"for {backbone!r}). Received: mode='finetune', fine_tune_blocks={blocks}"
        )
    if model.get("lora_rank") and not blocks:
        raise ConfigError(
            "model.lora_rank puts low-rank adapters on the top model.fine_tune_blocks blocks, "
            f"which is 0. Received: lora_rank={model['lora_rank']}, fine_tune_blocks={blocks}"
        )
    if mode == "finetune" and training["augment"]:
        raise ConfigError(
            "training.mode finetune trains on cached states of the original audio: "
            f"--augment none. Received: augment={training['augment']!r}"
        )
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
_ENCODER_TRAINING = ("encoder_lr_scale", "layer_decay", "warmup_steps", "frame_mask")


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
            out.append(("training.embedding_cache", "applies to the two_stage, frozen and finetune modes "
                        "(cached embeddings); this run's mode is 'end_to_end'",
                        ("training.mode", "model.backbone", "model.name")))
        if changed("training", "cache") and (
            mode in ("frozen", "finetune") or (mode == "two_stage" and training["segment_epochs"] == 0)
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
        tuned = kind == "front_end" and (model.get("fine_tune_blocks") or 0) and mode in (
            "finetune", "end_to_end")
        if not tuned:
            why = ("applies to a pretrained front end's tuned blocks (--mode finetune or end_to_end "
                   f"with model.fine_tune_blocks > 0); this run's mode is {mode!r}")
            out += [(f"training.{k}", why, ("training.mode", "model.fine_tune_blocks", "model.backbone",
                                            "model.name"))
                    for k in _ENCODER_TRAINING if changed("training", k)]
        elif mode != "finetune" and changed("training", "frame_mask"):
            out.append(("training.frame_mask", "masks cached states in --mode finetune; this run's "
                        f"mode is {mode!r}", ("training.mode",)))
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
