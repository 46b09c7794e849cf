import os

import keras
import numpy as np
import pytest

from speechmodel import precision
from speechmodel.models.segment_classifier import SegmentClassifier
from speechmodel.models.sequence_head import SequenceHead
from speechmodel.models.speech_model import SpeechModel
from speechmodel.tests.test_case import TestCase


def _data():
    rng = np.random.RandomState(0)
    return {
        "segments": rng.rand(2, 3, 64, 64, 3).astype("float32"),
        "mask": np.array([[1, 1, 0], [1, 1, 1]], bool),
    }


class PrecisionTest(TestCase):
    def setUp(self):
        super().setUp()
        self.addCleanup(keras.mixed_precision.set_global_policy, "float32")

    def test_mixed_bfloat16_keeps_float32_outputs_and_trains(self):
        self.assertEqual(precision.set_precision("mixed_bfloat16"), "mixed_bfloat16")
        self.assertEqual(precision.get_precision(), "mixed_bfloat16")
        model = SpeechModel(num_classes=3, backbone="alexnet_gap", lstm_units=8,
                            attention_units=8, dense_units=[8])
        self.assertEqual(model.segment_encoder.backbone_model.layers[-2].compute_dtype,
                         "bfloat16")
        x = _data()
        self.assertEqual(keras.backend.standardize_dtype(model.output.dtype), "float32")
        out = model.attention_model().predict(x, verbose=0)
        self.assertEqual(out["probabilities"].dtype, np.float32)
        self.assertEqual(out["attention"].dtype, np.float32)
        np.testing.assert_allclose(out["attention"].sum(-1), 1.0, atol=1e-6)
        np.testing.assert_allclose(out["probabilities"].sum(-1), 1.0, atol=1e-5)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        history = model.fit(x, np.array([0, 2]), epochs=1, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][0]))
        self.assertEqual(model.trainable_weights[0].dtype, "float32")
        baseline = SegmentClassifier(num_classes=3, backbone="alexnet_gap")
        self.assertEqual(keras.backend.standardize_dtype(baseline.output.dtype), "float32")
        self.assertEqual(
            keras.backend.standardize_dtype(baseline.segment_model().output.dtype), "float32"
        )

    def test_mixed_float16_scales_the_loss(self):
        precision.set_precision("mixed_float16")
        head = SequenceHead(3, embedding_dim=4, lstm_units=4, attention_units=4,
                            dense_units=[4])
        head.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        self.assertIsInstance(head.optimizer, keras.optimizers.LossScaleOptimizer)
        x = {"embeddings": np.random.rand(2, 3, 4).astype("float32"),
             "mask": np.array([[1, 0, 0], [1, 1, 1]], bool)}
        history = head.fit(x, np.array([0, 1]), epochs=1, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][0]))
        self.assertEqual(head.predict(x, verbose=0).dtype, np.float32)

    def test_auto(self):
        monkeypatch = pytest.MonkeyPatch()
        self.addCleanup(monkeypatch.undo)
        monkeypatch.setattr(precision, "_has_gpu", lambda: True)
        self.assertEqual(precision.resolve_precision("auto"), "mixed_float16")
        monkeypatch.setattr(precision, "_has_gpu", lambda: False)
        monkeypatch.setattr(precision, "cpu_supports_bfloat16", lambda: True)
        # Measured slower than float32 on such a CPU: auto keeps float32.
        self.assertEqual(precision.resolve_precision("auto"), "float32")
        monkeypatch.setattr(precision, "cpu_supports_bfloat16", lambda: False)
        self.assertEqual(precision.resolve_precision("auto"), "float32")
        self.assertEqual(precision.set_precision("auto"), "float32")
        self.assertEqual(precision.resolve_precision("mixed_float16"), "mixed_float16")

    def test_cpu_flags(self):
        tmp = self.get_temp_dir()
        cases = {
            "processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile\n": True,
            "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n": False,
            "processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n": True,
        }
        for i, (text, expected) in enumerate(cases.items()):
            path = os.path.join(tmp, f"cpuinfo{i}")
            with open(path, "w") as f:
                f.write(text)
            self.assertEqual(precision.cpu_supports_bfloat16(path), expected, text)
        self.assertFalse(precision.cpu_supports_bfloat16(os.path.join(tmp, "missing")))

    def test_invalid_arguments(self):
        with pytest.raises(ValueError, match="Received: policy='float16'"):
            precision.set_precision("float16")
