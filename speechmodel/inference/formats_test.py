import csv
import io
import json

import pytest

from speechmodel.inference import formats as F
from speechmodel.inference.predictor import Predictor
from speechmodel.inference.results import Failure
from speechmodel.tests.inference_fixtures import CLASSES
from tests.paths import ravdess_files


@pytest.fixture(scope="module")
def mixed_report(model, long_file):
    clip = ravdess_files("Actor_12/*.wav")[0]
    report = Predictor(model, attention=True).predict([clip, long_file])
    report.results.append(Failure("gone.wav", "file not found"))
    return report


def test_json_output(mixed_report, model):
    data = json.loads(F.format_json(mixed_report, top_k=2, model=model.describe()))
    assert data["class_names"] == CLASSES and data["model"]["kind"] == "keras"
    assert data["settings"]["window"] == 4.0
    clip, long, failure = data["results"]
    assert set(clip) >= {"file", "label", "confidence", "probabilities", "duration", "top_k", "attention"}
    assert sum(clip["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert [t["label"] for t in clip["top_k"]][0] == clip["label"] and len(clip["top_k"]) == 2
    assert clip["windowed"] is False and "timeline" not in clip
    assert long["windowed"] is True and len(long["timeline"]) == 89
    first = long["timeline"][0]
    assert set(first) == {"start", "end", "label", "confidence", "probabilities", "voiced", "attention"}
    assert first["attention"][0] == {"start": 0.0, "end": 0.64, "weight": first["attention"][0]["weight"]}
    assert failure == {"file": "gone.wav", "error": "file not found"}


def test_csv_output(mixed_report):
    rows = list(csv.DictReader(io.StringIO(F.format_csv(mixed_report, top_k=2))))
    kinds = [r["kind"] for r in rows]
    n_clip_segments = len(mixed_report.results[0].attention)
    assert kinds[0] == "file" and kinds[1 : 1 + n_clip_segments] == ["segment"] * n_clip_segments
    assert kinds.count("window") == 89 and kinds[-1] == "error"
    clip = rows[0]
    assert float(clip["duration"]) == pytest.approx(mixed_report.results[0].duration, abs=1e-3)
    assert sum(float(clip[f"p_{c}"]) for c in CLASSES) == pytest.approx(1.0, abs=1e-5)
    assert clip["top1_label"] == clip["label"]
    window = next(r for r in rows if r["kind"] == "window")
    assert (window["start"], window["end"]) == ("0.000", "4.000") and window["voiced"]
    assert rows[-1]["error"] == "file not found" and rows[-1]["label"] == ""


def test_table_output(mixed_report):
    text = F.format_table(mixed_report, top_k=2, timeline=True)
    lines = text.splitlines()
    assert lines[0].split() == ["file", "emotion", "confidence", "duration", "top", "2", "windows"]
    clip, long = mixed_report.results[:2]
    assert lines[1].startswith(clip.file) and f"{clip.confidence:.3f}" in lines[1]
    assert sum("segment" in line for line in lines) == len(clip.attention)
    long_row = next(n for n, line in enumerate(lines) if line.startswith(long.file))
    assert lines[long_row].split()[-1] == "89" and "180.00 s" in lines[long_row]
    assert len(lines) == 1 + 1 + len(clip.attention) + 1 + 89
    assert "gone.wav" not in text


def test_jsonl_output_is_one_result_per_line(mixed_report):
    lines = F.format_jsonl(mixed_report, top_k=2).splitlines()
    assert [json.loads(line) for line in lines] == json.loads(F.format_json(mixed_report, top_k=2))["results"]
    assert json.loads(lines[-1]) == {"file": "gone.wav", "error": "file not found"}


def test_table_of_a_file_without_speech():
    import numpy as np

    from speechmodel.inference.results import Prediction, Report

    report = Report([Prediction("quiet.wav", None, CLASSES, 3.0),
                     Prediction("loud.wav", np.array([0.1, 0.8, 0.1]), CLASSES, 2.5)], CLASSES)
    assert F.format_table(report).splitlines() == [
        "file       emotion    confidence  duration",
        "quiet.wav  no speech  -           3.00 s",
        "loud.wav   happy      0.800       2.50 s",
    ]


def test_uncertain_and_no_speech_in_every_format():
    import csv
    import io

    import numpy as np

    from speechmodel.inference.results import Prediction, Report

    report = Report([
        Prediction("sure.wav", np.array([0.1, 0.8, 0.1]), CLASSES, 2.5, min_confidence=0.6),
        Prediction("unsure.wav", np.array([0.3, 0.4, 0.3]), CLASSES, 2.5, min_confidence=0.6),
        Prediction("silence.wav", np.array([0.1, 0.2, 0.7]), CLASSES, 60.0, no_speech=True),
    ], CLASSES)
    expected = [CLASSES[1], "uncertain", "no speech"]
    assert [r["label"] for r in json.loads(F.format_json(report))["results"]] == expected
    assert [json.loads(line)["label"] for line in F.format_jsonl(report).splitlines()] == expected
    rows = list(csv.DictReader(io.StringIO(F.format_csv(report))))
    assert [r["label"] for r in rows] == expected
    assert rows[1]["p_" + CLASSES[1]] == "0.400000"
    table = F.format_table(report).splitlines()
    assert "uncertain" in table[2] and "no speech" in table[3]
