"""From train.py's flags to a resolved config (flags override the file)."""

import os

from speechmodel.training.config import DEFAULTS, ConfigError, load_config, resolve

AUGMENTATIONS = ("noise", "speed", "pitch", "specaugment", "mixup")
_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# The configs/ folder of a source checkout; installed (pip install .), the
# same files are package data in speechmodel/configs.
_CONFIG_DIRS = (
    os.path.join(_REPO, "configs"),
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs"),
)


def default_config_path(dataset):
    for directory in _CONFIG_DIRS:
        path = os.path.join(directory, f"{dataset}.json")
        if os.path.exists(path):
            return path
    return None


def _given(flags, name):
    return flags[name].present or (name == "data_dir" and flags.data_dir)


def config_from_flags(flags):
    """The config file (``--config`` or ``configs/<dataset>.json``) with
    every flag that was given on the command line applied over it."""
    path = flags.config or default_config_path(flags.dataset)
    config = load_config(path) if path else resolve({})
    if flags.config is None or _given(flags, "dataset"):
        config["dataset"]["name"] = flags.dataset
    overrides = {
        ("dataset", "data_dir"): "data_dir",
        ("dataset", "test_name"): "test_dataset",
        ("dataset", "test_data_dir"): "test_data_dir",
        ("model", "name"): "model",
        ("protocol", "name"): "protocol",
        ("protocol", "k"): "folds",
        ("training", "mode"): "mode",
        ("training", "epochs"): "epochs",
        ("training", "batch_size"): "batch_size",
        ("training", "learning_rate"): "learning_rate",
        ("training", "balance"): "balance",
        ("training", "strategy"): "strategy",
        ("training", "mixed_precision"): "mixed_precision",
        ("training", "seed"): "seed",
        ("output_dir",): "output_dir",
    }
    for keys, flag in overrides.items():
        if _given(flags, flag):
            target = config
            for key in keys[:-1]:
                target = target[key]
            target[keys[-1]] = getattr(flags, flag)
    if _given(flags, "seed"):
        config["protocol"]["seed"] = flags.seed
    if _given(flags, "emotions"):
        config["dataset"]["emotions"] = [e.strip() for e in flags.emotions.split(",") if e.strip()]
    if _given(flags, "holdout_speakers"):
        config["protocol"]["holdout_speakers"] = list(flags.holdout_speakers)
    if _given(flags, "val_speakers"):
        value = flags.val_speakers
        config["protocol"]["val_speakers"] = int(value) if value.isdigit() else value.split(",")
    if flags.random_split:
        config["protocol"]["random_split"] = True
    if _given(flags, "model") and flags.model != "speechmodel":
        # A baseline or classical model: SpeechModel's arguments don't apply.
        config["model"] = {"name": flags.model, "weights": config["model"].get("weights")}
        if flags.model in ("svm", "rf", "hgb", "knn", "mlp", "bagging"):
            config["model"].pop("weights")
    if _given(flags, "backbone"):
        config["model"]["backbone"] = flags.backbone
        _front_end_recipe(config, mode_given=_given(flags, "mode"))
    if _given(flags, "fine_tune_blocks"):
        config["model"]["fine_tune_blocks"] = flags.fine_tune_blocks
    if _given(flags, "weights"):
        config["model"]["weights"] = None if flags.weights.lower() == "none" else flags.weights
    if _given(flags, "augment"):
        config["training"]["augment"] = parse_augment(flags.augment, config["training"]["augment"])
    return resolve(config)


def _front_end_recipe(config, *, mode_given):
    """``--backbone whisper_base`` over a config written for a CNN: the
    front end's recipe (frozen encoder, cached embeddings, no log-mel
    augmentation) unless ``--mode`` says otherwise."""
    from absl import logging

    from speechmodel.models.frontends import is_front_end

    model, training = config["model"], config["training"]
    if not is_front_end(model["backbone"]) or mode_given or training["mode"] != "two_stage":
        return
    training["mode"] = "frozen"
    training["augment"] = {}
    if model.get("weights") == "imagenet":
        model["weights"] = None
    for key in ("input_size", "preprocessing", "segment_shape", "trainable_backbone"):
        model.pop(key, None)
    logging.info(
        "--backbone %s: training the head on its frozen embeddings (training.mode=frozen, "
        "no augmentation); pass --mode end_to_end --fine_tune_blocks N to fine-tune it.",
        model["backbone"],
    )


def parse_augment(value, configured):
    """``"noise,specaugment"`` -> those sections of the config (or {})."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    if names in ([], ["none"]):
        return {}
    unknown = sorted(set(names) - set(AUGMENTATIONS))
    if unknown:
        raise ConfigError(
            f"--augment takes none or a comma list of {', '.join(AUGMENTATIONS)}. Received: augment={value}"
        )
    return {name: dict((configured or {}).get(name) or {}) for name in names}


__all__ = ["config_from_flags", "parse_augment", "default_config_path", "DEFAULTS"]
