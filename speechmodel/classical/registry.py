"""The classifiers by name: the registry of scaled scikit-learn pipelines.

Every classifier is a ``Pipeline([("scale", StandardScaler()), ("clf", ...)])``
so that feature scaling is fitted on the training rows only (within every
inner cross-validation split too). Registered names:

=========  ====================================================================
svm        ``SVC`` (RBF, ``probability=True``, balanced class weights)
rf         ``RandomForestClassifier`` (300 trees, balanced class weights)
hgb        ``HistGradientBoostingClassifier`` (balanced, no early stopping)
knn        ``KNeighborsClassifier`` (10 neighbours, distance weighted)
mlp        ``MLPClassifier`` (one hidden layer of 256, early stopping)
bagging    ``BaggingClassifier`` of decision trees (50)
=========  ====================================================================

``build_pipeline`` makes a fresh one; ``check_xy`` validates the arrays
given to them. ``speechmodel.classical.classifiers`` (``ClassicalModel``)
and ``speechmodel.classical.grid_search`` both build on this module.
"""

import dataclasses
import typing

import numpy as np
from sklearn.ensemble import (
    BaggingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC


@dataclasses.dataclass(frozen=True)
class ClassifierSpec:
    """A registered classifier.

    Attributes:
        name: registry name.
        factory: ``factory(seed) -> estimator`` with the default parameters.
        search_overrides: parameters set only while grid searching, where
            the score needs ``predict`` alone (e.g. ``probability=False``
            spares SVC its internal Platt-scaling cross-validation).
        description: one line for listings.
    """

    name: str
    factory: typing.Callable
    search_overrides: dict = dataclasses.field(default_factory=dict)
    description: str = ""


_REGISTRY = {}


def register_classifier(name, factory, *, search_overrides=None, description=""):
    """Adds (or replaces) a classifier in the registry.

    Args:
        name: the registry name.
        factory: ``factory(seed) -> estimator`` (an unfitted scikit-learn
            classifier with ``predict_proba``).
        search_overrides: parameters applied only during grid search.
        description: one line for listings.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` must be a non-empty string. Received: name={name!r}")
    if not callable(factory):
        raise ValueError(
            f"`factory` must be callable. Received: factory={factory!r}"
        )
    _REGISTRY[name] = ClassifierSpec(
        name, factory, dict(search_overrides or {}), description
    )


def available_classifiers():
    """Sorted names of the registered classifiers."""
    return sorted(_REGISTRY)


def get_spec(name):
    """The ClassifierSpec of ``name``; unknown names raise ValueError."""
    if name not in _REGISTRY:
        raise ValueError(
            f"Unknown classifier. Known: {available_classifiers()}. "
            f"Received: name={name!r}"
        )
    return _REGISTRY[name]


register_classifier(
    "svm",
    lambda seed: SVC(
        kernel="rbf",
        C=10.0,
        gamma="scale",
        class_weight="balanced",
        probability=True,
        random_state=seed,
    ),
    search_overrides={"probability": False},
    description="RBF support vector machine with Platt-scaled probabilities",
)
register_classifier(
    "rf",
    lambda seed: RandomForestClassifier(
        n_estimators=300, class_weight="balanced", random_state=seed
    ),
    description="random forest",
)
register_classifier(
    "hgb",
    lambda seed: HistGradientBoostingClassifier(
        learning_rate=0.1,
        max_iter=200,
        class_weight="balanced",
        early_stopping=False,
        random_state=seed,
    ),
    description="histogram gradient boosting",
)
register_classifier(
    "knn",
    lambda seed: KNeighborsClassifier(n_neighbors=10, weights="distance"),
    description="k nearest neighbours",
)
register_classifier(
    "mlp",
    lambda seed: MLPClassifier(
        hidden_layer_sizes=(256,),
        alpha=1e-3,
        max_iter=500,
        early_stopping=True,
        random_state=seed,
    ),
    description="multi-layer perceptron",
)
register_classifier(
    "bagging",
    lambda seed: BaggingClassifier(n_estimators=50, random_state=seed),
    description="bagged decision trees",
)


def _as_param_value(value):
    # JSON has no tuples: e.g. hidden_layer_sizes [256, 128] -> (256, 128).
    return tuple(value) if isinstance(value, list) else value


def normalize_params(params):
    """A copy of ``params`` with JSON lists turned into tuples."""
    return {str(k): _as_param_value(v) for k, v in dict(params or {}).items()}


def build_pipeline(name, params=None, *, seed=0, for_search=False):
    """A fresh scaler + classifier pipeline.

    Args:
        name: registered classifier name.
        params: estimator parameters (bare names such as ``C``), applied on
            top of the registry defaults.
        seed: ``random_state`` of the estimator (where it has one).
        for_search: also apply the spec's ``search_overrides``.

    Returns:
        ``Pipeline([("scale", StandardScaler()), ("clf", estimator)])``.

    Raises:
        ValueError: unknown classifier or parameter.
    """
    spec = get_spec(name)
    estimator = spec.factory(seed)
    params = normalize_params(params)
    known = estimator.get_params(deep=False)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(
            f"Unknown parameters {unknown} for classifier {name!r} "
            f"({type(estimator).__name__}); known: {sorted(known)}. "
            f"Received: params={params}"
        )
    estimator.set_params(**params)
    if for_search and spec.search_overrides:
        estimator.set_params(**spec.search_overrides)
    return Pipeline([("scale", StandardScaler()), ("clf", estimator)])


def check_xy(X, y=None, *, n_classes=None, groups=None):
    """Validates a feature matrix (and labels, groups); returns arrays."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(
            f"`X` must be a non-empty 2-D array. Received: shape={X.shape}"
        )
    if not np.isfinite(X).all():
        rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
        raise ValueError(
            f"`X` holds NaN or inf in {rows.size} rows. Received: rows "
            f"{rows[:10].tolist()}{' ...' if rows.size > 10 else ''}"
        )
    if y is None:
        return X
    y = np.asarray(y)
    if y.shape != (X.shape[0],):
        raise ValueError(
            f"`y` must hold one label per row of X ({X.shape[0]}). "
            f"Received: y.shape={y.shape}"
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"`y` must hold integer class indices. Received: dtype={y.dtype}"
        )
    y = y.astype(np.int64)
    if n_classes is not None and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(
            f"`y` holds class indices outside [0, {n_classes}). "
            f"Received: min={y.min()}, max={y.max()}"
        )
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (X.shape[0],):
            raise ValueError(
                f"`groups` must hold one speaker per row of X ({X.shape[0]}). "
                f"Received: groups.shape={groups.shape}"
            )
    return X, y, groups
