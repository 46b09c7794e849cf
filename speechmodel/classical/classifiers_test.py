import numpy as np
import pytest
import soundfile as sf

from speechmodel.classical.classifiers import ClassicalModel
from speechmodel.classical.features import ClassicalFeatureConfig, feature_names

# 6 columns: mfcc 0-5, mean only.
CONFIG = ClassicalFeatureConfig(features=("mfcc",), aggregators=("mean",), n_mfcc=6)
NAMES = ["low", "mid", "high"]
FAST = {
    "rf": {"n_estimators": 20},
    "hgb": {"max_iter": 20},
    "bagging": {"n_estimators": 5},
    "mlp": {"max_iter": 2000, "early_stopping": False},  # 9 rows cannot early-stop.
}


def blobs(n_per_class=30, seed=0, shift=4.0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per_class)
    X = rng.normal(size=(y.size, 6))
    X[:, 0] += shift * y
    X[:, 1] = X[:, 1] * 1000 + 5000  # A badly scaled column: needs the scaler.
    return X, y


@pytest.mark.parametrize("name", ["bagging", "hgb", "knn", "mlp", "rf", "svm"])
def test_each_classifier_learns_separable_blobs(name):
    X, y = blobs()
    X_test, y_test = blobs(seed=1)
    model = ClassicalModel(
        name, params=FAST.get(name), feature_config=CONFIG, class_names=NAMES
    )
    model.fit(X, y)
    proba = model.predict_proba(X_test)
    assert proba.shape == (90, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(model.predict(X_test), proba.argmax(axis=1))
    assert (model.predict(X_test) == y_test).mean() > 0.85


def test_scaler_is_fit_on_training_rows_only():
    X, y = blobs()
    model = ClassicalModel("knn", feature_config=CONFIG, class_names=NAMES)
    model.fit(X[::2], y[::2])
    np.testing.assert_allclose(
        model.pipeline_.named_steps["scale"].mean_, X[::2].mean(axis=0)
    )


def test_unknown_classifier_and_params_are_named():
    with pytest.raises(ValueError, match="name='xgboost'"):
        ClassicalModel("xgboost", class_names=NAMES)
    with pytest.raises(ValueError, match="Unknown parameters \\['gama'\\]"):
        ClassicalModel("svm", params={"gama": 1.0}, class_names=NAMES)


def test_bad_inputs_are_refused():
    X, y = blobs()
    model = ClassicalModel("knn", feature_config=CONFIG, class_names=NAMES)
    with pytest.raises(ValueError, match="not fitted"):
        model.predict_proba(X)
    with pytest.raises(ValueError, match="columns but the feature_config gives 6"):
        model.fit(X[:, :5], y)
    with pytest.raises(ValueError, match="outside \\[0, 3\\)"):
        model.fit(X, y + 1)
    with pytest.raises(ValueError, match="integer class indices"):
        model.fit(X, y.astype(float))
    bad = X.copy()
    bad[4, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or inf in 1 rows"):
        model.fit(bad, y)
    with pytest.raises(ValueError, match="at least two strings"):
        ClassicalModel("knn", class_names=["only"])
    model.fit(X, y)
    with pytest.raises(ValueError, match="this model takes 6"):
        model.predict_proba(X[:, :4])


def test_absent_training_class_gets_zero_probability():
    X, y = blobs()
    keep = y != 1
    model = ClassicalModel("svm", feature_config=CONFIG, class_names=NAMES)
    with pytest.warns(UserWarning, match="\\['mid'\\]"):
        model.fit(X[keep], y[keep])
    proba = model.predict_proba(X)
    assert proba.shape == (90, 3)
    assert (proba[:, 1] == 0).all()


def test_fit_with_grid_needs_groups_and_chooses_params():
    X, y = blobs()
    groups = np.tile(np.arange(6), 15)
    model = ClassicalModel(
        "knn",
        feature_config=CONFIG,
        class_names=NAMES,
        grid={"n_neighbors": [1, 5]},
        inner_splits=3,
    )
    with pytest.raises(ValueError, match="needs `groups`"):
        model.fit(X, y)
    model.fit(X, y, groups)
    assert model.chosen_params_["n_neighbors"] in (1, 5)
    assert model.grid_result_.n_splits == 3
    assert model.pipeline_.named_steps["clf"].n_neighbors == (
        model.chosen_params_["n_neighbors"]
    )


def test_config_round_trip():
    model = ClassicalModel(
        "rf", params={"n_estimators": 7}, feature_config=CONFIG, class_names=NAMES, seed=3
    )
    again = ClassicalModel.from_config(model.get_config())
    assert again.get_config() == model.get_config()


def test_paths_api_reports_bad_files(tmp_path):
    sr = 16000
    t = np.arange(sr) / sr
    paths, y = [], []
    for i, freq in enumerate([200, 220, 240, 2000, 2200, 2400]):
        path = tmp_path / f"{i}.wav"
        sf.write(str(path), 0.3 * np.sin(2 * np.pi * freq * t), sr)
        paths.append(str(path))
        y.append(int(freq > 1000))
    config = ClassicalFeatureConfig(features=("mfcc", "zcr"), n_mfcc=8)
    model = ClassicalModel(
        "knn", params={"n_neighbors": 1}, feature_config=config, class_names=["lo", "hi"]
    )
    with pytest.raises(ValueError, match="(?s)1 of 7 training files.*missing.wav: file not found"):
        model.fit_paths(paths + [str(tmp_path / "missing.wav")], y + [0], n_jobs=1)
    model.fit_paths(paths, y, n_jobs=1)
    assert len(model.feature_names) == len(feature_names(config))
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF")
    result = model.predict_proba_paths([paths[0], str(broken), paths[4]], n_jobs=1)
    np.testing.assert_array_equal(result.kept, [0, 2])
    assert [f.index for f in result.failures] == [1]
    assert result.failures[0].path == str(broken)
    np.testing.assert_array_equal(result.probabilities.argmax(axis=1), [0, 1])


def speakers_apart(seed=0):
    """Three classes on column 0, but every speaker's voice shifts all
    columns by far more than the classes differ."""
    rng = np.random.default_rng(seed)
    y = np.tile(np.repeat(np.arange(3), 10), 6)
    groups = np.repeat(np.arange(6), 30)
    X = rng.normal(size=(y.size, 6)) * 0.3
    X[:, 0] += y
    X += (groups[:, None] - 2.5) * 20.0
    return X, y, groups


def test_speaker_normalisation_standardises_each_speaker_with_their_own_statistics():
    X, y, groups = speakers_apart()
    train, test = groups < 4, groups >= 4
    model = ClassicalModel("svm", feature_config=CONFIG, class_names=NAMES, speaker_normalization=True)
    with pytest.raises(ValueError, match="needs `groups`"):
        model.fit(X[train], y[train])
    model.fit(X[train], y[train], groups[train])
    # The average training speaker: mean of the speakers' means and variances.
    means = [X[groups == g].mean(0) for g in range(4)]
    variances = [X[groups == g].var(0) for g in range(4)]
    np.testing.assert_allclose(model.speaker_statistics["mean"], np.mean(means, 0))
    np.testing.assert_allclose(model.speaker_statistics["variance"], np.mean(variances, 0))
    # Each unseen speaker with their own statistics: classes recovered;
    # the same rows per clip (the average training speaker) are not.
    adapted = model.predict(X[test], speakers=groups[test])
    assert (adapted == y[test]).mean() > 0.9
    assert (model.predict(X[test]) == y[test]).mean() < 0.5
    one = groups[test] == 4
    np.testing.assert_allclose(
        model.predict_proba(X[test][one], speakers=groups[test][one]),
        model.predict_proba(X[test], speakers=groups[test])[one],
    )
    # A model without it takes no speakers.
    plain = ClassicalModel("svm", feature_config=CONFIG, class_names=NAMES).fit(X, y)
    with pytest.raises(ValueError, match="speaker_normalization=True"):
        plain.predict(X, speakers=groups)
    # The statistics are part of the config (JSON), so a saved model keeps them.
    again = ClassicalModel.from_config(model.get_config())
    assert again.speaker_statistics == model.speaker_statistics
    with pytest.raises(ValueError, match=r"speaker_statistics\['mean'\]` must hold 6 finite values"):
        ClassicalModel.from_config({**model.get_config(), "speaker_statistics": {"mean": [0.0], "variance": [1.0]}})


def test_feature_sets_by_name():
    model = ClassicalModel("knn", feature_config="egemaps", class_names=NAMES)
    assert model.get_config()["feature_config"] == {"feature_set": "egemaps", "sample_rate": 16000}
    assert len(model.feature_names) == 88
    with pytest.raises(ValueError, match="`feature_config`: Unknown feature set"):
        ClassicalModel("knn", feature_config="gemaps", class_names=NAMES)


def test_the_classical_models_load_no_tensorflow():
    import subprocess
    import sys

    code = ("import sys, speechmodel.classical.classifiers, speechmodel.classical.features; "
            "print('keras' in sys.modules or 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
