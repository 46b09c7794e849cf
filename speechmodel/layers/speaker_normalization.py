"""Standardising segment embeddings with one speaker's statistics."""

import keras
import numpy as np
from keras import ops


def speaker_statistics(sequences, *, prior=None, prior_segments=0):
    """The mean and variance of a speaker's segment embeddings.

    Args:
        sequences: a non-empty list of arrays ``(N_i, ..., D)``: the
            segment embeddings of each of one speaker's utterances (the
            valid segments only).
        prior: optional ``(mean, variance)`` to lean on (an average
            speaker's: ``population_statistics``, which a trained layer
            holds), counted as ``prior_segments`` segments: with ``n``
            segments of the speaker, the mean is ``(prior_segments * prior
            mean + n * own mean) / (prior_segments + n)``, and the second
            moment likewise. A few recordings then move the statistics a
            little, many almost all the way to the speaker's own.
        prior_segments: the prior's weight in segments (0: the speaker's
            own statistics).

    Returns:
        ``(mean, variance)``, float64 arrays of shape ``(..., D)``: over
        every segment of every utterance.
    """
    sequences = [np.asarray(s, dtype=np.float64) for s in sequences]
    if not sequences or not any(len(s) for s in sequences):
        raise ValueError(
            "A speaker's statistics need at least one segment. "
            f"Received: {len(sequences)} utterances with no segment"
        )
    if prior_segments < 0 or (prior_segments and prior is None):
        raise ValueError(
            "`prior_segments` must be 0, or positive with a `prior`. "
            f"Received: prior_segments={prior_segments!r}, prior={'given' if prior is not None else None}"
        )
    stacked = np.concatenate([s for s in sequences if len(s)])
    mean, variance = stacked.mean(axis=0), stacked.var(axis=0)
    if not prior_segments:
        return mean, variance
    n, tau = len(stacked), float(prior_segments)
    prior_mean, prior_variance = (np.asarray(v, np.float64) for v in prior)
    shrunk = (tau * prior_mean + n * mean) / (tau + n)
    second = (tau * (prior_variance + prior_mean**2) + n * (variance + mean**2)) / (tau + n)
    return shrunk, np.maximum(second - shrunk**2, 0.0)


def population_statistics(statistics):
    """The statistics of an average speaker: the mean of the speakers'
    means and of their variances (the within-speaker spread, not the
    spread between speakers).

    Args:
        statistics: a non-empty list of ``(mean, variance)`` pairs, one per
            speaker (``speaker_statistics``).
    """
    if not statistics:
        raise ValueError("Population statistics need at least one speaker. Received: none")
    means, variances = zip(*statistics)
    return np.mean(means, axis=0), np.mean(variances, axis=0)


def standardize(sequence, mean, variance, *, epsilon=1e-5):
    """``(sequence - mean) / sqrt(variance + epsilon)`` as float32: what
    ``SpeakerNormalization`` computes, in NumPy (for cached embeddings)."""
    scale = 1.0 / np.sqrt(np.asarray(variance, np.float64) + epsilon)
    return ((np.asarray(sequence, np.float64) - mean) * scale).astype(np.float32)


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
