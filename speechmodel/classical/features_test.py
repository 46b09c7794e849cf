import json
import os
import pathlib
import time

import numpy as np
import pytest
import soundfile as sf

from speechmodel.classical import features as F
from speechmodel.classical.features import (
    ClassicalFeatureConfig,
    compute_features,
    extract_features,
    feature_names,
)

SR = 16000
RAVDESS = pathlib.Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "ravdess"


def tone(freq, seconds=1.0, amplitude=0.5, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write(path, y, sr=SR):
    sf.write(str(path), y, sr, subtype="FLOAT")  # Exact: no quantisation.
    return str(path)


def column(vector, names, name):
    return float(vector[names.index(name)])


# --- configuration -------------------------------------------------------


def test_config_round_trips_through_json():
    config = ClassicalFeatureConfig(
        features=("mfcc", "pitch"), aggregators=("mean", "max"), n_mfcc=13
    )
    again = ClassicalFeatureConfig.from_json(config.to_json())
    assert again == config
    assert json.loads(config.to_json())["features"] == ["mfcc", "pitch"]
    assert again.digest() == config.digest()
    assert ClassicalFeatureConfig(n_mfcc=20).digest() != ClassicalFeatureConfig().digest()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"features": ("mfcc", "formants")}, "features=('mfcc', 'formants')"),
        ({"features": ()}, "must not be empty"),
        ({"aggregators": ("mean", "mean")}, "must not repeat"),
        ({"aggregators": ("median",)}, "unknown names ['median']"),
        ({"n_mfcc": 0}, "n_mfcc=0"),
        ({"contrast_bands": 7}, "below Nyquist"),
        ({"pitch_fmin": 600.0}, "pitch_fmin=600.0"),
    ],
)
def test_config_rejects_bad_values_quoting_them(kwargs, message):
    with pytest.raises(ValueError) as info:
        ClassicalFeatureConfig(**kwargs)
    assert message in str(info.value)


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown keys \\['n_mfccs'\\]"):
        ClassicalFeatureConfig.from_dict({"n_mfccs": 20})


def test_feature_names_count_and_order():
    config = ClassicalFeatureConfig()
    names = feature_names(config)
    # (40 + 12 + 128 + 7 + 6 + 1 + 1 + 1) descriptors x 4 aggregators.
    assert len(names) == 196 * 4 == len(set(names))
    assert names[:2] == ["mfcc_00_mean", "mfcc_01_mean"]
    assert names[40] == "mfcc_00_std"
    assert names[-1] == "flatness_max"
    seed = ClassicalFeatureConfig(
        features=("mfcc", "chroma", "mel"), aggregators=("mean",), mel_db=False
    )
    assert len(feature_names(seed)) == 180  # the sklearn seed's vector.
    pitch = ClassicalFeatureConfig(features=("pitch",))
    assert feature_names(pitch) == [
        "pitch_f0_mean",
        "pitch_f0_std",
        "pitch_f0_min",
        "pitch_f0_max",
        "pitch_voiced_fraction",
    ]


# --- analytic signals ----------------------------------------------------


def test_vector_matches_names_and_is_finite_for_tone():
    config = ClassicalFeatureConfig()
    vector = compute_features(tone(440.0), config=config)
    assert vector.dtype == np.float32
    assert vector.shape == (len(feature_names(config)),)
    assert np.isfinite(vector).all()


def test_zcr_and_rms_of_a_sine():
    # A sine of frequency f crosses zero 2 f times a second; its RMS is a/sqrt(2).
    config = ClassicalFeatureConfig(features=("zcr", "rms"), aggregators=("mean",))
    names = feature_names(config)
    y = tone(500.0, seconds=2.0, amplitude=0.5)
    vector = compute_features(y, config=config)
    # Edge frames see the zero padding, hence the tolerances (3 %).
    assert column(vector, names, "zcr_mean") == pytest.approx(2 * 500 / SR, rel=0.03)
    assert column(vector, names, "rms_mean") == pytest.approx(0.5 / np.sqrt(2), rel=0.03)


def test_chroma_peaks_at_the_tone_pitch_class():
    config = ClassicalFeatureConfig(features=("chroma",), aggregators=("mean",))
    vector = compute_features(tone(440.0, seconds=2.0), config=config)
    # librosa chroma bins start at C: A is bin 9.
    assert int(np.argmax(vector)) == 9


