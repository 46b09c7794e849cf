import json
from pathlib import Path

import pytest

from speechmodel.datasets.manifest import CorpusError
from speechmodel.datasets.thaiser import decide_label, load_thaiser, parse_name, vote_scores


def _touch(root, *names):
    for name in names:
        path = Path(root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def _entry(assigned, votes, agreement=None):
    return [
        {"assigned_emo": assigned, "agreement": agreement or 1.0, "annotated": votes}
    ]


LABELS = {
    "s001_con_actor001_impro1_1.flac": _entry(
        "Angry", [["Angry"], ["Angry"], ["Angry", "Frustrated"]]
    ),
    "s001_con_actor002_impro1_2.flac": _entry(
        "Happy", [["Happy"], ["Sad"], ["Neutral"]], 0.33
    ),
    "s001_con_actor001_impro1_3.flac": _entry(
        "Sad", [["Sad"], ["Sad"]]
    ),  # audio missing
    "s002_con_actor003_script1_1.flac": _entry(
        "Neutral", [["Neutral"], ["Neutral"]]
    ),  # not downloaded
    "z001_mic_actor101_impro2_1.flac": _entry(
        "Frustrated", [["Frustrated"], ["Frustrated"], ["Frustrated", "Angry"]]
    ),
    "s001_con_actor002_impro1_5.flac": [{"assigned_emo": "Happy", "agreement": 0.8}],
    "s001_con_actor002_impro1_6.flac": [],  # malformed
}

DEMOGRAPHY = {
    "data": [
        {"Actor's ID": "001", "Sex": "Male", "Age": 30},
        {"Actor's ID": "002", "Sex": "Female", "Age": 25},
        {"Actor's ID": "101", "Sex": "Female", "Age": 40},
    ]
}


def _corpus(root):
    _touch(
        root,
        "studio1-10/studio001/con/s001_con_actor001_impro1_1.flac",
        "studio1-10/studio001/clip/s001_clip_actor001_impro1_1.flac",
        "studio1-10/studio001/con/s001_con_actor002_impro1_2.flac",
        "studio1-10/studio001/con/s001_con_actor002_impro1_5.flac",
        "studio1-10/studio001/con/s001_con_actor002_impro1_6.flac",  # bad label entry
        "studio1-10/studio001/con/s001_con_actor002_impro1_9.flac",  # no label entry
        "studio1-10/studio001/con/s009_con_actor002_impro1_7.flac",  # wrong folder
        "studio1-10/studio001/con/s001_con_actor002.flac",  # unparseable
        "zoom1-10/zoom001/mic/z001_mic_actor101_impro2_1.flac",
    )
    (Path(root) / "emotion_label.json").write_text(json.dumps(LABELS))
    (Path(root) / "actor_demography.json").write_text(json.dumps(DEMOGRAPHY))


def test_parse_name():
    assert parse_name("s001_con_actor001_impro1_1") == {
        "kind": "s",
        "number": 1,
        "session": "s001",
        "mic": "con",
        "actor": "actor001",
        "turn": "impro1_1",
    }
    assert parse_name("z012_mic_actor150_script3_12")["session"] == "z012"
    with pytest.raises(ValueError, match="scheme"):
        parse_name("s001_con_impro1_1")
    with pytest.raises(ValueError, match="not a Zoom mic"):
        parse_name("z001_con_actor001_impro1_1")


def test_vote_scores_and_decision():
    scores = vote_scores([["Angry"], ["Angry"], ["Angry", "Frustrated"]])
    assert scores["angry"] == pytest.approx(2.5 / 3, abs=1e-12)
    assert scores["frustrated"] == pytest.approx(0.5 / 3, abs=1e-12)
    # "None"/"Other" votes count for nothing; that annotator still counts.
    assert vote_scores([["Sad"], ["None"]])["sad"] == pytest.approx(0.5)
    assert (
        decide_label(
            _entry("Angry", [["Angry"], ["Angry"], ["Angry", "Frustrated"]]), 0.71
        )[0]
        == "angry"
    )
    assert decide_label(_entry("Happy", [["Happy"], ["Sad"]]), 0.71) == (
        None,
        "annotator agreement below 0.71",
    )
    assert decide_label(
        _entry("Angry", [["Angry", "Happy"], ["Angry", "Happy"]]), 0.4
    ) == (
        None,
        "tie between emotions in the annotators' votes",
    )
    assert decide_label(_entry("Happy", [["Sad"], ["Sad"]]), None)[0] == "happy"
    assert decide_label([{"assigned_emo": "None", "agreement": 0.9}], 0.71)[0] is None
    with pytest.raises(ValueError, match="one-element list"):
        decide_label([], 0.71)


def test_fixture_tree(tmp_path):
    _corpus(tmp_path)
    m = load_thaiser(tmp_path)
    assert [Path(u.path).stem for u in m] == [
        "s001_con_actor001_impro1_1",
        "s001_con_actor002_impro1_5",
        "z001_mic_actor101_impro2_1",
    ]
    assert [u.emotion for u in m] == ["angry", "happy", "frustrated"]
    u = m[0]
    assert (u.speaker, u.gender, u.session, u.label) == (
        "actor001",
        "male",
        "s001",
        "angry",
    )
    assert (
        u.get("mic") == "con"
        and u.get("turn") == "impro1_1"
        and u.get("agreement") == "0.833"
    )
    assert m[2].gender == "female" and m[2].get("mic") == "mic"
    problems = {Path(p.path).name: p.reason for p in m.problems}
    assert problems.keys() == {
        "s001_con_actor002_impro1_6.flac",
        "s001_con_actor002_impro1_9.flac",
        "s009_con_actor002_impro1_7.flac",
        "s001_con_actor002.flac",
        "emotion_label.json[s001_con_actor001_impro1_3]",
    }
    assert (
        "bad entry in emotion_label.json" in problems["s001_con_actor002_impro1_6.flac"]
    )
    assert (
        "no entry in emotion_label.json" in problems["s001_con_actor002_impro1_9.flac"]
    )
    assert (
        "in folder studio001/con but the file name says studio009/con"
        in problems["s009_con_actor002_impro1_7.flac"]
    )
    assert "scheme" in problems["s001_con_actor002.flac"]
    assert (
        "audio file is missing"
        in problems["emotion_label.json[s001_con_actor001_impro1_3]"]
    )
    assert m.excluded == {
        "studio mic clip (mic='con' loaded)": 1,
        "annotator agreement below 0.71": 1,
        "labelled files of sessions not present in data_dir (not downloaded?)": 1,
    }


def test_options(tmp_path):
    _corpus(tmp_path)
    clip = load_thaiser(tmp_path, mic="clip")
    assert [u.get("mic") for u in clip] == ["clip", "mic"]
    assert clip[0].emotion == "angry"  # the label of its con twin
    no_zoom = load_thaiser(tmp_path, include_zoom=False)
    assert {u.session for u in no_zoom} == {"s001"}
    assert no_zoom.excluded["Zoom session (include_zoom=False)"] == 1
    assigned = load_thaiser(tmp_path, agreement_threshold=None)
    assert assigned.counts("emotion") == {"happy": 2, "angry": 1, "frustrated": 1}
    with pytest.raises(ValueError, match="mic='lav'"):
        load_thaiser(tmp_path, mic="lav")
    with pytest.raises(ValueError, match="agreement_threshold=1.5"):
        load_thaiser(tmp_path, agreement_threshold=1.5)


def test_wrong_directory(tmp_path):
    _touch(tmp_path, "studio001/con/s001_con_actor001_impro1_1.flac")
    with pytest.raises(CorpusError, match="no emotion_label.json") as info:
        load_thaiser(tmp_path)
    assert info.value.corpus == "thaiser"
    other = tmp_path / "other"
    _touch(other, "wav/03a01Fa.wav")
    (other / "emotion_label.json").write_text("{}")
    with pytest.raises(CorpusError, match="s001_con_actor001_impro1_1.flac"):
        load_thaiser(other)
