import json

import numpy as np
import pytest

from speechmodel.training import artifacts
from speechmodel.training.ensemble import EnsembleError, ensemble_runs

CLASSES = ["angry", "sad"]


def fake_run(path, probabilities, *, test_speakers=("01",)):
    path.mkdir()
    folds = {"folds": [{"name": "fold1", "train_speakers": ["02"], "val_speakers": ["03"],
                        "test_speakers": list(test_speakers), "speaker_independent": True}]}
    (path / "folds.json").write_text(json.dumps(folds))
    (path / "config.json").write_text(json.dumps({"dataset": {"name": "x"}, "protocol": {"name": "kfold"},
                                                  "model": {"name": "m"}}))
    rows = [
        {"file": f"/d/{i}.wav", "speaker": "01", "fold": "fold1", "true": CLASSES[i % 2],
         "predicted": CLASSES[int(np.argmax(p))], "probabilities": p}
        for i, p in enumerate(probabilities)
    ]
    artifacts.write_predictions(path / "predictions.csv", rows, CLASSES)
    return str(path)


def test_weighted_mean_of_runs_and_metrics(tmp_path):
    a = fake_run(tmp_path / "a", [[0.9, 0.1], [0.6, 0.4]])
    b = fake_run(tmp_path / "b", [[0.2, 0.8], [0.1, 0.9]])
    metrics = ensemble_runs([a, b], weights=[3, 1], output_dir=str(tmp_path / "e"))
    rows, _ = artifacts.read_predictions(tmp_path / "e" / "predictions.csv")
    np.testing.assert_allclose(rows[0]["probabilities"], [0.725, 0.275], atol=1e-6)
    np.testing.assert_allclose(rows[1]["probabilities"], [0.475, 0.525], atol=1e-6)
    assert [r["predicted"] for r in rows] == ["angry", "sad"]
    assert metrics["uar"] == 1.0 and metrics["n"] == 2
    assert json.loads((tmp_path / "e" / "config.json").read_text())["model"]["weights"] == [3.0, 1.0]


def test_runs_on_other_folds_are_refused(tmp_path):
    a = fake_run(tmp_path / "a", [[0.9, 0.1], [0.6, 0.4]])
    b = fake_run(tmp_path / "b", [[0.2, 0.8], [0.1, 0.9]], test_speakers=("02",))
    with pytest.raises(EnsembleError, match="folds differ"):
        ensemble_runs([a, b], output_dir=str(tmp_path / "e"))
