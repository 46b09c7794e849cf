"""Issue #12 in inference (``infer.py``'s ``inference.run``, in-process with
a tiny model): every file analysed or reported, in every output format;
nothing of the user's overwritten; errors not about one file exit 3 without
leaving a stale --output."""

import csv
import errno
import io
import json
import os

import numpy as np
import pytest

import soundfile as sf

from speechmodel import inference
from tests import reliability_files as rf
from tests.paths import save_tiny_model


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """A tiny untrained model, loaded once."""
    path = save_tiny_model(
        tmp_path_factory.mktemp("model") / "tiny.keras", ["neutral", "happy", "sad"], seed=11
    )
    return inference.load_model(path)


@pytest.fixture
def run(loaded, monkeypatch):
    """``inference.run`` with the tiny model (loaded once), capturing
    stdout as bytes and stderr as text."""
    monkeypatch.setattr(inference, "load_model", lambda path, **options: loaded)

    def call(*inputs, **options):
        raw = io.BytesIO()
        stdout = io.TextIOWrapper(raw, encoding="utf-8", errors="strict")
        stderr = io.StringIO()
        status = inference.run(list(map(str, inputs)), model="tiny.keras", stdout=stdout, stderr=stderr, **options)
        stdout.flush()
        return status, raw.getvalue(), stderr.getvalue()

    return call


def test_every_file_is_analysed_or_reported_in_every_format(run, loaded, tmp_path):
    files = {case: str(p) for case, p in rf.write_six(tmp_path / "six").items()}
    for size in (0xFFFFFFFF, 0):
        files[f"piped_{size}"] = str(tmp_path / f"piped_{size}.wav")
        open(files[f"piped_{size}"], "wb").write(rf.streamed(size))
    latin1 = os.fsdecode(os.fsencode(str(tmp_path)) + b"/d\xe9j\xe0-vu.wav")  # not UTF-8
    open(latin1, "wb").write(rf.canonical())
    files["latin1"] = latin1
    files["one_sample"] = str(tmp_path / "one_sample.wav")
    sf.write(files["one_sample"], np.array([0.25]), 16000, subtype="PCM_16")
    failing = {
        "corrupt_flac": "corrupt audio file (Error : flac decoder lost sync.)",
        "one_sample": "too short to analyse: 1 sample (0.0001 s) at 16000 Hz",
    }
    inputs = list(files.values())

    status, out, err = run(*inputs)
    assert status == inference.EXIT_FILES_FAILED
    assert "Traceback" not in err
    for case, reason in failing.items():
        assert f"infer.py: skipped {files[case]}: {reason}" in err
    assert f"2 of {len(inputs)} inputs failed; {len(inputs) - 2} analysed" in err
    table = out.splitlines()
    for case, path in files.items():  # the table shows a name as its bytes
        rows = [line for line in table if line.startswith(os.fsencode(path) + b" ")]
        assert len(rows) == (0 if case in failing else 1), case

    out_csv = tmp_path / "out.csv"
    status, _, err = run(*inputs, output_format="csv", output=str(out_csv))
    assert status == inference.EXIT_FILES_FAILED and "Traceback" not in err
    with open(out_csv, newline="", encoding="utf-8", errors="surrogateescape") as f:
        rows = {r["file"]: r for r in csv.DictReader(f)}
    assert set(rows) == set(inputs)
    for case, path in files.items():
        row = rows[path]
        if case in failing:
            assert row["kind"] == "error" and row["error"].startswith(failing[case])
        else:
            assert row["kind"] == "file" and row["label"] in loaded.class_names, case
            assert float(row["duration"]) == 1.0, case

    out_json = tmp_path / "out.json"
    status, _, _ = run(*inputs, output_format="json", output=str(out_json))
    assert status == inference.EXIT_FILES_FAILED
    results = {r["file"]: r for r in json.loads(out_json.read_text())["results"]}
    assert set(results) == set(inputs)  # \udcXX escapes give back the name
    assert {p for p, r in results.items() if "error" in r} == {files[c] for c in failing}
    # The five WAVs DecodeWav rejects and the piped ones hold the same tone
    # at the same level as a canonical file: the Python decoder read them.
    assert all(results[files[c]]["duration"] == 1.0 for c in rf.READABLE)


