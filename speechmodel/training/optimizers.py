"""The optimiser and loss of every deep training mode, from the config."""

import keras
from keras import ops

from speechmodel.training.defaults import ConfigError

OPTIMIZERS = ("adam", "adamw", "sgd")


def make_optimizer(training, learning_rate, *, model=None):
    """``training.optimizer`` (with ``training.weight_decay`` for adamw) at
    ``learning_rate``.

    With ``model`` (a model on a pretrained front end whose top encoder
    blocks train: ``--mode finetune`` or ``end_to_end``), the encoder's
    variables learn more slowly (:func:`encoder_learning_rate_scales`) and
    every rate warms up linearly over ``training.warmup_steps`` steps.
    """
    name = str(training["optimizer"]).lower()
    if name not in OPTIMIZERS:
        raise ConfigError(
            f"training.optimizer must be one of {OPTIMIZERS}. Received: optimizer={name!r}"
        )
    scales = encoder_learning_rate_scales(model, training) if model is not None else {}
    warmup = int(training.get("warmup_steps") or 0) if scales else 0
    scaled = bool(scales or warmup)
    if name == "adam":
        cls = LayerScaledAdam if scaled else keras.optimizers.Adam
        kwargs = {}
    elif name == "adamw":
        cls = LayerScaledAdamW if scaled else keras.optimizers.AdamW
        kwargs = {"weight_decay": training["weight_decay"] or 1e-4}
    else:
        cls = LayerScaledSGD if scaled else keras.optimizers.SGD
        kwargs = {"momentum": 0.9, "nesterov": True}
    if scaled:
        kwargs.update(scales=scales, warmup_steps=warmup)
    return cls(learning_rate, **kwargs)


def encoder_learning_rate_scales(model, training):
    """``{variable path: learning-rate factor}`` for the trainable encoder
    variables of ``model`` (an ``AudioSpeechModel``): the top block gets
    ``training.encoder_lr_scale``, each block below it ``training.layer_decay``
    times the one above (layer-wise decay), ``ln_post`` the top block's.
    Every other variable (the head) keeps the full rate. Empty for a model
    without a trainable pretrained encoder."""
    encoder = getattr(getattr(model, "embedder", None), "encoder", None)
    if encoder is None or not getattr(encoder, "fine_tune_blocks", 0):
        return {}
    top = float(training.get("encoder_lr_scale", 1.0))
    decay = float(training.get("layer_decay", 1.0))
    scales = {}
    for variable in encoder.trainable_weights:
        name = variable.path.rsplit("/", 1)[-1]
        depth = 0
        if name.startswith("block_"):
            depth = encoder.num_layers - 1 - int(name.split("_")[1])
        scales[variable.path] = top * decay**depth
    return scales


class _LayerScaled:
    """An optimizer whose learning rate is multiplied, per variable, by a
    fixed factor (``scales``: ``{variable path: factor}``, 1 for the
    others) and, for every variable, by a linear warm-up ``min(1, (step +
    1) / warmup_steps)``. Weight decay (AdamW) follows the same rate."""

    def __init__(self, learning_rate=0.001, *, scales=None, warmup_steps=0, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.scales = {str(k): float(v) for k, v in dict(scales or {}).items()}
        self.warmup_steps = int(warmup_steps)

    def _factor(self, variable):
        path = getattr(variable, "path", None) or variable.name.rsplit(":", 1)[0]
        factor = ops.cast(self.scales.get(path, 1.0), "float32")
        if self.warmup_steps:
            step = ops.cast(self.iterations + 1, "float32")
            factor = factor * ops.minimum(1.0, step / float(self.warmup_steps))
        return factor

    def update_step(self, gradient, variable, learning_rate):
        rate = ops.cast(learning_rate, variable.dtype) * ops.cast(self._factor(variable), variable.dtype)
        return super().update_step(gradient, variable, rate)

    def _apply_weight_decay(self, variables):
        if self.weight_decay is None:
            return
        for variable in variables:
            if self._use_weight_decay(variable):
                rate = ops.cast(self.learning_rate, variable.dtype) * ops.cast(
                    self._factor(variable), variable.dtype
                )
                variable.assign(variable - variable * ops.cast(self.weight_decay, variable.dtype) * rate)

    def get_config(self):
        config = super().get_config()
        config.update({"scales": dict(self.scales), "warmup_steps": self.warmup_steps})
        return config


@keras.saving.register_keras_serializable(package="speechmodel")
class LayerScaledAdam(_LayerScaled, keras.optimizers.Adam):
    """Adam with per-variable learning-rate factors and warm-up."""


@keras.saving.register_keras_serializable(package="speechmodel")
class LayerScaledAdamW(_LayerScaled, keras.optimizers.AdamW):
    """AdamW with per-variable learning-rate factors and warm-up."""


@keras.saving.register_keras_serializable(package="speechmodel")
class LayerScaledSGD(_LayerScaled, keras.optimizers.SGD):
    """SGD (momentum) with per-variable learning-rate factors and warm-up."""


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
