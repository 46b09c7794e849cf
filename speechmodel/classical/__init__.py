"""Classical baselines: utterance features + scikit-learn classifiers.

The seeds' recognisers, made reproducible: per-utterance feature sets
(``features``: librosa statistics, or openSMILE's eGeMAPS and ComParE
through ``opensmile_features``), a registry of scaled scikit-learn
classifiers (``registry``) and the model on them (``classifiers``), speaker-grouped grid search
(``grid_search``), one outer fold of an experiment (``experiment``),
probability ensembles (``ensemble``) and saving without pickle
(``persistence``).

The names below are imported on first use, so that reading a feature
configuration (``speechmodel.classical.features``) does not load
scikit-learn. The search function is
``speechmodel.classical.grid_search.grid_search`` (not re-exported here, so
that the name keeps meaning the module).
"""

import importlib

_LAZY = {
    "ClassicalModel": "classifiers",
    "PathPredictions": "classifiers",
    "available_classifiers": "registry",
    "build_pipeline": "registry",
    "register_classifier": "registry",
    "ProbabilityRun": "ensemble",
    "ensemble_probabilities": "ensemble",
    "evaluate_run": "ensemble",
    "run_classical_fold": "experiment",
    "ClassicalFeatureConfig": "features",
    "FEATURE_SETS": "features",
    "FeatureFailure": "features",
    "FeatureMatrix": "features",
    "compute_features": "features",
    "extract_features": "features",
    "feature_config": "features",
    "feature_names": "features",
    "OpenSmileFeatureConfig": "opensmile_features",
    "GridSearchResult": "grid_search",
    "GridSpec": "grid_search",
    "default_grid_path": "grid_search",
    "load_grid": "grid_search",
    "UnsafeModelError": "persistence",
    "load_model": "persistence",
    "read_metadata": "persistence",
    "save_model": "persistence",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
