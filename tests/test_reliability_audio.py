"""Issue #12, without a model: every file is decoded or reported with its
reason; streamed WAV, non-UTF-8 names and too-short clips; archives, model
configs, run-directory files (modes, lock, results published together)."""

import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import zipfile

import numpy as np
import pytest
import soundfile as sf

from speechmodel import audio
from speechmodel.pipeline import FailureLog, make_dataset
from speechmodel.training import artifacts
from tests import reliability_files as rf
from tests.paths import REPO


def collect(ds):
    indices = []
    for _, _, index in ds:
        indices += [int(i) for i in index]
    return indices


def test_the_six_files_are_decoded_by_python_or_reported_never_crash(tmp_path):
    import tensorflow as tf

    paths = rf.write_six(tmp_path)
    for case in rf.READABLE:
        path = paths[case]
        assert audio.graph_decoder(path) == "python", case
        expected = audio.load_audio(path)
        assert expected.shape == (16000,), case
        np.testing.assert_allclose(expected, rf.tone(seed=list(rf.SIX).index(case) + 1) / 32768, atol=1e-6)
        # Even forced onto a graph decoder, the file falls back to Python.
        for decoder in ("wav", "flac16"):
            code = tf.constant(audio.GRAPH_DECODERS.index(decoder))
            waveform, error = audio.tf_load_audio(tf.constant(audio.as_tf_path(path)), decoder=code)
            assert error.numpy() == b"", (case, decoder)
            np.testing.assert_array_equal(waveform.numpy(), expected)
    # The corrupted FLAC passes the cheap check (its last frame reads), the
    # tensorflow-io op fails on it, and the Python decoder says why.
    flac = paths["corrupt_flac"]
    assert audio.graph_decoder(flac) == "flac16"
    waveform, error = audio.tf_load_audio(
        tf.constant(audio.as_tf_path(flac)), decoder=tf.constant(2)
    )
    assert waveform.shape == (0,)
    assert error.numpy().decode() == f"{flac}: corrupt audio file (Error : flac decoder lost sync.)"

    # In a training pipeline: five analysed, the FLAC reported, once, and
    # the epochs go on.
    good = tmp_path / "good.wav"
    good.write_bytes(rf.canonical())
    assert audio.graph_decoder(good) == "wav"
    ordered = [str(paths[c]) for c in rf.SIX] + [str(good)]
    failures = FailureLog()
    ds = make_dataset(ordered, [0] * 7, batch_size=3, training=True, failures=failures, with_index=True)
    for _ in range(2):
        assert sorted(collect(ds)) == [0, 1, 2, 3, 4, 6]
    assert failures.failures == [(str(flac), "corrupt audio file (Error : flac decoder lost sync.)")]

    # The classical path reads them all with the Python decoder too.
    from speechmodel.classical.features import ClassicalFeatureConfig, extract_features

    matrix = extract_features(ordered, ClassicalFeatureConfig(features=("mfcc",)), n_jobs=1)
    assert matrix.kept.tolist() == [0, 1, 2, 3, 4, 6]
    assert [(f.path, f.reason) for f in matrix.failures] == failures.failures


@pytest.mark.parametrize("size_field", [0xFFFFFFFF, 0])
def test_streamed_wav_is_read_to_the_end(tmp_path, size_field):
    path = tmp_path / "piped.wav"
    path.write_bytes(rf.streamed(size_field) + b"\x01")  # and half a frame
    expected = rf.tone(seed=7) / 32768
    info = audio.read_info(path)
    assert info.frames == 16000 and info.sample_rate == 16000
    np.testing.assert_allclose(audio.load_audio(path), expected, atol=1e-6)
    np.testing.assert_allclose(np.concatenate(list(audio.iter_blocks(path, block_seconds=0.3))), expected, atol=1e-6)
    assert audio.graph_decoder(path) == "python"
    failures = FailureLog()
    assert collect(make_dataset([str(path)], [0], failures=failures, with_index=True)) == [0]
    assert not failures.failures
    # A finished file whose data chunk is really empty still has no samples.
    empty = tmp_path / "empty_data.wav"
    empty.write_bytes(rf.riff(rf.chunk(b"fmt ", rf.fmt_pcm16()) + rf.chunk(b"data", b"")))
    with pytest.raises(audio.AudioError, match="no samples"):
        audio.load_audio(empty)


