import keras
import numpy as np
import pytest

from speechmodel.models.alexnet import AlexNet
from speechmodel.tests.test_case import TestCase


def _trainable_params(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


class AlexNetTest(TestCase):
    def test_parameter_count_matches_torchvision(self):
        # torchvision.models.alexnet(): 61,100,840 parameters.
        self.assertEqual(_trainable_params(AlexNet()), 61_100_840)
        # FCN+GAP keeps the convolutions only (seed 000: ~2.5 M).
        gap = AlexNet(include_top=False, pooling="avg", input_shape=(64, 64, 3))
        self.assertEqual(_trainable_params(gap), 2_469_696)

    def test_output_shapes_on_small_and_paper_inputs(self):
        x64 = np.random.rand(2, 64, 64, 3).astype("float32")
        cases = [
            ({"include_top": False, "pooling": None}, (2, 1, 1, 256)),
            ({"include_top": False, "pooling": "avg"}, (2, 256)),
            ({"include_top": False, "pooling": "max"}, (2, 256)),
            ({"include_top": False, "pooling": "fc7"}, (2, 4096)),
            ({"include_top": True, "num_classes": 7}, (2, 7)),
        ]
        for kwargs, shape in cases:
            model = AlexNet(input_shape=(64, 64, 3), **kwargs)
            self.assertEqual(tuple(model(x64).shape), shape, kwargs)
        paper = AlexNet(include_top=False, input_shape=(227, 227, 3))
        self.assertEqual(tuple(paper.output_shape), (None, 6, 6, 256))
        out = AlexNet(include_top=True, num_classes=4, input_shape=(227, 227, 3))(
            np.random.rand(1, 227, 227, 3).astype("float32")
        )
        np.testing.assert_allclose(np.asarray(out).sum(), 1.0, atol=1e-5)

    def test_fit_step_and_saving(self):
        model = AlexNet(
            include_top=True, num_classes=3, input_shape=(64, 64, 3),
            classifier_activation=None,
        )
        # The classifier of a 64x64 input repeats the 1x1 map to 6x6.
        model.compile(
            optimizer="sgd",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        x = np.random.rand(2, 64, 64, 3).astype("float32")
        history = model.fit(x, np.array([0, 2]), epochs=1, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][0]))
        small = AlexNet(include_top=False, pooling="avg", input_shape=(64, 64, 3))
        self.run_model_saving_test(small, input_data=x)

    def test_config_round_trip(self):
        model = AlexNet(include_top=False, pooling="fc7", input_shape=(64, 64, 3), dropout=0.3)
        config = model.get_config()
        self.assertEqual(config["pooling"], "fc7")
        self.assertEqual(config["input_shape"], [64, 64, 3])
        revived = AlexNet.from_config(config)
        self.assertEqual(revived.get_config(), config)

    def test_docstring_example(self):
        self.run_docstring_test(AlexNet)

    def test_invalid_arguments(self):
        with pytest.raises(ValueError, match="Received: pooling='sum'"):
            AlexNet(pooling="sum")
        with pytest.raises(ValueError, match="at least 63x63"):
            AlexNet(input_shape=(40, 64, 3))
        with pytest.raises(ValueError, match="Received: num_classes=0"):
            AlexNet(num_classes=0)
