import json

import librosa
import numpy as np
import pytest
import tensorflow as tf

from speechmodel import features as F
from speechmodel.audio import load_audio
from speechmodel.config import FeatureConfig
from tests.data.make_reference import SOURCE, reference
from tests.paths import DATA, ravdess_files

# Tolerances, in dB for the log-mel and dB/frame for the deltas: float32 FFT
# and matmul orders differ from numpy's float64-accumulated ones.
LOGMEL_ATOL = 2e-3
DELTA_ATOL = 2e-4


def stack(y, config):
    """Unnormalised (frames, 64, 3) features from the batched op."""
    config = config.replace(normalization="none", segment_hop=1, segment_frames=1)
    segments, count = F.batch_segment_features(y[None], [len(y)], config=config)
    return np.asarray(segments[0, : count[0], 0])


def test_mel_filterbank_is_librosas():
    for scale, norm in (("slaney", "slaney"), ("htk", None)):
        config = FeatureConfig(mel_scale=scale, mel_norm=norm)
        expected = librosa.filters.mel(
            sr=16000, n_fft=512, n_mels=64, fmin=20, fmax=8000,
            htk=scale == "htk", norm=norm,
        ).T
        np.testing.assert_allclose(F.mel_filterbank(config), expected, rtol=1e-6)


def test_a_sine_peaks_in_its_mel_bin():
    config = FeatureConfig()
    centres = librosa.mel_frequencies(n_mels=66, fmin=20, fmax=8000)[1:-1]
    for freq in (200.0, 1000.0, 3000.0):
        t = np.arange(16000) / 16000
        y = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
        spec = np.asarray(F.log_mel(y, config=config))
        band = int(np.argmax(spec[10:-10].mean(axis=0)))
        assert abs(band - int(np.argmin(np.abs(centres - freq)))) <= 1


def test_matches_committed_librosa_reference():
    y = load_audio(SOURCE)[:32000]
    expected = np.load(DATA / "ravdess_logmel_ref.npy")
    got = stack(y, FeatureConfig())
    assert got.shape == expected.shape
    np.testing.assert_allclose(got[..., 0], expected[..., 0], atol=LOGMEL_ATOL)
    np.testing.assert_allclose(got[..., 1:], expected[..., 1:], atol=DELTA_ATOL)


def test_matches_live_librosa_on_real_ravdess_files():
    files = ravdess_files()[::360]  # 4 files, 4 actors
    for path in files:
        y = load_audio(path)
        np.testing.assert_allclose(
            stack(y, FeatureConfig()), reference(y), atol=LOGMEL_ATOL, err_msg=path
        )


def test_delta_is_librosas_including_edges():
    data = np.random.default_rng(0).normal(size=(40, 5)).astype(np.float32)
    for order in (1, 2):
        expected = librosa.feature.delta(data.T, width=9, order=order).T
        got = np.asarray(F.delta(data, width=9, order=order))
        np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize(
    "samples, expected_segments",
    [
        (1, 1),  # shorter than a delta window: extended, one padded segment
        (160 * 40, 1),  # 41 frames < 64: one padded segment
        (160 * 63, 1),  # exactly 64 frames
        (160 * 64, 2),  # 65 frames: the last partial segment is kept
        (160 * 95, 2),  # 96 frames = 64 + 32: two full segments
        (160 * 96, 3),
    ],
)
def test_segment_counts_and_padding(samples, expected_segments):
    config = FeatureConfig()
    y = np.random.default_rng(1).normal(0, 0.1, samples).astype(np.float32)
    segments = np.asarray(F.segment_features(y, config=config))
    assert segments.shape == (expected_segments, 64, 64, 3)
    frames = max(1 + samples // 160, 9)
    # Frames past the utterance are zeros, the valid ones are not.
    flat = np.concatenate([segments[0], *[s[32:] for s in segments[1:]]])
    assert np.abs(flat[frames:]).max(initial=0) == 0
    assert np.abs(flat[:frames]).min() >= 0 and np.abs(flat[:frames]).sum() > 0


def test_batch_equals_each_utterance_alone():
    files = ravdess_files("Actor_02/*.wav")[:6]
    waves = [load_audio(f) for f in files] + [
        np.zeros(300, np.float32),
        np.random.default_rng(2).normal(size=2000).astype(np.float32),
    ]
    batch = np.zeros((len(waves), max(map(len, waves))), np.float32)
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
    for normalization in ("standard", "minmax", "none"):
        config = FeatureConfig(normalization=normalization)
        segments, counts = F.batch_segment_features(
            batch, [len(w) for w in waves], config=config
        )
        for i, w in enumerate(waves):
            alone = np.asarray(F.segment_features(w, config=config))
            assert counts[i] == alone.shape[0]
            np.testing.assert_allclose(segments[i, : counts[i]], alone, atol=1e-4)
            assert not np.asarray(segments[i, counts[i] :]).any()


def test_normalizations():
    y = load_audio(ravdess_files()[0])
    for normalization in ("standard", "minmax"):
        config = FeatureConfig(normalization=normalization)
        frames = stack(y, config.replace(normalization="none"))
        seg, count = F.batch_segment_features(
            y[None], [len(y)], config=config.replace(segment_frames=1, segment_hop=1)
        )
        got = np.asarray(seg[0, : count[0], 0])
        if normalization == "standard":
            np.testing.assert_allclose(got.mean(axis=(0, 1)), 0, atol=1e-3)
            np.testing.assert_allclose(got.std(axis=(0, 1)), 1, atol=1e-3)
            expected = (frames - frames.mean((0, 1))) / frames.std((0, 1))
        else:
            np.testing.assert_allclose(got.min(axis=(0, 1)), 0, atol=1e-6)
            np.testing.assert_allclose(got.max(axis=(0, 1)), 1, atol=1e-6)
            low, high = frames.min((0, 1)), frames.max((0, 1))
            expected = (frames - low) / (high - low)
        np.testing.assert_allclose(got, expected, atol=1e-3)


def test_max_segments_truncates_only_when_asked():
    y = np.random.default_rng(3).normal(0, 0.1, 16000 * 3).astype(np.float32)
    assert F.segment_features(y).shape[0] == 9
    assert F.segment_features(y, config=FeatureConfig(max_segments=4)).shape[0] == 4


def test_runs_in_a_graph_with_unknown_shapes():
    fn = tf.function(
        lambda w, n: F.batch_segment_features(w, n),
        input_signature=[
            tf.TensorSpec([None, None], tf.float32),
            tf.TensorSpec([None], tf.int32),
        ],
    )
    segments, counts = fn(tf.zeros([2, 8000]), tf.constant([8000, 4000]))
    assert segments.shape[1:] == (1, 64, 64, 3) and list(counts.numpy()) == [1, 1]


def test_config_round_trips_and_validates():
    config = FeatureConfig(n_mels=40, normalization="minmax", top_db=None)
    assert FeatureConfig.from_json(config.to_json()) == config
    assert FeatureConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert config.digest() != FeatureConfig().digest()
    assert config.win_length == 400 and config.hop_length == 160
    assert config.fft_length == 512
    with pytest.raises(ValueError, match="Received: normalization='zscore'"):
        FeatureConfig(normalization="zscore")
    with pytest.raises(ValueError, match="Received: fmax=9000"):
        FeatureConfig(fmax=9000)
    with pytest.raises(ValueError, match="Received: delta_width=4"):
        FeatureConfig(delta_width=4)
    with pytest.raises(ValueError, match="unknown keys"):
        FeatureConfig.from_dict({"n_mel": 64})
