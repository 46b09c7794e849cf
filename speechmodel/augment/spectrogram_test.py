import numpy as np
import pytest
import tensorflow as tf

from speechmodel.augment.spectrogram import build_features_augment, spec_augment
from speechmodel.config import FeatureConfig


def test_widths_are_checked_against_the_feature_sizes():
    with pytest.raises(ValueError, match="freq_width=65"):
        build_features_augment({"specaugment": {"freq_width": 65}})
    small = FeatureConfig(n_mels=40, segment_frames=32, segment_hop=16)
    with pytest.raises(ValueError, match="time_width=33"):
        build_features_augment({"specaugment": {"time_width": 33}}, feature_config=small)
    with pytest.raises(ValueError, match="freq_width=9"):
        spec_augment(tf.zeros([1, 1, 4, 8, 3]), tf.ones([1, 1], tf.bool), tf.zeros([1, 2], tf.int64),
                       freq_masks=1, freq_width=9, time_masks=0)


def overlapping_segments(counts, hop=32, frames=64, mels=64, seed=0):
    """Segments framed from random utterance timelines, zero-padded."""
    rng = np.random.default_rng(seed)
    n = max(counts)
    out = np.zeros((len(counts), n, frames, mels, 3), np.float32)
    for b, count in enumerate(counts):
        timeline = rng.normal(size=((count - 1) * hop + frames, mels, 3)).astype(np.float32)
        for k in range(count):
            out[b, k] = timeline[k * hop : k * hop + frames]
    mask = np.arange(n)[None, :] < np.array(counts)[:, None]
    return out, mask


def test_p_zero_is_identity_and_p_is_the_rate():
    off = {"noise": {"p": 0}, "speed": {"p": 0}, "pitch": {"p": 0}, "specaugment": {"p": 0}}
    assert build_features_augment(off) is None
    segments = tf.random.normal([2, 3, 64, 64, 3])
    np.testing.assert_array_equal(
        spec_augment(segments, tf.ones([2, 3], tf.bool), tf.zeros([2, 2], tf.int64), p=0.0), segments
    )
    segments, mask = overlapping_segments([1] * 60, mels=16)
    masked = spec_augment(segments, mask, np.stack([np.arange(60), np.zeros(60)], 1), freq_masks=1,
                            freq_width=8, time_masks=1, time_width=10, p=0.5).numpy()
    changed = [not np.array_equal(masked[b], segments[b]) for b in range(60)]
    assert 0.3 < np.mean(changed) < 0.7


def test_specaugment_masks_valid_segments_only_and_consistently():
    counts = [5, 2, 1, 3]
    segments, mask = overlapping_segments(counts)
    s = np.array([[i, 9] for i in range(4)], np.int64)
    out = spec_augment(segments, mask, s, freq_masks=2, freq_width=8, time_masks=2, time_width=10).numpy()
    assert out.shape == segments.shape
    np.testing.assert_array_equal(out[~mask], 0.0)  # padding stays zero
    zero = out == 0
    changed = out != segments
    assert np.all(zero[changed])  # masked values are 0, nothing else moves
    assert changed[mask].any()
    for b, count in enumerate(counts):
        # Frequency masks: the same bands in every valid segment.
        bands = [np.where(zero[b, k].all(axis=(0, 2)))[0].tolist() for k in range(count)]
        assert all(band == bands[0] for band in bands)
        assert len(bands[0]) <= 2 * 8
        # Time masks on the timeline: the overlapping halves agree.
        for k in range(count - 1):
            np.testing.assert_array_equal(out[b, k, 32:], out[b, k + 1, :32])
        masked_frames = zero[b, :count].all(axis=(2, 3)).sum()
        assert masked_frames <= 2 * count * 10 * 2  # each frame at most in 2 segments


def test_specaugment_is_deterministic_for_seeds_and_varies_with_them():
    segments, mask = overlapping_segments([4, 4, 2])
    fn = build_features_augment({"specaugment": {"p": 1}})
    s = tf.constant([[1, 1], [2, 2], [3, 3]], tf.int64)
    first = fn(segments, mask, s).numpy()
    np.testing.assert_array_equal(first, fn(segments, mask, s).numpy())
    graph = tf.function(fn)
    np.testing.assert_array_equal(first, graph(segments, mask, s).numpy())
    other = fn(segments, mask, s + 100).numpy()
    assert not np.array_equal(first, other)
    # An utterance's masks depend on its own seed only, not on the batch.
    alone = fn(segments[:1], mask[:1], s[:1]).numpy()
    np.testing.assert_array_equal(alone[0], first[0])
