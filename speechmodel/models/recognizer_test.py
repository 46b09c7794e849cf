import keras
import numpy as np
import pytest

from speechmodel import features as F
from speechmodel.audio import load_audio
from speechmodel.config import FeatureConfig
from speechmodel.models.recognizer import EmotionRecognizer
from tests.paths import ravdess_files


def tiny_classifier(num_classes=3):
    segments = keras.Input((None, 64, 64, 3), name="segments")
    mask = keras.Input((None,), dtype="bool", name="mask")
    x = keras.layers.TimeDistributed(keras.layers.GlobalAveragePooling2D())(segments)
    x = keras.layers.GlobalAveragePooling1D()(x, mask=mask)
    out = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model({"segments": segments, "mask": mask}, out)


def test_recognizer_takes_waveforms_and_saves_in_one_file(tmp_path):
    waves = [load_audio(f) for f in ravdess_files("Actor_09/*.wav")[:3]]
    waves[1] = waves[1][:9000]
    batch = np.zeros((3, max(map(len, waves))), np.float32)
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
    lengths = np.array([len(w) for w in waves], np.int32)
    classifier = tiny_classifier()
    model = EmotionRecognizer(
        classifier, feature_config={"normalization": "standard"},
        class_names=["angry", "happy", "sad"],
    )
    probs = model({"waveforms": batch, "lengths": lengths}).numpy()
    np.testing.assert_allclose(probs.sum(-1), 1, atol=1e-5)
    # The classifier on the pipeline's features gives the same answer.
    for i, w in enumerate(waves):
        seg = np.asarray(F.segment_features(w, config=model.features))[None]
        alone = classifier({"segments": seg, "mask": np.ones(seg.shape[:2], bool)})
        np.testing.assert_allclose(probs[i], np.asarray(alone)[0], atol=1e-5)

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, EmotionRecognizer)
    assert loaded.class_names == ["angry", "happy", "sad"]
    assert loaded.features == FeatureConfig()
    np.testing.assert_allclose(
        loaded({"waveforms": batch, "lengths": lengths}).numpy(), probs, atol=1e-6
    )


def test_class_names_must_match_outputs():
    with pytest.raises(ValueError, match="Received: class_names"):
        EmotionRecognizer(tiny_classifier(3), class_names=["a", "b"])


def test_the_shipped_model_loads_safely_and_names_its_classes():
    import speechmodel
    from tests.paths import REPO

    model = speechmodel.load_model(REPO / "speechmodel" / "presets" / "fast.keras").keras_model
    assert isinstance(model, EmotionRecognizer)  # of a speechmodel.Recognizer
    assert model.class_names == [
        "neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"
    ]
    wave = load_audio(REPO / "samples" / "03-01-05-02-01-01-23.wav")
    probs = model({"waveforms": wave[None], "lengths": np.array([len(wave)])}).numpy()
    np.testing.assert_allclose(probs.sum(), 1, atol=1e-5)


def test_a_temperature_is_stored_in_the_config_and_scales_the_probabilities(tmp_path):
    from speechmodel.calibration import scale_probabilities

    wave = load_audio(ravdess_files("Actor_09/*.wav")[0])
    inputs = {"waveforms": wave[None], "lengths": np.array([len(wave)], np.int32)}
    classifier = tiny_classifier()
    plain = EmotionRecognizer(classifier, class_names=["a", "b", "c"])
    assert plain.temperature is None and plain.get_config()["temperature"] is None
    calibrated = EmotionRecognizer(classifier, class_names=["a", "b", "c"], temperature=2.0)
    expected = scale_probabilities(plain(inputs).numpy(), 2.0)
    np.testing.assert_allclose(calibrated(inputs).numpy(), expected, atol=1e-5)
    path = tmp_path / "calibrated.keras"
    calibrated.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.temperature == 2.0
    np.testing.assert_allclose(loaded(inputs).numpy(), expected, atol=1e-5)
