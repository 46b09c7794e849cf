"""Standardising segment embeddings with one speaker's statistics."""

import keras
import numpy as np
from keras import ops

# The statistics themselves are NumPy, in ``speechmodel.speaker_statistics``
# (importable without TensorFlow); kept importable from here.
from speechmodel.speaker_statistics import (  # noqa: F401
    population_statistics,
    speaker_statistics,
    standardize,
)


@keras.saving.register_keras_serializable(package="speechmodel")
class SpeakerNormalization(keras.layers.Layer):
    """Standardises segment embeddings with a speaker's statistics.

    Returns ``(x - mean) / sqrt(variance + epsilon)`` per feature, where
    ``mean`` and ``variance`` (of shape ``input_shape[2:]``, e.g. ``(L,
    D)`` for the per-block embeddings of a pretrained encoder) are
    non-trainable weights, saved with the model. A model trained on
    speaker-normalised embeddings (``training.speaker_norm``: each training
    speaker standardised with their own statistics) holds the statistics
    of an average training speaker (``population_statistics``), which is
    what a single recording of an unknown speaker gets;
    ``set_statistics`` adapts the layer to one speaker from a set of their
    recordings (``speaker_statistics``).

    Args:
        epsilon: float, added to the variance.
        **kwargs: base layer arguments (``name``, ``dtype``, ...).

    Call arguments:
        inputs: float ``(batch, N, ...)``.

    Example:
    >>> layer = SpeakerNormalization()
    >>> x = np.array([[[1.0, 2.0], [3.0, 6.0]]], "float32")
    >>> layer.set_statistics(x[0].mean(axis=0), x[0].var(axis=0))
    >>> np.round(np.asarray(layer(x)), 3).tolist()
    [[[-1.0, -1.0], [1.0, 1.0]]]
    """

    def __init__(self, *, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(epsilon, (int, float)) or isinstance(epsilon, bool) or epsilon <= 0:
            raise ValueError(f"`epsilon` must be a positive number. Received: epsilon={epsilon!r}")
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        shape = tuple(input_shape[2:])
        if not shape or any(d is None for d in shape):
            raise ValueError(
                "SpeakerNormalization needs inputs (batch, N, ...) with known feature "
                f"dimensions. Received: input_shape={tuple(input_shape)}"
            )
        self.mean = self.add_weight(shape=shape, initializer="zeros", trainable=False, name="mean")
        self.variance = self.add_weight(
            shape=shape, initializer="ones", trainable=False, name="variance"
        )

    def set_statistics(self, mean, variance):
        """Normalises with these statistics from now on (of
        ``speaker_statistics`` or ``population_statistics``)."""
        if not self.built:
            self.build((None, None, *np.shape(mean)))
        for weight, value, name in ((self.mean, mean, "mean"), (self.variance, variance, "variance")):
            value = np.asarray(value, dtype=np.float32)
            if value.shape != tuple(weight.shape):
                raise ValueError(
                    f"The {name} must have shape {tuple(weight.shape)}. "
                    f"Received: {name}.shape={value.shape}"
                )
            if name == "variance" and not (value >= 0).all():
                raise ValueError("The variance must not be negative. Received: a negative value")
            weight.assign(value)

    def statistics(self):
        """The current ``(mean, variance)`` as float32 arrays."""
        return np.asarray(self.mean), np.asarray(self.variance)

    def call(self, inputs):
        mean = ops.cast(self.mean, inputs.dtype)
        scale = ops.cast(ops.rsqrt(self.variance + self.epsilon), inputs.dtype)
        return (inputs - mean) * scale

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon})
        return config
