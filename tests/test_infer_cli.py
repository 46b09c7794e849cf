"""infer.py end to end, as a user runs it (subprocesses, a tiny model)."""

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.paths import ravdess_files, save_tiny_model

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["neutral", "happy", "sad"]


def infer(*args, cwd=REPO, timeout=600):
    # Run as a user does: without the test runner's TF_CPP_MIN_LOG_LEVEL, so
    # that infer.py's own default decides what TensorFlow prints (CPUs
    # without AVX-512 log a oneDNN "error" about DT_BOOL at level 2).
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, str(REPO / "infer.py"), *map(str, args)],
        capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("model") / "tiny.keras", CLASSES, seed=11)


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory):
    """3 minutes of RAVDESS speech, as 44.1 kHz stereo FLAC (resampled and
    mixed down while streaming)."""
    from speechmodel.audio import load_audio, resample

    parts, total = [], 0
    for f in ravdess_files("Actor_16/*.wav"):
        y = load_audio(f)
        parts += [y, np.zeros(4000, np.float32)]
        total += len(y) + 4000
        if total >= 180 * 16000:
            break
    y = resample(np.concatenate(parts)[: 180 * 16000], orig_sr=16000, target_sr=44100)
    path = tmp_path_factory.mktemp("long") / "meeting.flac"
    sf.write(path, np.stack([y, 0.5 * y], axis=1), 44100, subtype="PCM_16")
    return path


