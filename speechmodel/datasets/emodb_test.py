from pathlib import Path

import pytest

from speechmodel import datasets
from speechmodel.datasets.emodb import SPEAKERS, TEXTS, load_emodb, parse_name
from speechmodel.datasets.manifest import CorpusError


def _touch(root, *names):
    for name in names:
        path = Path(root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def test_speaker_table_from_the_documentation():
    assert len(SPEAKERS) == 10 and len(TEXTS) == 10
    genders = [g for g, _ in SPEAKERS.values()]
    assert genders.count("male") == 5 and genders.count("female") == 5
    assert SPEAKERS["03"] == ("male", 31) and SPEAKERS["16"] == ("female", 31)


def test_parse_name():
    assert parse_name("03a01Fa") == {
        "speaker": "03",
        "text": "a01",
        "emotion": "F",
        "version": "a",
    }
    for stem, message in [
        ("3a01Fa", "scheme"),
        ("05a01Fa", "speaker 05"),
        ("03a03Fa", "text code a03"),
        ("03a01Xa", "emotion letter 'X'"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_name(stem)


def test_fixture_tree(tmp_path):
    # One file per emotion letter, across speakers, plus odd cases.
    _touch(
        tmp_path,
        "wav/03a01Wa.wav",
        "wav/08a02Lb.wav",
        "wav/09a04Ea.wav",
        "wav/10a05Aa.wav",
        "wav/11a07Fd.wav",
        "wav/12b01Ta.wav",
        "wav/16b10Nc.wav",
        "wav/16b10Nc.flac",  # the same utterance twice
        "wav/03a01Xa.wav",  # unknown emotion letter
        "wav/take2.wav",  # unparseable
        "wav/05a01Fa.wav",  # not an EMO-DB speaker
        "lablaut/03a01Wa.lab",  # annotation: not audio, not read
        "erkennung.txt",
    )
    m = load_emodb(tmp_path)
    assert len(m) == 7
    assert m.emotions() == [
        "neutral",
        "happy",
        "sad",
        "angry",
        "fearful",
        "disgust",
        "boredom",
    ]
    u = m.select(emotions=["boredom"])[0]
    assert (u.corpus, u.label, u.speaker, u.gender, u.text, u.get("version")) == (
        "emodb",
        "L",
        "08",
        "female",
        "a02",
        "b",
    )
    problems = {Path(p.path).name: p.reason for p in m.problems}
    # Files are read in sorted path order: the .flac comes first and is kept.
    assert set(problems) == {"16b10Nc.wav", "03a01Xa.wav", "take2.wav", "05a01Fa.wav"}
    assert (
        "duplicate of" in problems["16b10Nc.wav"]
        and "16b10Nc.flac" in problems["16b10Nc.wav"]
    )
    assert "unknown emotion letter 'X'" in problems["03a01Xa.wav"]
    assert "does not follow the EMO-DB scheme" in problems["take2.wav"]
    assert "speaker 05" in problems["05a01Fa.wav"]
    # The wav/ folder itself works as data_dir.
    assert load_emodb(tmp_path / "wav").utterances == m.utterances


def test_wrong_directory(tmp_path):
    _touch(tmp_path, "Actor_01/03-01-05-01-01-01-01.wav")
    with pytest.raises(
        CorpusError, match=r"emodb corpus.*03a01Fa\.wav.*Actor_01"
    ) as info:
        datasets.load("emo-db", tmp_path)
    assert info.value.corpus == "emodb"
