from pathlib import Path

import pytest

from speechmodel.datasets.cremad import load_cremad, parse_name, read_demographics
from speechmodel.datasets.manifest import CorpusError


def _touch(root, *names):
    for name in names:
        path = Path(root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


DEMOGRAPHICS = (
    "ActorID,Age,Sex,Race,Ethnicity\n"
    "1001,51,Male,Caucasian,Not Hispanic\n"
    "1002,21,Female,Caucasian,Not Hispanic\n"
    "1091,29,Female,Asian,Not Hispanic\n"
)


def test_parse_name():
    assert parse_name("1001_DFA_ANG_XX") == {
        "actor": "1001",
        "sentence": "DFA",
        "emotion": "ANG",
        "level": "XX",
    }
    for stem, message in [
        ("1001_DFA_ANG", "scheme"),
        ("1092_DFA_ANG_XX", "actor 1092"),
        ("1001_ABC_ANG_XX", "sentence code ABC"),
        ("1001_DFA_SUR_XX", "emotion code SUR"),
        ("1001_DFA_ANG_ZZ", "level ZZ"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_name(stem)


def test_fixture_tree_with_demographics(tmp_path):
    _touch(
        tmp_path,
        "AudioWAV/1001_DFA_ANG_XX.wav",
        "AudioWAV/1001_IEO_HAP_HI.wav",
        "AudioWAV/1002_TIE_SAD_LO.wav",
        "AudioWAV/1091_WSI_NEU_MD.wav",
        "AudioWAV/1091_WSI_FEA_XX.wav",
        "AudioWAV/1002_ITS_DIS_XX.wav",
        "AudioWAV/1001_DFA_XYZ_XX.wav",  # unknown emotion code
        "AudioWAV/1001-DFA-ANG-XX.wav",  # unparseable
        "AudioWAV/extra/1001_DFA_ANG_XX.wav",  # duplicate
        "AudioMP3/1001_DFA_ANG_XX.mp3",  # another folder: not read
    )
    (tmp_path / "VideoDemographics.csv").write_text(DEMOGRAPHICS)
    m = load_cremad(tmp_path)
    assert len(m) == 6
    assert m.speakers() == ["1001", "1002", "1091"]
    assert m.speaker_genders() == {"1001": "male", "1002": "female", "1091": "female"}
    assert len(m.emotions()) == 6
    u = m.select(emotions=["happy"])[0]
    assert (u.label, u.text, u.intensity) == ("HAP", "IEO", "high")
    problems = {
        Path(p.path).relative_to(tmp_path).as_posix(): p.reason for p in m.problems
    }
    assert problems.keys() == {
        "AudioWAV/1001_DFA_XYZ_XX.wav",
        "AudioWAV/1001-DFA-ANG-XX.wav",
        "AudioWAV/extra/1001_DFA_ANG_XX.wav",
    }
    assert "emotion code XYZ" in problems["AudioWAV/1001_DFA_XYZ_XX.wav"]
    assert "scheme" in problems["AudioWAV/1001-DFA-ANG-XX.wav"]
    assert "duplicate" in problems["AudioWAV/extra/1001_DFA_ANG_XX.wav"]

    # AudioWAV given directly: demographics found beside it.
    assert load_cremad(tmp_path / "AudioWAV").utterances == m.utterances
    # Without demographics, genders are unknown.
    assert set(
        load_cremad(tmp_path, demographics=False).speaker_genders().values()
    ) == {None}


def test_bad_demographics_file(tmp_path):
    bad = tmp_path / "demo.csv"
    bad.write_text("ActorID,Sex\n1001,X\n")
    with pytest.raises(
        ValueError, match=r"demo.csv, line 2: Sex must be Male or Female"
    ):
        read_demographics(bad)
    bad.write_text("Actor,Gender\n1001,Male\n")
    with pytest.raises(ValueError, match="expected columns ActorID and Sex"):
        read_demographics(bad)


def test_wrong_directory(tmp_path):
    _touch(tmp_path, "AudioData/DC/a01.wav")
    with pytest.raises(CorpusError, match="1001_DFA_ANG_XX") as info:
        load_cremad(tmp_path)
    assert info.value.corpus == "cremad"