def test_table_with_bad_inputs_reports_each_once_and_exits_1(model, tmp_path):
    clips = ravdess_files("Actor_17/*.wav")[:2]
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    good = folder / "sub" / "good.wav"
    good.write_bytes(Path(ravdess_files("Actor_18/*.wav")[0]).read_bytes())
    (folder / "empty.wav").write_bytes(b"")
    (folder / "noise.wav").write_bytes(np.random.default_rng(0).bytes(4000))
    data = Path(clips[0]).read_bytes()
    (folder / "cut.wav").write_bytes(data[: len(data) // 3])
    (folder / "notes.txt").write_text("not audio")  # Not an audio name: not walked.
    explicit_text = tmp_path / "readme.md"
    explicit_text.write_text("# not audio")
    missing = tmp_path / "missing.wav"
    pattern = tmp_path / "nothing*.flac"

    result = infer(*clips, folder, explicit_text, missing, pattern, "--model", model, "--top-k", "2")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["file", "emotion", "confidence", "duration", "top", "2"]
    rows = [line.split() for line in lines[1:]]
    assert [r[0] for r in rows] == [*clips, str(good)]
    for r in rows:
        assert r[1] in CLASSES and 0 < float(r[2]) <= 1 and r[4] == "s"
        assert r[5] == r[1]  # The top-2 column starts with the prediction.
    errors = result.stderr.splitlines()
    expected = {
        folder / "empty.wav": "empty",
        folder / "noise.wav": "not an audio file",
        folder / "cut.wav": "truncated",
        explicit_text: "not an audio file",
        missing: "file not found",
        pattern: "no file matches",
    }
    assert len(errors) == len(expected) + 1, result.stderr
    for path, reason in expected.items():
        [line] = [e for e in errors if f"skipped {path}:" in e]
        assert reason in line
    assert errors[-1] == "infer.py: 6 of 9 inputs failed; 3 analysed"


def test_json_long_recording_attention_and_plots(model, long_recording, tmp_path):
    clip = ravdess_files("Actor_19/*.wav")[0]
    out = tmp_path / "results" / "emotions.json"
    result = infer(long_recording, clip, "--model", model, "--format", "json", "--output", out,
                   "--plot", tmp_path / "plots", "--attention", "--window", "4", "--hop", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    data = json.loads(out.read_text())
    assert data["class_names"] == CLASSES and data["model"]["path"] == str(model)
    long, short = data["results"]
    assert long["file"] == str(long_recording) and long["windowed"] is True
    assert long["duration"] == pytest.approx(180.0, abs=0.01)
    assert long["weighting"] == "voiced"
    timeline = long["timeline"]
    assert len(timeline) == 89 and timeline[-1]["end"] == pytest.approx(180.0, abs=0.01)
    for w in timeline:
        assert w["end"] - w["start"] == pytest.approx(4.0, abs=1e-3)
        assert sum(w["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert w["label"] == max(w["probabilities"], key=w["probabilities"].get)
        assert sum(s["weight"] for s in w["attention"]) == pytest.approx(1.0, abs=1e-4)
        assert w["start"] <= w["attention"][0]["start"] and w["attention"][-1]["end"] <= w["end"] + 1e-3
    assert short["windowed"] is False and "timeline" not in short
    assert sum(s["weight"] for s in short["attention"]) == pytest.approx(1.0, abs=1e-4)
    assert set(short["probabilities"]) == set(CLASSES)
    for entry in (long, short):
        assert Path(entry["plot"]).read_bytes()[:4] == b"\x89PNG"
    assert sorted(os.listdir(tmp_path / "plots")) == ["03-01-01-01-01-01-19.png", "meeting.png"]


def test_csv_from_a_list_file_with_a_pattern(model, tmp_path):
    for name in ("03-01-01-01-01-01-20.wav", "03-01-02-01-01-01-20.wav"):
        (tmp_path / name).write_bytes((Path(ravdess_files("Actor_20/*.wav")[0]).parent / name).read_bytes())
    listing = tmp_path / "inputs.txt"
    listing.write_text("# my files\n03-01-0*-01-01-01-20.wav\n\n")
    result = infer("--list", listing, "--model", model, "--format", "csv", "--max_utterance", "2",
                   "--window", "2", "--hop", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    files = [r for r in rows if r["kind"] == "file"]
    assert [Path(r["file"]).name for r in files] == ["03-01-01-01-01-01-20.wav", "03-01-02-01-01-01-20.wav"]
    windows = [r for r in rows if r["kind"] == "window"]
    assert len(windows) >= 4 and windows[0]["start"] == "0.000" and windows[1]["start"] == "1.000"
    for r in files + windows:
        assert sum(float(r[f"p_{c}"]) for c in CLASSES) == pytest.approx(1.0, abs=1e-4)


def test_models_that_cannot_be_used_exit_2_with_one_clear_line(model, tmp_path):
    clip = ravdess_files("Actor_21/*.wav")[0]
    (tmp_path / "random.keras").write_bytes(np.random.default_rng(1).bytes(2048))
    data = model.read_bytes()
    (tmp_path / "truncated.keras").write_bytes(data[: len(data) // 2])
    for bad, reason in (("random.keras", "not a zip archive"), ("truncated.keras", "truncated download")):
        result = infer(clip, "--model", tmp_path / bad)
        assert result.returncode == 2 and result.stdout == ""
        [line] = result.stderr.splitlines()
        assert line.startswith(f"infer.py: error: cannot use the model {tmp_path / bad}: ") and reason in line


def test_an_unknown_shipped_model_name_is_a_usage_error(tmp_path):
    # The shipped models found by name from another directory, without and
    # with --model fast: tests/test_readme.py (and test_install.py).
    clip = ravdess_files("Actor_22/*.wav")[0]
    result = infer(clip, "--model", "fastest", cwd=tmp_path)
    assert result.returncode == 2 and "fastest" in result.stderr and "Traceback" not in result.stderr
    result = infer(clip, "--model", "defualt", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert "defualt" in line and "did you mean 'default'? shipped models: default, fast" in line


def test_a_classical_run_directory_is_found_as_a_deep_one(tmp_path):
    from speechmodel.classical import persistence
    from speechmodel.classical.classifiers import ClassicalModel
    from speechmodel.classical.features import ClassicalFeatureConfig

    config = ClassicalFeatureConfig(features=("mfcc", "zcr"), aggregators=("mean", "std"), n_mfcc=3)
    features = np.random.default_rng(0).normal(size=(30, 8))
    model = ClassicalModel("svm", feature_config=config, class_names=CLASSES).fit(features, np.arange(30) % 3)
    run = tmp_path / "run"
    persistence.save_model(model, run / "model.skz")
    clip = ravdess_files("Actor_22/*.wav")[0]
    result = infer("--model", run, "--format", "json", clip)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["model"]["path"] == str(run / "model.skz")
    assert [r["label"] in CLASSES for r in data["results"]] == [True]


def test_help_and_usage_errors(tmp_path):
    result = infer("--help")
    assert result.returncode == 0
    assert "Exit status" in result.stdout and "--max_utterance" in result.stdout
    for args, message in (
        ([], "no audio files to analyse"),
        (["x.wav", "--format", "xml"], "--format"),
        (["x.wav", "--top_k", "0"], "top_k"),
        (["x.wav", "--no-such-flag"], "no-such-flag"),
    ):
        result = infer(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and result.stdout == ""


def test_min_confidence_and_no_speech_in_the_output(model, tmp_path):
    clip = ravdess_files("Actor_05/*.wav")[1]
    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(60 * 16000, np.int16), 16000)
    result = infer("--model", model, "--format", "json", "--min_confidence", "1", clip, silence)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["settings"]["min_confidence"] == 1.0
    assert [r["label"] for r in payload["results"]] == ["uncertain", "no speech"]
    assert all(r["probabilities"] for r in payload["results"])
    table = infer("--model", model, "--min_confidence", "0.0", clip, silence)
    assert table.returncode == 0 and "no speech" in table.stdout and "uncertain" not in table.stdout
    bad = infer("--model", model, "--min_confidence", "2", clip)
    assert bad.returncode == 2 and "--min_confidence must be a probability" in bad.stderr


def test_windows_asked_for_are_used_and_shown_as_the_library_gives_them(model, tmp_path):
    """--window 4 --hop 2 on a 10 s file (under --max_utterance's 20 s):
    windowed as classify(window=4, hop=2) windows it, and the table lists
    the windows without --timeline; --notimeline leaves them out."""
    import speechmodel
    from speechmodel.audio import load_audio

    path = tmp_path / "ten.wav"
    sf.write(path, np.concatenate([load_audio(f) for f in ravdess_files("Actor_05/*.wav")[:3]]), 16000)
    expected = speechmodel.load_model(str(model), runtime="keras").classify(str(path), window=4, hop=2)
    assert expected.timeline and len(expected.timeline) >= 4
    result = infer(path, "--model", model, "--window", "4", "--hop", "2", "--format", "json")
    assert result.returncode == 0, result.stderr
    (out,) = json.loads(result.stdout)["results"]
    assert [t for w in out["timeline"] for t in (w["start"], w["end"])] == pytest.approx(
        [t for w in expected.timeline for t in (w.start, w.end)], abs=1e-3)
    assert out["label"] == expected.label
    table = infer(path, "--model", model, "--window", "4", "--hop", "2")
    assert table.returncode == 0, table.stderr
    import re

    rows = [line for line in table.stdout.splitlines() if re.match(r"\s+[0-9.]+-\s*[0-9.]+ s ", line)]
    assert len(rows) == len(expected.timeline), table.stdout
    short = infer(path, "--model", model, "--window", "4", "--hop", "2", "--notimeline")
    assert len(short.stdout.strip().splitlines()) == 2, short.stdout
