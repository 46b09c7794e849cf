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


def test_partial_labels_never_touch_the_classes_a_corpus_lacks():
    """Two corpora: A has the 4 classes, B only classes 0 and 2. A clip of
    B gets no gradient on the logits (nor on the output weights) of
    classes 1 and 3; a clip of A does."""
    import tensorflow as tf

    from speechmodel.training.optimizers import PartialLabelCrossentropy, encode_partial_labels

    label_sets = [[1, 1, 1, 1], [1, 0, 1, 0]]
    loss = make_loss({"label_smoothing": 0.1}, label_sets=label_sets)
    assert isinstance(loss, PartialLabelCrossentropy)
    codes = encode_partial_labels([2, 2], [0, 1], 4)
    assert codes.tolist() == [2, 6]
    logits = tf.Variable(np.random.default_rng(0).normal(size=(2, 4)).astype("float32"))
    with tf.GradientTape() as tape:
        value = loss(codes, tf.nn.softmax(logits))
    grad = tape.gradient(value, logits).numpy()
    assert np.all(np.abs(grad[0]) > 1e-3)  # corpus A: every class
    # Corpus B: never 1 and 3 (from probabilities, up to float32 rounding:
    # the softmax's shift cancels; on logits exactly 0).
    np.testing.assert_allclose(grad[1, [1, 3]], 0.0, atol=1e-7)
    assert np.all(np.abs(grad[1, [0, 2]]) > 1e-3)
    with tf.GradientTape() as tape:
        on_logits = PartialLabelCrossentropy(label_sets, from_logits=True)(codes, logits)
    np.testing.assert_array_equal(tape.gradient(on_logits, logits).numpy()[1, [1, 3]], 0.0)
    # The value: cross-entropy of the softmax over {0, 2}, smoothed over it.
    z = logits.numpy()[1, [0, 2]]
    log_q = z - np.log(np.exp(z).sum())
    expected_b = -(0.95 * log_q[1] + 0.05 * log_q[0])
    p = tf.nn.softmax(logits).numpy()[0]
    expected_a = -(0.925 * np.log(p[2]) + 0.025 * np.log(p).sum() - 0.025 * np.log(p[2]))
    np.testing.assert_allclose(float(value), (expected_a + expected_b) / 2, rtol=1e-4)

    # Trained end to end: B's clips leave the output weights of 1 and 3 alone.
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="softmax")])
    model.compile(keras.optimizers.SGD(0.5), loss)
    before = model.layers[-1].kernel.numpy().copy()
    x = np.random.default_rng(2).normal(size=(8, 3)).astype("float32")
    model.fit(x, encode_partial_labels([0, 2] * 4, [1] * 8, 4), epochs=2, batch_size=4, verbose=0)
    after = model.layers[-1].kernel.numpy()
    np.testing.assert_allclose(after[:, [1, 3]], before[:, [1, 3]], atol=1e-6)
    assert np.abs(after[:, [0, 2]] - before[:, [0, 2]]).max() > 1e-2
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert again.label_sets == label_sets and again.label_smoothing == 0.1


def test_layer_scaled_learning_rates_and_warm_up():
    from speechmodel.training.optimizers import LayerScaledAdam, LayerScaledAdamW

    a = keras.Variable(np.zeros(3, "float32"), name="a")
    b = keras.Variable(np.zeros(3, "float32"), name="b")
    optimizer = LayerScaledAdam(0.1, scales={a.path: 0.5}, warmup_steps=4)
    grads = [np.ones(3, "float32"), np.ones(3, "float32")]
    optimizer.apply_gradients(zip(grads, [a, b]))
    # Adam's first step moves by the rate: a's half of b's, both a quarter
    # (step 1 of a 4-step warm-up).
    np.testing.assert_allclose(a.numpy(), -0.1 * 0.5 * 0.25, rtol=1e-4)
    np.testing.assert_allclose(b.numpy(), -0.1 * 0.25, rtol=1e-4)
    for _ in range(5):
        optimizer.apply_gradients(zip(grads, [a, b]))
    before = (a.numpy().copy(), b.numpy().copy())
    optimizer.apply_gradients(zip(grads, [a, b]))
    ratio = (a.numpy() - before[0]) / (b.numpy() - before[1])
    np.testing.assert_allclose(ratio, 0.5, rtol=1e-3)  # after the warm-up
    config = LayerScaledAdamW.from_config(
        LayerScaledAdamW(0.1, scales={"x": 0.2}, warmup_steps=3, weight_decay=0.01).get_config()
    ).get_config()
    assert config["scales"] == {"x": 0.2} and config["warmup_steps"] == 3


def test_the_encoder_learns_slower_block_by_block():
    from speechmodel.models.registry import build_model
    from speechmodel.training.optimizers import LayerScaledAdamW, encoder_learning_rate_scales

    model = build_model(
        "speechmodel", num_classes=2, backbone="whisper_base", weights="random", fine_tune_blocks=2,
        lstm_units=2, attention_units=2, dense_units=[2],
    )
    training = {"optimizer": "adamw", "weight_decay": 0.0, "encoder_lr_scale": 0.1,
                "layer_decay": 0.5, "warmup_steps": 10}
    scales = encoder_learning_rate_scales(model, training)
    by_name = {path.rsplit("/", 1)[-1]: v for path, v in scales.items()}
    assert by_name["block_5_fc1_kernel"] == pytest.approx(0.1)
    assert by_name["block_4_fc1_kernel"] == pytest.approx(0.05)
    assert by_name["ln_post_gamma"] == pytest.approx(0.1)
    assert not any(n.startswith(("block_3", "conv")) for n in by_name)  # frozen
    optimizer = make_optimizer(training, 1e-3, model=model)
    assert isinstance(optimizer, LayerScaledAdamW) and optimizer.warmup_steps == 10
    # A frozen encoder, or a model without one: the plain optimizer.
    frozen = build_model("speechmodel", num_classes=2, backbone="whisper_base", weights="random",
                         lstm_units=2, attention_units=2, dense_units=[2])
    assert type(make_optimizer(training, 1e-3, model=frozen)) is keras.optimizers.AdamW
