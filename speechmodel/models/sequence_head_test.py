import numpy as np
import pytest

from speechmodel.models.sequence_head import SequenceHead
from speechmodel.tests.test_case import TestCase

KWARGS = {
    "num_classes": 4,
    "embedding_dim": 6,
    "lstm_units": 5,
    "lstm_layers": 2,
    "attention_units": 7,
    "dense_units": [8, 8],
    "dropout": 0.2,
}


def _data(seed=0):
    rng = np.random.RandomState(seed)
    return {
        "embeddings": rng.standard_normal((3, 5, 6)).astype("float32"),
        "mask": np.array([[1, 1, 1, 0, 0], [1] * 5, [1, 0, 0, 0, 0]], bool),
    }


class SequenceHeadTest(TestCase):
    def test_probabilities_and_training(self):
        head = SequenceHead(**KWARGS)
        x = _data()
        probs = np.asarray(head(x))
        self.assertEqual(probs.shape, (3, 4))
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-6)
        head.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        history = head.fit(x, np.array([0, 1, 3]), epochs=2, verbose=0)
        self.assertTrue(np.all(np.isfinite(history.history["loss"])))

    def test_padding_never_changes_the_output(self):
        head = SequenceHead(**KWARGS)
        x = _data()
        reference = np.asarray(head.predict(x, verbose=0))
        noisy = {k: v.copy() for k, v in x.items()}
        noisy["embeddings"][~x["mask"]] = 50.0
        longer = {
            "embeddings": np.concatenate(
                [noisy["embeddings"], np.full((3, 4, 6), -7.0, "float32")], axis=1
            ),
            "mask": np.concatenate([x["mask"], np.zeros((3, 4), bool)], axis=1),
        }
        for variant in (noisy, longer):
            np.testing.assert_allclose(
                np.asarray(head.predict(variant, verbose=0)), reference, atol=1e-6
            )

    def test_attention_readout(self):
        head = SequenceHead(**KWARGS)
        x = _data()
        out = head.with_attention().predict(x, verbose=0)
        self.assertEqual(sorted(out), ["attention", "probabilities"])
        np.testing.assert_allclose(out["attention"].sum(-1), 1.0, atol=1e-6)
        self.assertTrue(np.all(out["attention"][~x["mask"]] == 0))
        np.testing.assert_allclose(
            out["probabilities"], head.predict(x, verbose=0), atol=1e-6
        )

    def test_saving_and_config(self):
        head = SequenceHead(**KWARGS)
        self.assertEqual(
            {k: head.get_config()[k] for k in KWARGS}, KWARGS
        )
        self.run_model_saving_test(head, input_data=_data())

    def test_docstring_example(self):
        self.run_docstring_test(SequenceHead)

    def test_invalid_arguments(self):
        with pytest.raises(ValueError, match="Received: lstm_units=0"):
            SequenceHead(3, embedding_dim=4, lstm_units=0)
        with pytest.raises(ValueError, match="Received: dropout=1.5"):
            SequenceHead(3, embedding_dim=4, dropout=1.5)
        with pytest.raises(ValueError, match="Received: dense_units=-1"):
            SequenceHead(3, embedding_dim=4, dense_units=[-1])


class BlockHeadTest(TestCase):
    def _x(self):
        rng = np.random.RandomState(3)
        return {
            "embeddings": rng.standard_normal((3, 5, 4, 6)).astype("float32"),
            "mask": np.array([[1, 1, 1, 0, 0], [1] * 5, [1, 0, 0, 0, 0]], bool),
        }

    def test_blocks_are_mixed_and_padding_ignored(self):
        head = SequenceHead(**KWARGS, embedding_blocks=4, input_dropout=0.1)
        x = self._x()
        reference = np.asarray(head(x))
        self.assertEqual(reference.shape, (3, 4))
        x["embeddings"][0, 3:] = 1e3
        x["embeddings"][2, 1:] = -7.0
        self.assertAllClose(head(x), reference, atol=1e-6)
        self.assertEqual(len(head.block_mix.logits.numpy()), 4)

    def test_saving(self):
        self.run_model_saving_test(
            SequenceHead, {**KWARGS, "embedding_blocks": 4, "input_dropout": 0.2}, self._x()
        )

    def test_bad_values(self):
        with pytest.raises(ValueError, match="embedding_blocks=0"):
            SequenceHead(**KWARGS, embedding_blocks=0)
        with pytest.raises(ValueError, match="input_dropout=1.0"):
            SequenceHead(**KWARGS, input_dropout=1.0)
