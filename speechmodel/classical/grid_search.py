"""Speaker-grouped grid search of a classifier's parameters.

The search runs inner cross-validation on the rows it is given, with folds
grouped by speaker (``GroupKFold``: a speaker is never on both sides of an
inner split) and UAR (``balanced_accuracy``, the macro recall over the
classes present) as the score. Callers pass the outer fold's non-test rows
only, so the test speakers cannot influence the chosen parameters.

Grids are data: ``configs/classical/<name>.json`` holds

```json
{"classifier": "svm",
 "description": "...",
 "param_grid": {"C": [1, 10, 100], "gamma": ["scale", 0.001]}}
```

with bare estimator parameter names (``param_grid`` may also be a list of
such dicts, as in scikit-learn).
"""

import dataclasses
import json
import os
import pathlib
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from scipy.stats import rankdata
from sklearn.model_selection import GridSearchCV, GroupKFold, ParameterGrid

from speechmodel.classical.registry import (
    build_pipeline,
    check_xy,
    get_spec,
    normalize_params,
)


@dataclasses.dataclass(frozen=True)
class GridSpec:
    """A parameter grid read from JSON.

    Attributes:
        classifier: registered classifier name.
        param_grid: list of dicts, parameter name -> candidate values.
        description: free text.
    """

    classifier: str
    param_grid: list
    description: str = ""

    @property
    def n_candidates(self):
        total = 0
        for grid in self.param_grid:
            n = 1
            for values in grid.values():
                n *= len(values)
            total += n
        return total


@dataclasses.dataclass
class GridSearchResult:
    """The outcome of ``grid_search``.

    Attributes:
        best_params: the chosen parameters (bare names, JSON-ready).
        best_score: their mean inner-CV UAR (None for a single candidate).
        candidates: every candidate, as dicts ``params``, ``mean_uar``,
            ``std_uar``, ``rank``.
        n_splits: inner folds used.
        n_groups: speakers in the searched rows.
        seconds: wall time of the search.
    """

    best_params: dict
    best_score: float
    candidates: list
    n_splits: int
    n_groups: int
    seconds: float

    def to_dict(self):
        return dataclasses.asdict(self)


def _normalize_grid(param_grid, classifier):
    if isinstance(param_grid, GridSpec):
        param_grid = param_grid.param_grid
    grids = [param_grid] if isinstance(param_grid, dict) else list(param_grid)
    if not grids:
        raise ValueError(
            f"`param_grid` must not be an empty list. Received: {param_grid!r}"
        )
    known = set(build_pipeline(classifier).named_steps["clf"].get_params(deep=False))
    normalized = []
    for grid in grids:
        if not isinstance(grid, dict):
            raise ValueError(
                "`param_grid` must be a dict or a list of dicts. "
                f"Received: {grid!r}"
            )
        unknown = sorted(set(grid) - known)
        if unknown:
            raise ValueError(
                f"Unknown parameters {unknown} in the grid of {classifier!r}; "
                f"known: {sorted(known)}. Received: param_grid={grid}"
            )
        out = {}
        for key, values in grid.items():
            if not isinstance(values, (list, tuple)) or len(values) == 0:
                raise ValueError(
                    f"Grid values must be non-empty lists. "
                    f"Received: {key}={values!r}"
                )
            out[key] = [normalize_params({key: v})[key] for v in values]
        normalized.append(out)
    return normalized


