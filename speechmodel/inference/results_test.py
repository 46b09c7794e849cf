import json

import numpy as np
import pytest

from speechmodel.inference.results import Failure, Prediction, Report, Segment, Window

NAMES = ["angry", "calm", "sad"]


def test_prediction_label_confidence_and_top_k():
    p = Prediction("a.wav", np.array([0.2, 0.5, 0.3], np.float32), NAMES, 3.21)
    assert p.label == "calm" and p.confidence == pytest.approx(0.5) and not p.windowed
    assert p.top_k(2) == [("calm", pytest.approx(0.5)), ("sad", pytest.approx(0.3))]
    # Ties keep the class order.
    tie = Prediction("b.wav", np.array([0.4, 0.2, 0.4], np.float32), NAMES, 1.0)
    assert [n for n, _ in tie.top_k(3)] == ["angry", "sad", "calm"]


def test_clip_to_dict_is_json_and_rounds():
    p = Prediction(
        "a.wav", np.array([0.1234567, 0.5, 0.3765433], np.float32), NAMES, 3.21049,
        attention=[Segment(0.0, 0.64, 0.25), Segment(0.32, 0.96, 0.75)],
    )
    d = json.loads(json.dumps(p.to_dict(top_k=2)))
    assert d == {
        "file": "a.wav",
        "label": "calm",
        "confidence": 0.5,
        "probabilities": {"angry": 0.123457, "calm": 0.5, "sad": 0.376543},
        "top_k": [{"label": "calm", "probability": 0.5}, {"label": "sad", "probability": 0.376543}],
        "duration": 3.21,
        "windowed": False,
        "attention": [
            {"start": 0.0, "end": 0.64, "weight": 0.25},
            {"start": 0.32, "end": 0.96, "weight": 0.75},
        ],
    }


def test_windowed_to_dict_has_the_timeline_weighting_and_plot():
    windows = [
        Window(0.0, 4.0, np.array([0.7, 0.2, 0.1]), 0.55556, NAMES),
        Window(2.0, 5.5, np.array([0.1, 0.1, 0.8]), 0.0, NAMES),
    ]
    assert windows[1].label == "sad" and windows[1].confidence == pytest.approx(0.8)
    p = Prediction("long.wav", np.array([0.6, 0.2, 0.2]), NAMES, 5.5, timeline=windows,
                   weighting="voiced", plot="plots/long.png", plot_error=None)
    d = p.to_dict()
    assert p.windowed and d["windowed"] is True and d["weighting"] == "voiced"
    assert d["plot"] == "plots/long.png" and "plot_error" not in d and "attention" not in d
    assert d["timeline"][0] == {
        "start": 0.0, "end": 4.0, "label": "angry", "confidence": 0.7,
        "probabilities": {"angry": 0.7, "calm": 0.2, "sad": 0.1}, "voiced": 0.5556,
    }


def test_report_splits_predictions_and_failures():
    ok = Prediction("a.wav", np.array([1.0, 0.0, 0.0]), NAMES, 1.0)
    bad = Failure("b.wav", "file not found")
    report = Report([bad, ok], NAMES)
    assert report.predictions == [ok] and report.failures == [bad] and report.settings == {}
    assert bad.to_dict() == {"file": "b.wav", "error": "file not found"}


def test_below_min_confidence_a_result_is_uncertain_and_keeps_its_probabilities():
    windows = [Window(0.0, 4.0, np.array([0.7, 0.2, 0.1]), 1.0, NAMES),
               Window(2.0, 6.0, np.array([0.4, 0.35, 0.25]), 1.0, NAMES)]
    p = Prediction("a.wav", np.array([0.45, 0.35, 0.2], np.float32), NAMES, 6.0, timeline=windows,
                   weighting="voiced")
    assert p.label == "angry" and not p.uncertain
    p.with_min_confidence(0.5)
    assert p.label == "uncertain" and p.emotion == "angry" and p.confidence == pytest.approx(0.45)
    assert [w.label for w in p.timeline] == ["angry", "uncertain"]
    d = p.to_dict(top_k=2)
    assert d["label"] == "uncertain" and d["probabilities"]["angry"] == pytest.approx(0.45)
    assert d["top_k"][0] == {"label": "angry", "probability": 0.45}
    assert [w["label"] for w in d["timeline"]] == ["angry", "uncertain"]


def test_no_speech_is_the_label_whatever_the_confidence():
    p = Prediction("quiet.wav", np.array([0.1, 0.7, 0.2], np.float32), NAMES, 60.0, no_speech=True)
    assert p.label == "no speech" and p.emotion == "calm"
    assert p.with_min_confidence(0.5).label == "no speech"
    assert p.to_dict()["label"] == "no speech"
