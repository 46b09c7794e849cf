"""Tests for speechmodel.datasets.download, run offline against a local HTTP server.

The server listens on 127.0.0.1 (ephemeral port) in a daemon thread, supports
single ``Range: bytes=N-`` requests, can drop the connection after N bytes of
its first answer, or ignore ``Range``; it is shut down after every test.
Archives are built by the tests: a few tiny WAV files in the RAVDESS layout.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import re
import socket
import stat
import subprocess
import sys
import tarfile
import threading
import wave
import zipfile
from pathlib import Path

import pytest

from speechmodel import datasets
from speechmodel.datasets import download as dl
from tests.paths import RAVDESS, REPO

SHARED_RAVDESS = RAVDESS

RAVDESS_MEMBERS = (
    "Actor_01/03-01-01-01-01-01-01.wav",
    "Actor_01/03-01-05-02-01-01-01.wav",
    "Actor_02/03-01-01-01-01-01-02.wav",
    "Actor_02/03-01-08-01-02-02-02.wav",
)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------
def _wav_bytes(seed: int, n: int = 400) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(bytes((seed * 7 + i) % 256 for i in range(2 * n)))
    return buf.getvalue()


def _zip(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buf.getvalue()


def _ravdess_zip(prefix: str = "") -> bytes:
    return _zip({prefix + m: _wav_bytes(i) for i, m in enumerate(RAVDESS_MEMBERS)})


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class _Server:
    """A tiny HTTP/1.0 file server on 127.0.0.1 with Range support."""

    def __init__(self, files: dict[str, bytes], *, truncate_first: int | None = None, ignore_range=False):
        self.files = files
        self.truncate_first = truncate_first
        self.ignore_range = ignore_range
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                m = re.fullmatch(r"bytes=(\d+)-", rng or "")
                if m and not server.ignore_range:
                    start = int(m.group(1))
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                payload = body[start:]
                first = sum(1 for p, _ in server.requests if p == self.path) == 1
                if server.truncate_first is not None and first:
                    payload = payload[: server.truncate_first]
                self.wfile.write(payload)
                self.wfile.flush()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def serve():
    servers = []

    def start(files, **kwargs):
        s = _Server(files, **kwargs)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


@pytest.fixture(autouse=True)
def _no_retry_wait(monkeypatch):
    monkeypatch.setattr(dl, "_RETRY_WAIT_S", 0.0)


def _leftovers(parent: Path, keep: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name != keep)


def _download_ravdess(server, tmp_path, data, **kwargs):
    kwargs.setdefault("md5", _md5(data))
    kwargs.setdefault("timeout", 5.0)
    return dl.download("ravdess", tmp_path / "ravdess", url=server.url("/ravdess.zip"), **kwargs)


# --------------------------------------------------------------------------
# sources.json and hints
# --------------------------------------------------------------------------
def test_sources_describe_every_corpus_with_licence_and_access():
    table = dl.load_sources()
    assert {"ravdess", "emodb", "tess", "cremad", "savee", "iemocap", "thaiser"} <= set(table)
    for key, src in table.items():
        assert src["licence"] and src["licence_url"].startswith("http"), key
        assert src["access"] in dl.ACCESS_KINDS, key
    assert {k for k, s in table.items() if s["access"] == "licence-gated"} == {"savee", "iemocap"}
    assert table["cremad"]["access"] == "manual"
    ravdess = table["ravdess"]["files"][0]
    # Published on Zenodo record 1188976; guards against accidental edits.
    assert ravdess["md5"] == "bc696df654c87fed845eb13823edef8a"
    assert ravdess["size"] == 208468073
    for key in ("emodb", "tess", "thaiser"):  # nothing published: must stay unverified
        for f in table[key]["files"]:
            assert f["md5"] is None and f["sha256"] is None
            assert "NOT verified" in f["checksum_note"]


def test_sources_validation_names_the_bad_field(tmp_path):
    bad = json.loads(dl.SOURCES_PATH.read_text())
    bad["corpora"]["ravdess"]["files"][0]["md5"] = "not-a-checksum"
    path = tmp_path / "sources.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=r"ravdess.*md5.*not-a-checksum"):
        dl.load_sources(path)


@pytest.mark.parametrize("name", sorted(json.loads(dl.SOURCES_PATH.read_text())["corpora"]))
def test_hint_is_one_paragraph_with_the_way_to_get_the_corpus(name):
    src = dl.source(name)
    text = dl.hint(name, to="/data/x")
    assert "\n" not in text and text.strip() == text
    assert src["title"] in text and src["licence"] in text
    if src["access"] == "download":
        assert f"python -m speechmodel.datasets.download {name} --to /data/x" in text
        assert "cannot" not in text.split("It fetches")[0]
    else:
        assert "cannot be downloaded automatically" in text
        assert "python -m speechmodel.datasets.download" not in text
        assert re.search(r"https?://\S+", src["instructions"]).group(0) in text
    example = src["layout"]["example"]
    if example:
        assert f"/data/x/{example}" in text
    assert "DIR" not in text.replace("AudioData", "")


def test_hint_specifics_and_aliases():
    assert "https://sail.usc.edu/iemocap/release_form.php" in dl.hint("iemocap")
    assert "Register.html" in dl.hint("savee")
    assert "git lfs" in dl.hint("crema-d") or "lfs pull" in dl.hint("crema-d")
    assert "bc696df654c87fed845eb13823edef8a" in dl.hint("ravdess")
    assert "none is published" in dl.hint("tess")
    assert dl.hint("EMO-DB") == dl.hint("emodb") and dl.hint("CREMA-D") == dl.hint("cremad") == dl.hint("crema_d")
    assert dl.hint("thai_ser") == dl.hint("thaiser") == dl.hint("VISTEC")
    assert "DIR/wav/03a01Fa.wav" in dl.hint("emodb")
    with pytest.raises(ValueError, match=r"Received: name='nope'.*Known corpora: ravdess, emodb, tess"):
        dl.hint("nope")
    with pytest.raises(ValueError, match=r"reads your own files; there is nothing to download"):
        dl.hint("Folder")


# --------------------------------------------------------------------------
# check()
# --------------------------------------------------------------------------
@pytest.mark.skipif(not SHARED_RAVDESS.is_dir(), reason=f"real RAVDESS not found at {SHARED_RAVDESS}")
def test_real_ravdess_directory_is_complete_and_left_alone(capsys):
    before = sorted(os.listdir(SHARED_RAVDESS.parent))
    status = dl.check("ravdess", SHARED_RAVDESS)
    assert status.complete and status.found == status.expected == 1440
    assert dl.main(["ravdess", "--to", str(SHARED_RAVDESS)]) == 0
    assert "nothing to do" in capsys.readouterr().err
    assert sorted(os.listdir(SHARED_RAVDESS.parent)) == before


def test_check_reports_missing_partial_nested_and_lfs_pointer(tmp_path):
    assert "does not exist" in dl.check("ravdess", tmp_path / "absent").message
    nested = tmp_path / "outer" / "Audio_Speech"
    (nested / "Actor_01").mkdir(parents=True)
    (nested / "Actor_01" / "03-01-01-01-01-01-01.wav").write_bytes(_wav_bytes(0))
    status = dl.check("ravdess", tmp_path / "outer")
    assert not status.complete and "use that directory instead" in status.message and str(nested) in status.message
    status = dl.check("ravdess", nested)
    assert not status.complete and status.message.startswith("found 1 of 1440")
    crema = tmp_path / "crema" / "AudioWAV"
    crema.mkdir(parents=True)
    (crema / "1001_DFA_ANG_XX.wav").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\n")
    status = dl.check("cremad", crema.parent)
    assert not status.complete and "Git LFS pointer" in status.message and "git lfs pull" in status.message


# --------------------------------------------------------------------------
# Downloading
# --------------------------------------------------------------------------
def test_download_verifies_checksum_and_installs_the_loader_layout(serve, tmp_path, capsys):
    data = _ravdess_zip()
    server = serve({"/ravdess.zip": data})
    out = _download_ravdess(server, tmp_path, data)
    assert out == tmp_path / "ravdess"
    got = sorted(str(p.relative_to(out)) for p in out.rglob("*.wav"))
    assert got == sorted(RAVDESS_MEMBERS)
    assert (out / RAVDESS_MEMBERS[0]).read_bytes() == _wav_bytes(0)
    record = json.loads((out / dl.RECORD_NAME).read_text())
    assert record["corpus"] == "ravdess" and record["licence"] == "CC BY-NC-SA 4.0"
    assert record["files"][0]["md5"] == _md5(data) and record["files"][0]["verified_by"] == "md5"
    assert record["layout"]["files"] == 4
    err = capsys.readouterr().err
    assert "holds 4 files" in err and "has 1440" in err  # own checksum: warned, not refused
    assert _leftovers(tmp_path, "ravdess") == []  # no .part, archive, staging or lock left
    manifest = datasets.load("ravdess", out)  # the loader reads what was installed
    assert len(manifest) == 4 and not manifest.problems
    mask = os.umask(0o022)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~mask  # not mkdtemp's 0700


def test_archive_with_a_wrapping_folder_is_unwrapped(serve, tmp_path, capsys):
    data = _zip({**{"Audio_Speech/" + m: _wav_bytes(1) for m in RAVDESS_MEMBERS}, "README.txt": b"x"})
    server = serve({"/ravdess.zip": data})
    out = _download_ravdess(server, tmp_path, data)
    assert (out / RAVDESS_MEMBERS[0]).is_file() and not (out / "README.txt").exists()
    assert "not installing the 1 file(s) outside it: README.txt" in capsys.readouterr().err


def test_second_run_on_a_complete_directory_does_nothing(serve, tmp_path, capsys):
    data = _ravdess_zip()
    server = serve({"/ravdess.zip": data})
    _download_ravdess(server, tmp_path, data)
    n_requests = len(server.requests)
    capsys.readouterr()
    assert dl.main(["ravdess", "--to", str(tmp_path / "ravdess"), "--url", server.url("/ravdess.zip")]) == 0
    assert "already holds the complete corpus" in capsys.readouterr().err
    assert len(server.requests) == n_requests


def test_truncated_download_is_kept_and_resumed_with_range(serve, tmp_path):
    data = _ravdess_zip()
    server = serve({"/ravdess.zip": data}, truncate_first=1000)
    with pytest.raises(dl.IncompleteDownloadError, match=r"after 1000 of \d+ bytes.*run the same command again"):
        _download_ravdess(server, tmp_path, data, retries=0, quiet=True)
    part = tmp_path / ".ravdess.download" / "Audio_Speech_Actors_01-24.zip.part"
    assert part.stat().st_size == 1000
    assert not (tmp_path / "ravdess").exists()
    out = _download_ravdess(server, tmp_path, data, quiet=True)
    assert server.requests[-1] == ("/ravdess.zip", "bytes=1000-")
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.wav")) == sorted(RAVDESS_MEMBERS)
    assert _leftovers(tmp_path, "ravdess") == []


def test_truncated_download_resumes_automatically(serve, tmp_path):
    data = _ravdess_zip()
    server = serve({"/ravdess.zip": data}, truncate_first=700)
    _download_ravdess(server, tmp_path, data, retries=2, quiet=True)
    assert [r for _, r in server.requests] == [None, "bytes=700-"]


def test_server_ignoring_range_restarts_cleanly(serve, tmp_path, capsys):
    data = _ravdess_zip()
    server = serve({"/ravdess.zip": data}, ignore_range=True)
    part = tmp_path / ".ravdess.download" / "Audio_Speech_Actors_01-24.zip.part"
    part.parent.mkdir()
    part.write_bytes(b"stale bytes from another file" * 10)
    out = _download_ravdess(server, tmp_path, data)
    assert server.requests == [("/ravdess.zip", f"bytes={len(b'stale bytes from another file') * 10}-")]
    assert "does not support resuming" in capsys.readouterr().err
    assert (out / RAVDESS_MEMBERS[-1]).read_bytes() == _wav_bytes(3)


def test_interrupted_install_leaves_no_half_directory_and_reuses_the_archive(serve, tmp_path, monkeypatch):
    data = _ravdess_zip()
    server = serve({"/ravdess.zip": data})
    real_extract = dl.extract

    def extract_then_interrupt(archive, dest):
        real_extract(archive, dest)
        assert any(Path(dest).rglob("*.wav"))  # files were written, but only into staging
        raise KeyboardInterrupt

    monkeypatch.setattr(dl, "extract", extract_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        _download_ravdess(server, tmp_path, data, quiet=True)
    assert not (tmp_path / "ravdess").exists()
    assert [p.name for p in tmp_path.iterdir() if ".extract-" in p.name] == []
    monkeypatch.setattr(dl, "extract", real_extract)
    n_requests = len(server.requests)
    out = _download_ravdess(server, tmp_path, data, quiet=True)
    assert len(server.requests) == n_requests  # the verified archive was reused
    assert dl.check("ravdess", out).message.endswith("as recorded by its download")


def test_complete_part_file_is_finished_without_downloading_again(serve, tmp_path):
    data = _ravdess_zip()
    server = serve({"/ravdess.zip": data})
    part = tmp_path / ".ravdess.download" / "Audio_Speech_Actors_01-24.zip.part"
    part.parent.mkdir()
    part.write_bytes(data)  # e.g. killed between the last byte and the rename
    out = _download_ravdess(server, tmp_path, data, quiet=True)
    assert server.requests == [("/ravdess.zip", f"bytes={len(data)}-")]  # answered 416: nothing to fetch
    assert (out / RAVDESS_MEMBERS[0]).is_file()


def test_checksum_mismatch_keeps_nothing(serve, tmp_path):
    data = _ravdess_zip()
    server = serve({"/ravdess.zip": data})
    wrong = "0" * 32
    with pytest.raises(dl.ChecksumError) as err:
        _download_ravdess(server, tmp_path, data, md5=wrong)
    assert f"expected md5 {wrong}, got {_md5(data)}" in str(err.value)
    assert not (tmp_path / "ravdess").exists()
    assert list(tmp_path.iterdir()) == []  # no part, archive, staging or lock left


def test_url_override_keeps_the_published_checksum(serve, tmp_path):
    data = _ravdess_zip()
    server = serve({"/ravdess.zip": data})
    with pytest.raises(dl.ChecksumError, match=rf"announces {len(data)} bytes but the published size is 208468073"):
        dl.download("ravdess", tmp_path / "ravdess", url=server.url("/ravdess.zip"), timeout=5.0, quiet=True)
    assert not (tmp_path / "ravdess").exists()


@pytest.mark.parametrize(
    "evil",
    [
        {"members": {"../evil.wav": b"x"}},
        {"members": {"/tmp/evil-absolute.wav": b"x"}},
        {"members": {"Actor_01/..\\..\\evil.wav": b"x"}},
        {"symlinks": {"Actor_01/link.wav": "/etc/passwd"}},
    ],
    ids=["dotdot", "absolute", "backslash", "symlink"],
)
def test_zip_slip_archive_is_rejected_before_writing_anything(serve, tmp_path, evil):
    members = {m: _wav_bytes(0) for m in RAVDESS_MEMBERS}
    members.update(evil.get("members", {}))
    data = _zip(members, evil.get("symlinks"))
    server = serve({"/ravdess.zip": data})
    with pytest.raises(dl.UnsafeArchiveError, match="Nothing was extracted"):
        _download_ravdess(server, tmp_path, data, quiet=True)
    assert not (tmp_path / "evil.wav").exists() and not (tmp_path.parent / "evil.wav").exists()
    assert not Path("/tmp/evil-absolute.wav").exists()
    assert not (tmp_path / "ravdess").exists()
    assert [p.name for p in tmp_path.iterdir() if ".extract-" in p.name] == []


def test_tar_archives_extract_and_traversal_is_rejected(tmp_path):
    def tar(members):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tf:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    good = tmp_path / "good.tar.gz"
    good.write_bytes(tar({m: _wav_bytes(2) for m in RAVDESS_MEMBERS}))
    assert dl.extract(good, tmp_path / "good") == 4
    assert (tmp_path / "good" / RAVDESS_MEMBERS[0]).read_bytes() == _wav_bytes(2)
    evil = tmp_path / "evil.tar.gz"
    evil.write_bytes(tar({"ok.wav": b"x", "../evil.wav": b"x"}))
    with pytest.raises(dl.UnsafeArchiveError):
        dl.extract(evil, tmp_path / "bad")
    assert not (tmp_path / "evil.wav").exists() and not (tmp_path / "bad" / "ok.wav").exists()


def test_corrupt_archive_is_deleted_with_a_clear_error(serve, tmp_path):
    data = _ravdess_zip()
    broken = bytearray(data)
    broken[60:70] = b"\xff" * 10  # inside the first member's compressed data
    broken = bytes(broken)
    server = serve({"/ravdess.zip": broken})
    with pytest.raises(dl.CorruptArchiveError, match="not a valid zip archive.*deleted"):
        _download_ravdess(server, tmp_path, broken, quiet=True)
    assert not (tmp_path / "ravdess").exists()
    assert list((tmp_path / ".ravdess.download").glob("*.zip")) == []


def test_wrong_layout_is_refused_and_the_archive_kept(serve, tmp_path):
    data = _zip({"speaker1/a.wav": _wav_bytes(0)})
    server = serve({"/ravdess.zip": data})
    with pytest.raises(dl.LayoutError, match=r"does not contain files matching Actor_\*/\*\.wav"):
        _download_ravdess(server, tmp_path, data, quiet=True)
    assert not (tmp_path / "ravdess").exists()
    assert (tmp_path / ".ravdess.download" / "Audio_Speech_Actors_01-24.zip").is_file()


def test_existing_non_empty_directory_is_not_touched(serve, tmp_path):
    data = _ravdess_zip()
    server = serve({"/ravdess.zip": data})
    (tmp_path / "ravdess").mkdir()
    (tmp_path / "ravdess" / "notes.txt").write_text("mine")
    with pytest.raises(dl.DownloadError, match="exists and is not empty.*Nothing was changed"):
        _download_ravdess(server, tmp_path, data, quiet=True)
    assert os.listdir(tmp_path / "ravdess") == ["notes.txt"]
    assert server.requests == []


def test_concurrent_download_into_the_same_directory_is_refused(serve, tmp_path):
    data = _ravdess_zip()
    server = serve({"/ravdess.zip": data})
    with dl._lock(tmp_path / ".ravdess.download" / ".lock"):
        with pytest.raises(dl.DownloadError, match="Another download into the same directory is running"):
            _download_ravdess(server, tmp_path, data, quiet=True)
    assert server.requests == []
    _download_ravdess(server, tmp_path, data, quiet=True)  # works once the other run ended
    assert _leftovers(tmp_path, "ravdess") == []


def test_http_error_names_status_and_url(serve, tmp_path):
    server = serve({})
    with pytest.raises(dl.HTTPStatusError, match=r"HTTP error 404 .*missing\.zip"):
        dl.download("ravdess", tmp_path / "r", url=server.url("/missing.zip"), md5="0" * 32, quiet=True)
    assert not (tmp_path / "r").exists()


def test_unreachable_server_says_the_machine_seems_offline(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/ravdess.zip"
    with pytest.raises(dl.NetworkError, match=rf"Could not connect to 127.0.0.1 to download {re.escape(url)}.*offline"):
        dl.download("ravdess", tmp_path / "r", url=url, md5="0" * 32, timeout=5.0, quiet=True)


def test_multi_file_corpus_with_mirrors_and_plain_files(serve, tmp_path, monkeypatch):
    flac = _zip({"studio001/con/s001_a.flac": b"fLaC1", "studio002/con/s002_a.flac": b"fLaC2"})
    server = serve({"/studio.zip": flac, "/labels.json": b"{}", "/demo.json": b"[]"})
    table = json.loads(dl.SOURCES_PATH.read_text())
    table["corpora"]["thaiser"]["files"] = [
        {"filename": "studio1-10.zip", "urls": [server.url("/gone.zip"), server.url("/studio.zip")],
         "size": len(flac), "md5": None, "sha256": None, "checksum_note": "test"},
        {"filename": "emotion_label.json", "urls": [server.url("/labels.json")],
         "size": None, "md5": _md5(b"{}"), "sha256": None, "checksum_note": "test"},
        {"filename": "actor_demography.json", "urls": [server.url("/demo.json")],
         "size": None, "md5": None, "sha256": None, "checksum_note": "test"},
    ]
    sources = tmp_path / "sources.json"
    sources.write_text(json.dumps(table))
    monkeypatch.setattr(dl, "SOURCES_PATH", sources)
    out = dl.download("thaiser", tmp_path / "thai", timeout=5.0, quiet=True)
    assert (out / "studio001/con/s001_a.flac").read_bytes() == b"fLaC1"
    assert (out / "emotion_label.json").read_text() == "{}"
    assert dl.check("thaiser", out).complete
    record = json.loads((out / dl.RECORD_NAME).read_text())
    assert [f["verified_by"] for f in record["files"]] == ["size", "md5", None]
    assert ("/gone.zip", None) in server.requests


def test_unverified_corpus_with_missing_files_is_refused(serve, tmp_path, monkeypatch, capsys):
    data = _zip({"MANIFEST.TXT": b"OAF_dog_sad.wav skipped: zip limit", "OAF_sad/OAF_back_sad.wav": _wav_bytes(0)})
    server = serve({"/tess.zip": data})
    table = json.loads(dl.SOURCES_PATH.read_text())
    table["corpora"]["tess"]["files"][0]["urls"] = [server.url("/tess.zip")]
    sources = tmp_path / "sources.json"
    sources.write_text(json.dumps(table))
    monkeypatch.setattr(dl, "SOURCES_PATH", sources)
    with pytest.raises(dl.LayoutError, match=r"holds 1 files matching \*\*/\*\.wav, the published corpus has 2800.*MANIFEST\.TXT"):
        dl.download("tess", tmp_path / "tess", timeout=5.0)
    assert "the checksum is NOT verified" in capsys.readouterr().err
    assert not (tmp_path / "tess").exists()


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["iemocap", "savee", "cremad"])
def test_cli_licence_gated_or_manual_corpus_prints_instructions_and_exits_2(name, tmp_path, capsys):
    assert dl.main([name, "--to", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == dl.hint(name, to=tmp_path / name)
    assert not (tmp_path / name).exists() and list(tmp_path.iterdir()) == []


def test_cli_licence_gated_corpus_already_in_place_exits_0(tmp_path, capsys):
    for speaker in ("DC", "JE", "JK", "KL"):
        (tmp_path / "savee" / speaker).mkdir(parents=True)
        for i in range(120):
            (tmp_path / "savee" / speaker / f"n{i:02d}.wav").write_bytes(b"RIFF")
    assert dl.main(["savee", "--to", str(tmp_path / "savee")]) == 0
    assert "480 files" in capsys.readouterr().err


def test_cli_download_and_errors(serve, tmp_path, capsys):
    data = _ravdess_zip()
    server = serve({"/ravdess.zip": data})
    to = tmp_path / "ravdess"
    base = ["ravdess", "--to", str(to), "--url", server.url("/ravdess.zip"), "--timeout", "5"]
    assert dl.main(base + ["--md5", "f" * 32, "--quiet"]) == 1
    assert "Checksum mismatch" in capsys.readouterr().err
    assert dl.main(base + ["--md5", "xyz"]) == 2
    assert "Received: md5='xyz'" in capsys.readouterr().err
    assert dl.main(["nope", "--to", str(to)]) == 2
    assert dl.main(base + ["--md5", _md5(data), "--keep-archives", "--quiet"]) == 0
    assert (to / RAVDESS_MEMBERS[0]).is_file()
    assert (tmp_path / ".ravdess.download" / "Audio_Speech_Actors_01-24.zip").is_file()


def test_cli_module_entry_point_list_and_gated(tmp_path):
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    listed = subprocess.run(
        [sys.executable, "-m", "speechmodel.datasets.download", "--list"],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=env,
    )
    assert listed.returncode == 0, listed.stderr
    for name, access in [("ravdess", "download"), ("iemocap", "licence-gated"), ("cremad", "manual")]:
        assert re.search(rf"^{name}\s+{access}\s", listed.stdout, re.M), listed.stdout
    gated = subprocess.run(
        [sys.executable, "-m", "speechmodel.datasets.download", "iemocap", "--to", str(tmp_path / "iemocap")],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=env,
    )
    assert gated.returncode == 2
    assert "https://sail.usc.edu/iemocap/release_form.php" in gated.stderr


# --------------------------------------------------------------------------
# pooch underneath, and what is kept on top of it
# --------------------------------------------------------------------------
def test_progress_lines_and_the_record_written_atomically(serve, tmp_path, capsys):
    data = _ravdess_zip()
    server = serve({"/ravdess.zip": data})
    out = _download_ravdess(server, tmp_path, data)
    err = capsys.readouterr().err
    assert re.search(r"Audio_Speech_Actors_01-24\.zip: [\d.]+ kB / [\d.]+ kB \(100%\)", err), err
    assert "Downloading data from" not in err and "Unzipping" not in err  # pooch's log stays quiet
    mask = os.umask(0o022)
    os.umask(mask)
    assert (out / dl.RECORD_NAME).stat().st_mode & 0o777 == 0o666 & ~mask  # speechmodel.fileio's mode
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]


def test_offline_error_names_the_manual_route_and_the_route_works(tmp_path):
    data = _ravdess_zip()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/ravdess.zip"
    with pytest.raises(dl.NetworkError) as err:
        dl.download("ravdess", tmp_path / "r", url=url, md5=_md5(data), timeout=5.0, quiet=True)
    dest = tmp_path / ".r.download" / "Audio_Speech_Actors_01-24.zip"
    assert f"Or download {url} by other means and save it as {dest}" in str(err.value)
    dest.parent.mkdir(exist_ok=True)
    dest.write_bytes(data)  # the manual route: no network needed any more
    out = dl.download("ravdess", tmp_path / "r", url=url, md5=_md5(data), timeout=5.0, quiet=True)
    assert (out / RAVDESS_MEMBERS[0]).read_bytes() == _wav_bytes(0)
    assert json.loads((out / dl.RECORD_NAME).read_text())["files"][0]["verified_by"] == "md5"


def test_duplicate_zip_member_is_refused_before_writing(tmp_path):
    archive = tmp_path / "dup.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Actor_01/a.wav", b"one")
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("Actor_01/a.wav", b"two")
    with pytest.raises(dl.CorruptArchiveError, match="twice"):
        dl.extract(archive, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
    (tmp_path / "out2" / "Actor_01").mkdir(parents=True)
    (tmp_path / "out2" / "Actor_01" / "b.wav").write_bytes(b"mine")
    other = tmp_path / "other.zip"
    other.write_bytes(_zip({"Actor_01/b.wav": b"theirs"}))
    with pytest.raises(dl.CorruptArchiveError, match="refusing to overwrite"):
        dl.extract(other, tmp_path / "out2")
    assert (tmp_path / "out2" / "Actor_01" / "b.wav").read_bytes() == b"mine"


def test_tar_member_modes_are_normalised(tmp_path):
    archive = tmp_path / "modes.tar"
    with tarfile.open(archive, "w") as tf:
        info = tarfile.TarInfo("Actor_01/x.wav")
        info.size, info.mode = 4, 0o6777  # setuid, setgid, world-writable
        tf.addfile(info, io.BytesIO(b"RIFF"))
    assert dl.extract(archive, tmp_path / "out") == 1
    mode = (tmp_path / "out" / "Actor_01" / "x.wav").stat().st_mode
    assert not mode & (stat.S_ISUID | stat.S_ISGID | stat.S_IWOTH)


def test_cli_accepts_both_flag_spellings_help_and_one_line_usage_errors(serve, tmp_path, capsys):
    data = _ravdess_zip()
    server = serve({"/ravdess.zip": data})
    keep = tmp_path / "archives"
    argv = ["ravdess", "--to", str(tmp_path / "ravdess"), "--url", server.url("/ravdess.zip"),
            "--md5", _md5(data), "--download_dir", str(keep), "--keep-archives", "--quiet"]
    assert dl.main(argv) == 0
    assert (keep / "Audio_Speech_Actors_01-24.zip").is_file()
    argv = ["ravdess", "--to", str(tmp_path / "again"), "--url", server.url("/ravdess.zip"),
            "--md5", _md5(data), "--download-dir", str(keep), "--keep_archives", "--quiet"]
    assert dl.main(argv) == 0
    capsys.readouterr()
    assert dl.main(["--help"]) == 0 and dl.main(["-h"]) == 0
    assert "--download-dir" in capsys.readouterr().out
    for bad in (["--bogus"], [], ["ravdess"], ["ravdess", "--to", "x", "--size", "big"], ["--download_dir"]):
        assert dl.main(bad) == 2, bad
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("python -m speechmodel.datasets.download: error: "), err
        assert err.rstrip().endswith("Try --help."), err
