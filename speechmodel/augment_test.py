import json

import numpy as np
import pytest
import scipy.signal
import soundfile as sf
import tensorflow as tf

from speechmodel import augment as A
from speechmodel.audio import AudioError, load_audio
from speechmodel.config import FeatureConfig
from speechmodel.pipeline import make_dataset
from tests.paths import ravdess_files

SR = 16000


def sine(freq, seconds=1.0, sr=SR, amplitude=0.5):
    t = np.arange(int(seconds * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(y, sr=SR):
    """Frequency of the largest FFT bin, refined by parabolic interpolation."""
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    k = int(np.argmax(spectrum[1:-1])) + 1
    a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-12)
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * sr / y.size


def snr_db(signal, mixed):
    added = np.asarray(mixed, np.float64) - signal
    return 10 * np.log10(np.mean(np.square(signal, dtype=np.float64)) / np.mean(added**2))


def seeds(a, b=0):
    return tf.constant([a, b], tf.int64)


@pytest.fixture(scope="module")
def speech():
    return load_audio(ravdess_files("Actor_01/*.wav")[0])


# ---------------------------------------------------------------- the config


def test_config_defaults_round_trip_through_json():
    aug = A.Augmentation.from_dict({"noise": {}, "speed": {}, "pitch": {}, "specaugment": {}, "mixup": {}})
    resolved = aug.to_dict()
    assert resolved == {k: dict(v) for k, v in A.DEFAULTS.items()}
    assert A.Augmentation.from_dict(json.loads(json.dumps(resolved))) == aug
    assert A.Augmentation.from_dict({}).to_dict() == {}
    assert A.Augmentation.from_dict({"noise": None, "pitch": {"p": 0}}).active == []
    fixed = A.Augmentation.from_dict({"noise": {"snr_db": 10, "kind": "pink"}, "speed": {"factors": 1.1}})
    assert fixed.noise.snr_db == (10.0, 10.0) and fixed.noise.kind == ("pink",)
    assert fixed.speed.factors == (1.1,)


@pytest.mark.parametrize(
    "config, quoted",
    [
        ({"noise": {"snr_db": [20, 5]}}, "Received: snr_db=[20, 5]"),
        ({"noise": {"snr_db": "loud"}}, "Received: snr_db='loud'"),
        ({"noise": {"p": 1.5}}, "Received: p=1.5"),
        ({"noise": {"p": True}}, "Received: p=True"),
        ({"noise": {"kind": ["white", "purple"]}}, "Received: kind=['white', 'purple']"),
        ({"noise": {"kind": []}}, "Received: kind=[]"),
        ({"noise": {"noise_files": "a.wav"}}, "Received: noise_files='a.wav'"),
        ({"noise": {"snr": 10}}, "unknown keys ['snr']"),
        ({"speed": {"factors": [0.9, 0]}}, "Received: factors=[0.9, 0]"),
        ({"speed": {"factors": []}}, "Received: factors=[]"),
        ({"pitch": {"semitones": [-30, 2]}}, "Received: semitones=[-30, 2]"),
        ({"specaugment": {"freq_masks": -1}}, "Received: freq_masks=-1"),
        ({"specaugment": {"time_width": 2.5}}, "Received: time_width=2.5"),
        ({"mixup": {"alpha": 0}}, "Received: alpha=0"),
        ({"nosie": {}}, "unknown augmentations ['nosie']"),
        ({"noise": [5, 20]}, "Received: noise=[5, 20]"),
        (["noise"], "Received: ['noise']"),
    ],
)
def test_bad_configs_raise_value_error_quoting_the_value(config, quoted):
    with pytest.raises(ValueError) as info:
        A.Augmentation.from_dict(config)
    assert quoted in str(info.value)


def test_widths_are_checked_against_the_feature_sizes():
    with pytest.raises(ValueError, match="freq_width=65"):
        A.build_features_augment({"specaugment": {"freq_width": 65}})
    small = FeatureConfig(n_mels=40, segment_frames=32, segment_hop=16)
    with pytest.raises(ValueError, match="time_width=33"):
        A.build_features_augment({"specaugment": {"time_width": 33}}, feature_config=small)
    with pytest.raises(ValueError, match="freq_width=9"):
        A.spec_augment(tf.zeros([1, 1, 4, 8, 3]), tf.ones([1, 1], tf.bool), tf.zeros([1, 2], tf.int64),
                       freq_masks=1, freq_width=9, time_masks=0)


# ------------------------------------------------------------------- noise


@pytest.mark.parametrize("kind", A.NOISE_KINDS)
def test_noise_is_added_at_the_requested_snr(speech, kind):
    fn = A.build_waveform_augment({"noise": {"p": 1, "snr_db": 10, "kind": kind}})
    out = fn(speech, seeds(3)).numpy()
    assert out.shape == speech.shape
    assert abs(snr_db(speech, out) - 10.0) < 0.05


def test_snr_is_drawn_within_the_range(speech):
    fn = tf.function(A.build_waveform_augment({"noise": {"p": 1, "snr_db": [5, 20]}}))
    measured = [snr_db(speech, fn(speech, seeds(s)).numpy()) for s in range(12)]
    assert min(measured) > 5 - 0.05 and max(measured) < 20 + 0.05
    assert max(measured) - min(measured) > 3  # really drawn, not fixed


@pytest.mark.parametrize("kind, slope", [("white", 0.0), ("pink", -1.0), ("brown", -2.0)])
def test_colored_noise_has_unit_power_and_its_spectral_slope(kind, slope):
    noise = A.colored_noise(2**16, kind=kind, seed=7).numpy()
    assert abs(np.mean(noise**2) - 1.0) < 1e-3
    freq, psd = scipy.signal.welch(noise, fs=SR, nperseg=4096)
    band = (freq >= 100) & (freq <= 4000)
    fitted = np.polyfit(np.log10(freq[band]), np.log10(psd[band]), 1)[0]
    assert abs(fitted - slope) < 0.15, fitted


def test_silence_gets_no_noise():
    fn = A.build_waveform_augment({"noise": {"p": 1, "snr_db": 0}})
    np.testing.assert_array_equal(fn(np.zeros(4000, np.float32), seeds(1)).numpy(), 0.0)


def test_noise_files_are_loaded_once_and_mixed_at_the_snr(tmp_path, speech):
    # An 8 kHz file (resampled on load), shorter than the utterance: looped.
    path = tmp_path / "hum.wav"
    sf.write(path, sine(300.0, seconds=0.5, sr=8000), 8000)
    fn = A.build_waveform_augment({"noise": {"p": 1, "snr_db": 15, "noise_files": [str(path)]}})
    path.unlink()  # loaded at build time, not per call
    for s in range(3):
        out = fn(speech, seeds(s)).numpy()
        assert abs(snr_db(speech, out) - 15.0) < 0.05
        assert abs(peak_hz(out - speech) - 300.0) < 2.0


def test_bad_noise_files_are_named(tmp_path):
    missing = str(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="nope.wav"):
        A.build_waveform_augment({"noise": {"noise_files": [missing]}})
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(800, np.float32), SR)
    with pytest.raises(ValueError, match="silent.wav: the noise file is silent"):
        A.build_waveform_augment({"noise": {"noise_files": [str(silent)]}})


