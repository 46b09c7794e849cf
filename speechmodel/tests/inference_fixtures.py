"""Shared helpers of the ``speechmodel.inference`` tests (not a test
module): tiny models, the reference call of a recognizer, a long recording
made of real speech. The fixtures that use them are in
``speechmodel/inference/conftest.py``."""

import keras
import numpy as np
import soundfile as sf

from speechmodel.audio import load_audio
from speechmodel.models.speech_model import SpeechModel
from tests.paths import ravdess_files

CLASSES = ["angry", "happy", "sad"]
# Tolerance of the batched pipeline against the recognizer called on one
# waveform (float32 features computed in a different batch layout).
ATOL = 2e-5


def tiny_speech_model(num_classes=3):
    return SpeechModel(
        num_classes, backbone="alexnet_gap", lstm_units=8, attention_units=8,
        dense_units=[8], dropout=0.0,
    )


def tiny_plain_classifier(num_classes=3):
    """A classifier without attention (not a SpeechModel)."""
    segments = keras.Input((None, 64, 64, 3), name="segments")
    mask = keras.Input((None,), dtype="bool", name="mask")
    x = keras.layers.TimeDistributed(keras.layers.GlobalAveragePooling2D())(segments)
    x = keras.layers.GlobalAveragePooling1D()(x, mask=mask)
    out = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model({"segments": segments, "mask": mask}, out)


def tiny_speaker_model(path, classes=CLASSES, seed=5):
    """A random-weight speaker-normalised model (a tiny Whisper-shaped
    front end) saved at ``path``."""
    from speechmodel.models.audio_speech_model import AudioSpeechModel
    from speechmodel.models.frontends import build_front_end
    from speechmodel.models.recognizer import EmotionRecognizer

    keras.utils.set_random_seed(seed)
    embedder = build_front_end(
        "whisper_base", weights="random", num_layers=2, hidden_dim=8, num_heads=2, intermediate_dim=16
    )
    classifier = AudioSpeechModel(len(classes), embedder=embedder, speaker_normalization=True,
                                  lstm_units=4, attention_units=4, dense_units=[4])
    EmotionRecognizer(classifier, class_names=list(classes)).save(path)
    return path


def reference(recognizer, waveform):
    """The recognizer on one waveform, as a saved model is called."""
    w = np.asarray(waveform, np.float32)[None]
    return recognizer({"waveforms": w, "lengths": np.array([w.shape[1]], np.int32)}).numpy()[0]


def write_long_file(path, seconds=180):
    """``seconds`` of RAVDESS speech (clips with 0.5 s pauses), 16-bit WAV."""
    parts, total = [], 0
    for f in ravdess_files("Actor_05/*.wav"):
        y = load_audio(f)
        parts += [y, np.zeros(8000, np.float32)]
        total += len(y) + 8000
        if total >= seconds * 16000:
            break
    y = np.concatenate(parts)[: seconds * 16000]
    sf.write(path, y, 16000, subtype="PCM_16")
    return str(path)
