"""Tests of safe extraction."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from speechmodel.datasets import download as dl
from speechmodel.tests.download_server import RAVDESS_MEMBERS, download_ravdess, ravdess_zip, wav_bytes, zip_bytes


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
    members = {m: wav_bytes(0) for m in RAVDESS_MEMBERS}
    members.update(evil.get("members", {}))
    data = zip_bytes(members, evil.get("symlinks"))
    server = serve({"/ravdess.zip": data})
    with pytest.raises(dl.UnsafeArchiveError, match="Nothing was extracted"):
        download_ravdess(server, tmp_path, data, quiet=True)
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
    good.write_bytes(tar({m: wav_bytes(2) for m in RAVDESS_MEMBERS}))
    assert dl.extract(good, tmp_path / "good") == 4
    assert (tmp_path / "good" / RAVDESS_MEMBERS[0]).read_bytes() == wav_bytes(2)
    evil = tmp_path / "evil.tar.gz"
    evil.write_bytes(tar({"ok.wav": b"x", "../evil.wav": b"x"}))
    with pytest.raises(dl.UnsafeArchiveError):
        dl.extract(evil, tmp_path / "bad")
    assert not (tmp_path / "evil.wav").exists() and not (tmp_path / "bad" / "ok.wav").exists()


def test_corrupt_archive_is_deleted_with_a_clear_error(serve, tmp_path):
    data = ravdess_zip()
    broken = bytearray(data)
    broken[60:70] = b"\xff" * 10  # inside the first member's compressed data
    broken = bytes(broken)
    server = serve({"/ravdess.zip": broken})
    with pytest.raises(dl.CorruptArchiveError, match="not a valid zip archive.*deleted"):
        download_ravdess(server, tmp_path, broken, quiet=True)
    assert not (tmp_path / "ravdess").exists()
    assert list((tmp_path / ".ravdess.download").glob("*.zip")) == []


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
    other.write_bytes(zip_bytes({"Actor_01/b.wav": b"theirs"}))
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
