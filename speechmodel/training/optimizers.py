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


def make_loss(training, *, from_logits=False, one_hot=False, label_sets=None):
    """Cross-entropy with ``training.label_smoothing``, on sparse labels or
    on one-hot labels (mixup); with ``label_sets`` (``training.
    partial_labels``: ``fold_data``'s), ``PartialLabelCrossentropy``."""

    smoothing = float(training.get("label_smoothing") or 0.0)
    if label_sets is not None:
        return PartialLabelCrossentropy(label_sets, from_logits=from_logits, label_smoothing=smoothing)
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


@keras.saving.register_keras_serializable(package="speechmodel")
class PartialLabelCrossentropy(keras.losses.Loss):
    """Cross-entropy over the emotions a clip's corpus has (partial labels).

    A corpus without some of the model's classes (nEMO has no calm and no
    disgust) says nothing about them: its clips are scored by a softmax
    over their corpus' label set only, ``-log(p_y / sum_{k in S} p_k)``
    (with ``label_smoothing`` spread over ``S``), so their loss, and its
    gradient, never involve the logits of the classes outside ``S``.

    Args:
        label_sets: ``(G, C)`` 0/1, the classes of each label set.
        from_logits: ``y_pred`` are logits rather than probabilities.
        label_smoothing: as Keras' cross-entropy, over the label set.

    ``y_true``: ``label + C * g`` with ``g`` the clip's label set
    (``encode_partial_labels``); ``y_pred``: ``(B, C)``.
    """

    def __init__(self, label_sets, *, from_logits=False, label_smoothing=0.0,
                 name="partial_label_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_sets = [[int(bool(v)) for v in row] for row in label_sets]
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        classes = len(self.label_sets[0])
        codes = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        labels, groups = codes % classes, codes // classes
        allowed = ops.take(ops.convert_to_tensor(self.label_sets, "float32"), groups, axis=0)
        logits = y_pred if self.from_logits else ops.log(ops.maximum(ops.cast(y_pred, "float32"), 1e-12))
        logits = ops.cast(logits, "float32")
        # Classes outside the set: -inf before the softmax, no gradient.
        masked = ops.where(allowed > 0, logits, ops.full_like(logits, -1e9))
        log_q = masked - ops.logsumexp(masked, axis=-1, keepdims=True)
        one_hot = ops.one_hot(labels, classes)
        target = (1.0 - self.label_smoothing) * one_hot + self.label_smoothing * allowed / ops.sum(
            allowed, axis=-1, keepdims=True
        )
        return -ops.sum(ops.where(allowed > 0, target * log_q, 0.0), axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update({"label_sets": self.label_sets, "from_logits": self.from_logits,
                       "label_smoothing": self.label_smoothing})
        return config


def encode_partial_labels(labels, groups, num_classes):
    """``label + num_classes * group``: a clip's class and its label set in
    one integer (what ``PartialLabelCrossentropy`` reads)."""
    import numpy as np

    return np.asarray(labels, np.int64) + num_classes * np.asarray(groups, np.int64)