def load_grid(path):
    """Reads a grid JSON file (see the module docstring).

    Args:
        path: the JSON file.

    Returns:
        GridSpec.

    Raises:
        ValueError: unreadable JSON, unknown keys, classifier or parameters.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"{path}: grid file not found") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a grid file holds a JSON object. Received: {data!r}")
    unknown = sorted(set(data) - {"classifier", "param_grid", "description"})
    missing = sorted({"classifier", "param_grid"} - set(data))
    if unknown or missing:
        raise ValueError(
            f"{path}: a grid file has keys classifier, param_grid and "
            f"optionally description. Received: unknown={unknown}, "
            f"missing={missing}"
        )
    try:
        get_spec(data["classifier"])
        grids = _normalize_grid(data["param_grid"], data["classifier"])
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return GridSpec(data["classifier"], grids, str(data.get("description", "")))


def default_grid_path(name):
    """``configs/classical/<name>.json`` of the source checkout."""
    root = pathlib.Path(__file__).resolve().parents[2]
    return root / "configs" / "classical" / f"{name}.json"


def inner_splits(groups, n_splits):
    """Speaker-grouped (train, validation) index pairs for the inner CV.

    Args:
        groups: (n,) speaker of each row.
        n_splits: wanted folds; capped at the number of speakers.

    Returns:
        list of (train_indices, val_indices); no speaker is on both sides.
    """
    groups = np.asarray(groups)
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError(
            "Speaker-grouped cross-validation needs at least 2 speakers. "
            f"Received: {n_groups} distinct groups"
        )
    if not isinstance(n_splits, (int, np.integer)) or n_splits < 2:
        raise ValueError(
            f"`n_splits` must be an integer >= 2. Received: n_splits={n_splits}"
        )
    splitter = GroupKFold(n_splits=min(int(n_splits), n_groups))
    return list(splitter.split(np.zeros(len(groups)), groups=groups))


def grid_search(
    name,
    X,
    y,
    groups,
    *,
    param_grid,
    base_params=None,
    seed=0,
    n_splits=4,
    n_jobs=1,
    progress=None,
):
    """Chooses parameters by speaker-grouped inner cross-validation.

    Args:
        name: registered classifier name.
        X: float (n, d) features of the rows to search on (never test rows).
        y: int (n,) class indices.
        groups: (n,) speaker of each row.
        param_grid: dict or list of dicts (bare parameter names), or a
            GridSpec.
        base_params: fixed parameters the grid is applied on top of.
        seed: estimator ``random_state``.
        n_splits: inner folds (capped at the number of speakers).
        n_jobs: parallel fits.
        progress: optional ``progress(done, total, params, mean_uar)``,
            called after each candidate is cross-validated (a long search
            says how far it is).

    Returns:
        GridSearchResult. Ties in mean UAR go to the first candidate in grid
        order. A grid of a single candidate leaves nothing to choose: it is
        not cross-validated (``best_score`` and its ``mean_uar`` are None,
        ``n_splits`` is 0), which saves the inner fits.
    """
    X, y, groups = check_xy(X, y, groups=groups)
    if groups is None:
        raise ValueError("`groups` is required. Received: groups=None")
    grids = _normalize_grid(param_grid, name)
    n_groups = int(len(np.unique(groups)))
    if GridSpec(name, grids).n_candidates == 1:
        params = {k: _jsonable(v[0]) for k, v in grids[0].items()}
        return GridSearchResult(
            best_params=params,
            best_score=None,
            candidates=[
                {"params": params, "mean_uar": None, "std_uar": None, "rank": 1}
            ],
            n_splits=0,
            n_groups=n_groups,
            seconds=0.0,
        )
    splits = inner_splits(groups, n_splits)
    pipeline = build_pipeline(name, base_params, seed=seed, for_search=True)
    prefixed = [{f"clf__{k}": v for k, v in grid.items()} for grid in grids]
    # One candidate at a time (in ParameterGrid order, as GridSearchCV
    # would), so that a long search can report after each; the figures and
    # the ranking are GridSearchCV's (mean and std over the inner folds,
    # rank by mean, ties to the first candidate).
    candidate_params = list(ParameterGrid(prefixed))
    start = time.perf_counter()
    means, stds = [], []
    for done, params in enumerate(candidate_params, start=1):
        search = GridSearchCV(
            pipeline,
            {k: [v] for k, v in params.items()},
            scoring="balanced_accuracy",
            cv=splits,
            refit=False,
            n_jobs=n_jobs,
            error_score="raise",
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            search.fit(X, y)
        means.append(float(search.cv_results_["mean_test_score"][0]))
        stds.append(float(search.cv_results_["std_test_score"][0]))
        if progress is not None:
            progress(done, len(candidate_params), _bare(params), means[-1])
    seconds = time.perf_counter() - start
    ranks = rankdata(-np.asarray(means), method="min").astype(np.int32)
    candidates = [
        {"params": _bare(params), "mean_uar": mean, "std_uar": std, "rank": int(rank)}
        for params, mean, std, rank in zip(candidate_params, means, stds, ranks)
    ]
    best = candidates[int(np.argmin(ranks))]
    return GridSearchResult(
        best_params=dict(best["params"]),
        best_score=best["mean_uar"],
        candidates=candidates,
        n_splits=len(splits),
        n_groups=n_groups,
        seconds=seconds,
    )


def _bare(params):
    return {k[len("clf__"):]: _jsonable(v) for k, v in params.items()}


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