def test_flatness_white_noise_vs_tone():
    config = ClassicalFeatureConfig(features=("flatness",), aggregators=("mean",))
    noise = np.random.default_rng(0).normal(0, 0.1, SR).astype(np.float32)
    flat_noise = compute_features(noise, config=config)[0]
    flat_tone = compute_features(tone(440.0), config=config)[0]
    assert flat_noise > 0.3  # White noise: close to 1 up to window effects.
    assert flat_tone < 0.01


def test_pitch_of_a_harmonic_tone_and_of_silence():
    config = ClassicalFeatureConfig(features=("pitch",))
    names = feature_names(config)
    t = np.arange(SR) / SR
    y = sum(0.3 / k * np.sin(2 * np.pi * 150.0 * k * t) for k in (1, 2, 3))
    vector = compute_features(y.astype(np.float32), config=config)
    assert column(vector, names, "pitch_f0_mean") == pytest.approx(150.0, rel=0.02)
    assert column(vector, names, "pitch_voiced_fraction") > 0.8
    silent = compute_features(np.zeros(SR, np.float32), config=config)
    # No voiced frame: zeros, never NaN.
    np.testing.assert_array_equal(silent, np.zeros(5, np.float32))


def test_silence_and_very_short_input_are_finite():
    config = ClassicalFeatureConfig()
    for y in (np.zeros(SR, np.float32), tone(300.0, seconds=0.02)):
        vector = compute_features(y, config=config)
        assert np.isfinite(vector).all()


def test_mel_db_is_log_of_power():
    power = ClassicalFeatureConfig(features=("mel",), aggregators=("max",), mel_db=False)
    db = ClassicalFeatureConfig(features=("mel",), aggregators=("max",), mel_db=True)
    y = tone(1000.0)
    p = compute_features(y, config=power).astype(np.float64)
    d = compute_features(y, config=db).astype(np.float64)
    # max commutes with the monotone dB map; 80 dB top clipping is per frame,
    # so compare only bands within 80 dB of the peak (tolerance 1e-3 dB).
    keep = d > d.max() - 80
    np.testing.assert_allclose(
        d[keep], 10 * np.log10(np.maximum(p[keep], 1e-10)), atol=1e-3
    )


