import keras
import numpy as np
import pytest

from speechmodel.layers.imagenet_preprocessing import ImageNetPreprocessing
from speechmodel.tests.test_case import TestCase


class ImageNetPreprocessingTest(TestCase):
    def test_layer_basics(self):
        self.run_layer_test(
            ImageNetPreprocessing,
            {"mode": "caffe", "input_scale": 255.0},
            np.random.rand(2, 4, 4, 3).astype("float32"),
            (2, 4, 4, 3),
            run_training_check=False,
        )

    def test_matches_keras_applications_preprocess_input(self):
        # Reference: keras.applications' own numpy implementation; inputs in
        # [0, 1] are scaled to [0, 255] first. Tolerance: float32 rounding.
        x = np.random.RandomState(0).rand(2, 5, 5, 3).astype("float32")
        apps = keras.applications
        references = {
            "caffe": [apps.resnet50.preprocess_input, apps.vgg16.preprocess_input],
            "tf": [apps.resnet_v2.preprocess_input, apps.mobilenet_v2.preprocess_input],
            "scale": [apps.efficientnet.preprocess_input],
            "torch": [
                lambda v: apps.imagenet_utils.preprocess_input(v, mode="torch")
            ],
        }
        for mode, fns in references.items():
            out = np.asarray(ImageNetPreprocessing(mode)(x))
            for fn in fns:
                np.testing.assert_allclose(out, fn(x * 255.0), atol=1e-4, err_msg=mode)

    def test_custom_input_scale(self):
        x = np.full((1, 1, 1, 3), 2.0, "float32")
        out = np.asarray(ImageNetPreprocessing("tf", input_scale=127.5)(x))
        np.testing.assert_allclose(out, 1.0)

    def test_invalid_arguments(self):
        with pytest.raises(ValueError, match="Received: mode='bgr'"):
            ImageNetPreprocessing("bgr")
        with pytest.raises(ValueError, match="3 channels"):
            ImageNetPreprocessing("tf")(np.zeros((1, 2, 2, 1), "float32"))

    def test_docstring_example(self):
        self.run_docstring_test(ImageNetPreprocessing)