def test_clips_too_short_to_judge_get_a_clear_reason(tmp_path):
    one = tmp_path / "one_sample.wav"
    sf.write(one, np.array([0.5]), 16000, subtype="PCM_16")
    vanishing = tmp_path / "vanishes.wav"  # 1 sample at 48 kHz: 0 at 16 kHz
    sf.write(vanishing, np.array([0.5]), 48000, subtype="PCM_16")
    good = tmp_path / "good.wav"
    good.write_bytes(rf.canonical())
    failures = FailureLog()
    kept = collect(make_dataset([str(one), str(vanishing), str(good)], [0] * 3, failures=failures, with_index=True))
    assert kept == [2]
    reasons = dict(failures.failures)
    assert reasons[str(one)].startswith("too short to analyse: 1 sample (0.0001 s) at 16000 Hz")
    assert reasons[str(vanishing)].startswith("too short to analyse: 0 samples")
    assert "at least 400 samples" in reasons[str(one)]

    from speechmodel.classical.features import extract_features

    matrix = extract_features([str(one), str(good)], n_jobs=1)
    assert matrix.kept.tolist() == [1]
    assert matrix.failures[0].reason.startswith("too short to analyse: 1 sample")


def test_each_unusable_path_says_what_is_wrong(tmp_path):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "dangling.wav").symlink_to(tmp_path / "gone.wav")
    os.mkfifo(tmp_path / "pipe.wav")
    (tmp_path / "folder.wav").mkdir()
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "file").write_bytes(b"x")
    expected = {
        "missing.wav": ("missing", "file not found"),
        "loop": ("missing", "symbolic link loop"),
        "dangling.wav": ("missing", f"broken symbolic link (it points to {tmp_path / 'gone.wav'}"),
        "pipe.wav": ("not_regular", "is a named pipe (FIFO), not a regular file"),
        "folder.wav": ("not_regular", "is a directory"),
        "empty.wav": ("empty", "file is empty"),
        "file/inside.wav": ("missing", "file not found (a part of the path is a file"),
    }
    for name, (kind, reason) in expected.items():
        with pytest.raises(audio.AudioError) as info:
            audio.load_audio(tmp_path / name)  # never blocks on the pipe
        assert info.value.kind == kind and info.value.reason.startswith(reason), (name, info.value)


def _as_nobody(code):
    """Runs ``code`` in a Python whose file accesses are those of user
    nobody: setfsuid(65534) after the imports, which also drops root's
    override of file permissions (so 0000 files are really unreadable)."""
    prelude = (
        "import ctypes, json, sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from speechmodel import audio, inference\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.setfsuid(65534)\n"
        "assert libc.setfsuid(65534) == 65534\n"
    )
    result = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch the file-system user id")
def test_permission_problems_are_named_as_such():
    import shutil
    import tempfile
    from pathlib import Path

    root = Path(tempfile.mkdtemp(prefix="speechmodel-perm-"))  # nobody may walk to it
    root.chmod(0o755)
    try:
        _permission_checks(root)
    finally:
        for d in root.rglob("*"):
            if d.is_dir() and not d.is_symlink():
                d.chmod(0o755)
        shutil.rmtree(root)


