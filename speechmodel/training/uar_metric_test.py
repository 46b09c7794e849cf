import numpy as np
import pytest

import keras

from speechmodel.metrics import compute_metrics
from speechmodel.training.uar_metric import UnweightedAverageRecall


def test_uar_over_batches_is_the_uar_of_all_the_samples():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 50)
    y[y == 2] = 1  # class 2 never occurs: left out of the mean
    scores = rng.random((50, 4)).astype("float32")
    metric = UnweightedAverageRecall(4)
    for start in range(0, 50, 16):
        metric.update_state(y[start:start + 16], scores[start:start + 16])
    predicted = scores.argmax(-1)
    recalls = [np.mean(predicted[y == c] == c) for c in (0, 1, 3)]
    assert float(metric.result()) == pytest.approx(np.mean(recalls), abs=1e-6)
    expected = compute_metrics(y, predicted, class_names=list("abcd"))["uar"]
    assert float(metric.result()) == pytest.approx(expected, abs=1e-6)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_one_hot_and_mixed_labels_count_as_their_argmax():
    metric = UnweightedAverageRecall(2)
    metric.update_state(np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]]), np.array([[1, 0], [1, 0], [0, 1]]))
    assert float(metric.result()) == pytest.approx((1.0 + 0.5) / 2)


def test_in_a_fit_its_name_matches_the_validation_figure():
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy", UnweightedAverageRecall(2)])
    history = model.fit(x, y, epochs=1, verbose=0, validation_data=(x, y))
    assert {"uar", "val_uar"} <= set(history.history)
    with pytest.raises(ValueError, match="num_classes=0"):
        UnweightedAverageRecall(0)
