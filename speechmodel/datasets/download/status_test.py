"""Tests of the corpus sources, ``check`` and ``hint``."""

from __future__ import annotations

import json
import os
import re

import pytest

from speechmodel.datasets import download as dl
from speechmodel.datasets import registry
from speechmodel.datasets.download import cli, status
from speechmodel.tests.download_server import wav_bytes
from tests.paths import RAVDESS

SHARED_RAVDESS = RAVDESS


def test_sources_describe_every_corpus_with_licence_and_access():
    table = dl.load_sources()
    assert {"ravdess", "emodb", "tess", "cremad", "savee", "iemocap", "thaiser"} <= set(table)
    for key, src in table.items():
        assert src["licence"] and src["licence_url"].startswith("http"), key
        assert src["access"] in registry.ACCESS_KINDS, key
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
    bad = json.loads(status.SOURCES_PATH.read_text())
    bad["corpora"]["ravdess"]["files"][0]["md5"] = "not-a-checksum"
    path = tmp_path / "sources.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=r"ravdess.*md5.*not-a-checksum"):
        dl.load_sources(path)


@pytest.mark.parametrize("name", sorted(json.loads(status.SOURCES_PATH.read_text())["corpora"]))
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


@pytest.mark.skipif(not SHARED_RAVDESS.is_dir(), reason=f"real RAVDESS not found at {SHARED_RAVDESS}")
def test_real_ravdess_directory_is_complete_and_left_alone(capsys):
    before = sorted(os.listdir(SHARED_RAVDESS.parent))
    status = dl.check("ravdess", SHARED_RAVDESS)
    assert status.complete and status.found == status.expected == 1440
    assert cli.main(["ravdess", "--to", str(SHARED_RAVDESS)]) == 0
    assert "nothing to do" in capsys.readouterr().err
    assert sorted(os.listdir(SHARED_RAVDESS.parent)) == before


def test_check_reports_missing_partial_nested_and_lfs_pointer(tmp_path):
    assert "does not exist" in dl.check("ravdess", tmp_path / "absent").message
    nested = tmp_path / "outer" / "Audio_Speech"
    (nested / "Actor_01").mkdir(parents=True)
    (nested / "Actor_01" / "03-01-01-01-01-01-01.wav").write_bytes(wav_bytes(0))
    status = dl.check("ravdess", tmp_path / "outer")
    assert not status.complete and "use that directory instead" in status.message and str(nested) in status.message
    status = dl.check("ravdess", nested)
    assert not status.complete and status.message.startswith("found 1 of 1440")
    crema = tmp_path / "crema" / "AudioWAV"
    crema.mkdir(parents=True)
    (crema / "1001_DFA_ANG_XX.wav").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\n")
    status = dl.check("cremad", crema.parent)
    assert not status.complete and "Git LFS pointer" in status.message and "git lfs pull" in status.message
