import os

import keras
import numpy as np
import pytest

from speechmodel.models import backbones
from speechmodel.models.backbones import BACKBONE_NAMES
from speechmodel.models.backbones import embedding_dim
from speechmodel.models.backbones import get_backbone
from speechmodel.models.backbones import keras_imagenet_file
from speechmodel.tests.test_case import TestCase


def _offline(monkeypatch, keras_home):
    """No network and an empty Keras cache: keras' download raises as it
    does offline ("URL fetch failure ...")."""
    from keras.src.backend import config as keras_config
    from keras.src.utils import file_utils

    def fail(fname, origin=None, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] "
                        "Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "get_file", fail)
    monkeypatch.setattr(keras_config, "_KERAS_DIR", keras_home)


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
        _offline(monkeypatch, home)
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
        # A file already in the Keras cache is used without any download.
        monkeypatch = pytest.MonkeyPatch()
        self.addCleanup(monkeypatch.undo)
        home = self.get_temp_dir()
        reference = keras.applications.MobileNetV2(
            include_top=False, weights=None, input_shape=(96, 96, 3), pooling="avg"
        )
        fname = keras_imagenet_file("mobilenetv2", (96, 96, 3))
        os.makedirs(os.path.join(home, "models"))
        reference.save_weights(os.path.join(home, "models", "tmp.weights.h5"))
        from keras.src.utils import file_utils

        def cached(name, origin=None, cache_subdir="datasets", **kwargs):
            self.assertEqual(name, fname)
            return os.path.join(home, cache_subdir, "tmp.weights.h5")

        monkeypatch.setattr(file_utils, "get_file", cached)
        model = get_backbone("mobilenetv2", weights="imagenet", input_shape=(96, 96, 3))
        self.assertEqual(len(model.weights), len(reference.weights))
        for w, r in zip(model.weights, reference.weights):
            np.testing.assert_array_equal(np.asarray(w), np.asarray(r))

    def test_no_keras_imagenet_weights_for_torchvision_networks(self):
        for name in ("alexnet", "resnet18", "vgg11"):
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

    def test_preprocessing_modes_cover_every_backbone(self):
        self.assertEqual(set(backbones.PREPROCESSING_MODES), set(BACKBONE_NAMES))

    def test_invalid_arguments(self):
        with pytest.raises(ValueError, match="Received: backbone='resnet101'"):
            get_backbone("resnet101")
        with pytest.raises(ValueError, match="Received: weights=3"):
            get_backbone("resnet18", weights=3)
