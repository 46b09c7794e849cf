import keras
import numpy as np
import pytest

from speechmodel.training.random_states import random_state, seed_states, set_random_state


def _nested_random_model():
    inner = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dropout(0.1, name="inner_a"), keras.layers.Dropout(0.2, name="inner_b")],
        name="inner",
    )
    x = keras.Input((4,))
    h = inner(keras.layers.Dropout(0.3, name="first")(x))
    return keras.Model(x, keras.layers.Dropout(0.4, name="last")(h))


def test_random_state_round_trip_and_backups_of_earlier_versions():
    model = _nested_random_model()
    inner = model.get_layer("inner")
    layers = [model.get_layer("first"), inner.get_layer("inner_a"), inner.get_layer("inner_b"),
              model.get_layer("last")]
    # Every seed generator, in the order of model.variables.
    assert [id(v) for v in seed_states(model)] == [id(layer.seed_generator.state) for layer in layers]
    for n, layer in enumerate(layers):
        layer.seed_generator.state.assign(np.array([n, 10 + n], "uint32"))
    arrays, extra = random_state(model)
    assert extra["seed_order"] == "variables"
    for layer in layers:
        layer.seed_generator.state.assign(np.zeros(2, "uint32"))
    set_random_state(model, arrays, extra)
    for n, layer in enumerate(layers):
        np.testing.assert_array_equal(np.asarray(layer.seed_generator.state.value), [n, 10 + n])

    # A backup of an earlier version (no seed_order) holds the states in
    # Keras' _flatten_layers order: first, inner_b, inner_a, last.
    legacy = {"seed_0": [0, 10], "seed_1": [2, 12], "seed_2": [1, 11], "seed_3": [3, 13],
              "numpy_keys": arrays["numpy_keys"]}
    legacy = {k: np.asarray(v, "uint32") for k, v in legacy.items()}
    old_extra = {k: v for k, v in extra.items() if k != "seed_order"}
    for layer in layers:
        layer.seed_generator.state.assign(np.zeros(2, "uint32"))
    set_random_state(model, legacy, old_extra)
    for n, layer in enumerate(layers):
        np.testing.assert_array_equal(np.asarray(layer.seed_generator.state.value), [n, 10 + n])

    with pytest.raises(ValueError, match="holds 1 random generator states, the model has 4"):
        set_random_state(model, {"seed_0": legacy["seed_0"], "numpy_keys": legacy["numpy_keys"]}, extra)
