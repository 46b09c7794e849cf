import numpy as np
import pytest

from speechmodel.models.audio_speech_model import AudioSpeechModel
from speechmodel.models.cached_top_blocks import CachedTopBlocks
from speechmodel.models.whisper.whisper_segment_embedder import WhisperSegmentEmbedder
from speechmodel.tests.test_case import TestCase

SIZES = dict(num_layers=3, hidden_dim=8, num_heads=2, intermediate_dim=16)


def _model(**embedder):
    return AudioSpeechModel(
        3, embedder=WhisperSegmentEmbedder(**SIZES, **embedder), lstm_units=4,
        attention_units=4, dense_units=[4],
    )


def _inputs(model, waves):
    """CachedTopBlocks' inputs as the cache gives them: each file alone,
    cut to its own length, then padded into one batch."""
    rows = [model.embedder.lower(w[np.newaxis]) for w in waves]
    lower = [np.asarray(r[0][0, : int(np.sum(r[1]))]) for r in rows]
    states = [np.asarray(r[2][0, : int(r[3][0])]) for r in rows]
    n, t = max(map(len, lower)), max(map(len, states))
    x = {
        "lower": np.stack([np.pad(a, [(0, n - len(a)), (0, 0), (0, 0)]) for a in lower]),
        "mask": np.array([[i < len(a) for i in range(n)] for a in lower]),
        "states": np.stack([np.pad(s, [(0, t - len(s)), (0, 0)]) for s in states]),
        "token_lengths": np.array([len(s) for s in states], np.int32),
    }
    return x


class CachedTopBlocksTest(TestCase):
    def test_equals_the_model_on_waveforms(self):
        rng = np.random.RandomState(0)
        waves = [rng.standard_normal(n).astype("float32") * 0.1 for n in (16000, 7000, 30000)]
        batch = np.zeros((3, 30000), "float32")
        for i, w in enumerate(waves):
            batch[i, : len(w)] = w
        lengths = np.array([len(w) for w in waves], np.int32)
        for embedder in ({"fine_tune_blocks": 1}, {"fine_tune_blocks": 3, "lora_rank": 2}):
            model = _model(**embedder)
            trainer = CachedTopBlocks(model, frame_mask=0.3, seed=1)
            x = _inputs(model, waves)
            expected = model({"waveforms": batch, "lengths": lengths})
            self.assertAllClose(trainer(x), expected, atol=1e-5, rtol=0)
            # The trainable variables are the model's own tuned ones.
            self.assertEqual(
                {id(v) for v in trainer.trainable_weights},
                {id(v) for v in model.trainable_weights},
            )

    def test_frame_masking(self):
        model = _model(fine_tune_blocks=1)
        trainer = CachedTopBlocks(model, frame_mask=0.2, seed=3)
        states = np.random.RandomState(0).standard_normal((2, 400, 8)).astype("float32")
        lengths = np.array([400, 100], np.int32)
        masked = trainer._mask_frames(states, lengths).numpy()
        changed = np.any(masked != states, axis=-1)
        # About a fifth of the valid tokens, none of the padding, spans of 5.
        self.assertTrue(0.1 < changed[0].mean() < 0.3, changed[0].mean())
        self.assertFalse(changed[1, 100:].any())
        mean = states[1, :100].mean(axis=0)
        np.testing.assert_allclose(masked[1][changed[1]], np.broadcast_to(mean, masked[1][changed[1]].shape), atol=1e-5)
        again = trainer._mask_frames(states, lengths).numpy()
        self.assertFalse(np.array_equal(again, masked))  # a new draw each step

    def test_errors(self):
        with pytest.raises(ValueError, match="fine_tune_blocks > 0"):
            CachedTopBlocks(_model())
        with pytest.raises(ValueError, match="Received: frame_mask=1.0"):
            CachedTopBlocks(_model(fine_tune_blocks=1), frame_mask=1.0)
