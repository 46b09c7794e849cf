from pathlib import Path

import pytest

from speechmodel import datasets
from speechmodel.datasets.csv_manifest import load_csv
from speechmodel.datasets.manifest import CorpusError, Manifest


def _touch(root, *names):
    for name in names:
        path = Path(root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def test_rows_and_problems(tmp_path):
    _touch(tmp_path, "audio/a.wav", "audio/b.wav", "audio/c.wav", "audio/d.wav")
    (tmp_path / "list.csv").write_text(
        "path,emotion,speaker,gender,session,room\n"
        "audio/a.wav,Anger,s1,f,day1,A\n"
        f"{tmp_path / 'audio' / 'b.wav'},sad,s2,male,,\n"
        "audio/c.wav,elated,s1,,,\n"  # unknown emotion
        "audio/missing.wav,sad,s1,,,\n"  # file missing
        "audio/a.wav,sad,s1,,,\n"  # same path again
        "audio/d.wav,neutral,,x,,\n"  # bad gender
    )
    m = load_csv(tmp_path / "list.csv")
    assert [Path(u.path).name for u in m] == ["a.wav", "b.wav"]
    a = m[0]
    assert (a.emotion, a.label, a.speaker, a.gender, a.session, a.corpus) == (
        "angry",
        "Anger",
        "s1",
        "female",
        "day1",
        "csv",
    )
    assert a.extra == (("room", "A"),)
    problems = {p.path.rsplit(":", 1)[1]: p.reason for p in m.problems}
    assert problems.keys() == {"4", "5", "6", "7"}
    assert "elated" in problems["4"]
    assert "audio file not found" in problems["5"]
    assert "duplicate of" in problems["6"]
    assert "gender" in problems["7"]
    assert all(p.path.startswith(str(tmp_path / "list.csv")) for p in m.problems)


def test_emotion_map_and_empty_speaker(tmp_path):
    _touch(tmp_path, "a.wav")
    (tmp_path / "manifest.csv").write_text("path,emotion,speaker\na.wav,glee,\n")
    m = datasets.load(
        "csv", tmp_path, emotion_map={"glee": "happy"}
    )  # folder -> manifest.csv
    assert (m[0].emotion, m[0].speaker) == ("happy", "unknown")


def test_reads_to_csv_output(tmp_path):
    _touch(
        tmp_path,
        "Actor_01/03-01-05-01-01-01-01.wav",
        "Actor_02/03-01-03-02-02-02-02.wav",
    )
    m = datasets.load("ravdess", tmp_path)
    m.to_csv(tmp_path / "ravdess.csv")
    back = load_csv(tmp_path / "ravdess.csv")
    assert back.utterances == m.utterances
    assert Manifest.from_csv(tmp_path / "ravdess.csv").utterances == m.utterances


def test_wrong_input(tmp_path):
    with pytest.raises(CorpusError, match="no such file") as info:
        load_csv(tmp_path / "none.csv")
    assert info.value.corpus == "csv"
    with pytest.raises(CorpusError, match="without manifest.csv"):
        load_csv(tmp_path)
    (tmp_path / "x.csv").write_text("file,label\na.wav,sad\n")
    with pytest.raises(CorpusError, match=r"missing \['path', 'emotion', 'speaker'\]"):
        load_csv(tmp_path / "x.csv")
