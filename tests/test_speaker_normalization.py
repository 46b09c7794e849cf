"""Speaker normalisation end to end (issue #11): a frozen Whisper-base head
trained with model.speaker_normalization reports its figures both ways, and
what the saved fold model then does in infer.py's predictor is exactly what
the run reported: per clip (an average training speaker's statistics) and
with --same_speaker (the test speaker's own statistics)."""

import csv
import json

import numpy as np
import pytest

from tests.paths import small_ravdess

# slow: trains a speaker-normalised Whisper run (left out by -m "not slow").
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A 2-fold run on 16 real files (4 actors, neutral and angry)."""
    root = small_ravdess(tmp_path_factory.mktemp("ravdess"))
    out = tmp_path_factory.mktemp("run") / "run"
    config = {
        "dataset": {"name": "ravdess", "emotions": ["neutral", "angry"], "data_dir": str(root)},
        "protocol": {"name": "kfold", "k": 2, "grouping": "contiguous"},
        "model": {"name": "speechmodel", "backbone": "whisper_base", "speaker_normalization": True,
                  "lstm_units": 4, "attention_units": 4, "dense_units": [4]},
        "training": {"mode": "frozen", "epochs": 2, "batch_size": 4, "patience": 0,
                     "final_model": False, "calibrate": True},
        "output_dir": str(out),
    }
    from speechmodel.training.runner import run_experiment

    run_experiment(config, log_to_stdout=False)
    return out


def test_the_run_reports_both_figures(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    normalized = metrics["speaker_normalization"]
    assert normalized["uar"] == metrics["uar"] and "transductive" in normalized["definition"]
    assert 0 <= normalized["per_clip_uar"] <= 1
    header = (run_dir / "predictions.csv").read_text().splitlines()[0].split(",")
    assert header[-1] == "predicted_per_clip"
    for fold in ("fold1", "fold2"):
        result = json.loads((run_dir / "folds" / fold / "result.json").read_text())
        assert result["speaker_normalization"] == {"train": 1, "val": 1, "test": 2}
        assert result["test_per_clip"]["n"] == 8
        # Calibration: a temperature fitted on the fold's validation speaker
        # (per clip), and the test figures before and after it.
        calibration = result["calibration"]
        assert calibration["temperature"] > 0 and calibration["val"]["n"] == 4
        assert calibration["test"]["n"] == 8
        assert calibration["val"]["nll_after"] <= calibration["val"]["nll_before"] + 1e-9
    pooled = metrics["calibration"]
    assert pooled["n"] == 16 and len(pooled["temperatures"]) == 2
    assert 0 <= pooled["ece_before"] <= 1 and 0 <= pooled["ece_after"] <= 1
    assert metrics["folds"][0]["calibration"]["temperature"] == pooled["temperatures"][0]


def test_the_saved_model_does_in_infer_what_the_run_reported(run_dir):
    from speechmodel import inference
    from speechmodel.calibration import scale_probabilities

    rows = {}
    with open(run_dir / "predictions.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            rows[row["file"]] = row
    classes = ["neutral", "angry"]
    for fold in ("fold1", "fold2"):
        model = inference.load_model(run_dir / "folds" / fold / "model.keras")
        assert list(model.class_names) == classes
        result = json.loads((run_dir / "folds" / fold / "result.json").read_text())
        assert model.temperature == pytest.approx(result["calibration"]["temperature"])
        mine = {p: r for p, r in rows.items() if r["fold"] == fold}
        # Per clip: an average training speaker's statistics, kept in the file.
        mean, variance = model.speaker_normalization.statistics()
        assert np.abs(mean).max() > 0.01 and not np.allclose(variance, 1.0)
        single = inference.Predictor(model).predict(sorted(mine))
        for p in single.results:
            assert p.label == mine[p.file]["predicted_per_clip"], p.file
        # --same_speaker, one test speaker at a time, with the speaker's own
        # statistics (no prior, as in training): the run's own figures.
        for speaker in sorted({r["speaker"] for r in mine.values()}):
            files = sorted(p for p, r in mine.items() if r["speaker"] == speaker)
            adapted = inference.Predictor(model, same_speaker=True, speaker_prior=0).predict(files)
            for p in adapted.results:
                # predictions.csv: the probabilities before the temperature.
                expected = scale_probabilities(
                    np.array([[float(mine[p.file][f"p_{c}"]) for c in classes]]), model.temperature
                )[0]
                np.testing.assert_allclose(p.probabilities, expected, atol=2e-4)
        # The model is unchanged afterwards.
        np.testing.assert_array_equal(model.speaker_normalization.statistics()[0], mean)
