import os
from pathlib import Path

import numpy as np
import pytest

from speechmodel import datasets
from speechmodel.datasets.emospeech import load_emospeech
from speechmodel.datasets.manifest import CorpusError, Manifest
from tests.paths import emospeech_dir

HEADER = "path,emotion,speaker,keyword,environment,location,source_file"


def _row(path, emotion="calm", speaker="unknown_user", keyword="help"):
    location = path.split("/")[0]
    return f"{path},{emotion},{speaker},{keyword},safe,{location},{path[:-5]}.wav"


def _corpus(root, rows, files):
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "data.csv").write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    return root


def test_real_emospeech_acceptance_counts():
    m = load_emospeech(emospeech_dir())
    assert len(m) == 6624 and m.problems == () and m.excluded == {}
    assert m.expected == 6624 and not m.incomplete()
    assert m.counts("emotion") == {"calm": 2945, "happy": 969, "angry": 1134, "fearful": 1576}
    speakers = m.counts("speaker")
    assert len(speakers) == 107 and speakers["unknown_user"] == 4601
    assert sum(v for k, v in speakers.items() if k != "unknown_user") == 2023
    assert m.train_only_speakers() == ["unknown_user"]
    locations = {}
    for u in m:
        locations[u.get("location")] = locations.get(u.get("location"), 0) + 1
        assert Path(u.path).is_file() and u.path.endswith(".opus")
        # Every located clip is unknown_user; identified users are webservice clips.
        if u.get("location") != "webservice":
            assert u.speaker == "unknown_user"
        assert (u.get("train_only") == "yes") == (u.speaker == "unknown_user")
        assert u.text == u.get("keyword") and f"-{u.label}-" in os.path.basename(u.path)
    assert locations == {"webservice": 2227, "House": 1878, "Misc": 1769, "Roads": 577, "Near Lake": 124,
                         "Railway": 39, "Metro": 10}
    assert datasets.load("emospeech", emospeech_dir()) == m


def test_real_unknown_user_only_trains_in_every_protocol():
    m = load_emospeech(emospeech_dir())
    for protocol, options in (("kfold", {"k": 5}), ("all", {}), ("holdout", {})):
        for fold in datasets.make_folds(m, protocol, **options):
            assert "unknown_user" in fold.train_speakers
            assert "unknown_user" not in fold.val_speakers + fold.test_speakers
            assert all(m[i].speaker != "unknown_user" for i in fold.val + fold.test)
            assert fold.val_speakers  # held-out identified users
    with pytest.raises(ValueError, match="may only train"):
        datasets.make_folds(m, "all", val_speakers=["unknown_user"])


def test_real_opus_files_decode():
    from speechmodel.audio import load_audio, read_info

    m = load_emospeech(emospeech_dir())
    for u in [m[i] for i in np.linspace(0, len(m) - 1, 8).astype(int)]:
        info = read_info(u.path)
        assert (info.format, info.subtype, info.channels) == ("OGG", "OPUS", 1)
        y = load_audio(u.path)
        assert np.isfinite(y).all() and 1.9 < len(y) / 16000 < 3.8


def test_real_manifest_csv_round_trip(tmp_path):
    m = load_emospeech(emospeech_dir())[:40]
    m.to_csv(tmp_path / "m.csv")
    assert list(Manifest.from_csv(tmp_path / "m.csv")) == list(m)


def test_every_problem_is_reported_never_dropped(tmp_path):
    good = "webservice/go-safe-happy-1-aaaaaaaaaaaa0000.opus"
    rows = [
        _row(good, "happy", "aaaaaaaaaaaa"),
        _row("House/no-safe-calm-2-x.opus"),  # found as .wav
        _row("House/missing-safe-calm-3-x.opus"),
        _row("House/stop-safe-sad-4-x.opus", "sad"),  # not an emotion of the corpus
        _row("House/yes-safe-calm-5-x.opus", speaker=""),
        _row("../outside.opus"),
        _row(good, "happy", "aaaaaaaaaaaa"),  # repeated
        _row("House/go-safe-calm-6-x.opus") + ",extra",
    ]
    files = [good, "House/no-safe-calm-2-x.wav", "House/stop-safe-sad-4-x.opus",
             "House/yes-safe-calm-5-x.opus", "House/go-safe-calm-6-x.opus", "Misc/unlisted.opus",
             "Misc/.hidden.opus"]
    root = _corpus(tmp_path / "emo", rows, files)
    m = load_emospeech(root)
    assert [os.path.relpath(u.path, root) for u in m] == [good, "House/no-safe-calm-2-x.wav"]
    assert m.train_only_speakers() == ["unknown_user"]
    problems = {os.path.relpath(p.path, root): p.reason for p in m.problems}
    assert "not found" in problems["data.csv:4"]
    assert "unknown emotion 'sad'" in problems["data.csv:5"]
    assert "empty speaker" in problems["data.csv:6"]
    assert "outside the corpus folder" in problems["data.csv:7"]
    assert "duplicate" in problems["data.csv:8"]
    assert "more cells" in problems["data.csv:9"]
    assert problems["Misc/unlisted.opus"] == "not listed in data.csv"
    assert "House/go-safe-calm-6-x.opus" in problems  # its row was malformed
    assert len(m) + len(m.problems) == len(rows) + 2  # every row and every file accounted for
    assert sum(m.excluded.values()) == 1


@pytest.mark.parametrize("setup,found", [
    (lambda root: root.mkdir(), "no data.csv"),
    (lambda root: _corpus(root, [], []) and (root / "data.csv").write_text("a,b\n1,2\n"), "without the columns"),
    (lambda root: _corpus(root, [], []), "lists no clip"),
])
def test_not_the_corpus(tmp_path, setup, found):
    root = tmp_path / "emo"
    setup(root)
    with pytest.raises(CorpusError) as info:
        load_emospeech(root)
    assert info.value.corpus == "emospeech" and found in str(info.value)


def test_registered():
    assert datasets.CORPORA["emospeech"] is load_emospeech
    assert datasets.corpus_name("EmoSpeech") == "emospeech"
    assert datasets.corpus("emospeech").licence == "CC BY-NC-SA 4.0"
