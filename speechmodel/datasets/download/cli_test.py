"""Tests of ``python -m speechmodel.datasets.download``."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from speechmodel.datasets import download as dl
from speechmodel.datasets.download import cli
from speechmodel.tests.download_server import RAVDESS_MEMBERS, md5, ravdess_zip
from tests.paths import REPO


@pytest.mark.parametrize("name", ["iemocap", "savee", "cremad"])
def test_cli_licence_gated_or_manual_corpus_prints_instructions_and_exits_2(name, tmp_path, capsys):
    assert cli.main([name, "--to", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == dl.hint(name, to=tmp_path / name)
    assert not (tmp_path / name).exists() and list(tmp_path.iterdir()) == []


def test_cli_licence_gated_corpus_already_in_place_exits_0(tmp_path, capsys):
    for speaker in ("DC", "JE", "JK", "KL"):
        (tmp_path / "savee" / speaker).mkdir(parents=True)
        for i in range(120):
            (tmp_path / "savee" / speaker / f"n{i:02d}.wav").write_bytes(b"RIFF")
    assert cli.main(["savee", "--to", str(tmp_path / "savee")]) == 0
    assert "480 files" in capsys.readouterr().err


def test_cli_download_and_errors(serve, tmp_path, capsys):
    data = ravdess_zip()
    server = serve({"/ravdess.zip": data})
    to = tmp_path / "ravdess"
    base = ["ravdess", "--to", str(to), "--url", server.url("/ravdess.zip"), "--timeout", "5"]
    assert cli.main(base + ["--md5", "f" * 32, "--quiet"]) == 1
    assert "Checksum mismatch" in capsys.readouterr().err
    assert cli.main(base + ["--md5", "xyz"]) == 2
    assert "Received: md5='xyz'" in capsys.readouterr().err
    assert cli.main(["nope", "--to", str(to)]) == 2
    assert cli.main(base + ["--md5", md5(data), "--keep-archives", "--quiet"]) == 0
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


def test_cli_accepts_both_flag_spellings_help_and_one_line_usage_errors(serve, tmp_path, capsys):
    data = ravdess_zip()
    server = serve({"/ravdess.zip": data})
    keep = tmp_path / "archives"
    argv = ["ravdess", "--to", str(tmp_path / "ravdess"), "--url", server.url("/ravdess.zip"),
            "--md5", md5(data), "--download_dir", str(keep), "--keep-archives", "--quiet"]
    assert cli.main(argv) == 0
    assert (keep / "Audio_Speech_Actors_01-24.zip").is_file()
    argv = ["ravdess", "--to", str(tmp_path / "again"), "--url", server.url("/ravdess.zip"),
            "--md5", md5(data), "--download-dir", str(keep), "--keep_archives", "--quiet"]
    assert cli.main(argv) == 0
    capsys.readouterr()
    assert cli.main(["--help"]) == 0 and cli.main(["-h"]) == 0
    assert "--download-dir" in capsys.readouterr().out
    for bad in (["--bogus"], [], ["ravdess"], ["ravdess", "--to", "x", "--size", "big"], ["--download_dir"]):
        assert cli.main(bad) == 2, bad
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("python -m speechmodel.datasets.download: error: "), err
        assert err.rstrip().endswith("Try --help."), err
