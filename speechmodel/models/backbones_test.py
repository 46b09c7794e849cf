import contextlib
import functools
import http.server
import os
import socket
import threading

import keras
import numpy as np
import pytest

from speechmodel import keras_compat
from speechmodel.models import backbones
from speechmodel.models.registry import BACKBONE_NAMES
from speechmodel.models.backbones import embedding_dim
from speechmodel.models.backbones import get_backbone
from speechmodel.models.backbones import keras_imagenet_file
from speechmodel.models.torchvision_weights import to_torchvision_state_dict
from speechmodel.tests.test_case import TestCase
from tests.paths import REPO

SHARED = REPO.parent / "shared" / "weights" / "alexnet_imagenet_conv"
LPIPS = SHARED / "lpips_alex_v0.1.pt"  # a real torch file: the ImageNet AlexNet convolutions
LPIPS_SHA256 = "91b233243c42c3f92893923bce97838e952570704c6d0be5db43aaf7d5c7e54d"
CONV_NPZ = SHARED / "torchvision_alexnet_conv.npz"
CONVS = (0, 3, 6, 8, 10)


def _offline(test, monkeypatch, keras_home):
    """An empty Keras cache in ``keras_home`` and no network: every HTTP(S)
    request goes to a closed local port, so keras' download raises as it
    does offline ("URL fetch failure ...")."""
    test.enterContext(keras_compat.use_keras_home(keras_home))
    proxy = f"http://127.0.0.1:{_closed_port()}"
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, proxy)
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)


def _assert_imagenet_convs(model):
    """The model's five convolutions are torchvision's ImageNet AlexNet's."""
    with np.load(CONV_NPZ) as ref:
        for i in CONVS:
            layer = model.get_layer(f"features_{i}")
            np.testing.assert_array_equal(
                np.asarray(layer.kernel), ref[f"features.{i}.weight"].transpose(2, 3, 1, 0)
            )
            np.testing.assert_array_equal(np.asarray(layer.bias), ref[f"features.{i}.bias"])


@contextlib.contextmanager
def _http_server(directory):
    """A file server on 127.0.0.1 (an ephemeral port) serving ``directory``;
    yields (base URL, list of requested paths)."""
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(directory))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _imagenet_env(test, monkeypatch, keras_home):
    """An empty Keras cache, no local-file variable, no proxy for 127.0.0.1."""
    test.enterContext(keras_compat.use_keras_home(keras_home))
    monkeypatch.delenv(backbones.ALEXNET_IMAGENET_ENV, raising=False)
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")


