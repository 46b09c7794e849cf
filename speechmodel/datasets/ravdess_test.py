from pathlib import Path

import pytest

from speechmodel import datasets
from speechmodel.datasets.manifest import CorpusError
from speechmodel.datasets.ravdess import load_ravdess, parse_name
from tests.paths import RAVDESS

REAL = RAVDESS


def _touch(root, *names):
    for name in names:
        path = Path(root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


@pytest.mark.skipif(not REAL.is_dir(), reason=f"RAVDESS copy not found at {REAL}")
def test_real_ravdess_acceptance_counts():
    m = load_ravdess(REAL)
    assert len(m) == 1440
    assert m.problems == ()
    assert m.excluded == {}
    assert m.expected == 1440 and not m.incomplete()
    assert m.speakers() == [f"{i:02d}" for i in range(1, 25)]
    counts = m.counts("emotion")
    assert len(counts) == 8
    assert counts["neutral"] == 96
    assert all(counts[e] == 192 for e in counts if e != "neutral")
    assert set(m.counts("speaker").values()) == {60}
    genders = m.speaker_genders()
    assert genders["01"] == "male" and genders["24"] == "female"
    assert list(genders.values()).count("female") == 12
    for u in m:
        assert Path(u.path).is_file() and Path(u.path).is_absolute()
        assert Path(u.path).parent.name == f"Actor_{u.speaker}"


def test_parse_name_fields_and_errors():
    f = parse_name("03-01-06-02-01-02-12")
    assert f == {
        "modality": "03",
        "channel": "01",
        "emotion": "06",
        "intensity": "02",
        "statement": "01",
        "repetition": "02",
        "actor": "12",
    }
    for stem, message in [
        ("03-01-06-02-01", "scheme"),
        ("01-01-06-02-01-02-12", "modality 01"),
        ("03-01-09-01-01-01-01", "emotion code 09"),
        ("03-01-01-02-01-01-01", "neutral"),
        ("03-01-05-01-01-01-25", "actor 25"),
        ("03-02-07-01-01-01-01", "song"),
        ("03-03-05-01-01-01-01", "vocal channel 03"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_name(stem)


def test_fixture_tree_odd_cases(tmp_path):
    _touch(
        tmp_path,
        "Actor_01/03-01-05-01-01-01-01.wav",
        "Actor_01/03-01-01-01-01-01-01.wav",
        "Actor_02/03-01-03-02-02-02-02.wav",
        "Actor_02/03-01-05-01-02-01-01.wav",  # actor 01 in Actor_02
        "Actor_01/03-01-09-01-01-01-01.wav",  # unknown emotion code
        "Actor_01/notes.wav",  # unparseable
        "copy/Actor_01/03-01-05-01-01-01-01.wav",  # duplicate
        "Actor_01/03-02-03-01-01-01-01.wav",  # song: excluded by default
        "Actor_01/._03-01-05-01-01-01-01.wav",  # macOS resource fork
        "Actor_01/readme.txt",  # not audio: ignored
    )
    m = load_ravdess(tmp_path)
    assert [Path(u.path).name for u in m] == [
        "03-01-01-01-01-01-01.wav",
        "03-01-05-01-01-01-01.wav",
        "03-01-03-02-02-02-02.wav",
    ]
    assert all("copy" not in u.path for u in m)
    u = m[2]
    assert (u.corpus, u.emotion, u.label, u.speaker, u.gender) == (
        "ravdess",
        "happy",
        "03",
        "02",
        "female",
    )
    assert (u.text, u.intensity, u.get("channel"), u.get("repetition")) == (
        "02",
        "strong",
        "speech",
        "02",
    )
    problems = {
        Path(p.path).relative_to(tmp_path).as_posix(): p.reason for p in m.problems
    }
    assert set(problems) == {
        "Actor_02/03-01-05-01-02-01-01.wav",
        "Actor_01/03-01-09-01-01-01-01.wav",
        "Actor_01/notes.wav",
        "copy/Actor_01/03-01-05-01-01-01-01.wav",
    }
    assert "folder Actor_02" in problems["Actor_02/03-01-05-01-02-01-01.wav"]
    assert "unknown emotion code 09" in problems["Actor_01/03-01-09-01-01-01-01.wav"]
    assert "does not follow the RAVDESS scheme" in problems["Actor_01/notes.wav"]
    assert "duplicate of" in problems["copy/Actor_01/03-01-05-01-01-01-01.wav"]
    assert m.excluded == {
        "song part (vocal channel 02); pass include_song=True": 1,
        "hidden files (names starting with '.', e.g. macOS ._ copies)": 1,
    }
    assert "problems: 4" in m.summary()


def test_include_song(tmp_path):
    _touch(
        tmp_path,
        "Actor_01/03-02-03-01-01-01-01.wav",
        "Actor_01/03-01-03-01-01-01-01.wav",
    )
    m = load_ravdess(tmp_path, include_song=True)
    assert [u.get("channel") for u in m] == ["speech", "song"]
    assert m.excluded == {}
    assert m.expected == 1440 + 1012 and m.incomplete()


def test_flat_layout_is_accepted(tmp_path):
    _touch(tmp_path, "03-01-05-01-01-01-07.wav", "03-01-05-01-01-01-08.wav")
    m = load_ravdess(tmp_path)
    assert m.speakers() == ["07", "08"] and m.problems == ()


def test_wrong_directory_raises_corpus_error(tmp_path):
    with pytest.raises(CorpusError, match="no such directory") as info:
        load_ravdess(tmp_path / "missing")
    assert info.value.corpus == "ravdess"
    _touch(tmp_path, "wav/03a01Fa.wav", "wav/03a01Wa.wav")
    with pytest.raises(
        CorpusError, match=r"Expected: folders Actor_01 \.\.\. Actor_24"
    ) as info:
        load_ravdess(tmp_path)
    assert "none named like RAVDESS" in str(info.value) and "wav" in info.value.found
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CorpusError, match="an empty directory"):
        load_ravdess(empty)


def test_load_by_name(tmp_path):
    _touch(tmp_path, "Actor_01/03-01-05-01-01-01-01.wav")
    assert len(datasets.load("RAVDESS", tmp_path)) == 1
    with pytest.raises(ValueError, match=r"\['include_songs'\].*include_song"):
        datasets.load("ravdess", tmp_path, include_songs=True)
