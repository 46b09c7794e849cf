"""Tiny Keras models for the tests of the training callbacks (not a test module)."""

import keras


def dense_model():
    """A seeded, compiled one-layer model on 3 inputs and 2 outputs."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    return model