# ------------------------------------------------------------ speed, pitch


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_changes_length_and_frequency_by_the_factor(factor):
    y = sine(440.0)
    out = A.speed_perturb(y, factor=factor).numpy()
    assert abs(out.size - y.size / factor) <= 1
    assert abs(peak_hz(out) / 440.0 - factor) < 0.002
    fn = A.build_waveform_augment({"speed": {"p": 1, "factors": [factor]}})
    assert abs(fn(y, seeds(0)).shape[0] - y.size / factor) <= 1


@pytest.mark.parametrize("semitones", [2.0, -3.0])
def test_pitch_shift_moves_a_sine_and_keeps_its_length(semitones):
    y = sine(440.0)
    out = A.pitch_shift(y, semitones=semitones).numpy()
    assert out.shape == y.shape
    assert abs(peak_hz(out) / (440.0 * 2 ** (semitones / 12)) - 1) < 0.005
    fn = A.build_waveform_augment({"pitch": {"p": 1, "semitones": semitones}})
    np.testing.assert_allclose(fn(y, seeds(0)).numpy(), out, atol=1e-6)


def test_waveform_augment_is_deterministic_for_seeds_in_graph_mode(speech):
    fn = A.build_waveform_augment(
        {"noise": {"p": 1}, "speed": {"p": 1, "factors": [0.9, 1.1]}, "pitch": {"p": 1}}
    )
    graph = tf.function(fn, input_signature=[tf.TensorSpec([None]), tf.TensorSpec([2], tf.int64)])
    a = graph(speech, seeds(5, 1)).numpy()
    np.testing.assert_array_equal(a, graph(speech, seeds(5, 1)).numpy())
    np.testing.assert_allclose(a, fn(speech, seeds(5, 1)).numpy(), atol=1e-5)
    others = [graph(speech, seeds(s, 1)).numpy() for s in range(6, 9)]
    assert any(o.shape != a.shape or not np.allclose(o, a) for o in others)


