import pathlib

import numpy as np
import pytest
import soundfile as sf

from speechmodel.audio import load_audio
from speechmodel.classical import features as F
from speechmodel.classical.features import (
    ClassicalFeatureConfig,
    compute_features,
    extract_features,
    feature_config,
    feature_config_dict,
    feature_names,
)
from speechmodel.classical.opensmile_features import OpenSmileFeatureConfig

RAVDESS = pathlib.Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "ravdess"
# Actor 1, "angry", strong intensity, statement 1 (3.7 s, 48 kHz mono).
CLIP = RAVDESS / "Actor_01" / "03-01-05-02-01-01-01.wav"


@pytest.fixture(scope="module")
def clip():
    if not CLIP.is_file():
        pytest.skip(f"RAVDESS not found at {RAVDESS}")
    return load_audio(str(CLIP), sample_rate=16000)


def test_sets_are_chosen_by_name_or_settings_and_round_trip():
    assert feature_config(None) == ClassicalFeatureConfig()
    assert feature_config("statistics") == ClassicalFeatureConfig()
    assert feature_config({}) == ClassicalFeatureConfig()
    assert feature_config({"n_mfcc": 13}) == ClassicalFeatureConfig(n_mfcc=13)
    assert feature_config("egemaps") == OpenSmileFeatureConfig("egemaps")
    compare = feature_config({"feature_set": "compare", "sample_rate": 22050})
    assert compare == OpenSmileFeatureConfig("compare", 22050)
    for config in (ClassicalFeatureConfig(n_mfcc=13), compare):
        assert feature_config(feature_config_dict(config)) == config
        assert feature_config(config) is config
    # Each set and setting has its own cache entries.
    digests = {c.digest() for c in (ClassicalFeatureConfig(), feature_config("egemaps"),
                                    feature_config("compare"), compare)}
    assert len(digests) == 4


@pytest.mark.parametrize(
    "value, message",
    [
        ("egemaps02", "known: statistics, egemaps, compare. Received: feature_set='egemaps02'"),
        ({"feature_set": "compare", "n_mfcc": 13}, "unknown keys ['n_mfcc']"),
        ({"feature_set": "egemaps", "sample_rate": 4000}, "sample_rate=4000"),
        ({"feature_set": "statistics", "n_mfcc": 0}, "n_mfcc=0"),
        (["egemaps"], "Received: list"),
    ],
)
def test_bad_sets_and_settings_are_refused_quoting_them(value, message):
    with pytest.raises(ValueError, match=None) as info:
        feature_config(value)
    assert message in str(info.value)


@pytest.mark.parametrize("name, dims", [("egemaps", 88), ("compare", 6373)])
def test_functionals_of_a_real_clip(clip, name, dims):
    vector = compute_features(clip, config=name)
    names = feature_names(name)
    assert vector.shape == (dims,) and len(names) == dims and vector.dtype == np.float32
    assert np.isfinite(vector).all()
    if name == "egemaps":
        # The angry actor's mean pitch: a male voice raised, in semitones
        # from 27.5 Hz (12 * log2(f / 27.5)): between 100 and 400 Hz.
        f0 = vector[names.index("F0semitoneFrom27.5Hz_sma3nz_amean")]
        assert 12 * np.log2(100 / 27.5) < f0 < 12 * np.log2(400 / 27.5)
        # Loudness rises with the level of the signal.
        loud = names.index("loudness_sma3_amean")
        assert compute_features(0.25 * clip, config=name)[loud] < vector[loud]


def test_the_signal_is_decoded_by_the_toolkits_loader(tmp_path, clip):
    """A stereo 44.1 kHz file gives what its mono 16 kHz decoding gives:
    openSMILE is handed the loader's signal, never the file."""
    import soxr

    stereo = soxr.resample(clip, 16000, 44100).astype(np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(str(path), np.stack([stereo, stereo], axis=1), 44100, subtype="FLOAT")
    [row] = extract_features([str(path)], "egemaps", n_jobs=1).X
    np.testing.assert_allclose(row, compute_features(load_audio(str(path)), config="egemaps"))


def test_failures_are_reported_by_name_and_cached_per_set(tmp_path, clip, monkeypatch):
    good = tmp_path / "good.wav"
    sf.write(str(good), clip, 16000, subtype="FLOAT")
    short = tmp_path / "short.wav"
    sf.write(str(short), clip[:800], 16000, subtype="FLOAT")  # 50 ms
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEfmt not audio")
    paths = [str(short), str(good), str(broken)]
    cache = tmp_path / "cache"
    matrix = extract_features(paths, "egemaps", n_jobs=1, cache_dir=cache)
    assert matrix.X.shape == (1, 88) and matrix.kept.tolist() == [1]
    reasons = {f.path: f.reason for f in matrix.failures}
    assert reasons[str(short)] == (
        "too short to analyse: 800 samples (0.0500 s) at 16000 Hz; the egemaps features "
        "need at least 960 samples (0.060 s)"
    )
    assert str(broken) in reasons
    # The cache holds the good file once per set; a cached set is not
    # recomputed, and the other set does not read its entries.
    compare = extract_features([str(good)], "compare", n_jobs=1, cache_dir=cache)
    assert compare.X.shape == (1, 6373) and len(list(cache.iterdir())) == 2

    def fail(*args, **kwargs):
        raise AssertionError("recomputed")

    monkeypatch.setattr(F, "compute_features", fail)
    again = extract_features([str(good)], "egemaps", n_jobs=1, cache_dir=cache)
    np.testing.assert_array_equal(again.X, matrix.X)


def test_a_missing_opensmile_is_one_clear_error(monkeypatch):
    import builtins

    from speechmodel.classical import opensmile_features as O

    real_import = builtins.__import__

    def no_opensmile(name, *args, **kwargs):
        if name == "opensmile":
            raise ImportError("No module named 'opensmile'")
        return real_import(name, *args, **kwargs)

    O._smile.cache_clear()
    monkeypatch.setattr(builtins, "__import__", no_opensmile)
    try:
        with pytest.raises(O.OpenSmileMissingError, match="need audEERING's opensmile package"):
            extract_features(["a.wav"], "egemaps", n_jobs=1)
    finally:
        O._smile.cache_clear()
