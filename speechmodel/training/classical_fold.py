"""One fold of a classical (scikit-learn) model
(:func:`run_classical_fold`): its features extracted (the feature set of
``training.classical.features``; cached, a chunk of files at a time), the
grid search over the training speakers, the refit, the test, and the model
saved as ``model.skz``. With ``training.classical.speaker_normalization``
every speaker's features are standardised with that speaker's own
statistics (the test speakers' over their test recordings: transductive),
and each test clip is also classified on its own (an average training
speaker's statistics: ``predicted_per_clip``)."""

import logging
import os
import time

import numpy as np

from speechmodel.training import artifacts, run_log
from speechmodel.training.folds import fold_data, fold_result


def run_classical_fold(config, manifest, test_manifest, fold, number, class_names, fold_dir, *,
                        reporter=None, label=None):
    from speechmodel.classical import experiment, persistence
    from speechmodel.classical.features import feature_config as feature_config_of
    from speechmodel.classical.grid_search import default_grid_path

    start = time.time()
    reporter = reporter or run_log.quiet_reporter()
    label = label or f"fold {fold.name}"
    settings = dict(config["training"].get("classical") or {})
    feature_config = feature_config_of(settings.get("features"))
    speaker_normalization = bool(settings.get("speaker_normalization", False))
    # The run directory's parent (folds/<fold>/ and final/ alike).
    run_dir = os.path.dirname(fold_dir) if fold.name == "final" else os.path.dirname(os.path.dirname(fold_dir))
    cache_dir = settings.get("cache_dir") or os.path.join(run_dir, "..", ".feature-cache")
    same = test_manifest is manifest
    rows = list(manifest) if same else list(manifest) + list(test_manifest)
    n_jobs = int(settings.get("n_jobs", 2))
    matrix = _classical_features(
        [u.path for u in rows], feature_config, n_jobs=n_jobs, cache_dir=cache_dir,
        reporter=reporter, label=f"{label}: {feature_config.feature_set} features",
    )
    kept = np.asarray(matrix.kept, dtype=np.int64)
    position = {int(k): i for i, k in enumerate(kept)}
    labels = np.concatenate(
        [manifest.label_indices(class_names)] + ([] if same else [test_manifest.label_indices(class_names)])
    )
    groups = np.array([f"{u.corpus}:{u.speaker}" for u in rows])
    offset = 0 if same else len(manifest)

    def rows_of(indices, shift=0):
        return np.array([position[i + shift] for i in indices if i + shift in position], dtype=np.int64)

    data = fold_data(manifest, test_manifest, fold, class_names, config)
    name = config["model"]["name"]
    grid = settings.get("grid", default_grid_path(name))
    search_start = time.monotonic()

    def candidate_done(done, total, params, mean_uar):
        elapsed = time.monotonic() - search_start
        left = elapsed * (total - done) / done
        from speechmodel.progress import format_seconds

        reporter.say(
            f"{label}: grid search {done}/{total} candidates: {_params_text(params)} -> inner UAR "
            f"{100 * mean_uar:.2f} % ({format_seconds(elapsed)}"
            + (f", about {format_seconds(left)} left in this search)" if done < total else ")")
        )

    reporter.say(f"{label}: {name}, grid search over the training speakers, then the refit")
    common = {
        "grid": grid, "seed": int(config["training"]["seed"]), "class_names": class_names,
        "params": settings.get("params"), "feature_config": feature_config, "n_jobs": n_jobs,
        "speaker_normalization": speaker_normalization,
    }
    fit_rows = np.concatenate([rows_of(fold.train), rows_of(fold.val)])
    if len(fold.test):
        outcome = experiment.run_classical_fold(
            name, matrix.X, labels[kept], groups[kept],
            rows_of(fold.train), rows_of(fold.val), rows_of(fold.test, offset),
            progress=candidate_done, **common,
        )
    else:  # The final model: every speaker, nothing to test.
        outcome = _fit_classical(
            name, matrix.X[fit_rows], labels[kept][fit_rows], groups[kept][fit_rows],
            progress=candidate_done, **common,
        )
    persistence.save_model(outcome["model"], artifacts.staged(fold_dir, "model.skz"))
    test_positions = [i for i in fold.test if i + offset in position]
    extra = {
        "chosen_params": outcome["chosen_params"],
        "inner_uar": outcome["inner_uar"],
        "fit_seconds": outcome["fit_seconds"],
        "failed_files": [[f.path, f.reason] for f in matrix.failures],
        "seconds": time.time() - start,
    }
    if outcome.get("per_clip_probabilities") is not None:
        extra["per_clip_predicted"] = np.asarray(outcome["per_clip_probabilities"]).argmax(-1)
    reporter.run.epoch_done((fold.name, "classical"), extra["seconds"])
    reporter.say(
        f"{label}: chose {_params_text(outcome['chosen_params'])} ({extra['fit_seconds']:.0f} s) "
        f"| {reporter.run.summary()}"
    )
    kept_test = [list(fold.test).index(i) for i in test_positions]
    probabilities = np.asarray(outcome.get("probabilities", np.zeros((0, len(class_names)))))
    return fold_result(fold, data, class_names, probabilities, kept_test, extra)


