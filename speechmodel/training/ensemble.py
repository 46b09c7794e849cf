"""Probability ensembles of finished runs, deep and classical alike.

    python -m speechmodel.training.ensemble runs/a runs/b [--weights 2,1] --output_dir runs/ensemble

Averages (optionally weighted) the test-set class probabilities that each run
wrote to its ``predictions.csv``, as the IEMOCAP seed project's final model
did, and reports the result like any run: ``metrics.json`` (pooled UAR / WA,
per-class recall, confusion matrix, per-fold figures), ``predictions.csv``,
``confusion.png`` and ``config.json`` naming the members. The runs must
share the protocol's folds (the same test speakers in every fold) and the
classes; rows are matched by file. Nothing is retrained and no test label
chooses anything: the weights are given, not fitted.
"""

import argparse
import os
import sys


from speechmodel.classical.ensemble import ProbabilityRun, ensemble_probabilities
from speechmodel.metrics import compute_metrics
from speechmodel.training import artifacts
from speechmodel.training.summary import summarise
from speechmodel.errors import Error


class EnsembleError(Error, ValueError):
    """Runs that cannot be combined; the message says what differs."""


def _folds(run_dir):
    data = artifacts.read_json(os.path.join(run_dir, "folds.json"))
    return {f["name"]: (tuple(f["test_speakers"]), f) for f in data["folds"]}


def ensemble_runs(run_dirs, *, weights=None, output_dir):
    """Combines finished runs; returns the metrics dict it wrote."""
    if len(run_dirs) < 2:
        raise EnsembleError(f"An ensemble needs at least two runs. Received: {list(run_dirs)}")
    runs, folds, classes = [], None, None
    by_file = {}
    for run_dir in run_dirs:
        path = os.path.join(run_dir, "predictions.csv")
        if not os.path.exists(path):
            raise EnsembleError(f"{run_dir}: no predictions.csv (not a finished run with a test set)")
        rows, names = artifacts.read_predictions(path)
        these = _folds(run_dir)
        if folds is None:
            folds, classes = these, names
        elif {k: v[0] for k, v in these.items()} != {k: v[0] for k, v in folds.items()}:
            raise EnsembleError(f"{run_dir}: its folds differ from {run_dirs[0]}'s (test speakers per fold)")
        elif names != classes:
            raise EnsembleError(f"{run_dir}: classes {names} differ from {classes}")
        runs.append(
            ProbabilityRun([r["file"] for r in rows], [r["probabilities"] for r in rows], names, name=run_dir)
        )
        for r in rows:
            by_file.setdefault(os.path.normpath(r["file"]), r)
    try:
        combined = ensemble_probabilities(runs, weights=weights, name="ensemble")
    except ValueError as exc:
        raise EnsembleError(str(exc)) from None
    predicted = combined.probabilities.argmax(-1)
    results = {}
    for k, path in enumerate(combined.paths):
        meta = by_file[path]
        results.setdefault(meta["fold"], []).append(
            {
                "file": meta["file"], "speaker": meta["speaker"], "fold": meta["fold"],
                "true": meta["true"], "predicted": classes[predicted[k]],
                "probabilities": [float(p) for p in combined.probabilities[k]],
            }
        )
    fold_results, fold_objects = [], []
    index = {c: i for i, c in enumerate(classes)}
    for name, (test_speakers, record) in folds.items():
        rows = results.get(name, [])
        test = compute_metrics(
            [index[r["true"]] for r in rows], [index[r["predicted"]] for r in rows], class_names=classes
        ) if rows else None
        fold_results.append(
            {
                "fold": name, "train_speakers": record["train_speakers"],
                "val_speakers": record["val_speakers"], "test_speakers": list(test_speakers),
                "counts": {"test": len(rows)}, "test": test, "predictions": rows, "seconds": 0.0,
            }
        )
        fold_objects.append(_FoldView(name, record.get("speaker_independent", True)))
    config = artifacts.read_json(os.path.join(run_dirs[0], "config.json"))
    config = {
        **config,
        "model": {"name": "ensemble", "members": list(run_dirs),
                  "weights": None if weights is None else [float(w) for w in weights]},
        "output_dir": output_dir,
    }
    os.makedirs(output_dir, exist_ok=True)
    artifacts.write_json(os.path.join(output_dir, "config.json"), config)
    with open(os.path.join(run_dirs[0], "folds.json"), "rb") as f:
        artifacts.atomic_write_bytes(os.path.join(output_dir, "folds.json"), f.read())
    return summarise(config, fold_objects, fold_results, classes, output_dir, 0.0)


class _FoldView:
    """What ``summarise`` reads of a fold."""

    def __init__(self, name, speaker_independent):
        self.name = name
        self.speaker_independent = speaker_independent


def main(argv=None):
    parser = argparse.ArgumentParser(description="Average the test probabilities of finished runs.")
    parser.add_argument("runs", nargs="+", help="run directories on the same folds")
    parser.add_argument("--weights", help="comma list, one weight per run (default: equal)")
    parser.add_argument("--output_dir", "--output-dir", required=True)
    args = parser.parse_args(argv)
    weights = None
    if args.weights:
        weights = [float(w) for w in args.weights.split(",")]
    try:
        metrics = ensemble_runs(args.runs, weights=weights, output_dir=args.output_dir)
    except (EnsembleError, FileNotFoundError) as exc:
        print(f"ensemble: {exc}", file=sys.stderr)
        return 2
    print(
        f"ensemble of {len(args.runs)} runs: UAR {100 * metrics['uar']:.2f} %  WA {100 * metrics['wa']:.2f} %  "
        f"(per-fold UAR {100 * metrics['fold_uar_mean']:.2f} +- {100 * metrics['fold_uar_std']:.2f}) -> {args.output_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
