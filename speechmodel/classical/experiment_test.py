import json

import numpy as np
import pytest

from speechmodel.classical.classifiers import ClassicalModel
from speechmodel.classical.experiment import run_classical_fold
from speechmodel.classical.features import ClassicalFeatureConfig
from speechmodel.classical.grid_search import GridSpec

CONFIG = ClassicalFeatureConfig(features=("mfcc",), aggregators=("mean",), n_mfcc=4)


def data(n_speakers=6, per_class=5, seed=0):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_speakers) + 100, 2 * per_class)
    y = np.tile(np.repeat([0, 1], per_class), n_speakers)
    X = rng.normal(size=(y.size, 4))
    X[:, 0] += 3 * y
    return X, y, groups


def split(groups, test, val):
    test_idx = np.flatnonzero(np.isin(groups, test))
    val_idx = np.flatnonzero(np.isin(groups, val))
    train_idx = np.flatnonzero(~np.isin(groups, test + val))
    return train_idx, val_idx, test_idx


def test_fold_result():
    X, y, groups = data()
    train_idx, val_idx, test_idx = split(groups, [100], [101])
    result = run_classical_fold(
        "knn",
        X,
        y,
        groups,
        train_idx,
        val_idx,
        test_idx,
        grid={"n_neighbors": [3, 5]},
        seed=0,
        class_names=["no", "yes"],
        feature_config=CONFIG,
        inner_splits=3,
    )
    np.testing.assert_array_equal(result["test_idx"], test_idx)
    assert result["probabilities"].shape == (test_idx.size, 2)
    np.testing.assert_array_equal(
        result["predictions"], result["probabilities"].argmax(axis=1)
    )
    assert (result["predictions"] == y[test_idx]).mean() >= 0.8
    assert result["chosen_params"]["n_neighbors"] in (3, 5)
    assert 0 <= result["inner_uar"] <= 1 and len(result["candidates"]) == 2
    assert result["fit_seconds"] >= result["search_seconds"] >= 0
    assert result["n_fit_rows"] == train_idx.size + val_idx.size
    assert result["fit_speakers"] == [101, 102, 103, 104, 105]
    assert result["test_speakers"] == [100]
    assert isinstance(result["model"], ClassicalModel)
    json.dumps(result["chosen_params"])  # The caller saves it.


def test_fold_without_grid_and_with_grid_files(tmp_path):
    X, y, groups = data()
    folds = split(groups, [102], [])
    plain = run_classical_fold(
        "svm", X, y, groups, *folds, grid=None, seed=1, feature_config=CONFIG
    )
    assert plain["inner_uar"] is None and plain["chosen_params"] == {}
    assert plain["model"].class_names == ["0", "1"]
    path = tmp_path / "knn.json"
    path.write_text(json.dumps({"classifier": "knn", "param_grid": {"n_neighbors": [2]}}))
    from_file = run_classical_fold(
        "knn", X, y, groups, *folds, grid=str(path), seed=1, feature_config=CONFIG
    )
    assert from_file["chosen_params"] == {"n_neighbors": 2}
    with pytest.raises(ValueError, match="grid is for 'rf', not 'knn'"):
        run_classical_fold(
            "knn",
            X,
            y,
            groups,
            *folds,
            grid=GridSpec("rf", [{"max_depth": [2]}]),
            seed=1,
            feature_config=CONFIG,
        )


def test_fold_is_deterministic_for_a_seed():
    X, y, groups = data()
    folds = split(groups, [100], [101])
    kwargs = dict(grid={"max_depth": [2, None]}, seed=7, feature_config=CONFIG,
                  params={"n_estimators": 10}, inner_splits=2)
    a = run_classical_fold("rf", X, y, groups, *folds, **kwargs)
    b = run_classical_fold("rf", X, y, groups, *folds, **kwargs)
    np.testing.assert_array_equal(a["probabilities"], b["probabilities"])
    assert a["chosen_params"]["n_estimators"] == 10


def test_fold_refuses_leaks():
    X, y, groups = data()
    train_idx, val_idx, test_idx = split(groups, [100], [101])
    common = dict(grid=None, seed=0, feature_config=CONFIG)
    with pytest.raises(ValueError, match="`train_idx` and `test_idx` share 1 rows"):
        run_classical_fold(
            "knn", X, y, groups, np.append(train_idx, test_idx[0]), val_idx, test_idx, **common
        )
    with pytest.raises(ValueError, match="`val_idx` and `test_idx` share"):
        run_classical_fold("knn", X, y, groups, train_idx, test_idx, test_idx, **common)
    # Same speaker on both sides (rows disjoint): not speaker independent.
    mixed_test = test_idx[:3]
    mixed_train = np.concatenate([train_idx, test_idx[3:]])
    with pytest.raises(ValueError, match="Test speakers \\[100\\] also appear"):
        run_classical_fold("knn", X, y, groups, mixed_train, val_idx, mixed_test, **common)
    with pytest.warns(UserWarning, match="not speaker independent"):
        run_classical_fold(
            "knn", X, y, groups, mixed_train, val_idx, mixed_test,
            allow_speaker_overlap=True, **common,
        )
    with pytest.raises(ValueError, match="outside \\[0, 60\\)"):
        run_classical_fold("knn", X, y, groups, train_idx, val_idx, [60], **common)
    with pytest.raises(ValueError, match="0 test"):
        run_classical_fold("knn", X, y, groups, train_idx, val_idx, [], **common)


def test_speaker_normalised_fold_gives_adapted_and_per_clip_probabilities():
    X, y, groups = data(n_speakers=6, per_class=10)
    X = X + (groups[:, None] - 102.5) * 10.0  # Speakers far apart.
    train_idx, val_idx, test_idx = split(groups, [100, 105], [101])
    common = dict(grid={"n_neighbors": [3, 5]}, seed=0, class_names=["no", "yes"],
                  feature_config=CONFIG, inner_splits=3)
    result = run_classical_fold("knn", X, y, groups, train_idx, val_idx, test_idx,
                                speaker_normalization=True, **common)
    model = result["model"]
    assert model.speaker_normalization
    np.testing.assert_allclose(
        result["probabilities"], model.predict_proba(X[test_idx], speakers=groups[test_idx])
    )
    np.testing.assert_allclose(result["per_clip_probabilities"], model.predict_proba(X[test_idx]))
    assert (result["predictions"] == y[test_idx]).mean() >= 0.9
    plain = run_classical_fold("knn", X, y, groups, train_idx, val_idx, test_idx, **common)
    assert plain["per_clip_probabilities"] is None