class BackbonesTest(TestCase):
    def test_every_backbone_embeds_64x64_segments(self):
        x = np.random.rand(2, 64, 64, 3).astype("float32")
        for name in BACKBONE_NAMES:
            model = get_backbone(name, weights=None, input_shape=(64, 64, 3))
            out = model(x)
            self.assertEqual(tuple(out.shape), (2, embedding_dim(name)), name)
            self.assertAllFinite(out)

    def test_trainable_flag(self):
        model = get_backbone("alexnet_gap", trainable=False)
        self.assertEqual(len(model.trainable_weights), 0)

    def test_imagenet_offline_names_the_file_and_directory(self):
        monkeypatch = pytest.MonkeyPatch()
        self.addCleanup(monkeypatch.undo)
        home = self.get_temp_dir()
        _offline(self, monkeypatch, home)
        for name, fname in [
            ("resnet50v2", "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5"),
            ("mobilenetv2", "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"),
        ]:
            with pytest.raises(ValueError) as info:
                get_backbone(name, weights="imagenet", input_shape=(64, 64, 3))
            message = str(info.value)
            self.assertIn(fname, message)
            self.assertIn(os.path.join(home, "models"), message)
            self.assertIn("URL fetch failure", message)
        self.assertEqual(
            keras_imagenet_file("mobilenetv2", (128, 128, 3)),
            "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_128_no_top.h5",
        )
        self.assertEqual(keras_imagenet_file("efficientnetb0"), "efficientnetb0_notop.h5")
        self.assertEqual(keras_imagenet_file("resnet50"),
                         "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")

    def test_imagenet_uses_the_cached_file(self):
        # A file already in the Keras cache is used without any download
        # (offline: a download would fail).
        monkeypatch = pytest.MonkeyPatch()
        self.addCleanup(monkeypatch.undo)
        home = self.get_temp_dir()
        _offline(self, monkeypatch, home)
        reference = keras.applications.MobileNetV2(
            include_top=False, weights=None, input_shape=(96, 96, 3), pooling="avg"
        )
        fname = keras_imagenet_file("mobilenetv2", (96, 96, 3))
        os.makedirs(os.path.join(home, "models"))
        # The layout of Keras' own files: a legacy HDF5 file.
        reference.save(os.path.join(home, "models", fname))
        self.assertEqual(backbones.keras_cache_dir(), os.path.join(home, "models"))
        model = get_backbone("mobilenetv2", weights="imagenet", input_shape=(96, 96, 3))
        self.assertEqual(len(model.weights), len(reference.weights))
        for w, r in zip(model.weights, reference.weights):
            np.testing.assert_array_equal(np.asarray(w), np.asarray(r))

    def test_no_keras_imagenet_weights_for_torchvision_networks(self):
        # AlexNet has them (torchvision's checkpoint, see below); the others not.
        for name in ("resnet18", "vgg11", "vgg16_bn"):
            with pytest.raises(ValueError, match="No ImageNet weights are published for Keras"):
                get_backbone(name, weights="imagenet")

    def test_local_weights_files(self):
        tmp = self.get_temp_dir()
        x = np.random.rand(2, 64, 64, 3).astype("float32")
        for name in ("alexnet_gap", "mobilenetv2"):
            source = get_backbone(name)
            path = os.path.join(tmp, f"{name}.weights.h5")
            source.save_weights(path)
            loaded = get_backbone(name, weights=path)
            fresh = get_backbone(name)  # another random init differs
            kernels = [i for i, w in enumerate(source.weights) if len(w.shape) == 4]
            for i in kernels:
                np.testing.assert_array_equal(
                    np.asarray(loaded.weights[i]), np.asarray(source.weights[i])
                )
                self.assertFalse(
                    np.array_equal(np.asarray(fresh.weights[i]), np.asarray(source.weights[i]))
                )
            self.assertAllClose(loaded(x), source(x), atol=1e-6)
        with pytest.raises(ValueError, match="alexnet_gap.weights.h5"):
            get_backbone("resnet18", weights=os.path.join(tmp, "alexnet_gap.weights.h5"))
        with pytest.raises(ValueError, match="No such weights file"):
            get_backbone("resnet50", weights=os.path.join(tmp, "missing.h5"))

    def test_every_registered_backbone_has_a_constructor(self):
        self.assertEqual(
            set(BACKBONE_NAMES), set(backbones._TORCHVISION_LAYOUT) | set(backbones._KERAS_APPLICATIONS)
        )

    def test_invalid_arguments(self):
        with pytest.raises(ValueError, match="Received: backbone='resnet101'"):
            get_backbone("resnet101")
        with pytest.raises(ValueError, match="Received: weights=3"):
            get_backbone("resnet18", weights=3)


