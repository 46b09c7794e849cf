import numpy as np
import pytest
import scipy.signal
import soundfile as sf
import tensorflow as tf

from speechmodel.augment.mixup import apply_mixup
from speechmodel.augment.settings import NOISE_KINDS
from speechmodel.augment.spectrogram import build_features_augment
from speechmodel.augment.waveform import build_waveform_augment, colored_noise, pitch_shift, speed_perturb
from speechmodel.audio import AudioError, load_audio
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


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_noise_is_added_at_the_requested_snr(speech, kind):
    fn = build_waveform_augment({"noise": {"p": 1, "snr_db": 10, "kind": kind}})
    out = fn(speech, seeds(3)).numpy()
    assert out.shape == speech.shape
    assert abs(snr_db(speech, out) - 10.0) < 0.05


def test_snr_is_drawn_within_the_range(speech):
    fn = tf.function(build_waveform_augment({"noise": {"p": 1, "snr_db": [5, 20]}}))
    measured = [snr_db(speech, fn(speech, seeds(s)).numpy()) for s in range(12)]
    assert min(measured) > 5 - 0.05 and max(measured) < 20 + 0.05
    assert max(measured) - min(measured) > 3  # really drawn, not fixed


@pytest.mark.parametrize("kind, slope", [("white", 0.0), ("pink", -1.0), ("brown", -2.0)])
def test_colored_noise_has_unit_power_and_its_spectral_slope(kind, slope):
    noise = colored_noise(2**16, kind=kind, seed=7).numpy()
    assert abs(np.mean(noise**2) - 1.0) < 1e-3
    freq, psd = scipy.signal.welch(noise, fs=SR, nperseg=4096)
    band = (freq >= 100) & (freq <= 4000)
    fitted = np.polyfit(np.log10(freq[band]), np.log10(psd[band]), 1)[0]
    assert abs(fitted - slope) < 0.15, fitted


def test_silence_gets_no_noise():
    fn = build_waveform_augment({"noise": {"p": 1, "snr_db": 0}})
    np.testing.assert_array_equal(fn(np.zeros(4000, np.float32), seeds(1)).numpy(), 0.0)


def test_noise_files_are_loaded_once_and_mixed_at_the_snr(tmp_path, speech):
    # An 8 kHz file (resampled on load), shorter than the utterance: looped.
    path = tmp_path / "hum.wav"
    sf.write(path, sine(300.0, seconds=0.5, sr=8000), 8000)
    fn = build_waveform_augment({"noise": {"p": 1, "snr_db": 15, "noise_files": [str(path)]}})
    path.unlink()  # loaded at build time, not per call
    for s in range(3):
        out = fn(speech, seeds(s)).numpy()
        assert abs(snr_db(speech, out) - 15.0) < 0.05
        assert abs(peak_hz(out - speech) - 300.0) < 2.0


def test_bad_noise_files_are_named(tmp_path):
    missing = str(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="nope.wav"):
        build_waveform_augment({"noise": {"noise_files": [missing]}})
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(800, np.float32), SR)
    with pytest.raises(ValueError, match="silent.wav: the noise file is silent"):
        build_waveform_augment({"noise": {"noise_files": [str(silent)]}})


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_changes_length_and_frequency_by_the_factor(factor):
    y = sine(440.0)
    out = speed_perturb(y, factor=factor).numpy()
    assert abs(out.size - y.size / factor) <= 1
    assert abs(peak_hz(out) / 440.0 - factor) < 0.002
    fn = build_waveform_augment({"speed": {"p": 1, "factors": [factor]}})
    assert abs(fn(y, seeds(0)).shape[0] - y.size / factor) <= 1


@pytest.mark.parametrize("semitones", [2.0, -3.0])
def test_pitch_shift_moves_a_sine_and_keeps_its_length(semitones):
    y = sine(440.0)
    out = pitch_shift(y, semitones=semitones).numpy()
    assert out.shape == y.shape
    assert abs(peak_hz(out) / (440.0 * 2 ** (semitones / 12)) - 1) < 0.005
    fn = build_waveform_augment({"pitch": {"p": 1, "semitones": semitones}})
    np.testing.assert_allclose(fn(y, seeds(0)).numpy(), out, atol=1e-6)


def test_waveform_augment_is_deterministic_for_seeds_in_graph_mode(speech):
    fn = build_waveform_augment(
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
    assert build_waveform_augment(off) is None
    assert build_waveform_augment({"speed": {"p": 1, "factors": [1.0]}, "pitch": {"p": 1, "semitones": 0}}) is None
    y = speech[:8000]
    fn = tf.function(build_waveform_augment({"noise": {"p": 0.5, "kind": "white"}}))
    changed = [not np.array_equal(fn(y, seeds(s)).numpy(), y) for s in range(60)]
    assert 0.3 < np.mean(changed) < 0.7
    always = build_waveform_augment({"noise": {"p": 1.0, "kind": "white"}})
    assert not np.array_equal(always(y, seeds(0)).numpy(), y)


def test_end_to_end_in_make_dataset_on_real_files():
    files = ravdess_files("Actor_01/*.wav")[:4]
    config = {
        "noise": {"p": 1, "snr_db": [5, 20]},
        "speed": {"p": 1, "factors": [0.9, 1.1]},
        "pitch": {"p": 1},
        "specaugment": {"p": 1},
        "mixup": {"alpha": 0.2},
    }
    waveform_augment = build_waveform_augment(config)
    features_augment = build_features_augment(config)

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
    mixed = apply_mixup(
        make_dataset(files, [0, 1, 2, 3], batch_size=4, training=True, seed=11,
                     waveform_augment=waveform_augment, features_augment=features_augment),
        alpha=0.2, num_classes=4, seed=11,
    )
    x, soft = next(iter(mixed))
    assert soft.shape == (4, 4)
    np.testing.assert_allclose(soft.numpy().sum(axis=1), 1.0, atol=1e-6)
    assert np.isfinite(x["segments"].numpy()).all()
