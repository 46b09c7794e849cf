import keras
import numpy as np
import pytest

from speechmodel.models.audio_speech_model import AudioSpeechModel
from speechmodel.models.frontends import FRONT_ENDS, build_front_end, get_front_end
from speechmodel.models.recognizer import EmotionRecognizer
from speechmodel.models.registry import build_model
from speechmodel.tests.test_case import TestCase

TINY = dict(num_layers=2, hidden_dim=8, num_heads=2, intermediate_dim=16)
HEAD = dict(lstm_units=4, attention_units=4, dense_units=[4])


def _embedder():
    return build_front_end("whisper_base", weights="random", **TINY)


def _inputs():
    rng = np.random.default_rng(0)
    waveforms = rng.normal(scale=0.1, size=(3, 16000)).astype("float32")
    lengths = np.array([16000, 9000, 3000], "int32")
    waveforms[1, 9000:] = 0
    waveforms[2, 3000:] = 0
    return {"waveforms": waveforms, "lengths": lengths}


class AudioSpeechModelTest(TestCase):
    def test_probabilities_padding_and_training(self):
        model = AudioSpeechModel(3, embedder=_embedder(), **HEAD)
        x = _inputs()
        probs = np.asarray(model(x))
        self.assertEqual(probs.shape, (3, 3))
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
        # Each utterance is judged as if alone: more padding changes nothing.
        alone = np.asarray(model({"waveforms": x["waveforms"][2:, :3000], "lengths": x["lengths"][2:]}))
        self.assertAllClose(alone, probs[2:], atol=1e-5)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        history = model.fit(x, np.array([0, 1, 2]), epochs=1, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][0]))

    def test_attention_sums_to_one_over_valid_segments(self):
        model = AudioSpeechModel(3, embedder=_embedder(), **HEAD)
        out = model.attention_model()(_inputs())
        weights = np.asarray(out["attention"])
        np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
        self.assertEqual(float(weights[2, 1:].sum()), 0.0)  # 3000 samples: 1 segment

    def test_saving_inside_the_recognizer(self):
        model = AudioSpeechModel(3, embedder=_embedder(), **HEAD)
        recognizer = EmotionRecognizer(model, class_names=["a", "b", "c"])
        self.assertIsNone(recognizer.frontend)
        restored = self.run_model_saving_test(recognizer, None, _inputs(), atol=1e-5)
        self.assertEqual(restored.class_names, ["a", "b", "c"])

    def test_build_model_selects_the_front_end_by_name(self):
        model = build_model("speechmodel", num_classes=2, backbone="whisper_base",
                            weights="random", feature_config={"segment_hop": 16}, **HEAD)
        self.assertIsInstance(model, AudioSpeechModel)
        self.assertEqual(model.embedder.feature_config["segment_hop"], 16)
        self.assertEqual(model.embedder.num_blocks, 6)
        with pytest.raises(ValueError, match="Received"):
            build_model("speechmodel", num_classes=2, backbone="whisper_base",
                        weights="random", input_size=227)
        with pytest.raises(ValueError, match="weights='imagenet'"):
            build_model("speechmodel", num_classes=2, backbone="whisper_base", weights="imagenet")

    def test_registry(self):
        entry = get_front_end("whisper_base")
        self.assertEqual((entry.num_blocks, entry.embedding_dim), (6, 512))
        self.assertIn("whisper_base", FRONT_ENDS)
        with pytest.raises(ValueError, match="Received: backbone='whisper_huge'"):
            get_front_end("whisper_huge")
        with pytest.raises(ValueError, match="front end"):
            AudioSpeechModel(2, embedder=keras.layers.Dense(3))


class SpeakerNormalizationTest(TestCase):
    def test_the_head_sees_standardised_embeddings_and_the_statistics_are_saved(self):
        from speechmodel.layers.speaker_normalization import speaker_statistics, standardize

        keras.utils.set_random_seed(1)
        model = AudioSpeechModel(3, embedder=_embedder(), speaker_normalization=True, **HEAD)
        x = _inputs()
        embeddings, mask = model.embedder(x["waveforms"], x["lengths"])
        raw = {"mask": np.asarray(mask)}
        counts = raw["mask"].sum(1)
        embeddings = np.asarray(embeddings)
        mean, variance = speaker_statistics([embeddings[b, : counts[b]] for b in range(3)])
        model.speaker_normalization.set_statistics(mean, variance)
        expected = model.sequence_head(
            {"embeddings": standardize(embeddings, mean, variance), "mask": np.asarray(raw["mask"])}
        )
        self.assertAllClose(model(x), expected, atol=1e-5)
        self.assertTrue(model.get_config()["speaker_normalization"])
        recognizer = EmotionRecognizer(model, class_names=["a", "b", "c"])
        restored = self.run_model_saving_test(recognizer, None, x, atol=1e-5)
        stats = restored.classifier.speaker_normalization.statistics()
        self.assertAllClose(stats[0], mean, atol=1e-6)
        self.assertAllClose(stats[1], variance, rtol=1e-6)

    def test_without_it_there_is_no_layer_and_old_configs_load(self):
        model = AudioSpeechModel(2, embedder=_embedder(), **HEAD)
        self.assertIsNone(model.speaker_normalization)
        config = model.get_config()
        self.assertFalse(config.pop("speaker_normalization"))  # as before this key existed
        self.assertIsNone(AudioSpeechModel.from_config(config).speaker_normalization)
        built = build_model("speechmodel", num_classes=2, backbone="whisper_base", weights="random",
                            speaker_normalization=True, **HEAD)
        self.assertIsNotNone(built.speaker_normalization)
