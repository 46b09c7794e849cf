import numpy as np
import pytest

from speechmodel import signal
from speechmodel.config import FeatureConfig


@pytest.mark.parametrize("total,win,hop,block", [(1000, 100, 50, 37), (1000, 100, 100, 250),
                                                 (1050, 100, 50, 1000), (60, 100, 50, 7), (100, 100, 30, 9)])
def test_stream_windows_cover_the_stream_with_bounded_buffers(total, win, hop, block):
    samples_in = np.arange(total, dtype=np.float32)
    blocks = [samples_in[i : i + block] for i in range(0, total, block)]
    windows = list(signal.stream_windows(iter(blocks), window=win, hop=hop))
    starts = [s for s, _ in windows]
    assert starts == list(range(0, hop * len(windows), hop))
    for start, samples in windows:
        np.testing.assert_array_equal(samples, samples_in[start : start + win])
    # The last window ends at the end; every earlier one is full length.
    assert windows[-1][0] + len(windows[-1][1]) == total
    assert all(len(w) == win for _, w in windows[:-1])
    assert [(s, s + len(w)) for s, w in windows] == signal.window_spans(total, win, hop)


def test_window_spans():
    assert signal.window_spans(10, 4, 2) == [(0, 4), (2, 6), (4, 8), (6, 10)]
    assert signal.window_spans(3, 4, 2) == [(0, 3)]
    assert signal.window_spans(11, 4, 4) == [(0, 4), (4, 8), (8, 11)]


def test_voicing_is_periodicity_whatever_the_level_and_streams_exactly():
    rate = 16000
    t = np.arange(3 * rate) / rate
    rng = np.random.default_rng(0)
    vowel = sum(np.sin(2 * np.pi * 140 * h * t) / h for h in range(1, 8))  # f0 140 Hz
    for level in (0.5, 0.005):  # -6 dBFS and -46 dBFS: both voiced.
        voiced, hop = signal.voiced_frames(level * vowel, sample_rate=rate)
        assert hop == 640 and len(voiced) == 1 + (len(t) - 512) // 640 and voiced.all()
    # White and brown noise: at most a few frames by chance; silence: none.
    assert signal.voiced_frames(rng.normal(0, 0.1, len(t)), sample_rate=rate)[0].mean() < 0.1
    brown = np.cumsum(rng.normal(0, 0.01, len(t)))
    assert signal.voiced_frames(brown / np.abs(brown).max() * 0.3, sample_rate=rate)[0].mean() < 0.1
    assert not signal.voiced_frames(np.zeros(len(t)), sample_rate=rate)[0].any()
    # A vowel then silence: voiced exactly where the vowel is (frame by frame).
    wave = np.concatenate([0.3 * vowel[: rate], np.zeros(rate)]).astype(np.float32)
    whole, _ = signal.voiced_frames(wave, sample_rate=rate)
    assert whole[:25].all() and not whole[25:].any()  # Frame 25 starts at 1 s.
    # In blocks of any size, the same frames as at once.
    detector = signal.VoicingDetector(rate)
    for i in range(0, len(wave), 777):
        detector.add(wave[i : i + 777])
    np.testing.assert_array_equal(detector.finish(), whole)


def test_voicing_thresholds_are_options():
    rate = 16000
    t = np.arange(rate) / rate
    # A quiet 200 Hz tone in a little noise: its autocorrelation peak lies
    # between 0.4 (the default threshold) and 0.6.
    noisy = 0.01 * np.sin(2 * np.pi * 200 * t) + np.random.default_rng(0).normal(0, 0.0005, rate)
    assert signal.voiced_frames(noisy, sample_rate=rate)[0].all()
    assert not signal.voiced_frames(noisy, sample_rate=rate, threshold=0.6)[0].any()
    # Its first difference is about -65 dBFS: under a -50 dB floor, nothing.
    assert not signal.voiced_frames(noisy, sample_rate=rate, floor_db=-50.0)[0].any()


def test_pooled_spectrogram_keeps_at_most_plot_columns_and_clips_once():
    from speechmodel import features as F

    config = FeatureConfig()
    rng = np.random.default_rng(3)
    wave = (0.1 * rng.normal(size=16000)).astype(np.float32)
    wave[8000:] *= 1e-4  # A quiet half, 80 dB down: clipped to top_db.
    # One block, no pooling: the log-mel of the block, clipped to top_db
    # below its maximum.
    one = signal.PooledSpectrogram(config, expected_frames=100)
    one.add(wave)
    got = one.finish()
    full = np.asarray(F.log_mel(wave, config=config.replace(top_db=None)))
    np.testing.assert_allclose(got, np.maximum(full, full.max() - (config.top_db or 80.0)), rtol=1e-6, atol=1e-4)
    # Many frames: pooled to at most PLOT_COLUMNS columns, each the mean
    # of `pool` frames (the rest in a last column).
    pooled = signal.PooledSpectrogram(config, expected_frames=signal.PLOT_COLUMNS * 4 + 1)
    assert pooled.pool == 5
    for i in range(0, len(wave), 3000):
        pooled.add(wave[i : i + 3000])
    columns = pooled.finish()
    assert columns.shape[1] == config.n_mels and len(columns) <= signal.PLOT_COLUMNS
    assert columns.max() - columns.min() <= (config.top_db or 80.0) + 1e-4
    empty = signal.PooledSpectrogram(config, expected_frames=10)
    assert empty.finish().shape == (0, config.n_mels)


def test_voiced_runs_count_only_runs_long_enough_in_pieces_or_whole():
    voiced = np.array([1, 1, 1, 0, 1, 0, 1, 1, 1, 1, 0, 1, 1], bool)
    assert signal.voiced_run_seconds(voiced, 0.04, min_run=3) == pytest.approx(7 * 0.04)
    assert signal.voiced_run_seconds(voiced, 0.04, min_run=1) == pytest.approx(10 * 0.04)
    runs = signal.VoicedRuns(0.04, min_run=3)
    for piece in (voiced[:2], voiced[2:8], voiced[8:]):  # A run split across pieces.
        runs.add(piece)
    assert runs.seconds == pytest.approx(7 * 0.04)


def test_speech_is_found_in_real_speech_and_not_in_silence_or_steady_noise():
    from speechmodel.audio import load_audio
    from tests.paths import ravdess_files

    rate = 16000
    for path in ravdess_files("Actor_01/*.wav")[:3] + ravdess_files("Actor_24/*.wav")[-3:]:
        assert signal.waveform_has_speech(load_audio(path, sample_rate=rate), sample_rate=rate)
    rng = np.random.default_rng(0)
    assert not signal.waveform_has_speech(np.zeros(60 * rate, np.float32), sample_rate=rate)
    white = (0.1 * rng.standard_normal(60 * rate)).astype(np.float32)
    assert not signal.waveform_has_speech(white, sample_rate=rate)
    brown = np.cumsum(rng.standard_normal(60 * rate)).astype(np.float32)
    assert not signal.waveform_has_speech(0.1 * brown / np.abs(brown).max(), sample_rate=rate)
