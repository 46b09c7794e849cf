"""Tests of ``download``: installing a corpus, offline against a local HTTP server (the ``serve`` fixture)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from speechmodel import datasets
from speechmodel.datasets import download as dl
from speechmodel.datasets.download import archives, cli, install, status
from speechmodel.tests.download_server import RAVDESS_MEMBERS, download_ravdess, leftovers, md5, ravdess_zip, wav_bytes, zip_bytes


def test_download_verifies_checksum_and_installs_the_loader_layout(serve, tmp_path, capsys):
    data = ravdess_zip()
    server = serve({"/ravdess.zip": data})
    out = download_ravdess(server, tmp_path, data)
    assert out == tmp_path / "ravdess"
    got = sorted(str(p.relative_to(out)) for p in out.rglob("*.wav"))
    assert got == sorted(RAVDESS_MEMBERS)
    assert (out / RAVDESS_MEMBERS[0]).read_bytes() == wav_bytes(0)
    record = json.loads((out / status.RECORD_NAME).read_text())
    assert record["corpus"] == "ravdess" and record["licence"] == "CC BY-NC-SA 4.0"
    assert record["files"][0]["md5"] == md5(data) and record["files"][0]["verified_by"] == "md5"
    assert record["layout"]["files"] == 4
    err = capsys.readouterr().err
    assert "holds 4 files" in err and "has 1440" in err  # own checksum: warned, not refused
    assert leftovers(tmp_path, "ravdess") == []  # no .part, archive, staging or lock left
    manifest = datasets.load("ravdess", out)  # the loader reads what was installed
    assert len(manifest) == 4 and not manifest.problems
    mask = os.umask(0o022)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~mask  # not mkdtemp's 0700


def test_archive_with_a_wrapping_folder_is_unwrapped(serve, tmp_path, capsys):
    data = zip_bytes({**{"Audio_Speech/" + m: wav_bytes(1) for m in RAVDESS_MEMBERS}, "README.txt": b"x"})
    server = serve({"/ravdess.zip": data})
    out = download_ravdess(server, tmp_path, data)
    assert (out / RAVDESS_MEMBERS[0]).is_file() and not (out / "README.txt").exists()
    assert "not installing the 1 file(s) outside it: README.txt" in capsys.readouterr().err


def test_second_run_on_a_complete_directory_does_nothing(serve, tmp_path, capsys):
    data = ravdess_zip()
    server = serve({"/ravdess.zip": data})
    download_ravdess(server, tmp_path, data)
    n_requests = len(server.requests)
    capsys.readouterr()
    assert cli.main(["ravdess", "--to", str(tmp_path / "ravdess"), "--url", server.url("/ravdess.zip")]) == 0
    assert "already holds the complete corpus" in capsys.readouterr().err
    assert len(server.requests) == n_requests


def test_interrupted_install_leaves_no_half_directory_and_reuses_the_archive(serve, tmp_path, monkeypatch):
    data = ravdess_zip()
    server = serve({"/ravdess.zip": data})
    real_extract = dl.extract

    def extract_then_interrupt(archive, dest):
        real_extract(archive, dest)
        assert any(Path(dest).rglob("*.wav"))  # files were written, but only into staging
        raise KeyboardInterrupt

    monkeypatch.setattr(archives, "extract", extract_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        download_ravdess(server, tmp_path, data, quiet=True)
    assert not (tmp_path / "ravdess").exists()
    assert [p.name for p in tmp_path.iterdir() if ".extract-" in p.name] == []
    monkeypatch.setattr(archives, "extract", real_extract)
    n_requests = len(server.requests)
    out = download_ravdess(server, tmp_path, data, quiet=True)
    assert len(server.requests) == n_requests  # the verified archive was reused
    assert dl.check("ravdess", out).message.endswith("as recorded by its download")


def test_url_override_keeps_the_published_checksum(serve, tmp_path):
    data = ravdess_zip()
    server = serve({"/ravdess.zip": data})
    with pytest.raises(dl.ChecksumError, match=rf"announces {len(data)} bytes but the published size is 208468073"):
        dl.download("ravdess", tmp_path / "ravdess", url=server.url("/ravdess.zip"), timeout=5.0, quiet=True)
    assert not (tmp_path / "ravdess").exists()


def test_wrong_layout_is_refused_and_the_archive_kept(serve, tmp_path):
    data = zip_bytes({"speaker1/a.wav": wav_bytes(0)})
    server = serve({"/ravdess.zip": data})
    with pytest.raises(dl.LayoutError, match=r"does not contain files matching Actor_\*/\*\.wav"):
        download_ravdess(server, tmp_path, data, quiet=True)
    assert not (tmp_path / "ravdess").exists()
    assert (tmp_path / ".ravdess.download" / "Audio_Speech_Actors_01-24.zip").is_file()


def test_existing_non_empty_directory_is_not_touched(serve, tmp_path):
    data = ravdess_zip()
    server = serve({"/ravdess.zip": data})
    (tmp_path / "ravdess").mkdir()
    (tmp_path / "ravdess" / "notes.txt").write_text("mine")
    with pytest.raises(dl.DownloadError, match="exists and is not empty.*Nothing was changed"):
        download_ravdess(server, tmp_path, data, quiet=True)
    assert os.listdir(tmp_path / "ravdess") == ["notes.txt"]
    assert server.requests == []


def test_concurrent_download_into_the_same_directory_is_refused(serve, tmp_path):
    data = ravdess_zip()
    server = serve({"/ravdess.zip": data})
    with install._lock(tmp_path / ".ravdess.download" / ".lock"):
        with pytest.raises(dl.DownloadError, match="Another download into the same directory is running"):
            download_ravdess(server, tmp_path, data, quiet=True)
    assert server.requests == []
    download_ravdess(server, tmp_path, data, quiet=True)  # works once the other run ended
    assert leftovers(tmp_path, "ravdess") == []


def test_multi_file_corpus_with_mirrors_and_plain_files(serve, tmp_path, monkeypatch):
    flac = zip_bytes({"studio001/con/s001_a.flac": b"fLaC1", "studio002/con/s002_a.flac": b"fLaC2"})
    server = serve({"/studio.zip": flac, "/labels.json": b"{}", "/demo.json": b"[]"})
    table = json.loads(status.SOURCES_PATH.read_text())
    table["corpora"]["thaiser"]["files"] = [
        {"filename": "studio1-10.zip", "urls": [server.url("/gone.zip"), server.url("/studio.zip")],
         "size": len(flac), "md5": None, "sha256": None, "checksum_note": "test"},
        {"filename": "emotion_label.json", "urls": [server.url("/labels.json")],
         "size": None, "md5": md5(b"{}"), "sha256": None, "checksum_note": "test"},
        {"filename": "actor_demography.json", "urls": [server.url("/demo.json")],
         "size": None, "md5": None, "sha256": None, "checksum_note": "test"},
    ]
    sources = tmp_path / "sources.json"
    sources.write_text(json.dumps(table))
    monkeypatch.setattr(status, "SOURCES_PATH", sources)
    out = dl.download("thaiser", tmp_path / "thai", timeout=5.0, quiet=True)
    assert (out / "studio001/con/s001_a.flac").read_bytes() == b"fLaC1"
    assert (out / "emotion_label.json").read_text() == "{}"
    assert dl.check("thaiser", out).complete
    record = json.loads((out / status.RECORD_NAME).read_text())
    assert [f["verified_by"] for f in record["files"]] == ["size", "md5", None]
    assert ("/gone.zip", None) in server.requests


def test_unverified_corpus_with_missing_files_is_refused(serve, tmp_path, monkeypatch, capsys):
    data = zip_bytes({"MANIFEST.TXT": b"OAF_dog_sad.wav skipped: zip limit", "OAF_sad/OAF_back_sad.wav": wav_bytes(0)})
    server = serve({"/tess.zip": data})
    table = json.loads(status.SOURCES_PATH.read_text())
    table["corpora"]["tess"]["files"][0]["urls"] = [server.url("/tess.zip")]
    sources = tmp_path / "sources.json"
    sources.write_text(json.dumps(table))
    monkeypatch.setattr(status, "SOURCES_PATH", sources)
    with pytest.raises(dl.LayoutError, match=r"holds 1 files matching \*\*/\*\.wav, the published corpus has 2800.*MANIFEST\.TXT"):
        dl.download("tess", tmp_path / "tess", timeout=5.0)
    assert "the checksum is NOT verified" in capsys.readouterr().err
    assert not (tmp_path / "tess").exists()
