from pathlib import Path

import pytest

from speechmodel import datasets
from speechmodel.datasets.folder import load_folder
from speechmodel.datasets.manifest import CorpusError


def _touch(root, *names):
    for name in names:
        path = Path(root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def _problems(m, root):
    return {Path(p.path).relative_to(root).as_posix(): p.reason for p in m.problems}


def test_labels_from_folders_and_suffixes(tmp_path):
    _touch(
        tmp_path,
        "happy/a.wav",
        "Anger/b.flac",  # synonym, any case
        "20190616_125714_sad.wav",  # suffix
        "neutral/c_neutral.wav",  # both, agreeing
        "neutral/d_happy.wav",  # both, disagreeing
        "misc/e.wav",  # no label anywhere
        "calm/notes.txt",  # not audio
    )
    m = load_folder(tmp_path)
    rel = {Path(u.path).relative_to(tmp_path).as_posix(): u for u in m}
    assert set(rel) == {
        "happy/a.wav",
        "Anger/b.flac",
        "20190616_125714_sad.wav",
        "neutral/c_neutral.wav",
    }
    assert (rel["Anger/b.flac"].emotion, rel["Anger/b.flac"].label) == (
        "angry",
        "Anger",
    )
    assert rel["20190616_125714_sad.wav"].emotion == "sad"
    assert {u.speaker for u in m} == {"unknown"} and {u.corpus for u in m} == {"folder"}
    problems = _problems(m, tmp_path)
    assert problems.keys() == {"neutral/d_happy.wav", "misc/e.wav"}
    assert "folder says 'neutral'" in problems["neutral/d_happy.wav"]
    assert "no emotion in the folder name" in problems["misc/e.wav"]


def test_emotion_map(tmp_path):
    _touch(tmp_path, "glee/a.wav", "irritated/b.wav")
    m = load_folder(tmp_path, emotion_map={"glee": "happy", "Irritated": "angry"})
    assert [u.emotion for u in m] == ["happy", "angry"]
    assert [u.label for u in m] == ["glee", "irritated"]
    with pytest.raises(ValueError, match="emotion_map"):
        load_folder(tmp_path, emotion_map={"glee": "elated"})


def test_speaker_pattern(tmp_path):
    _touch(tmp_path, "spk1_m/happy/a.wav", "spk2_f/sad/b.wav", "loose/sad/c.wav")
    m = load_folder(tmp_path, speaker_pattern=r"^(?P<speaker>spk\d+)_(?P<gender>[mf])/")
    assert [(u.speaker, u.gender) for u in m] == [("spk1", "male"), ("spk2", "female")]
    assert (
        "does not match 'loose/sad/c.wav'" in _problems(m, tmp_path)["loose/sad/c.wav"]
    )
    # First group, no names.
    m = load_folder(tmp_path, speaker_pattern=r"^(\w+?)_")
    assert m.speakers() == ["spk1", "spk2"]
    with pytest.raises(ValueError, match="not a valid regular expression"):
        load_folder(tmp_path, speaker_pattern="(")


def test_speakers_csv(tmp_path):
    _touch(tmp_path, "happy/a.wav", "sad/a.wav", "sad/b.wav", "sad/c.wav")
    (tmp_path / "speakers.csv").write_text(
        "path,speaker,gender\nhappy/a.wav,s1,F\nsad/a.wav,s2,m\nb.wav,s1,\n"
    )
    m = load_folder(tmp_path)
    rel = {
        Path(u.path).relative_to(tmp_path).as_posix(): (u.speaker, u.gender) for u in m
    }
    assert rel == {
        "happy/a.wav": ("s1", "female"),
        "sad/a.wav": ("s2", "male"),
        "sad/b.wav": ("s1", None),
    }
    assert "not listed in" in _problems(m, tmp_path)["sad/c.wav"]
    (tmp_path / "bad.csv").write_text("path,speaker,gender\nhappy/a.wav,s1,x\n")
    with pytest.raises(ValueError, match=r"bad.csv, line 2: gender"):
        load_folder(tmp_path, speakers_csv=tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="not both"):
        load_folder(
            tmp_path, speakers_csv=tmp_path / "speakers.csv", speaker_pattern="x"
        )


def test_speaker_emotion_layout_gives_the_speakers_and_says_what_it_found(tmp_path, caplog):
    _touch(tmp_path, "ann/happy/a.wav", "ann/sad/b.wav", "bob/Anger/c.wav", "sad/d.wav", "happy/sad/e.wav")
    with caplog.at_level("INFO", logger="speechmodel.datasets.folder"):
        m = load_folder(tmp_path)
    rel = {Path(u.path).relative_to(tmp_path).as_posix(): (u.speaker, u.emotion) for u in m}
    assert rel == {
        "ann/happy/a.wav": ("ann", "happy"),
        "ann/sad/b.wav": ("ann", "sad"),
        "bob/Anger/c.wav": ("bob", "angry"),
        "sad/d.wav": ("unknown", "sad"),  # no speaker folder
        "happy/sad/e.wav": ("unknown", "sad"),  # an emotion is no speaker
    }
    found = [r.getMessage() for r in caplog.records if r.levelname == "INFO"]
    assert any("5 clips, 2 speakers from the layout <speaker>/<emotion>/ (ann, bob), "
               "emotions angry 1, happy 1, sad 3" in line for line in found), found
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("2 of 5 clips" in line and "root/<speaker>/<emotion>/" in line for line in warned), warned
    # A speakers.csv or a pattern wins over the layout.
    m = load_folder(tmp_path, speaker_pattern=r"^(\w)")
    assert m.speakers() == ["a", "b", "h", "s"]


def test_unknown_speakers_are_refused_by_speaker_protocols(tmp_path):
    _touch(tmp_path, "happy/a.wav", "sad/b.wav", "happy/c.wav", "sad/d.wav")
    m = datasets.load("folder", tmp_path)
    with pytest.raises(ValueError, match="speaker 'unknown'.*speaker_pattern"):
        datasets.make_folds(m, "kfold", k=2)
    # Training on everything without validation needs no speakers.
    (fold,) = datasets.make_folds(m, "all", val_speakers=0)
    assert len(fold.train) == 4 and fold.val == () and fold.test == ()


def test_wrong_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(CorpusError, match="no audio file") as info:
        load_folder(tmp_path)
    assert info.value.corpus == "folder"
