"""``ClassicalModel``: a registered scikit-learn classifier on utterance
statistics (``speechmodel.classical.registry``: the names, the scaled
pipelines), with the class names and the feature configuration, so that it
predicts from arrays or directly from audio files.

With ``speaker_normalization=True`` each speaker's feature vectors are
standardised with that speaker's own mean and variance before the pipeline
(``fit`` needs the speaker of each row); a clip of an unknown speaker is
standardised with an average training speaker's statistics, which the model
holds.
"""

import typing
import warnings

import numpy as np

from speechmodel.classical.features import (
    extract_features,
    feature_config,
    feature_config_dict,
    feature_names,
)
from speechmodel.classical.registry import build_pipeline, check_xy, get_spec, normalize_params
from speechmodel.speaker_statistics import (
    population_statistics,
    speaker_statistics,
    standardize,
)


class PathPredictions(typing.NamedTuple):
    """Probabilities for the files that could be read.

    Attributes:
        probabilities: float (n_ok, n_classes), rows in the order of ``kept``.
        kept: indices into the given paths of those rows.
        failures: list of FeatureFailure (index, path, reason).
    """

    probabilities: np.ndarray
    kept: np.ndarray
    failures: list


class ClassicalModel:
    """A scikit-learn classifier on utterance statistics.

    Args:
        name: registered classifier name (``registry.available_classifiers()``).
        params: estimator parameters over the registry defaults.
        feature_config: the feature set that produced (or will produce)
            the features: a name (``"statistics"``, ``"egemaps"``,
            ``"compare"``), settings or a config (see
            ``speechmodel.classical.features.feature_config``); default the
            statistics. ``fit`` checks that ``X`` has its number of columns.
        class_names: class names; label ``i`` names ``class_names[i]``.
        seed: ``random_state`` of the estimator.
        grid: optional parameter grid (dict or list of dicts, bare parameter
            names). With a grid, ``fit`` first chooses the parameters by
            speaker-grouped inner cross-validation on the rows it is given
            (``groups`` is then required); see ``grid_search``.
        inner_splits: folds of that inner cross-validation.
        speaker_normalization: standardise each speaker's rows with that
            speaker's own statistics (``fit`` then needs ``groups``).
        speaker_statistics: the average training speaker's ``{"mean":
            [...], "variance": [...]}`` (set by ``fit``; given when a saved
            model is loaded).

    Example:

    ```python
    model = ClassicalModel("svm", class_names=["neutral", "happy"])
    model.fit(X_train, y_train)
    probabilities = model.predict_proba(X_test)
    ```
    """

    def __init__(
        self,
        name,
        *,
        params=None,
        feature_config=None,
        class_names,
        seed=0,
        grid=None,
        inner_splits=4,
        speaker_normalization=False,
        speaker_statistics=None,
    ):
        get_spec(name)
        class_names = list(class_names)
        if len(class_names) < 2 or not all(isinstance(c, str) for c in class_names):
            raise ValueError(
                "`class_names` must list at least two strings. "
                f"Received: class_names={class_names}"
            )
        if len(set(class_names)) != len(class_names):
            raise ValueError(
                f"`class_names` must be unique. Received: class_names={class_names}"
            )
        self.name = name
        self.params = normalize_params(params)
        self.feature_config = feature_config_of(feature_config)
        self.class_names = class_names
        self.seed = seed
        # A GridSpec (from grid_search.load_grid) is stored as its plain grid.
        self.grid = getattr(grid, "param_grid", grid)
        self.inner_splits = inner_splits
        if not isinstance(speaker_normalization, bool):
            raise ValueError(
                "`speaker_normalization` must be true or false. "
                f"Received: speaker_normalization={speaker_normalization!r}"
            )
        self.speaker_normalization = speaker_normalization
        self.speaker_statistics = None
        if speaker_statistics is not None:
            self.speaker_statistics = _statistics_dict(
                speaker_statistics, len(self.feature_names), speaker_normalization
            )
        # Validates the parameter names now rather than at fit time.
        build_pipeline(name, self.params, seed=seed)
        self.pipeline_ = None
        self.chosen_params_ = None
        self.grid_result_ = None

    def get_config(self):
        """The constructor arguments, JSON-ready."""
        return {
            "name": self.name,
            "params": dict(self.params),
            "feature_config": feature_config_dict(self.feature_config),
            "class_names": list(self.class_names),
            "seed": self.seed,
            "grid": self.grid,
            "inner_splits": self.inner_splits,
            "speaker_normalization": self.speaker_normalization,
            "speaker_statistics": self.speaker_statistics,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(config.pop("name"), **config)

    @property
    def feature_names(self):
        return feature_names(self.feature_config)

    @property
    def is_fitted(self):
        return self.pipeline_ is not None

    def fit(self, X, y, groups=None):
        """Fits the pipeline (after a grouped grid search if ``grid`` is set).

        Args:
            X: float (n, d) features made with ``feature_config``.
            y: int (n,) class indices.
            groups: (n,) speaker of each row; required with a grid and
                with speaker normalisation.

        Returns:
            self.
        """
        n_classes = len(self.class_names)
        X, y, groups = check_xy(X, y, n_classes=n_classes, groups=groups)
        expected = len(self.feature_names)
        if X.shape[1] != expected:
            raise ValueError(
                f"`X` has {X.shape[1]} columns but the feature_config gives "
                f"{expected}; pass the feature configuration that produced X. "
                f"Received: X.shape={X.shape}"
            )
        if self.speaker_normalization:
            if groups is None:
                raise ValueError(
                    "Speaker normalisation needs `groups` (the speaker of each row). "
                    "Received: groups=None"
                )
            X, statistics = standardize_by_speaker(X, groups)
            mean, variance = population_statistics(list(statistics.values()))
            self.speaker_statistics = {"mean": mean.tolist(), "variance": variance.tolist()}
        missing = sorted(set(range(n_classes)) - set(np.unique(y).tolist()))
        if missing:
            warnings.warn(
                f"Classes absent from the training rows get probability 0: "
                f"{[self.class_names[i] for i in missing]}",
                stacklevel=2,
            )
        params = dict(self.params)
        self.grid_result_ = None
        if self.grid is not None:
            from speechmodel.classical.grid_search import grid_search

            if groups is None:
                raise ValueError(
                    "A grid search needs `groups` (the speaker of each row) "
                    "so that its inner folds are speaker independent. "
                    "Received: groups=None"
                )
            self.grid_result_ = grid_search(
                self.name,
                X,
                y,
                groups,
                param_grid=self.grid,
                base_params=params,
                seed=self.seed,
                n_splits=self.inner_splits,
            )
            params.update(self.grid_result_.best_params)
        pipeline = build_pipeline(self.name, params, seed=self.seed)
        pipeline.fit(X, y)
        self.pipeline_ = pipeline
        self.chosen_params_ = params
        return self

    def _check_fitted(self):
        if self.pipeline_ is None:
            raise ValueError(
                f"This ClassicalModel ({self.name}) is not fitted yet: call "
                "fit() or load a saved model."
            )

    def predict_proba(self, X, *, speakers=None):
        """Class probabilities, float64 (n, len(class_names)); rows sum to 1.

        Args:
            X: float (n, d) features.
            speakers: with speaker normalisation, the (n,) speaker of each
                row: each speaker's rows are standardised with their own
                statistics over the rows given (a speaker-adapted,
                transductive prediction). Without it every row gets the
                average training speaker's statistics (a clip on its own).
        """
        self._check_fitted()
        X = check_xy(X)
        expected = len(self.feature_names)
        if X.shape[1] != expected:
            raise ValueError(
                f"`X` has {X.shape[1]} columns; this model takes {expected}. "
                f"Received: X.shape={X.shape}"
            )
        if speakers is not None and not self.speaker_normalization:
            raise ValueError(
                "`speakers` applies to a model with speaker_normalization=True. "
                f"Received: {len(speakers)} speakers"
            )
        if speakers is not None:
            X, _ = standardize_by_speaker(X, speakers)
        elif self.speaker_normalization:
            stats = self.speaker_statistics
            X = standardize(X, np.asarray(stats["mean"]), np.asarray(stats["variance"]))
        raw = self.pipeline_.predict_proba(X)
        proba = np.zeros((X.shape[0], len(self.class_names)), np.float64)
        proba[:, np.asarray(self.pipeline_.classes_, dtype=np.int64)] = raw
        return proba

    def predict(self, X, *, speakers=None):
        """Class indices: the argmax of ``predict_proba`` (int64 (n,))."""
        return np.argmax(self.predict_proba(X, speakers=speakers), axis=1).astype(np.int64)

    def fit_paths(self, paths, y, groups=None, *, n_jobs=2, cache_dir=None):
        """Extracts features of ``paths`` and fits on them.

        Raises:
            ValueError: any file could not be featurised (all are listed);
                a training set is never silently shrunk.
        """
        result = extract_features(
            paths, self.feature_config, n_jobs=n_jobs, cache_dir=cache_dir
        )
        if result.failures:
            listing = "\n".join(f"  {f.path}: {f.reason}" for f in result.failures)
            raise ValueError(
                f"{len(result.failures)} of {len(paths)} training files could "
                f"not be featurised:\n{listing}"
            )
        return self.fit(result.X, y, groups)

    def predict_proba_paths(self, paths, *, n_jobs=2, cache_dir=None):
        """Probabilities for audio files.

        Returns:
            PathPredictions ``(probabilities, kept, failures)``: files that
            cannot be read are listed in ``failures`` (with index, path and
            reason) and have no row.
        """
        self._check_fitted()
        result = extract_features(
            paths, self.feature_config, n_jobs=n_jobs, cache_dir=cache_dir
        )
        if len(result.X):
            proba = self.predict_proba(result.X)
        else:
            proba = np.zeros((0, len(self.class_names)), np.float64)
        return PathPredictions(proba, result.kept, result.failures)


def feature_config_of(value):
    """``feature_config(value)``, its error naming the argument."""
    try:
        return feature_config(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`feature_config`: {exc}") from None


def standardize_by_speaker(X, speakers):
    """Each speaker's rows standardised with that speaker's own mean and
    variance over them (``speechmodel.speaker_statistics``).

    Args:
        X: float (n, d).
        speakers: (n,) speaker of each row.

    Returns:
        ``(standardised X as float64 (n, d), {speaker: (mean, variance)})``.
    """
    X = np.asarray(X, dtype=np.float64)
    speakers = np.asarray(speakers)
    if speakers.shape != (X.shape[0],):
        raise ValueError(
            f"`speakers` must hold one speaker per row of X ({X.shape[0]}). "
            f"Received: shape={speakers.shape}"
        )
    out = np.empty_like(X)
    statistics = {}
    for speaker in np.unique(speakers):
        rows = speakers == speaker
        mean, variance = speaker_statistics([X[rows]])
        statistics[speaker.item() if hasattr(speaker, "item") else speaker] = (mean, variance)
        out[rows] = standardize(X[rows], mean, variance)
    return out, statistics


def _statistics_dict(value, dims, normalized):
    if not normalized:
        raise ValueError(
            "`speaker_statistics` applies to a model with speaker_normalization=True. "
            "Received: speaker_statistics given, speaker_normalization=False"
        )
    if not isinstance(value, dict) or set(value) != {"mean", "variance"}:
        raise ValueError(
            "`speaker_statistics` is a dict with keys mean and variance. "
            f"Received: {type(value).__name__}"
        )
    out = {}
    for key in ("mean", "variance"):
        array = np.asarray(value[key], dtype=np.float64)
        if array.shape != (dims,) or not np.isfinite(array).all() or (key == "variance" and (array < 0).any()):
            raise ValueError(
                f"`speaker_statistics['{key}']` must hold {dims} finite values"
                f"{' >= 0' if key == 'variance' else ''}. Received: shape={array.shape}"
            )
        out[key] = array.tolist()
    return out