def _permission_checks(root):
    locked = root / "locked.wav"
    locked.write_bytes(rf.canonical())
    locked.chmod(0)
    closed = root / "closed"
    closed.mkdir()
    (closed / "inside.wav").write_bytes(rf.canonical())
    closed.chmod(0o700)
    tree = root / "tree"
    (tree / "open").mkdir(parents=True)
    (tree / "open" / "ok.wav").write_bytes(rf.canonical())
    (tree / "shut").mkdir()
    (tree / "shut" / "hidden.wav").write_bytes(rf.canonical())
    (tree / "shut").chmod(0o700)
    out = _as_nobody(
        "out = {}\n"
        f"for p in [{str(locked)!r}, {str(closed / 'inside.wav')!r}]:\n"
        "    try:\n"
        "        audio.load_audio(p)\n"
        "    except audio.AudioError as e:\n"
        "        out[p] = [e.kind, e.reason]\n"
        f"found = inference.collect_inputs([{str(tree)!r}, {str(closed / 'inside.wav')!r}])\n"
        "out['paths'] = found.paths\n"
        "out['failures'] = [[f.file, f.reason] for f in found.failures]\n"
        "print(json.dumps(out))\n"
    )
    assert out[str(locked)] == ["permission", "permission denied: the file cannot be read"]
    assert out[str(closed / "inside.wav")] == [
        "permission",
        f"permission denied: a directory on the way to the file cannot be read ({closed} cannot be searched)",
    ]
    assert out["paths"] == [str(tree / "open" / "ok.wav")]
    assert out["failures"] == [
        [str(tree / "shut"), "cannot read this directory (permission denied): its files were not searched"],
        [str(closed / "inside.wav"),
         f"permission denied: a directory on the way to the file cannot be read ({closed} cannot be searched)"],
    ]


def test_a_file_name_that_is_not_utf8_is_read_and_reported_as_itself(tmp_path):
    name = os.fsdecode(b"caf\xe9-" + b"\xff.wav")  # Latin-1 bytes, not UTF-8
    good = tmp_path / name
    good.write_bytes(rf.canonical())
    bad = tmp_path / os.fsdecode(b"r\xe9sum\xe9.wav")
    bad.write_bytes(b"not audio at all" * 10)
    failures = FailureLog()
    ds = make_dataset([str(good), str(bad)], [0, 1], failures=failures, with_index=True, cache=str(tmp_path / "cache"))
    assert collect(ds) == [0]
    [(path, reason)] = failures.failures
    assert path == str(bad) and os.fsencode(path) == os.fsencode(str(tmp_path)) + b"/r\xe9sum\xe9.wav"
    assert reason.startswith("not an audio file")


def _keras_archive(path, config_bytes):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", "{}")
        zf.writestr("config.json", config_bytes)
        zf.writestr("model.weights.h5", b"")


def test_a_huge_model_config_is_refused_before_it_is_parsed(tmp_path):
    import speechmodel
    from speechmodel import inference

    big = tmp_path / "big.keras"
    # 20 MB of JSON that compresses to a few kB: the archive stays small.
    _keras_archive(big, b'{"class_name": "EmotionRecognizer", "config": {"pad": "' + b" " * (20 * 2**20) + b'"}}')
    assert big.stat().st_size < 200_000
    with pytest.raises(ValueError, match=r"config.json is 20 MB, over the 16 MB"):
        speechmodel.load_model(big)
    with pytest.raises(inference.ModelError, match=r"config.json is 20 MB"):
        inference.load_model(big)
    small = tmp_path / "small.keras"
    _keras_archive(small, json.dumps({"class_name": "Other"}).encode())
    inference.loading.check_config_size(small)  # under the cap: passes


