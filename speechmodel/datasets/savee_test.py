from pathlib import Path

import pytest

from speechmodel.datasets.manifest import CorpusError
from speechmodel.datasets.savee import SPEAKERS, load_savee, parse_name

CODES = ("a", "d", "f", "h", "n", "sa", "su")


def _touch(root, *names):
    for name in names:
        path = Path(root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def test_parse_name():
    assert parse_name("sa12") == {"speaker": None, "emotion": "sa", "number": "12"}
    assert parse_name("DC_su01") == {"speaker": "DC", "emotion": "su", "number": "01"}
    assert parse_name("JK_n30")["number"] == "30"
    for stem, message in [
        ("x01", "scheme"),
        ("AB_a01", "speaker AB"),
        ("a16", "out of range 01-15"),
        ("n31", "out of range 01-30"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_name(stem)


def test_official_layout(tmp_path):
    for speaker in SPEAKERS:
        for code in CODES:
            _touch(tmp_path, f"AudioData/{speaker}/{code}01.wav")
    _touch(tmp_path, "AudioData/Info.txt")
    m = load_savee(tmp_path)
    assert len(m) == 28 and m.problems == ()
    assert m.speakers() == ["DC", "JE", "JK", "KL"]
    assert set(m.speaker_genders().values()) == {"male"}
    assert len(m.emotions()) == 7
    u = m.select(emotions=["sad"], speakers=["KL"])[0]
    assert (u.label, u.text) == ("sa", "sa01")


def test_flat_layout_and_odd_cases(tmp_path):
    for speaker in SPEAKERS:
        for code in CODES:
            _touch(tmp_path, f"ALL/{speaker}_{code}02.wav")
    _touch(
        tmp_path,
        "ALL/DC_x02.wav",  # unknown emotion code
        "ALL/DC_a99.wav",  # number out of range
        "ALL/a03.wav",  # no speaker anywhere
        "AudioData/JE/DC_a04.wav",  # wrong folder
        "AudioData/DC/a02.wav",  # same utterance as ALL/DC_a02.wav
        "ALL/readme.wav.txt",
    )
    m = load_savee(tmp_path)
    assert len(m) == 28
    problems = {
        Path(p.path).relative_to(tmp_path).as_posix(): p.reason for p in m.problems
    }
    assert problems.keys() == {
        "ALL/DC_x02.wav",
        "ALL/DC_a99.wav",
        "ALL/a03.wav",
        "AudioData/JE/DC_a04.wav",
        "AudioData/DC/a02.wav",
    }
    assert "scheme" in problems["ALL/DC_x02.wav"]
    assert "out of range" in problems["ALL/DC_a99.wav"]
    assert "cannot tell the speaker" in problems["ALL/a03.wav"]
    assert "in folder JE" in problems["AudioData/JE/DC_a04.wav"]
    assert "duplicate of" in problems["AudioData/DC/a02.wav"]


def test_wrong_directory(tmp_path):
    _touch(tmp_path, "wav/03a01Fa.wav")
    with pytest.raises(CorpusError, match="DC_a01.wav") as info:
        load_savee(tmp_path)
    assert info.value.corpus == "savee"
