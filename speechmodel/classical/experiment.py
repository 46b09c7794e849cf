"""One outer fold of a classical-baseline experiment.

``run_classical_fold`` is what a training script calls per fold: it checks
that the fold is speaker independent, chooses the parameters by grouped
inner cross-validation on the fold's non-test rows, refits on them and
returns the test rows' class probabilities.

The classical models need no early stopping, so the fold's validation rows
are not held out: train and validation rows (both free of test speakers)
form the search and refit set. Their speakers are reported.
"""

import time
import warnings

import numpy as np

from speechmodel.classical.classifiers import ClassicalModel, standardize_by_speaker
from speechmodel.classical.registry import check_xy
from speechmodel.classical.grid_search import GridSpec, grid_search, load_grid


def _indices(name, idx, n):
    idx = np.asarray(idx if idx is not None else [], dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(
            f"`{name}` holds indices outside [0, {n}). "
            f"Received: min={idx.min()}, max={idx.max()}"
        )
    if len(np.unique(idx)) != idx.size:
        raise ValueError(f"`{name}` repeats indices.")
    return idx


def run_classical_fold(
    name,
    X,
    y,
    groups,
    train_idx,
    val_idx,
    test_idx,
    *,
    grid,
    seed,
    class_names=None,
    params=None,
    feature_config=None,
    inner_splits=4,
    n_jobs=1,
    allow_speaker_overlap=False,
    speaker_normalization=False,
    progress=None,
):
    """Grid search, refit and test predictions for one outer fold.

    Args:
        name: registered classifier name.
        X: float (n, d) features of the whole manifest.
        y: int (n,) class indices.
        groups: (n,) speaker of each row.
        train_idx, val_idx, test_idx: disjoint row indices of the fold
            (``val_idx`` may be empty or None).
        grid: parameter grid (dict, list of dicts, GridSpec or path to a
            grid JSON file), or None to fit the default parameters.
        seed: estimator ``random_state``.
        class_names: names of the classes; default ``"0"``, ``"1"``, ...
            up to ``max(y)``.
        params: fixed parameters the grid is applied on top of.
        feature_config: the feature configuration that produced ``X``
            (``speechmodel.classical.features.feature_config``; default
            the statistics).
        inner_splits: folds of the inner speaker-grouped cross-validation.
        n_jobs: parallel fits of the grid search.
        allow_speaker_overlap: accept a test speaker that also appears in
            train/val (speaker-dependent protocols only; warns).
        speaker_normalization: standardise each speaker's rows with that
            speaker's own statistics (``ClassicalModel``'s): the search and
            the refit on the training speakers' own, the test rows on each
            test speaker's own over their test rows (transductive: it needs
            unlabelled recordings of each test speaker) and, for
            ``per_clip_probabilities``, on an average training speaker's.
        progress: optional ``progress(done, total, params, mean_uar)`` after
            each grid candidate (``grid_search``'s).

    Returns:
        dict with ``test_idx`` (int64), ``probabilities`` (float64
        (n_test, n_classes), rows aligned with ``test_idx``),
        ``predictions`` (int64), ``per_clip_probabilities`` (with
        speaker normalisation, else None), ``chosen_params``, ``inner_uar`` (mean
        inner-CV UAR of the chosen parameters, None without a grid),
        ``candidates`` (every candidate's inner UAR), ``fit_seconds``
        (search + refit), ``search_seconds``, ``n_fit_rows``,
        ``fit_speakers``, ``test_speakers`` and ``model`` (the fitted
        ClassicalModel, for saving).
    """
    X, y, groups = check_xy(X, y, groups=groups)
    if groups is None:
        raise ValueError("`groups` is required. Received: groups=None")
    n = X.shape[0]
    train_idx = _indices("train_idx", train_idx, n)
    val_idx = _indices("val_idx", val_idx, n)
    test_idx = _indices("test_idx", test_idx, n)
    if train_idx.size == 0 or test_idx.size == 0:
        raise ValueError(
            "A fold needs training and test rows. Received: "
            f"{train_idx.size} train, {test_idx.size} test"
        )
    for a, b, ia, ib in (
        ("train_idx", "val_idx", train_idx, val_idx),
        ("train_idx", "test_idx", train_idx, test_idx),
        ("val_idx", "test_idx", val_idx, test_idx),
    ):
        shared = np.intersect1d(ia, ib)
        if shared.size:
            raise ValueError(
                f"`{a}` and `{b}` share {shared.size} rows. "
                f"Received: e.g. {shared[:5].tolist()}"
            )
    fit_idx = np.concatenate([train_idx, val_idx])
    fit_speakers = sorted(np.unique(groups[fit_idx]).tolist())
    test_speakers = sorted(np.unique(groups[test_idx]).tolist())
    overlap = sorted(set(fit_speakers) & set(test_speakers))
    if overlap:
        message = (
            f"Test speakers {overlap} also appear in the training/validation "
            "rows: the fold is not speaker independent"
        )
        if not allow_speaker_overlap:
            raise ValueError(
                message + " (pass allow_speaker_overlap=True to accept it)."
            )
        warnings.warn(message + ".", stacklevel=2)
    if class_names is None:
        class_names = [str(i) for i in range(int(y.max()) + 1)]
    if isinstance(grid, (str, bytes)) or hasattr(grid, "__fspath__"):
        grid = load_grid(grid)
    if isinstance(grid, GridSpec):
        if grid.classifier != name:
            raise ValueError(
                f"The grid is for {grid.classifier!r}, not {name!r}. "
                f"Received: grid.classifier={grid.classifier!r}"
            )
        grid = grid.param_grid

    X_fit, y_fit, g_fit = X[fit_idx], y[fit_idx], groups[fit_idx]
    start = time.perf_counter()
    search = None
    chosen = dict(params or {})
    if grid is not None:
        search = grid_search(
            name,
            standardize_by_speaker(X_fit, g_fit)[0] if speaker_normalization else X_fit,
            y_fit,
            g_fit,
            param_grid=grid,
            base_params=params,
            seed=seed,
            n_splits=inner_splits,
            n_jobs=n_jobs,
            progress=progress,
        )
        chosen.update(search.best_params)
    search_seconds = time.perf_counter() - start
    model = ClassicalModel(
        name,
        params=chosen,
        feature_config=feature_config,
        class_names=class_names,
        seed=seed,
        speaker_normalization=speaker_normalization,
    )
    model.fit(X_fit, y_fit, g_fit if speaker_normalization else None)
    fit_seconds = time.perf_counter() - start
    per_clip = model.predict_proba(X[test_idx])
    probabilities = (
        model.predict_proba(X[test_idx], speakers=groups[test_idx])
        if speaker_normalization
        else per_clip
    )
    return {
        "test_idx": test_idx,
        "probabilities": probabilities,
        "predictions": np.argmax(probabilities, axis=1).astype(np.int64),
        "per_clip_probabilities": per_clip if speaker_normalization else None,
        "chosen_params": chosen,
        "inner_uar": None if search is None else search.best_score,
        "candidates": [] if search is None else search.candidates,
        "fit_seconds": fit_seconds,
        "search_seconds": search_seconds,
        "n_fit_rows": int(fit_idx.size),
        "fit_speakers": fit_speakers,
        "test_speakers": test_speakers,
        "model": model,
    }