def test_crafted_archives_are_refused_cleanly(tmp_path):
    from speechmodel.datasets import download

    archives = {}
    archives["clash.zip"] = tmp_path / "clash.zip"
    with zipfile.ZipFile(archives["clash.zip"], "w") as zf:
        zf.writestr("Actor_01", b"a file")
        zf.writestr("Actor_01/03-01-01-01-01-01-01.wav", b"and a folder")
    archives["long.zip"] = tmp_path / "long.zip"
    with zipfile.ZipFile(archives["long.zip"], "w") as zf:
        zf.writestr("Actor_01/" + "x" * 300 + ".wav", b"x")
    for name, members in (("clash.tar", ["a", "a/b.wav"]), ("long.tar", ["d/" + "y" * 300])):
        archives[name] = tmp_path / name
        with tarfile.open(archives[name], "w") as tf:
            for member in members:
                info = tarfile.TarInfo(member)
                info.size = 1
                tf.addfile(info, io.BytesIO(b"x"))
    for name, archive in archives.items():
        dest = tmp_path / f"out-{name}"
        with pytest.raises(download.UnsafeArchiveError) as info:
            download.extract(archive, dest)
        message = str(info.value)
        assert "Nothing was extracted" in message and "\n" not in message, message
        assert ("both a file" in message) if "clash" in name else ("longer than this file system allows" in message)
        assert list(dest.iterdir()) == []


def test_run_files_share_one_mode(tmp_path):
    old = os.umask(0o022)
    try:
        artifacts.write_json(tmp_path / "a.json", {"x": 1})
        written = tmp_path / "written_by_a_library.csv"
        fd = os.open(written, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
        artifacts.set_default_mode(written)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644
    assert stat.S_IMODE(written.stat().st_mode) == 0o644


def test_one_run_per_directory_and_the_second_is_told_which(tmp_path):
    with artifacts.lock_directory(tmp_path, purpose="train.py run"):
        with pytest.raises(artifacts.DirectoryLocked) as info:
            with artifacts.lock_directory(tmp_path, purpose="train.py run"):
                pass
        assert f"process {os.getpid()} on " in str(info.value)
        # Another process too (flock is per open file, so per process).
        code = (
            f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
            "from speechmodel.training import artifacts\n"
            f"try:\n    artifacts.lock_directory({str(tmp_path)!r}).__enter__()\n"
            "except artifacts.DirectoryLocked as e:\n    print(e)\n"
        )
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert f"is in use by another run (process {os.getpid()}" in other.stdout
    assert not (tmp_path / ".lock").exists()
    with artifacts.lock_directory(tmp_path):  # free again
        pass


class Killed(BaseException):
    pass


def test_results_appear_together_or_not_at_all(tmp_path, monkeypatch):
    def publish(text):
        artifacts.atomic_write_text(artifacts.staged(tmp_path, "predictions.csv"), text)
        artifacts.write_json(artifacts.staged(tmp_path, "metrics.json"), {"v": text})
        artifacts.commit_results(tmp_path)

    def seen():
        names = ("predictions.csv", "metrics.json")
        present = [(tmp_path / n).exists() for n in names]
        assert present in ([True, True], [False, False]), present
        return (tmp_path / "predictions.csv").read_text() if present[0] else None

    real = artifacts._replace_with_link
    calls = []

    def dies_at_the_switch(target, link):
        calls.append(link)
        if link.endswith(artifacts.RESULTS_LINK):
            raise Killed
        real(target, link)

    monkeypatch.setattr(artifacts, "_replace_with_link", dies_at_the_switch)
    with pytest.raises(Killed):
        publish("first")
    assert seen() is None  # every name staged, none visible
    monkeypatch.setattr(artifacts, "_replace_with_link", real)
    artifacts.discard_staged(tmp_path)
    publish("first")
    assert seen() == "first"
    monkeypatch.setattr(artifacts, "_replace_with_link", dies_at_the_switch)
    with pytest.raises(Killed):
        publish("second")
    assert seen() == "first" and json.loads((tmp_path / "metrics.json").read_text()) == {"v": "first"}
    monkeypatch.setattr(artifacts, "_replace_with_link", real)
    publish("second")
    assert seen() == "second"
    assert len([p for p in tmp_path.iterdir() if p.name.startswith(".results-")]) == 1