class AlexNetImageNetTest(TestCase):
    def setUp(self):
        super().setUp()
        self.monkeypatch = pytest.MonkeyPatch()
        self.addCleanup(self.monkeypatch.undo)
        self.home = self.get_temp_dir()
        _imagenet_env(self, self.monkeypatch, self.home)

    def test_pinned_checkpoint(self):
        self.assertEqual(
            backbones.ALEXNET_IMAGENET_URL,
            "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        )
        # torch.hub checks the 8 hex digits in the file name; the pin is the
        # full digest, which must start with them.
        self.assertRegex(backbones.ALEXNET_IMAGENET_SHA256, "^7be5be79[0-9a-f]{56}$")

    def test_environment_variable_replaces_the_download(self):
        # URL unreachable: any download attempt would fail the test.
        self.monkeypatch.setattr(
            backbones, "ALEXNET_IMAGENET_URL", f"http://127.0.0.1:{_closed_port()}/x.pth"
        )
        self.monkeypatch.setenv(backbones.ALEXNET_IMAGENET_ENV, str(LPIPS))
        with self.assertLogs("absl", level="INFO") as logs:
            gap = get_backbone("alexnet_gap", weights="imagenet", input_shape=(64, 64, 3))
        _assert_imagenet_convs(gap)
        self.assertTrue(any("loaded the ImageNet weights" in m and str(LPIPS) in m
                            for m in logs.output), logs.output)
        # alexnet_gap needs only the convolutions: no warning.
        self.assertFalse([m for m in logs.output if m.startswith("WARNING")], logs.output)

        # The paper's fc7 AlexNet: fc6/fc7 stay random, and the log says so.
        with self.assertLogs("absl", level="WARNING") as logs:
            fc7 = get_backbone("alexnet", weights="imagenet", input_shape=(64, 64, 3))
        _assert_imagenet_convs(fc7)
        self.assertIn("fc6 and fc7 (classifier_1, classifier_4) keep their random", logs.output[0])
        kernel = np.asarray(fc7.get_layer("classifier_1").kernel)
        self.assertGreater(float(np.std(kernel)), 0.0)
        self.assertFalse(os.path.exists(os.path.join(self.home, "models")))  # nothing cached

        self.monkeypatch.setenv(backbones.ALEXNET_IMAGENET_ENV, os.path.join(self.home, "no.pth"))
        with pytest.raises(ValueError, match="SPEECHMODEL_ALEXNET_IMAGENET names no file"):
            get_backbone("alexnet_gap", weights="imagenet")

    def test_local_files_pth_and_npz_give_the_same_network(self):
        x = np.random.RandomState(0).rand(2, 70, 70, 3).astype("float32") * 255
        from_pt = get_backbone("alexnet_gap", weights=str(LPIPS), input_shape=(70, 70, 3))
        from_npz = get_backbone("alexnet_gap", weights=CONV_NPZ, input_shape=(70, 70, 3))
        _assert_imagenet_convs(from_pt)
        self.assertAllClose(from_pt(x), from_npz(x), atol=0)
        # Refused: a torchvision file for a keras.applications network.
        with pytest.raises(ValueError, match="torchvision weights apply to"):
            get_backbone("mobilenetv2", weights=str(LPIPS))
        # A file that is not a checkpoint: the error names it.
        bad = os.path.join(self.home, "bad.pth")
        with open(bad, "w") as f:
            f.write("nothing\n")
        with pytest.raises(ValueError, match="bad.pth: not a PyTorch checkpoint"):
            get_backbone("alexnet", weights=bad)

    def test_a_full_checkpoint_loads_fc6_and_fc7_without_warning(self):
        # The torchvision layout with the classifier (random values, the
        # shapes of alexnet-owt-7be5be79.pth: fc6 is 4096 x 9216).
        from speechmodel.models.alexnet import AlexNet

        reference = AlexNet(include_top=True, num_classes=1000, input_shape=(64, 64, 3))
        state = to_torchvision_state_dict(reference)
        path = os.path.join(self.home, "alexnet_full.npz")
        np.savez(path, **state)
        del state
        with self.assertLogs("absl", level="INFO") as logs:
            model = get_backbone("alexnet", weights=path, input_shape=(64, 64, 3))
        self.assertFalse([m for m in logs.output if m.startswith("WARNING")], logs.output)
        # 10 convolution + 4 fc6/fc7 tensors; the 1000-way classifier.6 is not used.
        self.assertIn("(14 tensors: classifier.1.bias, classifier.1.weight", logs.output[-1])
        for name in ("features_0", "features_10", "classifier_1", "classifier_4"):
            for w, r in zip(model.get_layer(name).weights, reference.get_layer(name).weights):
                np.testing.assert_array_equal(np.asarray(w), np.asarray(r))

    def test_download_once_into_the_keras_cache(self):
        with _http_server(SHARED) as (base, requests):
            self.monkeypatch.setattr(backbones, "ALEXNET_IMAGENET_URL", f"{base}/{LPIPS.name}")
            self.monkeypatch.setattr(backbones, "ALEXNET_IMAGENET_SHA256", LPIPS_SHA256)
            model = get_backbone("alexnet_gap", weights="imagenet", input_shape=(64, 64, 3))
            cached = os.path.join(self.home, "models", LPIPS.name)
            self.assertEqual(backbones.keras_cache_dir(), os.path.join(self.home, "models"))
            self.assertTrue(os.path.isfile(cached))
            self.assertEqual(requests, [f"/{LPIPS.name}"])
            _assert_imagenet_convs(model)
            self.assertEqual(backbones.alexnet_imagenet_file(), cached)
            self.assertEqual(len(requests), 1)  # the second time: from the cache
        # Server gone: still served from the cache.
        self.assertEqual(backbones.alexnet_imagenet_file(), cached)

    def test_a_download_with_another_hash_is_refused(self):
        with _http_server(SHARED) as (base, requests):
            self.monkeypatch.setattr(backbones, "ALEXNET_IMAGENET_URL", f"{base}/{LPIPS.name}")
            self.monkeypatch.setattr(backbones, "ALEXNET_IMAGENET_SHA256", "0" * 64)
            with pytest.raises(ValueError) as info:
                get_backbone("alexnet_gap", weights="imagenet")
        message = str(info.value)
        self.assertEqual(requests, [f"/{LPIPS.name}"])
        self.assertIn("is not the expected one and was refused", message)
        self.assertIn(LPIPS_SHA256, message)  # pooch names the hash it got
        self.assertEqual(os.listdir(os.path.join(self.home, "models")), [])  # nothing kept

    def test_offline_with_nothing_says_what_and_where(self):
        url = f"http://127.0.0.1:{_closed_port()}/alexnet-owt-7be5be79.pth"
        self.monkeypatch.setattr(backbones, "ALEXNET_IMAGENET_URL", url)
        with pytest.raises(ValueError) as info:
            get_backbone("alexnet", weights="imagenet")
        message = str(info.value)
        for part in (
            "alexnet-owt-7be5be79.pth",
            os.path.join(self.home, "models", "alexnet-owt-7be5be79.pth"),
            url,
            "SPEECHMODEL_ALEXNET_IMAGENET=",
            "--weights FILE",
            "downloading it failed",
        ):
            self.assertIn(part, message)
