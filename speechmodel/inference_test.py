import csv
import io
import json
import os
import zipfile

import keras
import numpy as np
import pytest
import soundfile as sf

from speechmodel import audio
from speechmodel import inference as I
from speechmodel.audio import load_audio
from speechmodel.models.recognizer import EmotionRecognizer
from speechmodel.models.speech_model import SpeechModel
from tests.paths import ravdess_files

CLASSES = ["angry", "happy", "sad"]
# Tolerance of the batched pipeline against the recognizer called on one
# waveform (float32 features computed in a different batch layout).
ATOL = 2e-5


def tiny_speech_model(num_classes=3):
    return SpeechModel(
        num_classes, backbone="alexnet_gap", lstm_units=8, attention_units=8,
        dense_units=[8], dropout=0.0,
    )


def tiny_plain_classifier(num_classes=3):
    """A classifier without attention (not a SpeechModel)."""
    segments = keras.Input((None, 64, 64, 3), name="segments")
    mask = keras.Input((None,), dtype="bool", name="mask")
    x = keras.layers.TimeDistributed(keras.layers.GlobalAveragePooling2D())(segments)
    x = keras.layers.GlobalAveragePooling1D()(x, mask=mask)
    out = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model({"segments": segments, "mask": mask}, out)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    keras.utils.set_random_seed(7)
    recognizer = EmotionRecognizer(tiny_speech_model(), class_names=CLASSES)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    recognizer.save(path)
    return str(path)


@pytest.fixture(scope="module")
def model(model_path):
    return I.load_model(model_path)


@pytest.fixture(scope="module")
def long_file(tmp_path_factory):
    """3 minutes of RAVDESS speech (clips with 0.5 s pauses), 16-bit WAV."""
    parts, total = [], 0
    for f in ravdess_files("Actor_05/*.wav"):
        y = load_audio(f)
        parts += [y, np.zeros(8000, np.float32)]
        total += len(y) + 8000
        if total >= 180 * 16000:
            break
    y = np.concatenate(parts)[: 180 * 16000]
    path = tmp_path_factory.mktemp("long") / "long.wav"
    sf.write(path, y, 16000, subtype="PCM_16")
    return str(path)


def reference(recognizer, waveform):
    """The recognizer on one waveform, as a saved model is called."""
    w = np.asarray(waveform, np.float32)[None]
    return recognizer({"waveforms": w, "lengths": np.array([w.shape[1]], np.int32)}).numpy()[0]


# --- Inputs. ---------------------------------------------------------------


