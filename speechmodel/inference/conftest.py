"""Fixtures shared by the tests of ``speechmodel.inference``'s modules: a
tiny saved model (and it loaded) and a 3-minute recording of real speech,
made once per test session."""

import keras
import pytest

from speechmodel import inference as I
from speechmodel.models.recognizer import EmotionRecognizer
from speechmodel.tests.inference_fixtures import CLASSES, tiny_speech_model, write_long_file


@pytest.fixture(scope="session")
def model_path(tmp_path_factory):
    keras.utils.set_random_seed(7)
    recognizer = EmotionRecognizer(tiny_speech_model(), class_names=CLASSES)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    recognizer.save(path)
    return str(path)


@pytest.fixture(scope="session")
def model(model_path):
    return I.load_model(model_path)


@pytest.fixture(scope="session")
def long_file(tmp_path_factory):
    """3 minutes of RAVDESS speech (clips with 0.5 s pauses), 16-bit WAV."""
    return write_long_file(tmp_path_factory.mktemp("long") / "long.wav")
