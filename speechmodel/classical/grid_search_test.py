import json
import pathlib

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GroupKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from speechmodel.classical.grid_search import (
    GridSpec,
    default_grid_path,
    grid_search,
    inner_splits,
    load_grid,
)
from speechmodel.classical import registry
from speechmodel.classical.registry import available_classifiers

CONFIGS = pathlib.Path(__file__).resolve().parents[2] / "configs" / "classical"


def speaker_data(n_speakers=8, per_class=4, n_classes=3, seed=0):
    """Rows of n_speakers speakers, each with per_class rows of each class."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_speakers), per_class * n_classes)
    y = np.tile(np.repeat(np.arange(n_classes), per_class), n_speakers)
    X = rng.normal(size=(y.size, 5))
    X[:, 0] += 1.5 * y
    X[:, 1] += groups  # A speaker effect.
    return X, y, groups


def test_inner_splits_are_speaker_disjoint_and_capped():
    groups = np.repeat(["a", "b", "c"], 4)
    splits = inner_splits(groups, 5)
    assert len(splits) == 3  # Capped at the number of speakers.
    for train, val in splits:
        assert not set(groups[train]) & set(groups[val])
        assert len(train) + len(val) == groups.size
    with pytest.raises(ValueError, match="Received: 1 distinct groups"):
        inner_splits(np.zeros(5), 3)
    with pytest.raises(ValueError, match="n_splits=1"):
        inner_splits(groups, 1)


def test_score_is_uar_over_speaker_grouped_folds():
    X, y, groups = speaker_data()
    result = grid_search(
        "knn", X, y, groups, param_grid={"n_neighbors": [3, 7]}, n_splits=4
    )
    assert [c["params"] for c in result.candidates] == [
        {"n_neighbors": 3},
        {"n_neighbors": 7},
    ]
    for candidate in result.candidates:
        k = candidate["params"]["n_neighbors"]
        scores = []
        for train, val in GroupKFold(4).split(X, y, groups):
            model = make_pipeline(
                StandardScaler(), KNeighborsClassifier(k, weights="distance")
            ).fit(X[train], y[train])
            scores.append(balanced_accuracy_score(y[val], model.predict(X[val])))
        assert candidate["mean_uar"] == pytest.approx(np.mean(scores), abs=1e-12)
    best = max(result.candidates, key=lambda c: c["mean_uar"])
    assert result.best_params == best["params"]
    assert result.best_score == best["mean_uar"]
    assert result.n_splits == 4 and result.n_groups == 8


def test_single_candidate_is_not_cross_validated(monkeypatch):
    import speechmodel.classical.grid_search as G

    X, y, groups = speaker_data()

    def forbidden(*args, **kwargs):
        raise AssertionError("a single candidate needs no inner CV")

    monkeypatch.setattr(G, "GridSearchCV", forbidden)
    result = grid_search(
        "mlp", X, y, groups, param_grid={"hidden_layer_sizes": [[4, 2]], "alpha": [0.1]}
    )
    assert result.best_params == {"hidden_layer_sizes": [4, 2], "alpha": 0.1}
    assert result.best_score is None and result.n_splits == 0 and result.n_groups == 8


def test_grid_errors_name_the_problem():
    X, y, groups = speaker_data()
    with pytest.raises(ValueError, match="Unknown parameters \\['k'\\]"):
        grid_search("knn", X, y, groups, param_grid={"k": [1]})
    with pytest.raises(ValueError, match="non-empty lists. Received: n_neighbors=3"):
        grid_search("knn", X, y, groups, param_grid={"n_neighbors": 3})
    with pytest.raises(ValueError, match="groups=None"):
        grid_search("knn", X, y, None, param_grid={"n_neighbors": [3]})


def test_load_grid_validates(tmp_path):
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"classifier": "mlp", "param_grid": {"hidden_layer_sizes": [[8], [8, 4]]}}))
    spec = load_grid(path)
    assert spec == GridSpec("mlp", [{"hidden_layer_sizes": [(8,), (8, 4)]}], "")
    assert spec.n_candidates == 2
    path.write_text(json.dumps({"classifier": "svm", "grid": {}}))
    with pytest.raises(ValueError, match="unknown=\\['grid'\\], missing=\\['param_grid'\\]"):
        load_grid(path)
    path.write_text(json.dumps({"classifier": "svm", "param_grid": {"Cc": [1]}}))
    with pytest.raises(ValueError, match="g.json: Unknown parameters \\['Cc'\\]"):
        load_grid(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="g.json: not valid JSON"):
        load_grid(path)
    with pytest.raises(ValueError, match="grid file not found"):
        load_grid(tmp_path / "none.json")


@pytest.mark.parametrize("name", ["bagging", "hgb", "knn", "mlp", "rf", "svm"])
def test_shipped_grids_load_and_stay_small(name):
    path = CONFIGS / f"{name}.json"
    assert path == default_grid_path(name)
    spec = load_grid(path)
    assert spec.classifier == name
    assert 1 <= spec.n_candidates <= 6  # x inner folds x outer folds: minutes.
    assert spec.description


def test_every_registered_classifier_has_a_grid():
    assert sorted(p.stem for p in CONFIGS.glob("*.json")) == available_classifiers()


class RecordingScaler(StandardScaler):
    """A StandardScaler that logs the row ids (column 0) it is fit on / sees."""

    events = []

    def fit(self, X, y=None, sample_weight=None):
        RecordingScaler.events.append(("fit", frozenset(np.asarray(X)[:, 0].astype(int))))
        return super().fit(X, y, sample_weight)

    def transform(self, X, copy=None):
        RecordingScaler.events.append(
            ("transform", frozenset(np.asarray(X)[:, 0].astype(int)))
        )
        return super().transform(X, copy=copy)


def test_grid_search_never_sees_a_test_speaker(monkeypatch):
    from speechmodel.classical.experiment import run_classical_fold
    from speechmodel.classical.features import ClassicalFeatureConfig

    monkeypatch.setattr(registry, "StandardScaler", RecordingScaler)
    RecordingScaler.events = []
    X, y, groups = speaker_data(n_speakers=10)
    X[:, 0] = np.arange(len(X))  # Column 0 is the row id, for the recorder.
    test_idx = np.flatnonzero(np.isin(groups, [3, 7]))
    val_idx = np.flatnonzero(groups == 0)
    train_idx = np.flatnonzero(~np.isin(groups, [0, 3, 7]))
    config = ClassicalFeatureConfig(features=("mfcc",), aggregators=("mean",), n_mfcc=5)
    result = run_classical_fold(
        "svm",
        X,
        y,
        groups,
        train_idx,
        val_idx,
        test_idx,
        grid={"C": [0.1, 1.0, 10.0]},
        seed=0,
        class_names=["a", "b", "c"],
        feature_config=config,
        inner_splits=3,
    )
    events = RecordingScaler.events
    test_ids = set(test_idx.tolist())
    speaker = dict(enumerate(groups.tolist()))
    # 3 candidates x 3 inner folds + the refit, each fitting a scaler.
    fits = [ids for kind, ids in events if kind == "fit"]
    assert len(fits) == 3 * 3 + 1
    assert all(not (ids & test_ids) for ids in fits)
    assert fits[-1] == set(train_idx.tolist()) | set(val_idx.tolist())
    # Inner scoring rows never share a speaker with the rows fit before them.
    last_fit = None
    touched_test = []
    for i, (kind, ids) in enumerate(events):
        if kind == "fit":
            last_fit = ids
        elif ids != last_fit:
            assert not {speaker[r] for r in ids} & {speaker[r] for r in last_fit}
        if ids & test_ids:
            touched_test.append(i)
    # The test rows are touched exactly once: the final prediction, last.
    assert touched_test == [len(events) - 1]
    assert events[-1] == ("transform", frozenset(test_ids))
    assert result["chosen_params"]["C"] in (0.1, 1.0, 10.0)
    assert result["test_speakers"] == [3, 7]
    assert 3 not in result["fit_speakers"] and 7 not in result["fit_speakers"]


def test_progress_is_reported_after_each_candidate_with_the_same_result():
    X, y, groups = speaker_data()
    calls = []
    grid = {"n_neighbors": [3, 5, 7]}
    quiet = grid_search("knn", X, y, groups, param_grid=grid, n_splits=4)
    told = grid_search(
        "knn", X, y, groups, param_grid=grid, n_splits=4,
        progress=lambda *args: calls.append(args),
    )
    assert [(done, total, params) for done, total, params, _ in calls] == [
        (1, 3, {"n_neighbors": 3}), (2, 3, {"n_neighbors": 5}), (3, 3, {"n_neighbors": 7})
    ]
    assert [uar for *_, uar in calls] == [c["mean_uar"] for c in told.candidates]
    assert told.candidates == quiet.candidates and told.best_params == quiet.best_params
    # Ranks as GridSearchCV gives them: ties share the best rank, the first wins.
    ranks = [c["rank"] for c in told.candidates]
    means = [c["mean_uar"] for c in told.candidates]
    assert ranks == [1 + sum(m > mean for m in means) for mean in means]
    assert told.best_params == told.candidates[ranks.index(1)]["params"]
