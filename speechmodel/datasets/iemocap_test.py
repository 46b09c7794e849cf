from pathlib import Path

import pytest

from speechmodel.datasets.iemocap import load_iemocap, parse_utterance_name
from speechmodel.datasets.manifest import CorpusError

HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"


def _touch(root, *names):
    for name in names:
        path = Path(root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def _labels(root, session, dialog, rows):
    path = (
        Path(root) / f"Session{session}" / "dialog" / "EmoEvaluation" / f"{dialog}.txt"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [HEADER]
    for i, (name, code) in enumerate(rows):
        lines.append(
            f"[{i + 1}.0000 - {i + 2}.5000]\t{name}\t{code}\t[2.5000, 3.0000, 3.5000]\n"
        )
        lines.append(f"C-E1:\tNeutral;\t()\nA-E1:\tval 3; act 2; dom  3;\t()\n\n")
    path.write_text("".join(lines))


def _wavs(root, session, dialog, names):
    for name in names:
        _touch(root, f"Session{session}/sentences/wav/{dialog}/{name}.wav")


def _corpus(root):
    _labels(
        root,
        1,
        "Ses01F_impro01",
        [
            ("Ses01F_impro01_F000", "neu"),
            ("Ses01F_impro01_M000", "ang"),
            ("Ses01F_impro01_M001", "exc"),
            ("Ses01F_impro01_F001", "fru"),
            ("Ses01F_impro01_F002", "xxx"),
            ("Ses01F_impro01_F003", "hap"),  # audio missing
            ("Ses01F_impro01_F004", "zzz"),  # unknown label
            ("Ses01F_impro01_F000", "sad"),  # labelled twice
        ],
    )
    _wavs(
        root,
        1,
        "Ses01F_impro01",
        [
            "Ses01F_impro01_F000",
            "Ses01F_impro01_M000",
            "Ses01F_impro01_M001",
            "Ses01F_impro01_F001",
            "Ses01F_impro01_F002",
            "Ses01F_impro01_F004",
            "Ses01F_impro01_F099",  # no label line
        ],
    )
    _labels(
        root,
        1,
        "Ses01F_script01_1",
        [
            ("Ses01F_script01_1_F000", "sad"),
            ("Ses01F_script01_1_M000", "neu"),
        ],
    )
    _wavs(
        root,
        1,
        "Ses01F_script01_1",
        ["Ses01F_script01_1_F000", "Ses01F_script01_1_M000"],
    )
    # Other annotation files in subfolders are not summary files.
    cat = (
        Path(root)
        / "Session1/dialog/EmoEvaluation/Categorical/Ses01F_impro01_e1_cat.txt"
    )
    cat.parent.mkdir(parents=True)
    cat.write_text("Ses01F_impro01_F000 :Neutral state; ()\n")
    _labels(
        root,
        2,
        "Ses02M_impro02",
        [
            ("Ses02M_impro02_F000", "hap"),
            ("Ses02M_impro02_M000", "neu"),
            ("Ses01F_impro09_F000", "ang"),  # listed in the wrong session
        ],
    )
    _wavs(root, 2, "Ses02M_impro02", ["Ses02M_impro02_F000", "Ses02M_impro02_M000"])


def test_parse_utterance_name():
    assert parse_utterance_name("Ses01F_impro01_F000") == (
        "Ses01",
        "Ses01F",
        "female",
        "Ses01F_impro01",
    )
    assert parse_utterance_name("Ses01F_impro01_M003") == (
        "Ses01",
        "Ses01M",
        "male",
        "Ses01F_impro01",
    )
    assert parse_utterance_name("Ses05M_script02_1b_F012")[3] == "Ses05M_script02_1b"
    with pytest.raises(ValueError, match="scheme"):
        parse_utterance_name("Ses01_impro01_X000")


def test_four_class_setting(tmp_path):
    _corpus(tmp_path)
    m = load_iemocap(tmp_path)
    names = [Path(u.path).stem for u in m]
    assert names == [
        "Ses01F_impro01_F000",
        "Ses01F_impro01_M000",
        "Ses01F_impro01_M001",
        "Ses01F_script01_1_F000",
        "Ses01F_script01_1_M000",
        "Ses02M_impro02_F000",
        "Ses02M_impro02_M000",
    ]
    assert [u.emotion for u in m] == [
        "neutral",
        "angry",
        "happy",
        "sad",
        "neutral",
        "happy",
        "neutral",
    ]
    exc = m[2]
    assert (exc.label, exc.speaker, exc.gender, exc.session) == (
        "exc",
        "Ses01M",
        "male",
        "Ses01",
    )
    assert exc.get("dialog") == "Ses01F_impro01" and exc.get("improvised") == "true"
    assert (exc.get("start"), exc.get("end"), exc.get("vad")) == (
        "3.0000",
        "4.5000",
        "2.5000,3.0000,3.5000",
    )
    assert m[3].get("improvised") == "false"
    assert m.speakers() == ["Ses01F", "Ses01M", "Ses02F", "Ses02M"]
    assert m.expected == 5531 and m.incomplete()  # a fixture, not the corpus
    assert m.excluded == {
        "label fru not in the 4-class setting": 1,
        "label xxx (no majority among the annotators)": 1,
    }
    problems = sorted((Path(p.path).name, p.reason) for p in m.problems)
    assert [name for name, _ in problems] == [
        "Ses01F_impro01.txt:27",  # unknown label (row 7: line 3 + 4 * 6)
        "Ses01F_impro01.txt:31",  # labelled twice
        "Ses01F_impro01_F003.wav",  # audio missing
        "Ses01F_impro01_F099.wav",  # no label line
        "Ses02M_impro02.txt:11",  # wrong session
    ]
    reasons = [reason for _, reason in problems]
    assert "unknown label 'zzz'" in reasons[0]
    assert "labelled twice" in reasons[1]
    assert (
        "labelled in Ses01F_impro01.txt (line 23) but the audio file is missing"
        == reasons[2]
    )
    assert (
        "no label line for Ses01F_impro01_F099 in Session1/dialog/EmoEvaluation"
        == reasons[3]
    )
    assert "belongs to Ses01 but is listed under Session2" in reasons[4]


def test_all_classes_and_improvised_only(tmp_path):
    _corpus(tmp_path)
    m = load_iemocap(tmp_path, classes="all")
    assert len(m) == 8 and m.expected is None
    assert (
        m.counts("emotion")["excited"] == 1 and m.counts("emotion")["frustrated"] == 1
    )
    merged = load_iemocap(tmp_path, classes="all", merge_excited=True)
    assert "excited" not in merged.emotions()
    impro = load_iemocap(tmp_path, improvised_only=True)
    assert len(impro) == 5
    assert impro.excluded["scripted dialogue (improvised_only=True)"] == 2
    no_exc = load_iemocap(tmp_path, merge_excited=False)
    assert no_exc.excluded["label exc not in the 4-class setting"] == 1
    with pytest.raises(ValueError, match="classes='5'"):
        load_iemocap(tmp_path, classes="5")


def test_wrong_directory(tmp_path):
    _touch(tmp_path, "Session1/sentences/wav/x/Ses01F_impro01_F000.wav")
    with pytest.raises(CorpusError, match="EmoEvaluation") as info:
        load_iemocap(tmp_path)
    assert info.value.corpus == "iemocap" and "Session1" in info.value.found
