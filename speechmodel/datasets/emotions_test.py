import os

import pytest

from speechmodel.datasets import emotions
from speechmodel.datasets.manifest import Manifest, Utterance


def _manifest(names):
    return Manifest(
        Utterance(path=f"/x/{i}.wav", corpus="csv", emotion=e, label=e, speaker="s1")
        for i, e in enumerate(names)
    )


def test_vocabulary_order_and_tables_use_it():
    assert emotions.EMOTIONS[:8] == (
        "neutral",
        "calm",
        "happy",
        "sad",
        "angry",
        "fearful",
        "disgust",
        "surprised",
    )
    assert len(set(emotions.EMOTIONS)) == len(emotions.EMOTIONS)
    for corpus, table in emotions.corpus_labels().items():
        for code, name in table.items():
            assert name in emotions.EMOTIONS, (corpus, code, name)
    for synonym, name in emotions.SYNONYMS.items():
        assert name in emotions.EMOTIONS, synonym
        assert synonym not in emotions.EMOTIONS


def test_corpus_tables_match_the_documentation():
    assert len(emotions.corpus_labels()["ravdess"]) == 8
    assert emotions.corpus_emotion("emodb", "W") == "angry"
    assert emotions.corpus_emotion("emodb", "L") == "boredom"
    assert emotions.corpus_emotion("emodb", "A") == "fearful"
    assert emotions.corpus_emotion("emodb", "F") == "happy"
    assert emotions.corpus_emotion("emodb", "T") == "sad"
    assert emotions.corpus_emotion("savee", "sa") == "sad"
    assert emotions.corpus_emotion("savee", "su") == "surprised"
    assert emotions.corpus_emotion("cremad", "FEA") == "fearful"
    assert emotions.corpus_emotion("iemocap", "exc") == "excited"
    assert emotions.corpus_emotion("tess", "Pleasant_Surprise") == "surprised"
    assert emotions.corpus_emotion("tess", "Fear") == "fearful"
    assert emotions.corpus_emotion("thaiser", "Frustrated") == "frustrated"


def test_corpus_emotion_errors_list_valid_codes():
    with pytest.raises(ValueError, match=r"code='X'.*W, L, E, A, F, T, N"):
        emotions.corpus_emotion("emodb", "X")
    with pytest.raises(ValueError, match="corpus='nope'"):
        emotions.corpus_emotion("nope", "01")
    # Codes are exact where the corpus is consistent.
    with pytest.raises(ValueError):
        emotions.corpus_emotion("emodb", "w")


def test_canonical_emotion_accepts_synonyms():
    assert emotions.canonical_emotion("Anger") == "angry"
    assert emotions.canonical_emotion(" happiness ") == "happy"
    assert emotions.canonical_emotion("fear") == "fearful"
    assert emotions.canonical_emotion("pleasant surprise") == "surprised"
    assert emotions.canonical_emotion("ps") == "surprised"
    with pytest.raises(ValueError, match=r"emotion='joyful'.*neutral, calm, happy"):
        emotions.canonical_emotion("joyful")


def test_parse_emotions():
    assert emotions.parse_emotions("angry,happy,neutral,sad") == [
        "angry",
        "happy",
        "neutral",
        "sad",
    ]
    assert emotions.parse_emotions(" sad , anger ") == ["sad", "angry"]
    assert emotions.parse_emotions(["fear", "neutral"]) == ["fearful", "neutral"]
    with pytest.raises(ValueError, match="Valid names"):
        emotions.parse_emotions("angry,joyful")
    with pytest.raises(ValueError, match="twice"):
        emotions.parse_emotions("angry,anger")
    with pytest.raises(ValueError, match="at least one"):
        emotions.parse_emotions(" , ")


def test_common_emotions_in_canonical_order():
    a = _manifest(["sad", "angry", "calm", "neutral"])
    b = _manifest(["neutral", "boredom", "angry", "sad"])
    assert emotions.common_emotions(a, b) == ["neutral", "sad", "angry"]
    assert emotions.common_emotions(a, ["happy"]) == []


def test_map_emotion_with_user_map():
    mapping = emotions.check_emotion_map({"Joy": "happy", "irritated": "anger"})
    assert emotions.map_emotion("joy", mapping) == "happy"
    assert emotions.map_emotion("IRRITATED", mapping) == "angry"
    assert emotions.map_emotion("sad", mapping) == "sad"
    with pytest.raises(ValueError, match=r"emotion_map\['x'\]"):
        emotions.check_emotion_map({"x": "elated"})
    with pytest.raises(ValueError, match="must be a dict"):
        emotions.check_emotion_map(["happy"])


def test_sort_emotions_rejects_synonyms():
    assert emotions.sort_emotions(["sad", "neutral", "sad"]) == ["neutral", "sad"]
    with pytest.raises(ValueError):
        emotions.sort_emotions(["anger"])


def test_emotions_md_matches_the_table():
    path = os.path.join(os.path.dirname(emotions.__file__), "EMOTIONS.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert emotions.markdown_table() in text
    for synonym in emotions.SYNONYMS:
        assert f"`{synonym}`" in text


def test_the_code_tables_are_the_loaders_in_registry_order():
    from speechmodel.datasets import ravdess, registry

    assert list(emotions.corpus_labels()) == registry.corpus_names(published=True)
    assert emotions.corpus_labels()["ravdess"] is ravdess.LABELS
