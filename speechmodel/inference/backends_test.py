import numpy as np
import pytest

from speechmodel import features as F
from speechmodel.audio import load_audio
from speechmodel.inference import backends
from speechmodel.models.recognizer import EmotionRecognizer
from speechmodel.tests.inference_fixtures import ATOL, CLASSES, reference, tiny_plain_classifier
from tests.paths import ravdess_files


def test_loaded_model_describes_itself(model, model_path):
    assert isinstance(model, backends.KerasInferenceModel)
    assert model.kind == "keras" and model.class_names == CLASSES
    assert model.has_attention and model.sample_rate == 16000 and not model.takes_waveforms
    assert model.describe() == {"path": model_path, "kind": "keras", "class_names": CLASSES}


def test_predict_waveforms_matches_the_recognizer_on_each_padded_window(model):
    waves = [load_audio(f)[: n * 16000] for f, n in zip(ravdess_files("Actor_15/*.wav")[:2], (3, 2))]
    lengths = np.array([len(w) for w in waves], np.int32)
    batch = np.zeros((2, lengths.max()), np.float32)
    for b, w in enumerate(waves):
        batch[b, : len(w)] = w
    probs, attention = model.predict_waveforms(batch, lengths, attention=False)
    assert attention is None and probs.shape == (2, 3)
    for b, w in enumerate(waves):
        np.testing.assert_allclose(probs[b], reference(model.recognizer, w), atol=ATOL)
    probs_a, attention = model.predict_waveforms(batch, lengths, attention=True)
    np.testing.assert_allclose(probs_a, probs, atol=ATOL)
    # One weight per segment of each window (as the recognizer cuts it
    # alone), summing to 1.
    segments = [np.asarray(F.segment_features(w, config=model.config)).shape[0] for w in waves]
    assert [len(a) for a in attention] == segments and segments[0] > segments[1]
    assert [float(np.sum(a)) for a in attention] == [pytest.approx(1.0, abs=1e-5)] * 2


def test_segment_times_cover_the_utterance(model):
    spans = model.segment_times(4, 1.5)
    assert spans[0] == (0.0, pytest.approx(0.64))
    assert [s for s, _ in spans] == pytest.approx([0.0, 0.32, 0.64, 0.96])
    assert spans[-1][1] == pytest.approx(1.5)  # The last one ends at the end.


def test_predict_files_reports_the_files_that_do_not_load(model, tmp_path):
    good = ravdess_files("Actor_16/*.wav")[:2]
    (tmp_path / "bad.wav").write_bytes(b"RIFF")
    failed = []
    out = list(model.predict_files([good[0], str(tmp_path / "bad.wav"), good[1]], batch_size=2,
                                   attention=False, on_failure=lambda i, reason: failed.append(i)))
    assert sorted(i for i, *_ in out) == [0, 2] and failed == [1]
    for i, probs, weights, n in out:
        assert weights is None and n > 0
        np.testing.assert_allclose(probs, reference(model.recognizer, load_audio([good[0], None, good[1]][i])),
                                   atol=ATOL)


def test_a_plain_classifier_has_no_attention():
    plain = backends.KerasInferenceModel(EmotionRecognizer(tiny_plain_classifier(), class_names=CLASSES))
    assert not plain.has_attention and plain.path is None and plain.kind == "keras"
