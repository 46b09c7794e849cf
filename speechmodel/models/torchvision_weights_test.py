import os

import keras
import numpy as np
import pytest

from speechmodel.models.alexnet import AlexNet
from speechmodel.models.backbones import get_backbone
from speechmodel.models.resnet import ResNet
from speechmodel.models.torchvision_weights import load_torchvision_weights
from speechmodel.models.torchvision_weights import read_state_dict
from speechmodel.models.torchvision_weights import state_dict_from_checkpoint
from speechmodel.models.torchvision_weights import to_torchvision_state_dict
from speechmodel.tests.test_case import TestCase
from tests.paths import WEIGHTS
from tests.paths import require

SHARED = WEIGHTS / "alexnet_imagenet_conv"
LPIPS = SHARED / "lpips_alex_v0.1.pt"
CONV_NPZ = SHARED / "torchvision_alexnet_conv.npz"

SMALL = {
    "stackwise_num_filters": [8, 16],
    "stackwise_num_blocks": [1, 1],
    "stackwise_num_strides": [1, 2],
}


def _random_state_dict(model, seed=0):
    """Random arrays with the names and torch layouts of ``model``."""
    rng = np.random.RandomState(seed)
    out = {}
    for k, v in to_torchvision_state_dict(model).items():
        value = rng.standard_normal(v.shape).astype("float32") * 0.1
        if k.endswith("running_var"):
            value = np.abs(value) + 0.5
        out[k] = value
    return out


def _torch_conv2d(x, weight, stride, padding):
    """Reference: torch.nn.functional.conv2d on NHWC input, OIHW weight."""
    x = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    o, _, kh, kw = weight.shape
    b, h, w, _ = x.shape
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    y = np.zeros((b, oh, ow, o))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            y[:, i, j, :] = np.einsum("bhwc,ochw->bo", patch, weight)
    return y