def test_p_zero_is_identity_and_p_is_the_rate(speech):
    off = {"noise": {"p": 0}, "speed": {"p": 0}, "pitch": {"p": 0}, "specaugment": {"p": 0}}
    assert A.build_waveform_augment(off) is None
    assert A.build_features_augment(off) is None
    assert A.build_waveform_augment({"speed": {"p": 1, "factors": [1.0]}, "pitch": {"p": 1, "semitones": 0}}) is None
    segments = tf.random.normal([2, 3, 64, 64, 3])
    np.testing.assert_array_equal(
        A.spec_augment(segments, tf.ones([2, 3], tf.bool), tf.zeros([2, 2], tf.int64), p=0.0), segments
    )
    segments, mask = overlapping_segments([1] * 60, mels=16)
    masked = A.spec_augment(segments, mask, np.stack([np.arange(60), np.zeros(60)], 1), freq_masks=1,
                            freq_width=8, time_masks=1, time_width=10, p=0.5).numpy()
    changed = [not np.array_equal(masked[b], segments[b]) for b in range(60)]
    assert 0.3 < np.mean(changed) < 0.7
    y = speech[:8000]
    fn = tf.function(A.build_waveform_augment({"noise": {"p": 0.5, "kind": "white"}}))
    changed = [not np.array_equal(fn(y, seeds(s)).numpy(), y) for s in range(60)]
    assert 0.3 < np.mean(changed) < 0.7
    always = A.build_waveform_augment({"noise": {"p": 1.0, "kind": "white"}})
    assert not np.array_equal(always(y, seeds(0)).numpy(), y)


# ------------------------------------------------------------ SpecAugment


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


def test_specaugment_masks_valid_segments_only_and_consistently():
    counts = [5, 2, 1, 3]
    segments, mask = overlapping_segments(counts)
    s = np.array([[i, 9] for i in range(4)], np.int64)
    out = A.spec_augment(segments, mask, s, freq_masks=2, freq_width=8, time_masks=2, time_width=10).numpy()
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
    fn = A.build_features_augment({"specaugment": {"p": 1}})
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


# ------------------------------------------------------------------ mixup


def constant_batch(counts, values):
    n = max(counts)
    segments = np.zeros((len(counts), n, 4, 5, 3), np.float32)
    mask = np.arange(n)[None, :] < np.array(counts)[:, None]
    for b, v in enumerate(values):
        segments[b][mask[b]] = v
    return {"segments": tf.constant(segments), "mask": tf.constant(mask)}, mask


def test_mixup_mixes_pairs_and_labels_follow_lambda():
    counts, values = [3, 1, 2, 3, 2, 1], [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    x, mask = constant_batch(counts, values)
    y = np.arange(6)  # distinct classes: the soft label reveals pair and lambda
    out, soft = A.mixup_batch(x, y, alpha=1.0, num_classes=8, seed=3)
    out, soft, new_mask = out["segments"].numpy(), soft.numpy(), out["mask"].numpy()
    assert soft.shape == (6, 8) and soft.dtype == np.float32
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-6)
    assert (soft >= 0).all() and not soft[:, 6:].any()
    mixed = 0
    for i in range(6):
        lam = soft[i, i]
        partners = [j for j in range(6) if j != i and soft[i, j] > 0]
        j = partners[0] if partners else i
        mixed += j != i
        np.testing.assert_allclose(soft[i, j], 1 - lam if j != i else 1.0, atol=1e-6)
        np.testing.assert_array_equal(new_mask[i], mask[i] | mask[j])
        for k in range(mask.shape[1]):
            seg = out[i, k]
            if mask[i, k] and mask[j, k]:
                np.testing.assert_allclose(seg, lam * values[i] + (1 - lam) * values[j], rtol=1e-5)
            elif mask[j, k]:
                np.testing.assert_array_equal(seg, values[j])
            elif mask[i, k]:
                np.testing.assert_array_equal(seg, values[i])
            else:
                np.testing.assert_array_equal(seg, 0.0)
    assert mixed >= 3


