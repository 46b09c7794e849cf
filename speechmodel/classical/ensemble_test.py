import json

import numpy as np
import pytest

from speechmodel.classical.ensemble import (
    ProbabilityRun,
    ensemble_probabilities,
    evaluate_run,
)

CLASSES = ["neutral", "happy", "sad"]
PATHS = ["a/1.wav", "a/2.wav", "b/3.wav", "b/4.wav"]


def run(paths, rows, name="", classes=CLASSES):
    return ProbabilityRun(paths, np.array(rows, dtype=float), classes, name)


P1 = [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.1, 0.4], [0.1, 0.1, 0.8]]
P2 = [[0.2, 0.6, 0.2], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]


def test_mean_aligns_rows_by_path():
    order = [2, 0, 3, 1]  # The second run lists the files in another order.
    second = run([PATHS[i] for i in order], [P2[i] for i in order], "b")
    result = ensemble_probabilities([run(PATHS, P1, "a"), second])
    assert result.paths == PATHS
    np.testing.assert_allclose(
        result.probabilities, (np.array(P1) + np.array(P2)) / 2, atol=1e-12
    )


def test_weights_are_normalised():
    result = ensemble_probabilities([run(PATHS, P1), run(PATHS, P2)], weights=[3, 1])
    np.testing.assert_allclose(
        result.probabilities, 0.75 * np.array(P1) + 0.25 * np.array(P2), atol=1e-12
    )
    single = ensemble_probabilities([run(PATHS, P1)])
    np.testing.assert_allclose(single.probabilities, P1)


def test_paths_are_normalised():
    other = run(["./a/1.wav", "a//2.wav", "b/3.wav", "b/x/../4.wav"], P2)
    result = ensemble_probabilities([run(PATHS, P1), other])
    assert result.paths == PATHS


def test_refuses_mismatches():
    with pytest.raises(ValueError, match="same classes in the same order"):
        ensemble_probabilities(
            [run(PATHS, P1, "a"), run(PATHS, P2, "b", ["neutral", "sad", "happy"])]
        )
    with pytest.raises(ValueError, match="1 missing .*b/4.wav.*1 extra .*c/5.wav"):
        ensemble_probabilities(
            [run(PATHS, P1), run(PATHS[:3] + ["c/5.wav"], P2, "b")]
        )
    with pytest.raises(ValueError, match="one weight per run \\(2\\)"):
        ensemble_probabilities([run(PATHS, P1), run(PATHS, P2)], weights=[1])
    with pytest.raises(ValueError, match="weights=\\[-1.0, 2.0\\]"):
        ensemble_probabilities([run(PATHS, P1), run(PATHS, P2)], weights=[-1, 2])
    with pytest.raises(ValueError, match="at least one run"):
        ensemble_probabilities([])


def test_run_validation():
    with pytest.raises(ValueError, match="duplicates: \\['a/1.wav'\\]"):
        run(PATHS[:3] + ["a/1.wav"], P1)
    with pytest.raises(ValueError, match="row 1 \\(a/2.wav\\) sums to 0.500000"):
        run(PATHS, [P1[0], [0.2, 0.2, 0.1], P1[2], P1[3]])
    with pytest.raises(ValueError, match="Received: shape=\\(4, 2\\)"):
        run(PATHS, np.array(P1)[:, :2])


def test_evaluate_uses_compute_metrics_and_round_trips():
    labels = {"a/1.wav": 0, "a/2.wav": 1, "b/3.wav": 2, "b/4.wav": 2, "z.wav": 0}
    metrics = evaluate_run(run(PATHS, P1), labels)
    # Predictions 0, 1, 0, 2: neutral 1/1, happy 1/1, sad 1/2.
    assert metrics["wa"] == pytest.approx(0.75)
    assert metrics["uar"] == pytest.approx((1 + 1 + 0.5) / 3)
    again = ProbabilityRun.from_dict(json.loads(json.dumps(run(PATHS, P1, "x").to_dict())))
    assert again.paths == PATHS and again.name == "x"
    with pytest.raises(ValueError, match="No label for 1 files"):
        evaluate_run(run(PATHS, P1), {p: 0 for p in PATHS[:3]})


def test_from_fold_results_joins_test_rows():
    folds = [
        {"test_idx": np.array([2, 0]), "probabilities": np.array([P1[2], P1[0]])},
        {"test_idx": np.array([3, 1]), "probabilities": np.array([P1[3], P1[1]])},
    ]
    joined = ProbabilityRun.from_fold_results(PATHS, folds, CLASSES, name="cv")
    result = ensemble_probabilities([run(PATHS, P1), joined])
    np.testing.assert_allclose(result.probabilities, P1, atol=1e-12)
    folds[1]["test_idx"] = np.array([3, 0])
    with pytest.raises(ValueError, match="1 rows are test rows of more than one fold"):
        ProbabilityRun.from_fold_results(PATHS, folds, CLASSES)
