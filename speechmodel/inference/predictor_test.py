import os

import numpy as np
import pytest
import soundfile as sf

from speechmodel import audio
from speechmodel.audio import load_audio
from speechmodel.inference import predictor as P
from speechmodel.inference.loading import load_model
from speechmodel.inference.results import Failure, Prediction
from speechmodel.models.recognizer import EmotionRecognizer
from speechmodel.signal import voiced_frames
from speechmodel.tests.inference_fixtures import (
    ATOL,
    CLASSES,
    reference,
    tiny_plain_classifier,
    tiny_speaker_model,
)
from tests.paths import ravdess_files


def test_clips_are_batched_and_match_the_recognizer_file_by_file(model):
    files = ravdess_files("Actor_06/*.wav")[:4] + ravdess_files("Actor_07/*.wav")[-3:]
    report = P.Predictor(model, batch_size=3).predict(files)
    assert [r.file for r in report.results] == files
    for path, p in zip(files, report.results):
        assert isinstance(p, Prediction) and not p.windowed
        np.testing.assert_allclose(p.probabilities, reference(model.recognizer, load_audio(path)), atol=ATOL)
        assert p.duration == pytest.approx(audio.read_info(path).duration)
        assert p.label == CLASSES[int(np.argmax(p.probabilities))]
        assert p.top_k(3)[0] == (p.label, pytest.approx(p.confidence))
        assert [n for n, _ in p.top_k(3)] == [CLASSES[i] for i in np.argsort(-p.probabilities)]


def test_attention_weights_per_segment_with_times(model):
    path = ravdess_files("Actor_08/*.wav")[0]
    p = P.Predictor(model, attention=True).predict([path]).results[0]
    waveform = load_audio(path)
    from speechmodel import features as F

    segments = np.asarray(F.segment_features(waveform, config=model.config))[None]
    expected = model.classifier.attention_model()(
        {"segments": segments, "mask": np.ones(segments.shape[:2], bool)}
    )
    weights = [s.weight for s in p.attention]
    np.testing.assert_allclose(weights, np.asarray(expected["attention"])[0], atol=ATOL)
    assert sum(weights) == pytest.approx(1.0, abs=1e-5)
    assert p.attention[0].start == 0.0 and p.attention[1].start == pytest.approx(0.32)
    assert p.attention[0].end == pytest.approx(0.64)
    assert p.attention[-1].end == pytest.approx(p.duration)


def test_attention_is_refused_for_a_classifier_without_it(tmp_path):
    EmotionRecognizer(tiny_plain_classifier(), class_names=CLASSES).save(tmp_path / "plain.keras")
    plain = load_model(tmp_path / "plain.keras")
    assert not plain.has_attention
    with pytest.raises(ValueError, match="attention weights are not available.*Functional"):
        P.Predictor(plain, attention=True)


