from pathlib import Path

import pytest

from speechmodel.datasets.manifest import CorpusError
from speechmodel.datasets.tess import load_tess, parse_name

# The folder names of the released corpus, irregular spellings included.
FOLDERS = {
    "OAF": [
        "OAF_angry",
        "OAF_disgust",
        "OAF_Fear",
        "OAF_happy",
        "OAF_neutral",
        "OAF_Pleasant_surprise",
        "OAF_Sad",
    ],
    "YAF": [
        "YAF_angry",
        "YAF_disgust",
        "YAF_fear",
        "YAF_happy",
        "YAF_neutral",
        "YAF_pleasant_surprised",
        "YAF_sad",
    ],
}
CODES = ["angry", "disgust", "fear", "happy", "neutral", "ps", "sad"]


def _touch(root, *names):
    for name in names:
        path = Path(root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def _corpus(root, words=("back", "bar")):
    for speaker, folders in FOLDERS.items():
        for folder, code in zip(folders, CODES):
            for word in words:
                _touch(
                    root,
                    f"TESS Toronto emotional speech set data/{folder}/{speaker}_{word}_{code}.wav",
                )


def test_parse_name():
    assert parse_name("OAF_back_ps") == {
        "speaker": "OAF",
        "word": "back",
        "emotion": "ps",
    }
    assert parse_name("yaf_Back_Fear")["emotion"] == "fear"
    with pytest.raises(ValueError, match="scheme"):
        parse_name("back_angry")
    with pytest.raises(ValueError, match="unknown emotion 'calm'"):
        parse_name("OAF_back_calm")


def test_fixture_tree_with_real_irregularities(tmp_path):
    _corpus(tmp_path)
    m = load_tess(tmp_path)
    assert len(m) == 2 * 7 * 2
    assert m.problems == ()
    assert m.speakers() == ["OAF", "YAF"]
    assert m.counts("emotion") == {
        e: 4
        for e in ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    }
    ps = m.select(emotions=["surprised"], speakers=["YAF"])[0]
    assert (ps.label, ps.gender, ps.text, ps.get("age")) == (
        "ps",
        "female",
        "back",
        "26",
    )


def test_odd_cases(tmp_path):
    _corpus(tmp_path, words=("back",))
    root = "TESS Toronto emotional speech set data"
    _touch(
        tmp_path,
        f"{root}/OAF_angry/OAF_bar_sad.wav",  # wrong folder (emotion)
        f"{root}/YAF_happy/OAF_bar_happy.wav",  # wrong folder (speaker)
        f"{root}/OAF_angry/OAF_back_furious.wav",  # unknown emotion
        f"{root}/OAF_angry/recording 1.wav",  # unparseable
        f"copy/OAF_angry/OAF_back_angry.wav",  # a second copy of the corpus
    )
    m = load_tess(tmp_path)
    assert len(m) == 14
    problems = {
        Path(p.path).relative_to(tmp_path).as_posix(): p.reason for p in m.problems
    }
    assert problems.keys() == {
        f"{root}/OAF_angry/OAF_bar_sad.wav",
        f"{root}/YAF_happy/OAF_bar_happy.wav",
        f"{root}/OAF_angry/OAF_back_furious.wav",
        f"{root}/OAF_angry/recording 1.wav",
        "copy/OAF_angry/OAF_back_angry.wav",
    }
    assert "in folder OAF_angry" in problems[f"{root}/OAF_angry/OAF_bar_sad.wav"]
    assert "speaker OAF" in problems[f"{root}/YAF_happy/OAF_bar_happy.wav"]
    assert (
        "unknown emotion 'furious'"
        in problems[f"{root}/OAF_angry/OAF_back_furious.wav"]
    )
    assert "scheme" in problems[f"{root}/OAF_angry/recording 1.wav"]
    assert "duplicate of" in problems["copy/OAF_angry/OAF_back_angry.wav"]


def test_wrong_directory(tmp_path):
    _touch(tmp_path, "AudioWAV/1001_DFA_ANG_XX.wav")
    with pytest.raises(CorpusError, match="OAF_angry") as info:
        load_tess(tmp_path)
    assert info.value.corpus == "tess"
