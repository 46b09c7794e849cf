import inspect

import keras
import numpy as np
import pytest

from speechmodel.models.segment_encoder import SegmentEncoder
from speechmodel.models.sequence_head import SequenceHead
from speechmodel.models.speech_model import SpeechModel
from speechmodel.tests.test_case import TestCase

SMALL = {
    "num_classes": 4,
    "backbone": "alexnet_gap",
    "lstm_units": 8,
    "attention_units": 8,
    "dense_units": [8],
    "dropout": 0.1,
}


def _data(seed=0, n=4, batch=3):
    rng = np.random.RandomState(seed)
    mask = np.ones((batch, n), bool)
    mask[0, 2:] = False
    mask[1, 1:] = False
    return {"segments": rng.rand(batch, n, 64, 64, 3).astype("float32"), "mask": mask}


def _pad(x, extra, seed=1):
    rng = np.random.RandomState(seed)
    b = x["mask"].shape[0]
    return {
        "segments": np.concatenate(
            [x["segments"], rng.rand(b, extra, 64, 64, 3).astype("float32")], axis=1
        ),
        "mask": np.concatenate([x["mask"], np.zeros((b, extra), bool)], axis=1),
    }


class SpeechModelTest(TestCase):
    def test_docstring_example(self):
        self.run_docstring_test(SpeechModel)

    def test_padding_segments_leave_predictions_unchanged(self):
        model = SpeechModel(**SMALL)
        x = _data()
        reference = model.predict(x, verbose=0)
        np.testing.assert_allclose(reference.sum(-1), 1.0, atol=1e-6)
        # Noise in the padded segments, and more padded segments.
        noisy = {k: v.copy() for k, v in x.items()}
        noisy["segments"][~x["mask"]] = 1e3
        for variant in (noisy, _pad(x, 3)):
            np.testing.assert_allclose(
                model.predict(variant, verbose=0), reference, atol=1e-6, rtol=0
            )
        # An utterance alone equals the same utterance in a padded batch.
        alone = {"segments": x["segments"][1:2, :1], "mask": x["mask"][1:2, :1]}
        np.testing.assert_allclose(
            model.predict(alone, verbose=0), reference[1:2], atol=1e-6, rtol=0
        )

    def test_attention_weights(self):
        model = SpeechModel(**SMALL)
        x = _data()
        out = model.attention_model().predict(x, verbose=0)
        attention = out["attention"]
        self.assertEqual(attention.shape, (3, 4))
        np.testing.assert_allclose(attention.sum(-1), 1.0, atol=1e-6)
        self.assertTrue(np.all(attention[~x["mask"]] == 0))
        self.assertTrue(np.all(attention[x["mask"]] > 0))
        np.testing.assert_allclose(attention[1, 0], 1.0)
        np.testing.assert_allclose(
            out["probabilities"], model.predict(x, verbose=0), atol=1e-6
        )

    def test_fit_on_batches_of_different_lengths_then_save_and_load(self):
        model = SpeechModel(**SMALL)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        y = np.array([0, 1, 3], "int32")
        for n in (2, 5):
            x = _data(seed=n, n=n)
            history = model.fit(x, y, epochs=1, verbose=0)
            self.assertTrue(np.isfinite(history.history["loss"][0]))
        restored = self.run_model_saving_test(model, input_data=_data())
        x = _data()
        np.testing.assert_allclose(
            restored.attention_model().predict(x, verbose=0)["attention"],
            model.attention_model().predict(x, verbose=0)["attention"],
            atol=1e-6,
        )

    def test_config_holds_every_constructor_argument(self):
        model = SpeechModel(**SMALL)
        config = model.get_config()
        params = [
            k for k, p in inspect.signature(SpeechModel.__init__).parameters.items()
            if k != "self" and p.kind is not p.VAR_KEYWORD
        ]
        for key in params:
            self.assertIn(key, config)
        self.assertEqual({k: config[k] for k in SMALL}, SMALL)

    def test_loading_never_reads_the_initial_weights(self):
        # A config naming a weights file that is gone still rebuilds: the
        # saved weights replace the initial ones anyway.
        config = {**SpeechModel(**SMALL).get_config(), "weights": "/gone/backbone.weights.h5"}
        model = SpeechModel.from_config(config)
        self.assertEqual(model.get_config()["weights"], "/gone/backbone.weights.h5")
        with pytest.raises(ValueError, match="/gone/backbone.weights.h5"):
            SpeechModel(**{**SMALL, "weights": "/gone/backbone.weights.h5"})

    def test_two_stage_training(self):
        model = SpeechModel(**SMALL)
        x = _data()
        y = np.array([0, 1, 2], "int32")
        # (1) Fine-tune the CNN on segment labels: it is the model's CNN.
        classifier = model.segment_encoder.segment_classifier(4)
        classifier.compile(
            optimizer="sgd",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        before = np.array(model.segment_encoder.backbone_model.weights[0])
        segments = x["segments"][x["mask"]]
        segment_labels = np.repeat(y, x["mask"].sum(1))
        classifier.fit(segments, segment_labels, epochs=1, verbose=0)
        self.assertFalse(
            np.allclose(before, np.asarray(model.segment_encoder.backbone_model.weights[0]))
        )
        # (2) Embeddings extracted once (cacheable).
        embeddings = model.segment_encoder.predict(x, verbose=0)
        self.assertEqual(embeddings.shape, (3, 4, 256))
        # (3) A head built alone from the config, trained on the embeddings.
        head = SpeechModel.sequence_head_from_config(SMALL)
        self.assertIsInstance(head, SequenceHead)
        self.assertEqual(head.embedding_dim, 256)
        head.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        cached = {"embeddings": embeddings, "mask": x["mask"]}
        head.fit(cached, y, epochs=1, verbose=0)
        joined = SpeechModel.from_parts(model.segment_encoder, head)
        np.testing.assert_allclose(
            joined.predict(x, verbose=0), head.predict(cached, verbose=0), atol=1e-5
        )
        self.assertEqual(joined.get_config()["lstm_units"], 8)

    def test_frozen_backbone(self):
        model = SpeechModel(**SMALL, trainable_backbone=False)
        self.assertEqual(len(model.segment_encoder.trainable_weights), 0)
        self.assertGreater(len(model.sequence_head.trainable_weights), 0)

    def test_paper_alexnet_fc7_with_227_resize(self):
        model = SpeechModel(
            num_classes=3, backbone="alexnet", input_size=227, preprocessing="imagenet",
            lstm_units=8, attention_units=8, dense_units=[8],
        )
        self.assertEqual(model.segment_encoder.embedding_dim, 4096)
        self.assertEqual(
            tuple(model.segment_encoder.backbone_model.input_shape), (None, 227, 227, 3)
        )
        x = _data(n=2, batch=2)
        probs = model.predict(x, verbose=0)
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-6)
        np.testing.assert_allclose(
            model.predict(_pad(x, 1), verbose=0), probs, atol=1e-6, rtol=0
        )

    def test_from_parts_checks_its_inputs(self):
        encoder = SegmentEncoder(backbone="alexnet_gap")
        with pytest.raises(ValueError, match="embedding_dim=8"):
            SpeechModel.from_parts(encoder, SequenceHead(3, embedding_dim=8))
        with pytest.raises(ValueError, match="Received: SegmentEncoder, str"):
            SpeechModel.from_parts(encoder, "head")

    def test_invalid_arguments(self):
        with pytest.raises(ValueError, match="Received: backbone='alexnet2'"):
            SpeechModel(3, backbone="alexnet2")
        with pytest.raises(ValueError, match="Received: num_classes=0"):
            SpeechModel(**{**SMALL, "num_classes": 0})
        with pytest.raises(ValueError, match="needs `num_classes`"):
            SpeechModel.sequence_head_from_config({"backbone": "resnet18"})