def test_compute_features_rejects_bad_waveforms():
    with pytest.raises(ValueError, match="shape=\\(0,\\)"):
        compute_features(np.zeros(0, np.float32))
    with pytest.raises(ValueError, match="shape=\\(10, 2\\)"):
        compute_features(np.zeros((10, 2), np.float32))
    y = tone(440.0)
    y[5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        compute_features(y)


# --- files, failures, cache ---------------------------------------------


SMALL = ClassicalFeatureConfig(features=("mfcc", "zcr", "rms"), n_mfcc=13)


def test_extract_reports_failures_and_kept_rows(tmp_path):
    good_a = write(tmp_path / "a.wav", tone(200.0))
    good_b = write(tmp_path / "b.wav", tone(300.0))
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all")
    missing = str(tmp_path / "missing.wav")
    paths = [good_a, str(empty), good_b, str(text), missing]
    X, names, failures = extract_features(paths, SMALL, n_jobs=1)
    assert X.shape == (2, len(names))
    assert [f.index for f in failures] == [1, 3, 4]
    assert [f.path for f in failures] == [str(empty), str(text), missing]
    assert "empty" in failures[0].reason
    assert "not an audio file" in failures[1].reason
    assert "not found" in failures[2].reason
    result = extract_features(paths, SMALL, n_jobs=1)
    np.testing.assert_array_equal(result.kept, [0, 2])
    np.testing.assert_array_equal(
        X[1], compute_features(tone(300.0), config=SMALL)
    )


def test_parallel_equals_serial(tmp_path):
    paths = [write(tmp_path / f"{i}.wav", tone(150.0 + 50 * i)) for i in range(4)]
    paths.insert(2, str(tmp_path / "missing.wav"))
    serial = extract_features(paths, SMALL, n_jobs=1)
    parallel = extract_features(paths, SMALL, n_jobs=2)
    # The same features; joblib's workers run BLAS on one thread each, so
    # float sums may be ordered differently (measured: 7.6e-6 on values
    # of ~500, a relative 1.7e-6).
    np.testing.assert_allclose(serial.X, parallel.X, rtol=1e-5, atol=1e-5)
    assert serial.failures == parallel.failures
    np.testing.assert_array_equal(parallel.kept, [0, 1, 3, 4])


def test_all_failed_gives_empty_matrix(tmp_path):
    X, names, failures = extract_features([str(tmp_path / "x.wav")], SMALL)
    assert X.shape == (0, len(names)) and len(failures) == 1


def test_extract_rejects_single_path_and_bad_n_jobs(tmp_path):
    with pytest.raises(ValueError, match="list of paths"):
        extract_features(str(tmp_path / "a.wav"), SMALL)
    with pytest.raises(ValueError, match="n_jobs=0"):
        extract_features([], SMALL, n_jobs=0)


def test_cache_is_used_and_invalidated(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    path = write(tmp_path / "a.wav", tone(200.0))
    first = extract_features([path], SMALL, n_jobs=1, cache_dir=cache)
    assert len(list(cache.glob("*.npy"))) == 1

    calls = []
    real = F.compute_features

    def counting(y, *, config=None):
        calls.append(1)
        return real(y, config=config)

    monkeypatch.setattr(F, "compute_features", counting)
    again = extract_features([path], SMALL, n_jobs=1, cache_dir=cache)
    np.testing.assert_array_equal(first.X, again.X)
    assert calls == []  # Served from the cache.

    # Another config: another key, recomputed.
    other = ClassicalFeatureConfig(features=("mfcc", "zcr", "rms"), n_mfcc=12)
    extract_features([path], other, n_jobs=1, cache_dir=cache)
    assert len(calls) == 1

    # The file changes (same name, new content and mtime): recomputed, new values.
    write(tmp_path / "a.wav", tone(900.0, seconds=1.5))
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    changed = extract_features([path], SMALL, n_jobs=1, cache_dir=cache)
    assert len(calls) == 2
    assert not np.allclose(changed.X, first.X)
    np.testing.assert_array_equal(
        changed.X[0], real(tone(900.0, seconds=1.5), config=SMALL)
    )


def test_a_cache_that_cannot_be_written_is_no_error(tmp_path, monkeypatch):
    import errno

    cache = tmp_path / "cache"
    path = write(tmp_path / "a.wav", tone(200.0))

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    result = extract_features([path], SMALL, n_jobs=1, cache_dir=cache)
    np.testing.assert_array_equal(result.X[0], compute_features(tone(200.0), config=SMALL))
    assert os.listdir(cache) == []  # no entry and no temporary file left


def test_cache_key_depends_on_path_size_mtime_and_config(tmp_path):
    a = write(tmp_path / "a.wav", tone(200.0))
    b = write(tmp_path / "b.wav", tone(200.0))
    key = F.cache_key(a, SMALL)
    assert key == F.cache_key(os.path.relpath(a), SMALL)  # Absolute path.
    assert key != F.cache_key(b, SMALL)
    assert key != F.cache_key(a, ClassicalFeatureConfig())
    stat = os.stat(a)
    os.utime(a, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert key != F.cache_key(a, SMALL)


def test_corrupt_cache_entry_is_recomputed(tmp_path):
    cache = tmp_path / "cache"
    path = write(tmp_path / "a.wav", tone(200.0))
    first = extract_features([path], SMALL, n_jobs=1, cache_dir=cache)
    (entry,) = cache.glob("*.npy")
    entry.write_bytes(b"garbage")
    again = extract_features([path], SMALL, n_jobs=1, cache_dir=cache)
    np.testing.assert_array_equal(first.X, again.X)


def test_resamples_and_mixes_down(tmp_path):
    y = tone(300.0, sr=44100)
    stereo = np.stack([y, y], axis=1)
    path = write(tmp_path / "stereo44k.wav", stereo, sr=44100)
    X, _, failures = extract_features([path], SMALL, n_jobs=1)
    assert not failures
    reference = compute_features(tone(300.0), config=SMALL)
    # The same tone made at 16 kHz, up to the resampler (1 % on the means;
    # min/max/std also see the resampler's smearing of the abrupt onset).
    means = [i for i, n in enumerate(feature_names(SMALL)) if n.endswith("_mean")]
    np.testing.assert_allclose(X[0, means], reference[means], rtol=0.01, atol=0.05)


@pytest.mark.skipif(not RAVDESS.is_dir(), reason=f"RAVDESS not found at {RAVDESS}")
def test_real_ravdess_files_with_pitch():
    paths = sorted((RAVDESS / "Actor_02").glob("*.wav"))[:3]
    config = ClassicalFeatureConfig(features=F.FEATURES)
    start = time.perf_counter()
    X, names, failures = extract_features(paths, config, n_jobs=1)
    assert not failures
    assert X.shape == (3, len(names)) and np.isfinite(X).all()
    f0 = X[:, names.index("pitch_f0_mean")]
    assert ((f0 > 60) & (f0 < 400)).all()  # A speaking voice.
    assert time.perf_counter() - start < 60
