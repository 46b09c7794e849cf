import numpy as np
import pytest

from speechmodel.models.vgg import VGG
from speechmodel.tests.test_case import TestCase

SMALL = [8, "M", 16, 16, "M"]


def _trainable_params(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


class VGGTest(TestCase):
    def test_parameter_counts_match_torchvision(self):
        # torchvision vgg11: 132,863,336; vgg11_bn: 132,868,840.
        self.assertEqual(_trainable_params(VGG.from_depth("vgg11")), 132_863_336)
        self.assertEqual(
            _trainable_params(VGG.from_depth("vgg11", batch_norm=True)), 132_868_840
        )

    def test_output_shapes(self):
        x = np.random.rand(2, 64, 64, 3).astype("float32")
        model = VGG.from_depth("vgg11", include_top=False, input_shape=(64, 64, 3))
        self.assertEqual(tuple(model(x).shape), (2, 2, 2, 512))
        model = VGG.from_depth("vgg16", batch_norm=True, include_top=False,
                                pooling="avg", input_shape=(64, 64, 3))
        self.assertEqual(tuple(model(x).shape), (2, 512))
        self.assertEqual(model.name, "vgg16_bn")

    def test_fit_step_and_saving(self):
        model = VGG(stackwise_config=SMALL, batch_norm=True, num_classes=3,
                    input_shape=(32, 32, 3))
        self.assertEqual(model.torchvision_flatten_shapes["classifier_0"], (7, 7, 16))
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        x = np.random.rand(4, 32, 32, 3).astype("float32")
        history = model.fit(x, np.array([0, 1, 2, 0]), epochs=1, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][0]))
        restored = self.run_model_saving_test(model, input_data=x)
        self.assertEqual(restored.get_config()["stackwise_config"], SMALL)

    def test_docstring_example(self):
        self.run_docstring_test(VGG)

    def test_invalid_arguments(self):
        with pytest.raises(ValueError, match="Received: depth='vgg12'"):
            VGG.from_depth("vgg12")
        with pytest.raises(ValueError, match="stackwise_config"):
            VGG(stackwise_config=[8, "X"])
        with pytest.raises(ValueError, match="at least 32x32"):
            VGG.from_depth("vgg11", input_shape=(16, 64, 3))
