"""The defaults of an experiment config, and what every config module
shares: :class:`ConfigError`, :func:`closest` (the "did you mean" hint) and
:func:`get_key` (a value by its dotted key).

The sections and their keys are described in ``speechmodel.training.config``;
what each key takes, in ``speechmodel.training.schema``.
"""

import difflib

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
        "partial_labels": False,
        "calibrate": False,
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
        "encoder_lr_scale": 0.05,
        "layer_decay": 0.8,
        "warmup_steps": 100,
        "frame_mask": 0.05,
    },
    "output_dir": None,
}


class ConfigError(Error, ValueError):
    """A config that cannot be used; the message quotes the value."""


def closest(name, candidates):
    """`` (did you mean `x`?)`` for the candidate nearest ``name``, or ``""``."""
    match = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f" (did you mean `{match[0]}`?)" if match else ""


def get_key(config, key, default=None):
    """The value at the dotted ``key`` of ``config`` (``default`` if unset)."""
    value = config
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return default
        value = value[part]
    return value