def test_mixup_lambda_follows_beta_alpha():
    x, _ = constant_batch([1] * 64, [0.0] * 64)
    y = np.zeros(64, np.int64)
    y[1::2] = 1  # every pair of different classes shows lambda

    def lambdas(alpha):
        out = []
        for s in range(8):
            _, soft = A.mixup_batch(x, y, alpha=alpha, num_classes=2, seed=s)
            soft = soft.numpy()
            out.extend(soft[y == 0, 0][soft[y == 0, 0] < 1])  # mixed with a class-1 partner
        return np.array(out)

    sharp = lambdas(0.2)  # U-shaped: mostly near 0 or 1
    assert np.mean((sharp < 0.1) | (sharp > 0.9)) > 0.5
    flat = lambdas(50.0)  # concentrated at 1/2
    assert abs(flat.mean() - 0.5) < 0.03 and flat.std() < 0.1
    _, soft = A.mixup_batch(x, y, alpha=1.0, num_classes=2, seed=0, p=0.0)
    np.testing.assert_array_equal(soft.numpy(), np.eye(2)[y])


def test_mixup_rejects_bad_labels_and_arguments():
    x, _ = constant_batch([1, 1], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"Received: y=\[0, 3\]"):
        A.mixup_batch(x, [0, 3], alpha=0.2, num_classes=3, seed=0)
    with pytest.raises(ValueError, match="alpha=-1"):
        A.mixup_batch(x, [0, 1], alpha=-1, num_classes=3, seed=0)
    with pytest.raises(ValueError, match="float32"):
        A.mixup_batch(x, np.array([0.0, 1.0], np.float32), alpha=0.2, num_classes=3, seed=0)
    ds = tf.data.Dataset.from_tensors((x, tf.constant([0, 5])))
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_classes=3"):
        list(A.apply_mixup(ds, alpha=0.2, num_classes=3))
    with pytest.raises(ValueError, match="element_spec"):
        A.apply_mixup(ds.map(lambda a, b: a), alpha=0.2, num_classes=3)


def test_apply_mixup_is_seeded_and_new_each_epoch():
    x, _ = constant_batch([2, 1, 2, 1], [1.0, 2.0, 3.0, 4.0])
    ds = tf.data.Dataset.from_tensors((x, tf.constant([0, 1, 2, 3]))).repeat(3)

    def labels(seed):
        return [soft.numpy() for _, soft in A.apply_mixup(ds, alpha=1.0, num_classes=4, seed=seed)]

    first = labels(1)
    np.testing.assert_array_equal(np.stack(first), np.stack(labels(1)))
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(np.stack(first), np.stack(labels(2)))


# ----------------------------------------------------------- end to end


def test_end_to_end_in_make_dataset_on_real_files():
    files = ravdess_files("Actor_01/*.wav")[:4]
    config = {
        "noise": {"p": 1, "snr_db": [5, 20]},
        "speed": {"p": 1, "factors": [0.9, 1.1]},
        "pitch": {"p": 1},
        "specaugment": {"p": 1},
        "mixup": {"alpha": 0.2},
    }
    waveform_augment = A.build_waveform_augment(config)
    features_augment = A.build_features_augment(config)

    def run(training, **kwargs):
        ds = make_dataset(
            files, [0, 1, 2, 3], batch_size=4, training=training, shuffle=False, seed=11,
            waveform_augment=waveform_augment, features_augment=features_augment, **kwargs,
        )
        x, y = next(iter(ds))
        return x["segments"].numpy(), x["mask"].numpy(), y.numpy()

    plain, plain_mask, _ = run(False)
    segments, mask, y = run(True)
    np.testing.assert_array_equal(y, [0, 1, 2, 3])
    assert segments.shape[2:] == (64, 64, 3) and np.isfinite(segments).all()
    np.testing.assert_array_equal(segments[~mask], 0.0)
    # Speed changed the segment counts of some utterances.
    assert not np.array_equal(mask.sum(axis=1), plain_mask.sum(axis=1))
    # SpecAugment zeroed whole mel bands of valid segments.
    assert any(
        (segments[b, :n] == 0).all(axis=(0, 1, 3)).any()
        for b, n in enumerate(mask.sum(axis=1))
    )
    again, _, _ = run(True)
    np.testing.assert_array_equal(again, segments)  # reproducible for the seed
    mixed = A.apply_mixup(
        make_dataset(files, [0, 1, 2, 3], batch_size=4, training=True, seed=11,
                     waveform_augment=waveform_augment, features_augment=features_augment),
        alpha=0.2, num_classes=4, seed=11,
    )
    x, soft = next(iter(mixed))
    assert soft.shape == (4, 4)
    np.testing.assert_allclose(soft.numpy().sum(axis=1), 1.0, atol=1e-6)
    assert np.isfinite(x["segments"].numpy()).all()
