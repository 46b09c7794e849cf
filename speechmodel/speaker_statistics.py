"""A speaker's statistics of segment embeddings, in NumPy.

What ``speechmodel.layers.speaker_normalization.SpeakerNormalization``
computes with, kept apart from Keras so that inference without TensorFlow
(``speechmodel.inference.onnx_backend``) and the training code share one
implementation.
"""

import numpy as np


class SpeakerStatistics:
    """An average speaker's ``(mean, variance)`` and the ``epsilon`` added
    to the variance: what a speaker-normalised model's layer holds, for a
    runtime without Keras (``statistics()`` and ``epsilon`` as the layer).
    """

    def __init__(self, mean, variance, *, epsilon=1e-5):
        self.mean = np.asarray(mean, np.float32)
        self.variance = np.asarray(variance, np.float32)
        if self.mean.shape != self.variance.shape:
            raise ValueError(
                "The mean and the variance must have one shape. "
                f"Received: mean.shape={self.mean.shape}, variance.shape={self.variance.shape}"
            )
        self.epsilon = float(epsilon)

    def statistics(self):
        """``(mean, variance)`` as float32 arrays."""
        return self.mean, self.variance


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