def test_bad_files_are_reported_and_the_others_analysed(model, tmp_path, long_file):
    good = ravdess_files("Actor_09/*.wav")[:2]
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "noise.wav").write_bytes(np.random.default_rng(1).bytes(3000))
    (tmp_path / "notes.txt").write_text("not audio")
    data = open(good[0], "rb").read()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    # A long recording cut short: found while streaming, after some windows.
    data = open(long_file, "rb").read()
    (tmp_path / "cut_long.wav").write_bytes(data[: len(data) // 6])
    bad = {
        "missing.wav": "file not found",
        "empty.wav": "empty",
        "noise.wav": "not an audio file",
        "notes.txt": "not an audio file",
        "cut.wav": "truncated",
        "cut_long.wav": "truncated",
    }
    paths = [good[0]] + [str(tmp_path / n) for n in bad] + [good[1], good[0]]
    met, ticks = [], []
    report = P.Predictor(model).predict(paths, on_failure=met.append,
                                        progress=lambda done, total: ticks.append((done, total)))
    # One tick per distinct file, analysed or failed (good[0] twice: once).
    assert ticks == [(n, 8) for n in range(1, 9)]
    assert [r.file for r in report.results] == paths
    assert [type(r).__name__ for r in report.results] == ["Prediction"] + ["Failure"] * 6 + ["Prediction"] * 2
    for failure in report.failures:
        assert bad[os.path.basename(failure.file)] in failure.reason
    assert sorted(f.file for f in met) == sorted(str(tmp_path / n) for n in bad)
    np.testing.assert_array_equal(report.results[0].probabilities, report.results[-1].probabilities)


def test_long_recording_gives_a_timeline_in_bounded_memory(model, long_file, monkeypatch):
    seen = []
    real_iter_blocks = audio.iter_blocks

    def spy(path, **kwargs):
        for block in real_iter_blocks(path, **kwargs):
            seen.append(len(block))
            yield block

    def refuse(*args, **kwargs):
        raise AssertionError("a long file must be streamed, never loaded whole")

    monkeypatch.setattr(audio, "iter_blocks", spy)
    monkeypatch.setattr(audio, "load_audio", refuse)
    predictor = P.Predictor(model, window=4.0, hop=2.0, batch_size=16, block_seconds=7.0)
    p = predictor.predict([long_file]).results[0]
    monkeypatch.undo()
    assert max(seen) <= 7 * 16000 and sum(seen) == 180 * 16000
    assert p.windowed and p.duration == pytest.approx(180.0)
    assert [(w.start, w.end) for w in p.timeline] == [(2.0 * k, 2.0 * k + 4.0) for k in range(89)]

    waveform = load_audio(long_file)
    for k in (0, 40, 88):
        w = p.timeline[k]
        segment = waveform[int(w.start * 16000) : int(w.end * 16000)]
        np.testing.assert_allclose(w.probabilities, reference(model.recognizer, segment), atol=ATOL)
    # Overall: window probabilities weighted by voiced seconds (frames every
    # 40 ms, those starting inside the window).
    voiced, hop = voiced_frames(waveform, sample_rate=16000)
    weights = np.array(
        [voiced[-(-int(w.start * 16000) // hop) : -(-int(w.end * 16000) // hop)].mean() * 4.0 for w in p.timeline]
    )
    assert 0 < weights.min() and weights.max() < 4.0  # Every window holds speech and pauses.
    expected = (weights[:, None] * np.stack([w.probabilities for w in p.timeline])).sum(0) / weights.sum()
    np.testing.assert_allclose(p.probabilities, expected, atol=1e-6)
    assert p.weighting == "voiced"
    np.testing.assert_allclose([w.voiced for w in p.timeline], weights / 4.0, atol=1e-6)


def test_silent_long_file_and_threshold(model, tmp_path):
    sf.write(tmp_path / "silence.wav", np.zeros(25 * 16000, np.float32), 16000)
    clip = ravdess_files("Actor_10/*.wav")[0]
    report = P.Predictor(model, max_utterance=20.0).predict([str(tmp_path / "silence.wav"), clip])
    silent, short = report.results
    assert silent.windowed and silent.weighting == "uniform"
    assert [(w.start, w.end) for w in silent.timeline][-1] == (22.0, 25.0)
    np.testing.assert_allclose(
        silent.probabilities, np.mean([w.probabilities for w in silent.timeline], axis=0), atol=1e-6
    )
    assert not short.windowed
    # A lower threshold windows the clip; windows of 2 s every 1 s.
    p = P.Predictor(model, max_utterance=1.0, window=2.0, hop=1.0, attention=True).predict([clip]).results[0]
    duration = audio.read_info(clip).duration
    assert p.windowed and p.timeline[-1].end == pytest.approx(duration, abs=1e-3)
    assert p.timeline[1].attention[0].start == pytest.approx(1.0)
    assert sum(s.weight for s in p.timeline[1].attention) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("options,match", [
    ({"hop": 5.0, "window": 4.0}, "hop=5.0, window=4.0"),
    ({"window": 0}, "window=0"),
    ({"max_utterance": -1}, "max_utterance=-1"),
    ({"batch_size": 0}, "batch_size=0"),
])
def test_predictor_options_are_validated(model, options, match):
    with pytest.raises(ValueError, match=match):
        P.Predictor(model, **options)


def test_classical_model_files_and_windows(tmp_path):
    pytest.importorskip("skops")
    from speechmodel.classical.classifiers import ClassicalModel
    from speechmodel.classical.features import compute_features
    from speechmodel.classical.persistence import save_model

    classical = ClassicalModel("knn", class_names=["calm", "angry"])
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, len(classical.feature_names)))
    classical.fit(X, np.arange(12) % 2)
    save_model(classical, tmp_path / "model.skz")
    loaded = load_model(tmp_path / "model.skz")
    assert loaded.kind == "classical" and loaded.class_names == ["calm", "angry"]
    loaded.n_jobs = 1
    clip = ravdess_files("Actor_11/*.wav")[0]
    (tmp_path / "bad.wav").write_bytes(b"RIFF")
    report = P.Predictor(loaded, max_utterance=3.0, window=2.0, hop=2.0).predict([clip, str(tmp_path / "bad.wav")])
    p, failure = report.results
    assert isinstance(failure, Failure) and "bad.wav" in failure.file
    waveform = load_audio(clip)
    assert p.windowed and len(p.timeline) == 2
    for w in p.timeline:
        piece = waveform[int(w.start * 16000) : int(round(w.end * 16000))]
        expected = classical.predict_proba(compute_features(piece)[None])[0]
        np.testing.assert_allclose(w.probabilities, expected, atol=1e-6)
    with pytest.raises(ValueError, match="not available"):
        P.Predictor(loaded, attention=True)


def test_plots_are_written(model, tmp_path, long_file):
    clip = ravdess_files("Actor_13/*.wav")[0]
    report = P.Predictor(model, plot_dir=str(tmp_path / "plots"), attention=True).predict([clip, long_file])
    for p in report.results:
        assert open(p.plot, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(tmp_path / "plots")) == ["03-01-01-01-01-01-13.png", "long.png"]


def test_predict_takes_a_model_path(model_path, model):
    clip = ravdess_files("Actor_17/*.wav")[0]
    report = P.predict([clip], model_path, batch_size=1)
    expected = P.Predictor(model).predict([clip])
    np.testing.assert_allclose(report.results[0].probabilities, expected.results[0].probabilities, atol=1e-6)
    assert report.settings["window"] == 4.0 and report.class_names == CLASSES


def speaker_normalised_model(tmp_path, seed):
    """A small untrained speaker-normalised Whisper model, saved and loaded."""
    return load_model(tiny_speaker_model(tmp_path / "sn.keras", CLASSES, seed=seed))


def test_same_speaker_normalises_with_the_inputs_statistics_and_never_changes_the_model(tmp_path):
    from speechmodel.layers.speaker_normalization import speaker_statistics

    loaded = speaker_normalised_model(tmp_path, 5)
    layer = loaded.speaker_normalization
    before = layer.statistics()
    files = ravdess_files("Actor_10/*.wav")[:3]
    (tmp_path / "broken.wav").write_bytes(b"RIFF....")
    report = P.Predictor(loaded, same_speaker=True).predict(files + [str(tmp_path / "broken.wav")])
    assert isinstance(report.results[-1], Failure)  # reported, left out of the statistics
    assert report.settings["speaker_normalization"] == (
        "the statistics of the 3 readable inputs, as one speaker, leaning on the average speaker's by 30 segments"
    )
    # The same as setting the three files' statistics by hand.
    sequences = []
    for f in files:
        w = load_audio(f)
        embeddings, mask = loaded.classifier.embedder(w[None], np.array([len(w)], "int32"))
        sequences.append(np.asarray(embeddings)[0, : int(np.asarray(mask).sum())])
    layer.set_statistics(*speaker_statistics(sequences, prior=before, prior_segments=P.SPEAKER_PRIOR_SEGMENTS))
    expected = [reference(loaded.recognizer, load_audio(f)) for f in files]
    # Without the prior: the files' own statistics, other figures.
    layer.set_statistics(*speaker_statistics(sequences))
    own = [reference(loaded.recognizer, load_audio(f)) for f in files]
    layer.set_statistics(*before)
    for p, e in zip(report.results, expected):
        np.testing.assert_allclose(p.probabilities, e, atol=ATOL)
    unshrunk = P.Predictor(loaded, same_speaker=True, speaker_prior=0).predict(files)
    for p, e in zip(unshrunk.results, own):
        np.testing.assert_allclose(p.probabilities, e, atol=ATOL)
    assert not np.allclose(own[0], expected[0], atol=1e-4)
    with pytest.raises(ValueError, match="Received: speaker_prior=-1"):
        P.Predictor(loaded, same_speaker=True, speaker_prior=-1)
    # The model is unchanged.
    np.testing.assert_array_equal(layer.statistics()[0], before[0])
    plain = P.Predictor(loaded).predict(files[:1]).results[0]
    assert not np.allclose(plain.probabilities, report.results[0].probabilities, atol=1e-4)
    # The model is never changed: a plain call running at the same time as
    # same-speaker calls (other threads) gets the average speaker.
    import threading

    out, adapted = [], []
    workers = [threading.Thread(target=lambda: out.append(P.Predictor(loaded).predict(files[:1])))]
    workers += [threading.Thread(target=lambda: adapted.append(
        P.Predictor(loaded, same_speaker=True).predict(files))) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    np.testing.assert_allclose(out[0].results[0].probabilities, plain.probabilities, atol=1e-6)
    for other in adapted:
        for p, e in zip(other.results, expected):
            np.testing.assert_allclose(p.probabilities, e, atol=ATOL)
    np.testing.assert_array_equal(layer.statistics()[0], before[0])


def test_same_speaker_embeds_each_clip_once_and_keeps_attention_and_long_files(tmp_path, monkeypatch):
    loaded = speaker_normalised_model(tmp_path, 6)
    files = ravdess_files("Actor_11/*.wav")[:4]
    expected = P.Predictor(loaded, same_speaker=True, attention=True).predict(files)
    # Clips are classified from the embeddings their statistics came from:
    # the waveform-to-probabilities pass is never run for them.
    embedded = []
    real_embed = loaded.embed_files

    def embed_files(paths, **kw):
        embedded.extend(paths)
        return real_embed(paths, **kw)

    def predict_files(paths, **kw):
        assert not paths, f"clips embedded twice: {paths}"
        return iter(())

    monkeypatch.setattr(loaded, "embed_files", embed_files)
    monkeypatch.setattr(loaded, "predict_files", predict_files)
    report = P.Predictor(loaded, same_speaker=True, attention=True, batch_size=3).predict(files)
    assert sorted(embedded) == sorted(files)
    for p, e in zip(report.results, expected.results):
        assert p.file == e.file
        np.testing.assert_allclose(p.probabilities, e.probabilities, atol=1e-5)
        assert abs(sum(s.weight for s in p.attention) - 1) < 1e-4
        assert p.attention[-1].end <= p.duration + 1e-6
    # A file longer than --max_utterance counts in the statistics and is
    # analysed window by window, as without same_speaker.
    monkeypatch.undo()
    long = P.Predictor(loaded, same_speaker=True, max_utterance=3.15, window=2.0, hop=1.0).predict(files)
    assert long.settings["speaker_normalization"].startswith("the statistics of the 4 readable inputs")
    durations = [r.duration for r in long.results]
    assert any(d > 3.15 for d in durations) and any(d <= 3.15 for d in durations)
    for r in long.results:
        assert (r.timeline is not None) == (r.duration > 3.15)
    # ... with the call's statistics, not the average speaker's.
    plain = P.Predictor(loaded, max_utterance=3.15, window=2.0, hop=1.0).predict(files)
    for r, q in zip(long.results, plain.results):
        if r.timeline is not None:
            assert not np.allclose(r.timeline[0].probabilities, q.timeline[0].probabilities, atol=1e-4)


def test_same_speaker_needs_a_speaker_normalised_model(model):
    with pytest.raises(ValueError, match="trained with speaker normalisation.*Received: same_speaker=True"):
        P.Predictor(model, same_speaker=True)


def test_silence_and_steady_noise_are_no_speech_and_speech_is_not(model, tmp_path):
    rate = 16000
    rng = np.random.default_rng(3)
    files = {
        "silence_60s.wav": np.zeros(60 * rate, np.float32),  # windowed
        "silence_3s.wav": np.zeros(3 * rate, np.float32),  # a clip
        "white_5s.wav": (0.05 * rng.standard_normal(5 * rate)).astype(np.float32),
    }
    paths = []
    for name, samples in files.items():
        sf.write(tmp_path / name, samples, rate, subtype="PCM_16")
        paths.append(str(tmp_path / name))
    speech = ravdess_files("Actor_11/*.wav")[:2]
    report = P.Predictor(model).predict(paths + speech)
    assert [r.label for r in report.results[:3]] == ["no speech"] * 3
    assert report.results[0].windowed and not report.results[1].windowed
    assert all(r.probabilities is not None for r in report.results[:3])  # Kept.
    assert all(not r.no_speech and r.label in CLASSES for r in report.results[3:])


def test_min_confidence_marks_uncertain_results_and_checks_its_value(model):
    files = ravdess_files("Actor_12/*.wav")[:4]
    plain = P.Predictor(model).predict(files).results
    threshold = float(np.median([p.confidence for p in plain]))
    report = P.Predictor(model, min_confidence=threshold).predict(files)
    assert report.settings["min_confidence"] == threshold
    for before, after in zip(plain, report.results):
        np.testing.assert_allclose(after.probabilities, before.probabilities)
        assert after.label == ("uncertain" if before.confidence < threshold else before.label)
    with pytest.raises(ValueError, match="Received: min_confidence=1.5"):
        P.Predictor(model, min_confidence=1.5)


def test_a_calibrated_model_gives_the_scaled_probabilities(model, tmp_path):
    from speechmodel.calibration import scale_probabilities

    calibrated = EmotionRecognizer(model.recognizer.classifier, class_names=CLASSES, temperature=3.0)
    path = tmp_path / "calibrated.keras"
    calibrated.save(path)
    loaded = load_model(path)
    assert loaded.temperature == 3.0 and loaded.describe()["temperature"] == 3.0
    files = ravdess_files("Actor_13/*.wav")[:3]
    expected = scale_probabilities(np.stack([p.probabilities for p in P.Predictor(model).predict(files).results]), 3.0)
    got = np.stack([p.probabilities for p in P.Predictor(loaded).predict(files).results])
    np.testing.assert_allclose(got, expected, atol=1e-5)
