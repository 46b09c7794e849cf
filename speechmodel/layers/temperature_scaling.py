"""Temperature scaling of class probabilities, inside a saved model."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="speechmodel")
class TemperatureScaling(keras.layers.Layer):
    """``softmax(log(p) / temperature)``: calibrated probabilities from a
    classifier's ``p`` (``speechmodel.calibration``; the predicted class
    never changes). The temperature is a constant of the config (fitted on
    validation speakers by ``speechmodel.calibration.fit_temperature``),
    not a weight.

    Args:
        temperature: a positive float.

    Input and output: float (..., C) probabilities.
    """

    def __init__(self, temperature, **kwargs):
        super().__init__(**kwargs)
        temperature = float(temperature)
        if not 0 < temperature < float("inf"):
            raise ValueError(f"`temperature` must be a positive number. Received: temperature={temperature!r}")
        self.temperature = temperature

    def call(self, probabilities):
        p = ops.cast(probabilities, "float32")
        return ops.softmax(ops.log(ops.maximum(p, 1e-12)) / self.temperature, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"temperature": self.temperature})
        return config
