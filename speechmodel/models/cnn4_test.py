import keras
import numpy as np
import pytest

from speechmodel.models.cnn4 import CNN4
from speechmodel.tests.test_case import TestCase


class CNN4Test(TestCase):
    def test_shapes_fit_step_and_saving(self):
        model = CNN4(input_shape=(64, 64, 3))
        x = np.random.rand(4, 64, 64, 3).astype("float32")
        self.assertEqual(tuple(model(x).shape), (4, 256))
        classifier = keras.Sequential([model, keras.layers.Dense(3)])
        classifier.compile(
            optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        )
        history = classifier.fit(x, np.array([0, 1, 2, 0]), epochs=1, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][0]))
        self.run_model_saving_test(model, input_data=x)

    def test_config_round_trip_and_other_sizes(self):
        model = CNN4(filters=[8, 16, 32], input_shape=(32, 40, 3))
        revived = CNN4.from_config(model.get_config())
        self.assertEqual(revived.get_config(), model.get_config())
        self.assertEqual(tuple(revived.output_shape), (None, 32))

    def test_docstring_example(self):
        self.run_docstring_test(CNN4)

    def test_invalid_filters(self):
        with pytest.raises(ValueError, match="Received: filters=\\[8\\]"):
            CNN4(filters=[8])