class TorchvisionWeightsTest(TestCase):
    def test_conv_layout_and_padding_match_torch(self):
        model = ResNet(include_top=False, input_shape=(32, 32, 3), **SMALL)
        state = _random_state_dict(model)
        load_torchvision_weights(model, state)
        x = np.random.RandomState(1).rand(2, 32, 32, 3).astype("float32")
        conv1 = keras.Model(model.input, model.get_layer("conv1").output)
        expected = _torch_conv2d(x, state["conv1.weight"], stride=2, padding=3)
        np.testing.assert_allclose(np.asarray(conv1(x)), expected, atol=1e-4)
        # Stride-2 3x3 convolution with padding 1 (first block of stack 2).
        block_in = keras.Model(model.input, model.get_layer("layer1_0_out").output)
        block_conv = keras.Model(model.input, model.get_layer("layer2_0_conv1").output)
        expected = _torch_conv2d(
            np.asarray(block_in(x)), state["layer2.0.conv1.weight"], stride=2, padding=1
        )
        np.testing.assert_allclose(np.asarray(block_conv(x)), expected, atol=1e-4)

    def test_batchnorm_and_dense_parameters(self):
        model = ResNet(num_classes=5, input_shape=(32, 32, 3), **SMALL)
        state = _random_state_dict(model)
        load_torchvision_weights(model, state)
        bn = model.get_layer("bn1")
        np.testing.assert_array_equal(np.asarray(bn.gamma), state["bn1.weight"])
        np.testing.assert_array_equal(np.asarray(bn.moving_variance), state["bn1.running_var"])
        np.testing.assert_array_equal(np.asarray(model.get_layer("fc").kernel), state["fc.weight"].T)

    def test_flatten_order_of_the_first_dense_layer(self):
        # torchvision flattens (C, H, W): fc6 = relu(W @ pooled_chw + b).
        model = AlexNet(include_top=True, num_classes=3, input_shape=(64, 64, 3))
        state = _random_state_dict(model)
        unused = load_torchvision_weights(model, state)
        self.assertEqual(unused, [])
        x = np.random.RandomState(2).rand(2, 64, 64, 3).astype("float32")
        probe = keras.Model(
            model.input,
            [model.get_layer("avgpool").output, model.get_layer("classifier_1").output],
        )
        pooled, fc6 = (np.asarray(t) for t in probe(x, training=False))
        flat_chw = pooled.transpose(0, 3, 1, 2).reshape(2, -1)
        expected = np.maximum(
            flat_chw @ state["classifier.1.weight"].T + state["classifier.1.bias"], 0
        )
        # float32 sums of 9216 terms: tolerance relative to the output scale
        # (a wrong input order errs by the order of the scale itself).
        scale = np.abs(expected).max()
        np.testing.assert_allclose(fc6, expected, atol=1e-5 * scale, rtol=0)
        self.assertGreater(np.abs(fc6 - np.maximum(
            pooled.reshape(2, -1) @ state["classifier.1.weight"].T
            + state["classifier.1.bias"], 0)).max(), 1e-2 * scale)

    def test_round_trip_and_npz_file(self):
        source = ResNet(include_top=False, pooling="avg", input_shape=(32, 32, 3), **SMALL)
        path = os.path.join(self.get_temp_dir(), "resnet_torchvision.npz")
        np.savez(path, **to_torchvision_state_dict(source), **{"fc.weight": np.zeros((2, 16))})
        target = ResNet(include_top=False, pooling="avg", input_shape=(32, 32, 3), **SMALL)
        unused = load_torchvision_weights(target, path)
        self.assertEqual(unused, ["fc.weight"])  # no classifier in the target
        x = np.random.rand(2, 32, 32, 3).astype("float32")
        self.assertAllClose(target(x), source(x), atol=1e-6)

    def test_get_backbone_reads_npz(self):
        source = AlexNet(include_top=False, pooling="avg", input_shape=(64, 64, 3))
        path = os.path.join(self.get_temp_dir(), "alexnet.npz")
        np.savez(path, **to_torchvision_state_dict(source))
        backbone = get_backbone("alexnet_gap", weights=path)
        x = np.random.rand(1, 64, 64, 3).astype("float32")
        self.assertAllClose(backbone(x), source(x), atol=1e-6)

    def test_errors_name_the_problem_and_assign_nothing(self):
        model = ResNet(include_top=False, input_shape=(32, 32, 3), **SMALL)
        before = [np.array(w) for w in model.weights]
        state = _random_state_dict(model)
        del state["layer2.0.bn2.running_mean"]
        with pytest.raises(ValueError, match="layer2_0_bn2"):
            load_torchvision_weights(model, state)
        state = _random_state_dict(model)
        state["conv1.weight"] = state["conv1.weight"][:, :, :5, :5]
        with pytest.raises(ValueError, match="conv1"):
            load_torchvision_weights(model, state)
        for b, w in zip(before, model.weights):
            np.testing.assert_array_equal(b, np.asarray(w))
        with pytest.raises(ValueError, match="No such torchvision weights file"):
            load_torchvision_weights(model, "/nonexistent/weights.npz")
        bad = os.path.join(self.get_temp_dir(), "bad.npz")
        with open(bad, "w") as f:
            f.write("not a zip")
        with pytest.raises(ValueError, match="bad.npz"):
            load_torchvision_weights(model, bad)

    def test_torch_checkpoints_and_their_layouts(self):
        # A real torch file (zip layout) in the LPIPS layout: the trunk of
        # torchvision's ImageNet AlexNet, named features.0/3/6/8/10 here.
        params = read_state_dict(require(LPIPS))
        with np.load(CONV_NPZ) as ref:
            self.assertEqual(sorted(params), sorted(ref.files))
            for k in ref.files:
                np.testing.assert_array_equal(params[k], ref[k])
        # Plain and wrapped state dicts of a loaded checkpoint.
        state = {"conv.weight": np.zeros((2, 1, 1, 1), "float32"), "epoch": 3}
        self.assertEqual(list(state_dict_from_checkpoint(state)), ["conv.weight"])
        for wrapper in ("state_dict", "model", "model_state_dict"):
            wrapped = {wrapper: state, "optimizer": {"lr": 0.1}}
            self.assertEqual(list(state_dict_from_checkpoint(wrapped)), ["conv.weight"])
        with pytest.raises(ValueError, match=r"f\.pt: no state dict of arrays found.*\['a', 'b'\]"):
            state_dict_from_checkpoint({"a": 1, "b": [2]}, "f.pt")

    def test_skip_layers_keeps_them_and_still_checks_the_rest(self):
        model = AlexNet(include_top=False, pooling="fc7", input_shape=(64, 64, 3))
        fc = [np.array(w) for w in model.get_layer("classifier_1").weights]
        convs_only = {k: v for k, v in _random_state_dict(model).items()
                      if k.startswith("features.")}
        with pytest.raises(ValueError, match="classifier_1"):
            load_torchvision_weights(model, convs_only)
        unused = load_torchvision_weights(
            model, convs_only, skip_layers=("classifier_1", "classifier_4")
        )
        self.assertEqual(unused, [])
        for b, w in zip(fc, model.get_layer("classifier_1").weights):
            np.testing.assert_array_equal(b, np.asarray(w))
        np.testing.assert_array_equal(
            np.asarray(model.get_layer("features_3").kernel),
            convs_only["features.3.weight"].transpose(2, 3, 1, 0),
        )
        with pytest.raises(ValueError, match="does not have: \\['fc8'\\]"):
            load_torchvision_weights(model, convs_only, skip_layers=("fc8",))

    def test_dtypes_are_cast_to_the_variables(self):
        model = AlexNet(include_top=False, pooling="avg", input_shape=(64, 64, 3))
        state = {k: v.astype("float16") for k, v in _random_state_dict(model).items()}
        load_torchvision_weights(model, state)
        kernel = model.get_layer("features_0").kernel
        self.assertEqual(keras.backend.standardize_dtype(kernel.dtype), "float32")
        np.testing.assert_array_equal(
            np.asarray(kernel), state["features.0.weight"].astype("float32").transpose(2, 3, 1, 0)
        )
        state["features.0.bias"] = state["features.0.bias"].astype("int64")
        with pytest.raises(ValueError, match="not floating point"):
            load_torchvision_weights(model, state)
