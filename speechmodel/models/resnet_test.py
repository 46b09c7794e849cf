import numpy as np
import pytest

from speechmodel.models.resnet import ResNet
from speechmodel.tests.test_case import TestCase

SMALL = {
    "stackwise_num_filters": [8, 16],
    "stackwise_num_blocks": [1, 2],
    "stackwise_num_strides": [1, 2],
}


def _trainable_params(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


class ResNetTest(TestCase):
    def test_parameter_counts_match_torchvision(self):
        # torchvision resnet18: 11,689,512; resnet34: 21,797,672.
        self.assertEqual(_trainable_params(ResNet.from_depth("resnet18")), 11_689_512)
        self.assertEqual(_trainable_params(ResNet.from_depth("resnet34")), 21_797_672)

    def test_output_shapes(self):
        x = np.random.rand(2, 64, 64, 3).astype("float32")
        model = ResNet.from_depth("resnet18", include_top=False, input_shape=(64, 64, 3))
        self.assertEqual(tuple(model(x).shape), (2, 2, 2, 512))
        for pooling in ("avg", "max"):
            model = ResNet(include_top=False, pooling=pooling, input_shape=(64, 64, 3), **SMALL)
            self.assertEqual(tuple(model(x).shape), (2, 16))
        model = ResNet.from_depth("resnet18", num_classes=5, input_shape=(224, 224, 3))
        self.assertEqual(tuple(model.output_shape), (None, 5))

    def test_fit_step_and_saving(self):
        model = ResNet(num_classes=3, input_shape=(32, 32, 3), **SMALL)
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        x = np.random.rand(4, 32, 32, 3).astype("float32")
        history = model.fit(x, np.array([0, 1, 2, 0]), epochs=1, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][0]))
        restored = self.run_model_saving_test(model, input_data=x)
        self.assertEqual(restored.get_config()["stackwise_num_blocks"], [1, 2])

    def test_projection_shortcut_only_when_shape_changes(self):
        model = ResNet.from_depth("resnet18", include_top=False, input_shape=(64, 64, 3))
        names = {layer.name for layer in model.layers}
        self.assertNotIn("layer1_0_downsample_0", names)
        for stack in (2, 3, 4):
            self.assertIn(f"layer{stack}_0_downsample_0", names)
            self.assertNotIn(f"layer{stack}_1_downsample_0", names)

    def test_docstring_example(self):
        self.run_docstring_test(ResNet)

    def test_invalid_arguments(self):
        with pytest.raises(ValueError, match="Received: depth='resnet50'"):
            ResNet.from_depth("resnet50")
        with pytest.raises(ValueError, match="same length"):
            ResNet(stackwise_num_filters=[8], stackwise_num_blocks=[1, 1],
                   stackwise_num_strides=[1])
        with pytest.raises(ValueError, match="at least 32x32"):
            ResNet(input_shape=(16, 16, 3), **SMALL)
        with pytest.raises(ValueError, match="Received: pooling='gap'"):
            ResNet(pooling="gap", **SMALL)
