"""The optimiser and loss of every deep training mode, from the config."""

import keras
from keras import ops

from speechmodel.training.defaults import ConfigError

OPTIMIZERS = ("adam", "adamw", "sgd")


def make_optimizer(training, learning_rate):
    """``training.optimizer`` (with ``training.weight_decay`` for adamw) at
    ``learning_rate``."""
    name = str(training["optimizer"]).lower()
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate, weight_decay=training["weight_decay"] or 1e-4)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True)
    raise ConfigError(
        f"training.optimizer must be one of {OPTIMIZERS}. Received: optimizer={name!r}"
    )


def make_loss(training, *, from_logits=False, one_hot=False):
    """Cross-entropy with ``training.label_smoothing``, on sparse labels or
    on one-hot labels (mixup)."""

    smoothing = float(training.get("label_smoothing") or 0.0)
    if one_hot:
        return keras.losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=smoothing)
    if smoothing:
        return SmoothedSparseCrossentropy(from_logits=from_logits, label_smoothing=smoothing)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)


@keras.saving.register_keras_serializable(package="speechmodel")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Sparse labels, smoothed: Keras' sparse cross-entropy has no
    ``label_smoothing``; this one-hot encodes the labels first."""

    def __init__(self, *, from_logits=False, label_smoothing=0.0, name="smoothed_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        one_hot = ops.one_hot(labels, ops.shape(y_pred)[-1])
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=self.from_logits, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        config = super().get_config()
        config.update({"from_logits": self.from_logits, "label_smoothing": self.label_smoothing})
        return config
