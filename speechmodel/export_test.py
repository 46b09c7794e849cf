import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from speechmodel import export as E
from speechmodel.audio import load_audio
from speechmodel.models.recognizer import EmotionRecognizer
from speechmodel.models.speech_model import SpeechModel
from tests.paths import ravdess_files

CLASSES = ["neutral", "happy", "sad", "angry"]
ATOL = 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny DCNN-BLSTMwA recognizer saved, then exported by the CLI."""
    keras.utils.set_random_seed(3)
    recognizer = EmotionRecognizer(
        SpeechModel(4, backbone="alexnet_gap", lstm_units=8, attention_units=8, dense_units=[8]),
        class_names=CLASSES,
    )
    root = tmp_path_factory.mktemp("export")
    recognizer.save(root / "model.keras")
    status = E.main([str(root / "model.keras"), "--saved-model", str(root / "saved"),
                     "--tflite", str(root / "model.tflite")])
    assert status == 0
    return recognizer, root


@pytest.fixture(scope="module")
def batch():
    """Three real utterances of different lengths, zero-padded."""
    waves = [load_audio(f) for f in ravdess_files("Actor_15/*.wav")[:3]]
    waves[1] = waves[1][:20000]
    lengths = np.array([len(w) for w in waves], np.int32)
    padded = np.zeros((3, lengths.max()), np.float32)
    for i, w in enumerate(waves):
        padded[i, : len(w)] = w
    return padded, lengths


def test_saved_model_signature_matches_the_keras_model(exported, batch):
    recognizer, root = exported
    waveforms, lengths = batch
    expected = recognizer({"waveforms": waveforms, "lengths": lengths}).numpy()
    loaded = tf.saved_model.load(str(root / "saved"))
    serve = loaded.signatures["serving_default"]
    assert set(serve.structured_input_signature[1]) == {"waveforms", "lengths"}
    out = serve(waveforms=tf.constant(waveforms), lengths=tf.constant(lengths))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=ATOL)
    assert [c.decode() for c in out["class_names"].numpy()] == CLASSES
    # One utterance alone gives the same as in the padded batch.
    alone = serve(waveforms=tf.constant(waveforms[1:2, : lengths[1]]), lengths=tf.constant(lengths[1:2]))
    np.testing.assert_allclose(alone["probabilities"].numpy()[0], expected[1], atol=ATOL)
    extra = root / "saved" / "assets.extra"
    assert (extra / "class_names.txt").read_text().splitlines() == CLASSES
    assert '"sample_rate": 16000' in (extra / "feature_config.json").read_text()


def test_tflite_matches_the_keras_model(exported, batch):
    recognizer, root = exported
    waveforms, lengths = batch
    expected = recognizer({"waveforms": waveforms, "lengths": lengths}).numpy()
    interpreter = tf.lite.Interpreter(model_path=str(root / "model.tflite"))
    runner = interpreter.get_signature_runner("serving_default")
    out = runner(waveforms=waveforms, lengths=lengths)
    np.testing.assert_allclose(out["probabilities"], expected, atol=ATOL)
    assert [c.decode() for c in out["class_names"]] == CLASSES


def test_exports_refuse_to_overwrite_and_bad_models(exported, tmp_path, capsys):
    _, root = exported
    assert E.main([str(root / "model.keras"), "--saved-model", str(root / "saved")]) == 2
    assert "already exists" in capsys.readouterr().err
    (tmp_path / "junk.keras").write_bytes(b"not a model")
    assert E.main([str(tmp_path / "junk.keras"), "--saved-model", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "junk.keras" in err and "not a model of this project" in err
    assert not os.path.exists(tmp_path / "out")
    with pytest.raises(SystemExit):
        E.main([str(root / "model.keras")])  # Neither output: argparse usage error (2).


def test_overwrite_replaces_the_export_whole_and_a_failure_keeps_the_old(exported, tmp_path, monkeypatch):
    import stat

    from speechmodel import fileio

    recognizer, root = exported
    # The TFLite file has the mode of every other file (not mkstemp's 0600).
    assert stat.S_IMODE(os.stat(root / "model.tflite").st_mode) == fileio.default_mode()
    target = tmp_path / "out" / "saved"
    target.mkdir(parents=True)
    (target / "old.txt").write_text("the previous export\n")

    def fails(self, *args, **kwargs):
        raise RuntimeError("killed while writing")

    with monkeypatch.context() as m:
        # ExportArchive() makes an instance of the backend's own class.
        m.setattr(type(keras.export.ExportArchive()), "write_out", fails)
        with pytest.raises(RuntimeError, match="killed while writing"):
            E.export_saved_model(recognizer, target, overwrite=True)
    assert os.listdir(target) == ["old.txt"]  # untouched
    assert os.listdir(tmp_path / "out") == ["saved"]  # no staging left

    info = E.export_saved_model(recognizer, target, overwrite=True)
    assert info["path"] == str(target)
    assert not (target / "old.txt").exists()
    assert (target / "saved_model.pb").is_file()
    assert (target / "assets.extra" / "class_names.txt").read_text().splitlines() == CLASSES
    assert os.listdir(tmp_path / "out") == ["saved"]
