"""Tests of ``fetch`` (through ``download``), offline against a local HTTP server (the ``serve`` fixture)."""

from __future__ import annotations

import json
import os
import re
import socket

import pytest

from speechmodel.datasets import download as dl
from speechmodel.datasets.download import status
from speechmodel.tests.download_server import RAVDESS_MEMBERS, download_ravdess, leftovers, md5, ravdess_zip, wav_bytes


def test_truncated_download_is_kept_and_resumed_with_range(serve, tmp_path):
    data = ravdess_zip()
    server = serve({"/ravdess.zip": data}, truncate_first=1000)
    with pytest.raises(dl.IncompleteDownloadError, match=r"after 1000 of \d+ bytes.*run the same command again"):
        download_ravdess(server, tmp_path, data, retries=0, quiet=True)
    part = tmp_path / ".ravdess.download" / "Audio_Speech_Actors_01-24.zip.part"
    assert part.stat().st_size == 1000
    assert not (tmp_path / "ravdess").exists()
    out = download_ravdess(server, tmp_path, data, quiet=True)
    assert server.requests[-1] == ("/ravdess.zip", "bytes=1000-")
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.wav")) == sorted(RAVDESS_MEMBERS)
    assert leftovers(tmp_path, "ravdess") == []


def test_truncated_download_resumes_automatically(serve, tmp_path):
    data = ravdess_zip()
    server = serve({"/ravdess.zip": data}, truncate_first=700)
    download_ravdess(server, tmp_path, data, retries=2, quiet=True)
    assert [r for _, r in server.requests] == [None, "bytes=700-"]


def test_server_ignoring_range_restarts_cleanly(serve, tmp_path, capsys):
    data = ravdess_zip()
    server = serve({"/ravdess.zip": data}, ignore_range=True)
    part = tmp_path / ".ravdess.download" / "Audio_Speech_Actors_01-24.zip.part"
    part.parent.mkdir()
    part.write_bytes(b"stale bytes from another file" * 10)
    out = download_ravdess(server, tmp_path, data)
    assert server.requests == [("/ravdess.zip", f"bytes={len(b'stale bytes from another file') * 10}-")]
    assert "does not support resuming" in capsys.readouterr().err
    assert (out / RAVDESS_MEMBERS[-1]).read_bytes() == wav_bytes(3)


def test_complete_part_file_is_finished_without_downloading_again(serve, tmp_path):
    data = ravdess_zip()
    server = serve({"/ravdess.zip": data})
    part = tmp_path / ".ravdess.download" / "Audio_Speech_Actors_01-24.zip.part"
    part.parent.mkdir()
    part.write_bytes(data)  # e.g. killed between the last byte and the rename
    out = download_ravdess(server, tmp_path, data, quiet=True)
    assert server.requests == [("/ravdess.zip", f"bytes={len(data)}-")]  # answered 416: nothing to fetch
    assert (out / RAVDESS_MEMBERS[0]).is_file()


def test_checksum_mismatch_keeps_nothing(serve, tmp_path):
    data = ravdess_zip()
    server = serve({"/ravdess.zip": data})
    wrong = "0" * 32
    with pytest.raises(dl.ChecksumError) as err:
        download_ravdess(server, tmp_path, data, md5=wrong)
    assert f"expected md5 {wrong}, got {md5(data)}" in str(err.value)
    assert not (tmp_path / "ravdess").exists()
    assert list(tmp_path.iterdir()) == []  # no part, archive, staging or lock left


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


def test_progress_lines_and_the_record_written_atomically(serve, tmp_path, capsys):
    data = ravdess_zip()
    server = serve({"/ravdess.zip": data})
    out = download_ravdess(server, tmp_path, data)
    err = capsys.readouterr().err
    assert re.search(r"Audio_Speech_Actors_01-24\.zip: [\d.]+ kB / [\d.]+ kB \(100%\)", err), err
    assert "Downloading data from" not in err and "Unzipping" not in err  # pooch's log stays quiet
    mask = os.umask(0o022)
    os.umask(mask)
    assert (out / status.RECORD_NAME).stat().st_mode & 0o777 == 0o666 & ~mask  # speechmodel.fileio's mode
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]


def test_offline_error_names_the_manual_route_and_the_route_works(tmp_path):
    data = ravdess_zip()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/ravdess.zip"
    with pytest.raises(dl.NetworkError) as err:
        dl.download("ravdess", tmp_path / "r", url=url, md5=md5(data), timeout=5.0, quiet=True)
    dest = tmp_path / ".r.download" / "Audio_Speech_Actors_01-24.zip"
    assert f"Or download {url} by other means and save it as {dest}" in str(err.value)
    dest.parent.mkdir(exist_ok=True)
    dest.write_bytes(data)  # the manual route: no network needed any more
    out = dl.download("ravdess", tmp_path / "r", url=url, md5=md5(data), timeout=5.0, quiet=True)
    assert (out / RAVDESS_MEMBERS[0]).read_bytes() == wav_bytes(0)
    assert json.loads((out / status.RECORD_NAME).read_text())["files"][0]["verified_by"] == "md5"
