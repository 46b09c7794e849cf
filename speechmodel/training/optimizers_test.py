import keras
import numpy as np
import pytest

from speechmodel.training.defaults import ConfigError
from speechmodel.training.optimizers import make_loss, make_optimizer


def test_optimizers_follow_the_config():
    assert isinstance(make_optimizer({"optimizer": "adam"}, 1e-3), keras.optimizers.Adam)
    adamw = make_optimizer({"optimizer": "AdamW", "weight_decay": 0.05}, 1e-3)
    assert isinstance(adamw, keras.optimizers.AdamW) and adamw.weight_decay == pytest.approx(0.05)
    assert isinstance(make_optimizer({"optimizer": "sgd"}, 1e-2), keras.optimizers.SGD)
    with pytest.raises(ConfigError, match="Received: optimizer='rmsprop'"):
        make_optimizer({"optimizer": "rmsprop"}, 1e-3)


def test_smoothed_sparse_loss_equals_the_one_hot_loss():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], "float32")
    labels = np.array([0, 2])
    smoothed = make_loss({"label_smoothing": 0.1})(labels, probs)
    reference = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(np.eye(3)[labels], probs)
    np.testing.assert_allclose(float(smoothed), float(reference), rtol=1e-6)
    plain = make_loss({"label_smoothing": 0.0})(labels, probs)
    np.testing.assert_allclose(float(plain), -np.mean(np.log([0.7, 0.8])), rtol=1e-6)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", make_loss({"label_smoothing": 0.2}))
    model.fit(np.zeros((4, 2)), np.array([0, 1, 2, 1]), epochs=1, verbose=0)