def _params_text(params):
    return ", ".join(f"{k}={v}" for k, v in sorted((params or {}).items())) or "the defaults"


def _classical_features(paths, feature_config, *, n_jobs, cache_dir, reporter, label, chunk=128):
    """``extract_features`` of ``paths``, a chunk of files at a time so that
    a long extraction reports its progress; the same ``FeatureMatrix``."""
    from speechmodel.classical.features import FeatureFailure, FeatureMatrix, extract_features

    count = reporter.count(label, len(paths))
    blocks, failures, names = [], [], None
    for begin in range(0, len(paths), chunk):
        part = extract_features(paths[begin:begin + chunk], feature_config, n_jobs=n_jobs, cache_dir=cache_dir)
        names = part.feature_names
        blocks.append(part.X)
        failures += [FeatureFailure(f.index + begin, f.path, f.reason) for f in part.failures]
        count.update(min(begin + chunk, len(paths)))
    count.close()
    for failure in failures:  # Said, as the deep models' input pipeline says them.
        logging.warning("Skipping %s: %s", failure.path, failure.reason)
    if names is None:
        return extract_features([], feature_config, n_jobs=1, cache_dir=cache_dir)
    return FeatureMatrix(np.concatenate(blocks), names, failures)


def _fit_classical(name, X, y, groups, *, grid, seed, class_names, params, feature_config, n_jobs,
                   speaker_normalization=False, progress=None):
    """The final classical model: the grid search and the refit of
    ``speechmodel.classical.experiment.run_classical_fold`` on every
    (non-test) row, nothing to predict."""
    from speechmodel.classical.classifiers import ClassicalModel, standardize_by_speaker
    from speechmodel.classical.grid_search import GridSpec, grid_search, load_grid

    start = time.perf_counter()
    if isinstance(grid, (str, bytes)) or hasattr(grid, "__fspath__"):
        grid = load_grid(grid)
    if isinstance(grid, GridSpec):
        grid = grid.param_grid
    chosen, search = dict(params or {}), None
    if grid is not None:
        searched = standardize_by_speaker(X, groups)[0] if speaker_normalization else X
        search = grid_search(
            name, searched, y, groups, param_grid=grid, base_params=params, seed=seed, n_jobs=n_jobs,
            progress=progress,
        )
        chosen.update(search.best_params)
    model = ClassicalModel(name, params=chosen, feature_config=feature_config, class_names=class_names, seed=seed,
                           speaker_normalization=speaker_normalization)
    model.fit(X, y, groups if speaker_normalization else None)
    return {
        "model": model,
        "chosen_params": chosen,
        "inner_uar": None if search is None else search.best_score,
        "fit_seconds": time.perf_counter() - start,
    }
