"""Probability ensembles of several runs on the same utterances.

Each run contributes a class-probability matrix with one row per file; rows
are matched by file path (not by position), so runs whose rows come in a
different order (e.g. concatenated over folds in another order) combine
correctly. Runs with different class lists or different sets of files are
refused with an error that says what differs.
"""

import dataclasses
import os

import numpy as np

from speechmodel.metrics import compute_metrics


@dataclasses.dataclass
class ProbabilityRun:
    """Class probabilities of one run.

    Attributes:
        paths: one file path per row (compared after ``os.path.normpath``).
        probabilities: float (n, n_classes), rows summing to 1.
        class_names: column names.
        name: a label for messages and reports.
    """

    paths: list
    probabilities: np.ndarray
    class_names: list
    name: str = ""

    def __post_init__(self):
        self.paths = [os.path.normpath(os.fspath(p)) for p in self.paths]
        self.class_names = list(self.class_names)
        self.probabilities = np.asarray(self.probabilities, dtype=np.float64)
        label = f"run {self.name!r}" if self.name else "a run"
        p = self.probabilities
        if p.ndim != 2 or p.shape != (len(self.paths), len(self.class_names)):
            raise ValueError(
                f"{label}: `probabilities` must be (n_paths, n_classes) = "
                f"({len(self.paths)}, {len(self.class_names)}). "
                f"Received: shape={p.shape}"
            )
        if len(set(self.paths)) != len(self.paths):
            seen, dup = set(), []
            for path in self.paths:
                if path in seen:
                    dup.append(path)
                seen.add(path)
            raise ValueError(
                f"{label}: paths must be unique. Received duplicates: {dup[:5]}"
            )
        if not np.isfinite(p).all() or (p < 0).any():
            raise ValueError(
                f"{label}: probabilities must be finite and non-negative."
            )
        sums = p.sum(axis=1)
        bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-4)
        if bad.size:
            raise ValueError(
                f"{label}: rows must sum to 1 (tolerance 1e-4). Received: "
                f"row {bad[0]} ({self.paths[bad[0]]}) sums to {sums[bad[0]]:.6f}"
            )

    def to_dict(self):
        return {
            "name": self.name,
            "class_names": list(self.class_names),
            "paths": list(self.paths),
            "probabilities": self.probabilities.tolist(),
        }

    @classmethod
    def from_fold_results(cls, paths, results, class_names, *, name=""):
        """Joins the test rows of several folds into one run.

        Args:
            paths: the manifest's file paths (what ``test_idx`` indexes).
            results: dicts with ``test_idx`` and ``probabilities`` (as
                returned by ``run_classical_fold``).
            class_names: column names.
            name: the run's name.

        Raises:
            ValueError: a row is the test row of two folds.
        """
        paths = list(paths)
        rows, probabilities = [], []
        for result in results:
            rows.append(np.asarray(result["test_idx"], dtype=np.int64))
            probabilities.append(np.asarray(result["probabilities"], np.float64))
        rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        unique, counts = np.unique(rows, return_counts=True)
        if (counts > 1).any():
            twice = unique[counts > 1]
            raise ValueError(
                f"{twice.size} rows are test rows of more than one fold, "
                f"e.g. {[paths[i] for i in twice[:3]]}"
            )
        probabilities = (
            np.concatenate(probabilities)
            if probabilities
            else np.zeros((0, len(class_names)))
        )
        return cls([paths[i] for i in rows], probabilities, class_names, name)

    @classmethod
    def from_dict(cls, data):
        return cls(
            paths=data["paths"],
            probabilities=data["probabilities"],
            class_names=data["class_names"],
            name=data.get("name", ""),
        )


def ensemble_probabilities(runs, *, weights=None, name="ensemble"):
    """The (weighted) mean of the runs' probabilities, row-aligned by path.

    Args:
        runs: ProbabilityRun objects (at least one) over the same files and
            the same class list in the same order.
        weights: one non-negative weight per run (normalised to sum 1);
            None is the plain mean.
        name: name of the result.

    Returns:
        ProbabilityRun in the first run's row order.

    Raises:
        ValueError: no runs, mismatched class lists or file sets, or bad
            weights.
    """
    runs = list(runs)
    if not runs:
        raise ValueError("ensemble_probabilities needs at least one run.")
    for run in runs:
        if not isinstance(run, ProbabilityRun):
            raise ValueError(
                "`runs` must hold ProbabilityRun objects. "
                f"Received: {type(run).__name__}"
            )
    if weights is None:
        weights = np.ones(len(runs))
    weights = np.asarray(weights, dtype=np.float64).reshape(-1)
    if weights.size != len(runs):
        raise ValueError(
            f"`weights` needs one weight per run ({len(runs)}). "
            f"Received: {weights.size} weights"
        )
    if not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(
            "`weights` must be finite, non-negative and not all zero. "
            f"Received: weights={weights.tolist()}"
        )
    weights = weights / weights.sum()
    first = runs[0]
    reference = set(first.paths)
    total = np.zeros_like(first.probabilities)
    for i, run in enumerate(runs):
        label = run.name or f"#{i}"
        if run.class_names != first.class_names:
            raise ValueError(
                f"Run {label} has classes {run.class_names} but run "
                f"{first.name or '#0'} has {first.class_names}; ensembles need "
                "the same classes in the same order."
            )
        if set(run.paths) != reference:
            missing = sorted(reference - set(run.paths))
            extra = sorted(set(run.paths) - reference)
            raise ValueError(
                f"Run {label} covers different files than run "
                f"{first.name or '#0'}: {len(missing)} missing (e.g. "
                f"{missing[:3]}), {len(extra)} extra (e.g. {extra[:3]})."
            )
        position = {path: row for row, path in enumerate(run.paths)}
        order = np.array([position[path] for path in first.paths], dtype=np.int64)
        total += weights[i] * run.probabilities[order]
    return ProbabilityRun(list(first.paths), total, list(first.class_names), name)


def evaluate_run(run, labels):
    """compute_metrics of a run's argmax predictions.

    Args:
        run: ProbabilityRun.
        labels: mapping path -> true class index, covering every path of
            the run (extra paths are ignored).

    Returns:
        the dict of ``speechmodel.metrics.compute_metrics``.
    """
    labels = {os.path.normpath(os.fspath(k)): int(v) for k, v in dict(labels).items()}
    missing = [p for p in run.paths if p not in labels]
    if missing:
        raise ValueError(
            f"No label for {len(missing)} files of run {run.name or ''}; "
            f"e.g. {missing[:3]}"
        )
    y_true = np.array([labels[p] for p in run.paths], dtype=np.int64)
    y_pred = np.argmax(run.probabilities, axis=1)
    return compute_metrics(y_true, y_pred, class_names=run.class_names)