def test_collect_inputs_walks_directories_expands_patterns_and_reads_lists(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/x.wav", "a/b/y.FLAC", "a/b/z.ogg", "a/readme.txt", "a/b/w.aif", "top.mp3"):
        (tmp_path / name).write_bytes(b"?")
    (tmp_path / "empty_dir").mkdir()
    listing = tmp_path / "list.txt"
    listing.write_text("# a comment\n\na/readme.txt\n  top.mp3  \nmissing.wav\n")
    got = I.collect_inputs(
        [str(tmp_path / "a"), str(tmp_path / "**" / "*.ogg"), str(tmp_path / "nomatch*.wav"),
         str(tmp_path / "empty_dir"), str(tmp_path / "a" / "x.wav")],
        list_files=[str(listing)],
    )
    rel = [os.path.relpath(p, tmp_path) for p in got.paths]
    # Directory walk: audio extensions only, any case, sorted, recursive; the
    # pattern's match and the repeated x.wav are not listed twice; the list
    # file's entries are relative to it, and its non-audio file is kept (it
    # is given explicitly, so it will be reported, not ignored).
    assert rel == ["a/x.wav", "a/b/w.aif", "a/b/y.FLAC", "a/b/z.ogg", "a/readme.txt", "top.mp3"]
    reasons = {os.path.relpath(f.file, tmp_path): f.reason for f in got.failures}
    assert reasons == {
        "nomatch*.wav": "no file matches this pattern",
        "empty_dir": reasons["empty_dir"],
        "missing.wav": "file not found",
    }
    assert "no audio files" in reasons["empty_dir"]


def test_missing_list_file_is_a_usage_error(tmp_path):
    with pytest.raises(ValueError, match="list file not found. Received: --list="):
        I.collect_inputs([], list_files=[str(tmp_path / "nope.txt")])


# --- Streaming. ------------------------------------------------------------


@pytest.mark.parametrize("total,win,hop,block", [(1000, 100, 50, 37), (1000, 100, 100, 250),
                                                 (1050, 100, 50, 1000), (60, 100, 50, 7), (100, 100, 30, 9)])
def test_stream_windows_cover_the_stream_with_bounded_buffers(total, win, hop, block):
    signal = np.arange(total, dtype=np.float32)
    blocks = [signal[i : i + block] for i in range(0, total, block)]
    windows = list(I.stream_windows(iter(blocks), window=win, hop=hop))
    starts = [s for s, _ in windows]
    assert starts == list(range(0, hop * len(windows), hop))
    for start, samples in windows:
        np.testing.assert_array_equal(samples, signal[start : start + win])
    # The last window ends at the end; every earlier one is full length.
    assert windows[-1][0] + len(windows[-1][1]) == total
    assert all(len(w) == win for _, w in windows[:-1])
    assert len(windows) == len(I._window_starts(total, win, hop))


def test_voicing_is_periodicity_whatever_the_level_and_streams_exactly():
    rate = 16000
    t = np.arange(3 * rate) / rate
    rng = np.random.default_rng(0)
    vowel = sum(np.sin(2 * np.pi * 140 * h * t) / h for h in range(1, 8))  # f0 140 Hz
    for level in (0.5, 0.005):  # -6 dBFS and -46 dBFS: both voiced.
        voiced, hop = I.voiced_frames(level * vowel, sample_rate=rate)
        assert hop == 640 and len(voiced) == 1 + (len(t) - 512) // 640 and voiced.all()
    # White and brown noise: at most a few frames by chance; silence: none.
    assert I.voiced_frames(rng.normal(0, 0.1, len(t)), sample_rate=rate)[0].mean() < 0.1
    brown = np.cumsum(rng.normal(0, 0.01, len(t)))
    assert I.voiced_frames(brown / np.abs(brown).max() * 0.3, sample_rate=rate)[0].mean() < 0.1
    assert not I.voiced_frames(np.zeros(len(t)), sample_rate=rate)[0].any()
    # A vowel then silence: voiced exactly where the vowel is (frame by frame).
    signal = np.concatenate([0.3 * vowel[: rate], np.zeros(rate)]).astype(np.float32)
    whole, _ = I.voiced_frames(signal, sample_rate=rate)
    assert whole[:25].all() and not whole[25:].any()  # Frame 25 starts at 1 s.
    # In blocks of any size, the same frames as at once.
    detector = I.VoicingDetector(rate)
    for i in range(0, len(signal), 777):
        detector.add(signal[i : i + 777])
    np.testing.assert_array_equal(detector.finish(), whole)


# --- Models. ---------------------------------------------------------------


def test_load_model_rejects_what_is_not_a_model_of_this_project(tmp_path, model_path):
    def reason(path):
        with pytest.raises(I.ModelError) as info:
            I.load_model(path)
        assert str(path) in str(info.value)
        return info.value.reason

    assert "not found" in reason(tmp_path / "missing.keras")
    (tmp_path / "empty.keras").write_bytes(b"")
    assert "empty" in reason(tmp_path / "empty.keras")
    (tmp_path / "random.keras").write_bytes(np.random.default_rng(0).bytes(4000))
    assert "not a zip archive" in reason(tmp_path / "random.keras")
    data = open(model_path, "rb").read()
    (tmp_path / "truncated.keras").write_bytes(data[: len(data) // 2])
    assert "truncated download" in reason(tmp_path / "truncated.keras")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("hello.txt", "hi")
    assert "without a Keras config.json" in reason(tmp_path / "other.zip")
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    plain.save(tmp_path / "plain.keras")
    assert "another kind (Sequential)" in reason(tmp_path / "plain.keras")
    # A well-formed archive whose weights are damaged.
    with zipfile.ZipFile(model_path) as src, zipfile.ZipFile(tmp_path / "bad_weights.keras", "w") as dst:
        for item in src.namelist():
            body = src.read(item)
            dst.writestr(item, body[:100] if item.endswith(".h5") else body)
    assert "cannot load the model" in reason(tmp_path / "bad_weights.keras")


def test_loading_never_runs_code_from_the_file(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    monkeypatch.setenv("SPEECHMODEL_TEST_MARKER", str(marker))
    segments = keras.Input((None, 64, 64, 3), name="segments")
    mask = keras.Input((None,), dtype="bool", name="mask")
    # Code in the file: creates the marker file whenever it runs.
    x = keras.layers.Lambda(
        lambda t: t + float(open(__import__("os").environ["SPEECHMODEL_TEST_MARKER"], "w").close() or 0)
    )(segments)
    x = keras.layers.TimeDistributed(keras.layers.GlobalAveragePooling2D())(x)
    x = keras.layers.GlobalAveragePooling1D()(x, mask=mask)
    out = keras.layers.Dense(3, activation="softmax")(x)
    classifier = keras.Model({"segments": segments, "mask": mask}, out)
    EmotionRecognizer(classifier, class_names=CLASSES).save(tmp_path / "lambda.keras")
    marker.unlink()
    with pytest.raises(I.ModelError, match="cannot load the model"):
        I.load_model(tmp_path / "lambda.keras")
    assert not marker.exists()


def test_loaded_model_describes_itself(model, model_path):
    assert model.kind == "keras" and model.class_names == CLASSES
    assert model.has_attention and model.sample_rate == 16000
    assert model.describe() == {"path": model_path, "kind": "keras", "class_names": CLASSES}


# --- Clips. ----------------------------------------------------------------


def test_clips_are_batched_and_match_the_recognizer_file_by_file(model):
    files = ravdess_files("Actor_06/*.wav")[:4] + ravdess_files("Actor_07/*.wav")[-3:]
    report = I.Predictor(model, batch_size=3).predict(files)
    assert [r.file for r in report.results] == files
    for path, p in zip(files, report.results):
        assert isinstance(p, I.Prediction) and not p.windowed
        np.testing.assert_allclose(p.probabilities, reference(model.recognizer, load_audio(path)), atol=ATOL)
        assert p.duration == pytest.approx(audio.read_info(path).duration)
        assert p.label == CLASSES[int(np.argmax(p.probabilities))]
        assert p.top_k(3)[0] == (p.label, pytest.approx(p.confidence))
        assert [n for n, _ in p.top_k(3)] == [CLASSES[i] for i in np.argsort(-p.probabilities)]


def test_attention_weights_per_segment_with_times(model):
    path = ravdess_files("Actor_08/*.wav")[0]
    p = I.Predictor(model, attention=True).predict([path]).results[0]
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
    plain = I.load_model(tmp_path / "plain.keras")
    assert not plain.has_attention
    with pytest.raises(ValueError, match="attention weights are not available.*Functional"):
        I.Predictor(plain, attention=True)


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
    met = []
    report = I.Predictor(model).predict(paths, on_failure=met.append)
    assert [r.file for r in report.results] == paths
    assert [type(r).__name__ for r in report.results] == ["Prediction"] + ["Failure"] * 6 + ["Prediction"] * 2
    for failure in report.failures:
        assert bad[os.path.basename(failure.file)] in failure.reason
    assert sorted(f.file for f in met) == sorted(str(tmp_path / n) for n in bad)
    np.testing.assert_array_equal(report.results[0].probabilities, report.results[-1].probabilities)


# --- Long recordings. ------------------------------------------------------


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
    predictor = I.Predictor(model, window=4.0, hop=2.0, batch_size=16, block_seconds=7.0)
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
    voiced, hop = I.voiced_frames(waveform, sample_rate=16000)
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
    report = I.Predictor(model, max_utterance=20.0).predict([str(tmp_path / "silence.wav"), clip])
    silent, short = report.results
    assert silent.windowed and silent.weighting == "uniform"
    assert [(w.start, w.end) for w in silent.timeline][-1] == (22.0, 25.0)
    np.testing.assert_allclose(
        silent.probabilities, np.mean([w.probabilities for w in silent.timeline], axis=0), atol=1e-6
    )
    assert not short.windowed
    # A lower threshold windows the clip; windows of 2 s every 1 s.
    p = I.Predictor(model, max_utterance=1.0, window=2.0, hop=1.0, attention=True).predict([clip]).results[0]
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
        I.Predictor(model, **options)


# --- Classical models. -----------------------------------------------------


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
    loaded = I.load_model(tmp_path / "model.skz")
    assert loaded.kind == "classical" and loaded.class_names == ["calm", "angry"]
    loaded.n_jobs = 1
    clip = ravdess_files("Actor_11/*.wav")[0]
    (tmp_path / "bad.wav").write_bytes(b"RIFF")
    report = I.Predictor(loaded, max_utterance=3.0, window=2.0, hop=2.0).predict([clip, str(tmp_path / "bad.wav")])
    p, failure = report.results
    assert isinstance(failure, I.Failure) and "bad.wav" in failure.file
    waveform = load_audio(clip)
    assert p.windowed and len(p.timeline) == 2
    for w in p.timeline:
        piece = waveform[int(w.start * 16000) : int(round(w.end * 16000))]
        expected = classical.predict_proba(compute_features(piece)[None])[0]
        np.testing.assert_allclose(w.probabilities, expected, atol=1e-6)
    with pytest.raises(ValueError, match="not available"):
        I.Predictor(loaded, attention=True)


# --- Output. ---------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed_report(model, long_file):
    clip = ravdess_files("Actor_12/*.wav")[0]
    report = I.Predictor(model, attention=True).predict([clip, long_file])
    report.results.append(I.Failure("gone.wav", "file not found"))
    return report


def test_json_output(mixed_report, model):
    data = json.loads(I.format_json(mixed_report, top_k=2, model=model.describe()))
    assert data["class_names"] == CLASSES and data["model"]["kind"] == "keras"
    assert data["settings"]["window"] == 4.0
    clip, long, failure = data["results"]
    assert set(clip) >= {"file", "label", "confidence", "probabilities", "duration", "top_k", "attention"}
    assert sum(clip["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert [t["label"] for t in clip["top_k"]][0] == clip["label"] and len(clip["top_k"]) == 2
    assert clip["windowed"] is False and "timeline" not in clip
    assert long["windowed"] is True and len(long["timeline"]) == 89
    first = long["timeline"][0]
    assert set(first) == {"start", "end", "label", "confidence", "probabilities", "voiced", "attention"}
    assert first["attention"][0] == {"start": 0.0, "end": 0.64, "weight": first["attention"][0]["weight"]}
    assert failure == {"file": "gone.wav", "error": "file not found"}


def test_csv_output(mixed_report):
    rows = list(csv.DictReader(io.StringIO(I.format_csv(mixed_report, top_k=2))))
    kinds = [r["kind"] for r in rows]
    n_clip_segments = len(mixed_report.results[0].attention)
    assert kinds[0] == "file" and kinds[1 : 1 + n_clip_segments] == ["segment"] * n_clip_segments
    assert kinds.count("window") == 89 and kinds[-1] == "error"
    clip = rows[0]
    assert float(clip["duration"]) == pytest.approx(mixed_report.results[0].duration, abs=1e-3)
    assert sum(float(clip[f"p_{c}"]) for c in CLASSES) == pytest.approx(1.0, abs=1e-5)
    assert clip["top1_label"] == clip["label"]
    window = next(r for r in rows if r["kind"] == "window")
    assert (window["start"], window["end"]) == ("0.000", "4.000") and window["voiced"]
    assert rows[-1]["error"] == "file not found" and rows[-1]["label"] == ""


def test_table_output(mixed_report):
    text = I.format_table(mixed_report, top_k=2, timeline=True)
    lines = text.splitlines()
    assert lines[0].split() == ["file", "emotion", "confidence", "duration", "top", "2", "windows"]
    clip, long = mixed_report.results[:2]
    assert lines[1].startswith(clip.file) and f"{clip.confidence:.3f}" in lines[1]
    assert sum("segment" in line for line in lines) == len(clip.attention)
    long_row = next(n for n, line in enumerate(lines) if line.startswith(long.file))
    assert lines[long_row].split()[-1] == "89" and "180.00 s" in lines[long_row]
    assert len(lines) == 1 + 1 + len(clip.attention) + 1 + 89
    assert "gone.wav" not in text


def test_plots_are_written(model, tmp_path, long_file):
    clip = ravdess_files("Actor_13/*.wav")[0]
    report = I.Predictor(model, plot_dir=str(tmp_path / "plots"), attention=True).predict([clip, long_file])
    for p in report.results:
        assert open(p.plot, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(tmp_path / "plots")) == ["03-01-01-01-01-01-13.png", "long.png"]


def test_write_text_is_atomic_with_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        I.write_text("hello\n", tmp_path / "sub" / "out.txt")
    finally:
        os.umask(old)
    assert (tmp_path / "sub" / "out.txt").read_text() == "hello\n"
    assert os.stat(tmp_path / "sub" / "out.txt").st_mode & 0o777 == 0o644
    assert os.listdir(tmp_path / "sub") == ["out.txt"]


# --- The command, in process. ---------------------------------------------


def test_normalize_flag_names():
    known = {"top_k", "max_utterance", "attention"}
    assert I.normalize_flag_names(
        ["x.wav", "--top-k=2", "--max-utterance", "5", "--no-attention", "--other-flag", "--", "--top-k"], known
    ) == ["x.wav", "--top_k=2", "--max_utterance", "5", "--noattention", "--other-flag", "--", "--top-k"]


def test_run_exit_statuses(model_path, tmp_path):
    clip = ravdess_files("Actor_14/*.wav")[0]

    def run(inputs, **kwargs):
        out, err = io.StringIO(), io.StringIO()
        status = I.run(inputs, stdout=out, stderr=err, **kwargs)
        return status, out.getvalue(), err.getvalue()

    status, out, err = run([clip], model=model_path, output_format="csv", output=str(tmp_path / "o" / "r.csv"))
    assert status == 0 and out == "" and err == ""
    assert open(tmp_path / "o" / "r.csv").read().startswith("file,kind,start,end,duration,label")
    status, out, err = run([clip, str(tmp_path / "missing.wav")], model=model_path)
    assert status == 1 and clip in out
    assert err.splitlines()[0] == f"infer.py: skipped {tmp_path / 'missing.wav'}: file not found"
    assert len(err.splitlines()) == 2  # The file's line and the summary.
    for inputs, kwargs, message in [
        ([], {"model": model_path}, "no audio files to analyse"),
        ([str(tmp_path / "missing.wav")], {"model": model_path}, "no audio files to analyse"),
        ([clip], {"model": str(tmp_path / "nope.keras")}, "model file not found"),
        ([clip], {"default_model": str(tmp_path / "models" / "ravdess_default.keras")}, "default model"),
        ([clip], {"model": model_path, "top_k": 4}, "larger than the model's 3 classes"),
        ([clip], {"model": model_path, "output_format": "xml"}, "--format must be one of"),
        ([clip], {"model": model_path, "hop": 9.0}, "Received: hop=9.0"),
    ]:
        status, out, err = run(inputs, **kwargs)
        assert status == 2 and message in err and out == "", (inputs, kwargs, err)
