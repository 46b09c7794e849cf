import numpy as np
import pytest
import soundfile as sf

from speechmodel import inference as I
from speechmodel.audio import load_audio
from speechmodel.inference import streaming as S
from tests.paths import ravdess_files, save_tiny_model

RATE = 16000
CLASSES = ["angry", "happy", "sad"]


@pytest.fixture(scope="module")
def audio():
    """14 s of real speech (4 clips), 16 kHz mono float32."""
    return np.concatenate([load_audio(f) for f in ravdess_files("Actor_07/*.wav")[:4]])


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = save_tiny_model(tmp_path_factory.mktemp("model") / "tiny.keras", CLASSES, seed=5)
    return I.load_model(path)


def test_stream_windows_equal_the_long_file_analysis(model, audio, tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, audio, RATE, subtype="PCM_16")
    report = I.Predictor(model, max_utterance=5.0, window=4.0, hop=1.5).predict([str(path)])
    [expected] = report.predictions
    y = load_audio(path)
    analyzer = S.StreamAnalyzer(S.waveform_classifier(model, batch_size=4), sample_rate=RATE,
                                class_names=CLASSES, window=4.0, hop=1.5)
    got, peak = [], 0
    for i in range(0, len(y), 1234):  # Odd blocks: windows straddle them.
        got += analyzer.add(y[i : i + 1234])
        peak = max(peak, len(analyzer._buffer))
    got += analyzer.finish()
    assert [(w.start, w.end) for w in got] == [(w.start, w.end) for w in expected.timeline]
    assert [w.voiced for w in got] == [w.voiced for w in expected.timeline]
    np.testing.assert_allclose(np.stack([w.probabilities for w in got]),
                               np.stack([w.probabilities for w in expected.timeline]), atol=1e-5)
    summary = analyzer.prediction("-", timeline=[])
    np.testing.assert_allclose(summary.probabilities, expected.probabilities, atol=1e-5)
    assert summary.weighting == expected.weighting == "voiced"
    assert peak <= 4 * RATE + 1234  # One window plus one block.


def test_vad_segmentation_classifies_utterances_and_skips_silence(model, audio):
    classify = S.waveform_classifier(model)
    calls = []

    def counting(waves):
        calls.append([len(w) for w in waves])
        return classify(waves)

    gap = np.zeros(2 * RATE, np.float32)
    a, b = audio[: 4 * RATE], audio[7 * RATE : 11 * RATE]
    y = np.concatenate([gap, a, gap, gap, b, gap])
    analyzer = S.StreamAnalyzer(counting, sample_rate=RATE, class_names=CLASSES, segment="vad", vad="silero")
    got = []
    for i in range(0, len(y), RATE // 4):
        got += analyzer.add(y[i : i + RATE // 4])
        # Memory: at most one utterance, its context and a block.
        assert len(analyzer._buffer) <= (20 + 2 * 1.0 + 1) * RATE
    got += analyzer.finish()
    assert got and all(isinstance(u, S.Utterance) for u in got)
    assert all(2.0 <= u.start and u.end <= 6.0 or 10.0 <= u.start and u.end <= 14.0 for u in got), got
    # Each utterance is classified with 1 s of context on each side, never
    # reaching into its neighbours.
    assert analyzer.settings["context"] == 1.0
    edges = [0.0] + [x for u in got for x in (u.start, u.end)] + [len(y) / RATE]
    for n, u in enumerate(got):
        left, right = max(edges[2 * n], u.start - 1.0), min(edges[2 * n + 3], u.end + 1.0)
        seg = y[int(round(left * RATE)) : int(round(right * RATE))]
        np.testing.assert_allclose(u.probabilities, classify([seg])[0], atol=1e-5)
    assert sum(len(c) for c in calls) == len(got)
    pred = analyzer.prediction("x", got)
    durations = np.array([u.end - u.start for u in got])
    expected = (durations[:, None] * np.stack([u.probabilities for u in got])).sum(0) / durations.sum()
    np.testing.assert_allclose(pred.probabilities, expected, atol=1e-6)
    d = pred.to_dict(top_k=2)
    assert d["segmentation"] == "vad" and d["weighting"] == "speech" and len(d["timeline"]) == len(got)
    assert set(d["timeline"][0]) == {"start", "end", "label", "confidence", "probabilities", "speech"}


def test_no_speech_gives_no_emotion(model):
    analyzer = S.StreamAnalyzer(S.waveform_classifier(model), sample_rate=RATE, class_names=CLASSES,
                                segment="vad", vad="silero")
    noise = 0.01 * np.random.default_rng(1).standard_normal(5 * RATE).astype(np.float32)
    assert analyzer.add(noise) + analyzer.finish() == []
    pred = analyzer.prediction("quiet.wav", [])
    assert pred.label == "no speech" and pred.top_k(3) == []
    d = pred.to_dict(top_k=2)
    assert d["label"] == "no speech" and d["probabilities"] is None and d["timeline"] == []
    report = I.Report([pred], CLASSES)
    assert "no speech" in I.format_table(report, top_k=2)
    assert I.format_csv(report, top_k=2).splitlines()[1].count(",") == I.format_csv(report, top_k=2).splitlines()[0].count(",")


def test_durations_are_seconds_and_positions_samples():
    analyzer = S.StreamAnalyzer(None, sample_rate=RATE, class_names=CLASSES, window=4.0, hop=1.5)
    assert (analyzer.window, analyzer.hop) == (4.0, 1.5)
    assert (analyzer.window_samples, analyzer.hop_samples) == (4 * RATE, 24000)
    assert (analyzer.settings["window"], analyzer.settings["hop"]) == (4.0, 1.5)
    with pytest.raises(ValueError, match="Received: window=4.0, hop=5.0"):
        S.StreamAnalyzer(None, sample_rate=RATE, class_names=CLASSES, window=4.0, hop=5.0)
