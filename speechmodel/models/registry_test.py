import json

import numpy as np
import pytest

from speechmodel.errors import ParameterError
from speechmodel.models.registry import BACKBONE_NAMES
from speechmodel.models.registry import FRONT_END_OPTIONS
from speechmodel.models.registry import MODEL_CLASSES
from speechmodel.models.registry import MODEL_NAMES
from speechmodel.models.registry import build_model
from speechmodel.models.registry import model_kind
from speechmodel.models.segment_classifier import SegmentClassifier
from speechmodel.models.speech_model import SpeechModel
from speechmodel.tests.test_case import TestCase


class RegistryTest(TestCase):
    def test_names(self):
        for name in ("speechmodel", "alexnet", "alexnet_gap", "resnet18", "resnet34",
                     "resnet50", "vgg11", "vgg16"):
            self.assertIn(name, MODEL_NAMES)

    def test_every_model_trains_one_step(self):
        # Eager steps keep this fast; graph-mode fit is covered by the
        # SpeechModel and SegmentClassifier tests.
        rng = np.random.RandomState(0)
        x = {"segments": rng.rand(2, 2, 64, 64, 3).astype("float32"),
             "mask": np.array([[1, 1], [1, 0]], bool)}
        y = np.array([0, 2], "int32")
        for name in MODEL_NAMES:
            kwargs = {"lstm_units": 8, "attention_units": 8, "dense_units": [8]}
            if name == "speechmodel":
                kwargs["backbone"] = "alexnet_gap"
            else:
                kwargs = {}
            model = build_model(name, num_classes=3, weights=None, **kwargs)
            self.assertIsInstance(
                model, SpeechModel if name == "speechmodel" else SegmentClassifier
            )
            model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                          run_eagerly=True)
            before = [np.array(w) for w in model.trainable_weights]
            history = model.fit(x, y, epochs=1, verbose=0)
            self.assertTrue(np.isfinite(history.history["loss"][0]), name)
            self.assertTrue(
                any(not np.allclose(b, np.asarray(w))
                    for b, w in zip(before, model.trainable_weights)), name
            )
            probs = model.predict(x, verbose=0)
            np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5, err_msg=name)

    def test_json_config_values(self):
        config = json.loads(
            '{"name": "speechmodel", "num_classes": 8, "weights": null,'
            ' "backbone": "resnet18", "input_size": null, "lstm_units": 16,'
            ' "dense_units": [32, 16], "segment_shape": [64, 64, 3]}'
        )
        model = build_model(**config)
        self.assertEqual(model.get_config()["dense_units"], [32, 16])
        self.assertEqual(model.get_config()["segment_shape"], [64, 64, 3])

    def test_invalid_arguments(self):
        with pytest.raises(ValueError, match="Received: name='lstm'"):
            build_model("lstm", num_classes=3)
        with pytest.raises(ValueError, match=r"Unknown argument\(s\) \['lstm_units'\]"):
            build_model("resnet18", num_classes=3, lstm_units=4)
        with pytest.raises(ValueError, match="Received: backbone='vgg11'"):
            build_model("resnet18", num_classes=3, backbone="vgg11")


def test_the_registered_keys_are_the_constructor_arguments():
    import inspect

    def keywords(cls, *skip):
        params = inspect.signature(cls.__init__).parameters
        return {k for k, p in params.items() if p.kind == p.KEYWORD_ONLY and k not in skip} | {"name"}

    speechmodel, front_end, baseline = (MODEL_CLASSES[k] for k in ("speechmodel", "front_end", "baseline"))
    assert speechmodel.model_class() is SpeechModel and baseline.model_class() is SegmentClassifier
    assert set(speechmodel.keys) == keywords(SpeechModel)
    assert set(baseline.keys) == keywords(SegmentClassifier)
    assert set(front_end.keys) == keywords(front_end.model_class(), "embedder") | set(FRONT_END_OPTIONS)
    assert len(set(speechmodel.keys)) == len(speechmodel.keys)


def test_backbones_and_kinds():
    from speechmodel.models import backbones

    assert set(BACKBONE_NAMES) == set(backbones._TORCHVISION_LAYOUT) | set(backbones._KERAS_APPLICATIONS)
    assert model_kind("speechmodel", "whisper_base") == "front_end"
    assert model_kind("speechmodel", "cnn4") == model_kind("speechmodel") == "speechmodel"
    assert model_kind("vgg11") == "baseline"
    with pytest.raises(ParameterError, match=r"Unknown argument\(s\) \['input_size'\] for model 'speechmodel' on the front end"):
        build_model("speechmodel", num_classes=3, backbone="whisper_base", input_size=227)