@pytest.fixture
def no_work(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the files were analysed before the refusal")

    monkeypatch.setattr(inference.Predictor, "predict", refuse)


def test_an_output_that_would_destroy_a_users_file_is_refused_before_any_work(run, tmp_path, no_work):
    a, b, other = (tmp_path / n for n in ("a.wav", "b.wav", "other.flac"))
    for path in (a, b):
        path.write_bytes(rf.canonical())
    sf.write(other, rf.tone() / 32768, 16000, format="FLAC")
    before = a.read_bytes()
    status, _, err = run(a, b, output=str(a))
    assert status == inference.EXIT_USAGE and a.read_bytes() == before
    assert f"--output {a} is one of the inputs ({a}); refusing to overwrite it" in err
    link = tmp_path / "results.txt"
    link.symlink_to(b)  # resolves to an input
    status, _, err = run(a, b, output=str(link))
    assert status == inference.EXIT_USAGE and "is one of the inputs" in err
    status, _, err = run(a, output=str(other))  # any other audio file
    assert status == inference.EXIT_USAGE and "is an existing audio file; refusing to overwrite it" in err
    listing = tmp_path / "inputs.txt"
    listing.write_text("a.wav\n")
    status, _, err = run(list_files=[str(listing)], output=str(listing))
    assert status == inference.EXIT_USAGE and "is a --list file" in err
    if os.access("/sys", os.W_OK) and not _unwritable("/sys"):
        pytest.skip("/sys is writable here")
    status, _, err = run(a, output="/sys/emotions.csv")  # read-only location
    assert status == inference.EXIT_USAGE
    assert err.startswith("infer.py: error: cannot write --output: no file can be created in ") and err.count("\n") == 1


def _unwritable(directory):
    import tempfile

    try:
        fd, path = tempfile.mkstemp(dir=directory)
    except OSError:
        return True
    os.close(fd)
    os.unlink(path)
    return False


def test_errors_not_about_one_file_exit_3_and_leave_no_stale_output(run, tmp_path, monkeypatch):
    clip = tmp_path / "clip.wav"
    clip.write_bytes(rf.canonical())
    out = tmp_path / "emotions.csv"
    out.write_text("stale results of an earlier run\n")

    def broken(self, paths, **kwargs):
        raise RuntimeError("the model runtime fell over")

    predict = inference.Predictor.predict
    monkeypatch.setattr(inference.Predictor, "predict", broken)
    status, stdout, err = run(clip, output_format="csv", output=str(out))
    assert status == inference.EXIT_ERROR == 3
    assert err == (
        "infer.py: error: internal error, not about one file (RuntimeError: the model runtime fell over); "
        f"no results were written; the older {out} was removed so that it is not taken for this run's results\n"
    )
    assert not out.exists() and stdout == b""
    monkeypatch.setattr(inference.Predictor, "predict", predict)

    # The work is done, then the disk is full: one line, no stale file.
    out.write_text("stale results of an earlier run\n")

    def full(text, path):
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(inference, "write_text", full)
    status, _, err = run(clip, output_format="csv", output=str(out))
    assert status == inference.EXIT_ERROR
    assert err == (
        f"infer.py: error: cannot write --output {out} (No space left on device); no results were "
        f"written; the older {out} was removed so that it is not taken for this run's results\n"
    )
    assert not out.exists()


def test_plots_never_replace_a_users_file_and_a_failed_plot_keeps_the_result(run, loaded, tmp_path, monkeypatch):
    clip = tmp_path / "voice.wav"
    clip.write_bytes(rf.canonical())
    plots = tmp_path / "plots"
    plots.mkdir()
    mine = plots / "voice.png"
    mine.write_bytes(b"the user's own picture")
    status, _, err = run(clip, plot_dir=str(plots), output_format="json", output=str(tmp_path / "a.json"))
    assert status == inference.EXIT_OK, err
    assert mine.read_bytes() == b"the user's own picture"
    [result] = json.loads((tmp_path / "a.json").read_text())["results"]
    assert result["plot"] == str(plots / "voice-2.png") and (plots / "voice-2.png").read_bytes()[:4] == b"\x89PNG"
    assert f"infer.py: {mine} exists and was not written by this run: the plot of {clip} is {plots / 'voice-2.png'}" in err

    def disk_full(prediction, spectrogram):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(inference, "render_plot", disk_full)
    status, _, err = run(clip, plot_dir=str(plots), output_format="json", output=str(tmp_path / "b.json"))
    assert status == inference.EXIT_FILES_FAILED
    [result] = json.loads((tmp_path / "b.json").read_text())["results"]
    assert result["label"] in loaded.class_names  # the emotion is kept
    assert result["plot_error"] == "the plot could not be written (OSError: No space left on device)"
    assert f"infer.py: plot failed for {clip}: the plot could not be written" in err
    assert "1 plots could not be written; 1 analysed" in err
    assert sorted(p.name for p in plots.iterdir()) == ["voice-2.png", "voice.png"]


def test_damaged_files_analysed_on_what_they_hold_say_so_in_every_format(run, tmp_path):
    tone = (rf.tone() / 32768).astype(np.float32)
    speech = np.tile(tone, 4)  # 4 s
    opus = tmp_path / "whole.ogg"
    sf.write(opus, speech, 16000, format="OGG", subtype="OPUS")
    data = opus.read_bytes()
    cut = tmp_path / "cut.opus.ogg"
    cut.write_bytes(data[: len(data) * 6 // 10])  # Ends mid-page, without the end mark.
    loud = tmp_path / "loud.wav"
    sf.write(loud, tone * 1e6, 16000, subtype="FLOAT")  # A million times full scale.
    warned = {str(cut): "cut short: the Ogg stream ends without its end mark after ",
              str(loud): "samples beyond full scale: the peak is "}
    status, out, err = run(opus, cut, loud)
    assert status == inference.EXIT_OK, err
    for path, words in warned.items():
        assert f"infer.py: warning: {path}: {words}" in err
    assert str(opus) not in err
    assert out.decode().count("    warning: ") == 2
    out_json = tmp_path / "out.json"
    run(opus, cut, loud, output_format="json", output=str(out_json))
    results = {r["file"]: r for r in json.loads(out_json.read_text())["results"]}
    assert "warning" not in results[str(opus)] and "label" in results[str(cut)]
    for path, words in warned.items():
        assert results[path]["warning"].startswith(words)
    out_csv = tmp_path / "out.csv"
    run(opus, cut, loud, output_format="csv", output=str(out_csv))
    with open(out_csv, newline="", encoding="utf-8") as f:
        rows = {r["file"]: r for r in csv.DictReader(f)}
    for path, words in warned.items():
        assert rows[path]["kind"] == "file" and rows[path]["error"].startswith("warning: " + words)
    assert rows[str(opus)]["error"] == ""
