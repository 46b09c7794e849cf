import keras
import numpy as np
import pytest

from speechmodel.calibration import scale_probabilities
from speechmodel.layers.temperature_scaling import TemperatureScaling


def test_the_layer_is_scale_probabilities_and_serialises():
    p = np.random.default_rng(0).dirichlet(np.ones(5), size=7).astype(np.float32)
    layer = TemperatureScaling(1.7)
    np.testing.assert_allclose(np.asarray(layer(p)), scale_probabilities(p, 1.7), atol=1e-5)
    again = TemperatureScaling.from_config(layer.get_config())
    assert again.temperature == 1.7
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    np.testing.assert_allclose(np.asarray(restored(p)), np.asarray(layer(p)), atol=1e-6)


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan")])
def test_a_temperature_must_be_positive(bad):
    with pytest.raises(ValueError, match="Received: temperature="):
        TemperatureScaling(bad)
