"""The one-line API (speechmodel.load_model().classify / embed) on the
shipped "fast" model and real RAVDESS clips."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import speechmodel
from speechmodel import api
from speechmodel import features as F
from speechmodel import inference
from speechmodel.audio import load_audio
from tests.paths import REPO, ravdess_files

# Actor 23 is outside the fast model's training actors (1-22).
CLIPS = ravdess_files("Actor_23/*.wav")[:3]


@pytest.fixture(scope="module")
def rec():
    return speechmodel.load_model("fast")


def _probs(result):
    return np.array(list(result.probabilities.values()))


def test_classify_a_path_matches_infer_py_json(rec, tmp_path):
    p = rec.classify(CLIPS[0])
    assert isinstance(p, speechmodel.Classification)
    assert p.source == CLIPS[0]
    assert list(p.probabilities) == rec.class_names
    assert p.label == max(p.probabilities, key=p.probabilities.get)
    assert p.confidence == pytest.approx(max(p.probabilities.values()))
    np.testing.assert_allclose(sum(p.probabilities.values()), 1, atol=1e-5)
    # The command line on the same file, from another directory.
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, str(REPO / "infer.py"), "--model", "fast", "--format", "json", CLIPS[0]],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    cli = json.loads(out.stdout)["results"][0]
    assert cli["label"] == p.label
    np.testing.assert_allclose(
        [cli["probabilities"][c] for c in rec.class_names], _probs(p), atol=1e-5
    )
    assert p.to_dict()["probabilities"] == cli["probabilities"]


def test_a_list_gives_one_result_per_input_in_order_with_failures_in_place(rec, tmp_path):
    bad = tmp_path / "not_audio.wav"
    bad.write_bytes(b"this is not audio at all")
    inputs = [CLIPS[1], str(tmp_path / "missing.wav"), CLIPS[0], bad]
    results = rec.classify(inputs)
    assert len(results) == 4
    assert [type(r).__name__ for r in results] == ["Classification", "Failure", "Classification", "Failure"]
    assert results[0].source == CLIPS[1] and results[2].source == CLIPS[0]
    assert isinstance(results[1], speechmodel.Failure)
    assert results[1].file == str(tmp_path / "missing.wav") and "not found" in results[1].reason
    assert results[3].file == str(bad) and "not an audio file" in results[3].reason
    # The same numbers as one at a time, and a tuple works as a list.
    np.testing.assert_allclose(_probs(results[2]), _probs(rec.classify(CLIPS[0])), atol=1e-6)
    assert [r.source for r in rec.classify((CLIPS[0],))] == [CLIPS[0]]
    assert rec.classify([]) == []


def test_a_string_is_one_path_and_a_bad_file_raises_a_typed_error(rec, tmp_path):
    with pytest.raises(speechmodel.AudioError) as caught:
        rec.classify(str(tmp_path / "nope.wav"))
    assert caught.value.kind == "missing"
    assert caught.value.path == str(tmp_path / "nope.wav")
    assert str(tmp_path / "nope.wav") in str(caught.value)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(speechmodel.AudioError, match="empty") as caught:
        rec.classify(empty)  # os.PathLike: one path too.
    assert caught.value.kind == "empty"
    with pytest.raises(speechmodel.AudioError) as caught:
        rec.classify(b"RIFF garbage, not a wav")
    assert caught.value.path == "<bytes>"
    with pytest.raises(speechmodel.ParameterError, match="Received: inputs=<int>"):
        rec.classify(42)


def test_numpy_arrays_at_any_rate_mono_or_channels(rec, tmp_path):
    import soxr

    wave = load_audio(CLIPS[0])
    reference = _probs(rec.classify(CLIPS[0]))
    # The file's own samples at its rate: the same result as the file.
    same = rec.classify(wave, sample_rate=16000)
    assert same.source == "<array>"
    np.testing.assert_allclose(_probs(same), reference, atol=1e-5)
    # 44.1 kHz stereo, channels last or first: resampled and mixed down.
    hi = soxr.resample(wave, 16000, 44100, quality="HQ")
    stereo = np.stack([hi, hi], axis=1)
    a = rec.classify(stereo, sample_rate=44100)
    b = rec.classify(stereo.T, sample_rate=44100)
    np.testing.assert_allclose(_probs(a), _probs(b), atol=1e-6)
    # Exactly as the same samples in a 44.1 kHz stereo file.
    sf.write(tmp_path / "stereo.wav", stereo, 44100, subtype="FLOAT")
    np.testing.assert_allclose(_probs(a), _probs(rec.classify(tmp_path / "stereo.wav")), atol=1e-6)
    assert a.label == rec.classify(CLIPS[0]).label
    # int16 samples.
    pcm = np.round(wave * 32767).astype(np.int16)
    np.testing.assert_allclose(_probs(rec.classify(pcm, sample_rate=16000)), reference, atol=0.01)
    with pytest.raises(ValueError, match="sample_rate"):
        rec.classify(wave)
    with pytest.raises(speechmodel.AudioError, match="NaN"):
        rec.classify(np.full(16000, np.nan, np.float32), sample_rate=16000)


def test_bytes_and_file_objects(rec, tmp_path):
    reference = _probs(rec.classify(CLIPS[0]))
    flac = tmp_path / "clip.flac"
    sf.write(flac, load_audio(CLIPS[0]), 16000, format="FLAC")
    with open(flac, "rb") as f:
        p = rec.classify(f)
    assert p.source == str(flac)
    np.testing.assert_allclose(_probs(p), reference, atol=1e-4)
    data = open(CLIPS[0], "rb").read()
    q = rec.classify(data)
    assert q.source == "<bytes>"
    np.testing.assert_allclose(_probs(q), reference, atol=1e-6)
    np.testing.assert_allclose(_probs(rec.classify(io.BytesIO(data))), reference, atol=1e-6)
    mixed = rec.classify([io.BytesIO(data), load_audio(CLIPS[0]), b"junk"], sample_rate=16000)
    assert [type(r).__name__ for r in mixed] == ["Classification", "Classification", "Failure"]
    assert mixed[2].file == "<bytes>"
    with open(CLIPS[0]) as text:  # text mode is refused with a hint
        with pytest.raises(speechmodel.ParameterError, match="binary mode"):
            rec.classify(text)


def test_a_timeline_for_long_audio_as_the_predictor_gives_it(rec, tmp_path):
    long_file = tmp_path / "meeting.flac"
    wave = np.concatenate([load_audio(c) for c in CLIPS])  # ~11 s
    sf.write(long_file, wave, 16000, format="FLAC")
    t = rec.classify(str(long_file), window=4, hop=2)
    assert t.timeline is not None and len(t.timeline) >= 4
    assert t.timeline[0].start == 0 and t.timeline[-1].end == pytest.approx(len(wave) / 16000, abs=1e-3)
    assert all(w.end - w.start <= 4 + 1e-6 for w in t.timeline)
    assert set(t.timeline[0].probabilities) == set(rec.class_names)
    # The same windows and overall result as infer.py's Predictor.
    expected = inference.Predictor(
        rec.model, window=4, hop=2, max_utterance=4
    ).predict([str(long_file)]).results[0]
    np.testing.assert_allclose(_probs(t), expected.probabilities, atol=1e-6)
    assert [(w.start, w.end) for w in t.timeline] == [(w.start, w.end) for w in expected.timeline]
    # Without window, an 11 s file is a clip (infer.py's 20 s default).
    assert rec.classify(str(long_file)).timeline is None


def test_embed_utterance_and_segments(rec):
    e = rec.embed(CLIPS[0])
    assert isinstance(e, np.ndarray) and e.ndim == 1
    utterance, segments = rec.embed(CLIPS[0], segments=True)
    wave = load_audio(CLIPS[0])
    n = F.segment_features(wave, config=rec.model.config).shape[0]
    assert segments.shape == (n, e.shape[0])
    np.testing.assert_allclose(utterance, segments.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(utterance, e, rtol=1e-5, atol=1e-6)
    # The segment embeddings are what the model's encoder gives.
    seg = F.segment_features(wave, config=rec.model.config)[None]
    direct = rec.keras_model.classifier.segment_encoder(
        {"segments": seg, "mask": np.ones(seg.shape[:2], bool)}
    )
    np.testing.assert_allclose(segments, np.asarray(direct)[0], rtol=1e-4, atol=1e-5)
    # Other inputs, and lists with failures in place.
    np.testing.assert_allclose(rec.embed(wave, sample_rate=16000), e, rtol=1e-5, atol=1e-6)
    out = rec.embed([CLIPS[1], "/no/such/file.wav"])
    assert out[0].shape == e.shape and isinstance(out[1], speechmodel.Failure)
    with pytest.raises(speechmodel.AudioError):
        rec.embed("/no/such/file.wav")


def test_embed_on_a_pretrained_front_end():
    from speechmodel.models.audio_speech_model import AudioSpeechModel
    from speechmodel.models.frontends import build_front_end
    from speechmodel.models.recognizer import EmotionRecognizer

    embedder = build_front_end("whisper_base", weights="random", num_layers=2, hidden_dim=8,
                               num_heads=2, intermediate_dim=16)
    model = AudioSpeechModel(3, embedder=embedder, lstm_units=4, attention_units=4, dense_units=[4])
    rec = api.Recognizer(inference.KerasInferenceModel(EmotionRecognizer(model, class_names=["a", "b", "c"])))
    wave = load_audio(CLIPS[0])
    utterance, segments = rec.embed(wave, sample_rate=16000, segments=True)
    n = F.segment_features(wave).shape[0]
    assert segments.shape[0] == n and segments.shape[1:] == utterance.shape
    assert utterance.shape == (embedder.num_blocks, embedder.embedding_dim)
    expected, _ = model.embedder(wave[None], np.array([len(wave)], "int32"))
    np.testing.assert_allclose(segments, np.asarray(expected)[0, :n], rtol=1e-4, atol=1e-5)
    assert rec.classify(wave, sample_rate=16000).label in ("a", "b", "c")


def test_the_keras_model_is_rec_keras_model_and_nothing_is_forwarded(rec):
    from speechmodel.inference.loading import load_keras_model
    from speechmodel.models.recognizer import EmotionRecognizer

    assert isinstance(rec, speechmodel.Recognizer)
    assert isinstance(rec.keras_model, EmotionRecognizer)
    assert rec.class_names == rec.keras_model.class_names
    wave = load_audio(CLIPS[0])
    probs = np.asarray(rec.keras_model({"waveforms": wave[None], "lengths": np.array([len(wave)])}))
    np.testing.assert_allclose(probs[0], _probs(rec.classify(CLIPS[0])), atol=1e-4)
    # The Keras model's attributes are not the Recognizer's: one way to each.
    for name in ("classifier", "no_such_attribute", "summary"):
        with pytest.raises(AttributeError):
            getattr(rec, name)
    with pytest.raises(TypeError):
        rec({"waveforms": wave[None], "lengths": np.array([len(wave)])})
    assert not hasattr(api.Recognizer, "load") and not hasattr(api.Recognizer, "from_preset")
    bare = load_keras_model("fast")
    assert isinstance(bare, EmotionRecognizer) and bare.class_names == rec.class_names
    assert speechmodel.load_model is api.load_model


def test_load_model_names_the_problem_and_the_closest_shipped_model():
    with pytest.raises(speechmodel.ModelError, match="model file not found"):
        speechmodel.load_model("/no/such/model.keras")
    with pytest.raises(speechmodel.ModelError) as caught:
        speechmodel.load_model("defualt")
    assert str(caught.value) == (
        "defualt: no such model file, and no shipped model of that name; did you mean 'default'? "
        "shipped models: default, fast"
    )
    with pytest.raises(speechmodel.ModelError, match="nope: .*; shipped models: default, fast$"):
        speechmodel.load_model("nope")
    with pytest.raises(speechmodel.ParameterError, match="Received: runtime='gpu'"):
        speechmodel.load_model("fast", runtime="gpu")


def test_load_audio_takes_bytes_and_file_objects_and_features_return_numpy():
    wave = load_audio(CLIPS[0])
    data = open(CLIPS[0], "rb").read()
    np.testing.assert_array_equal(speechmodel.load_audio(data), wave)
    with open(CLIPS[0], "rb") as f:
        np.testing.assert_array_equal(speechmodel.load_audio(f), wave)
    with pytest.raises(speechmodel.AudioError) as caught:
        speechmodel.load_audio(io.BytesIO(b""))
    assert caught.value.kind == "empty" and caught.value.path == "<file object>"
    for out in (F.log_mel(wave), F.delta(np.asarray(F.log_mel(wave))), F.segment_features(wave),
                *F.batch_segment_features(wave[None], [len(wave)]), F.num_segments(500)):
        assert isinstance(out, (np.ndarray, np.generic)), type(out)
    import tensorflow as tf

    assert tf.is_tensor(F.log_mel(tf.constant(wave)))  # tensors in, tensors out


@pytest.mark.skipif(
    not os.path.exists(REPO / "speechmodel" / "presets" / "default.keras"),
    reason="speechmodel/presets/default.keras (the Whisper-based default) is not in this checkout yet",
)
def test_the_default_model():
    rec = speechmodel.load_model()
    p = rec.classify(CLIPS[0])
    assert p.label in rec.class_names
    utterance, segments = rec.embed(CLIPS[0], segments=True)
    assert segments.shape[1:] == utterance.shape


def test_classify_min_confidence_labels_uncertain_and_keeps_the_probabilities(rec):
    plain = rec.classify(CLIPS[1])
    unsure = rec.classify(CLIPS[1], min_confidence=min(1.0, plain.confidence + 1e-3))
    assert unsure.label == "uncertain" and unsure.probabilities == plain.probabilities
    assert unsure.prediction.emotion == plain.label
    assert unsure.to_dict()["label"] == "uncertain"
    silent = rec.classify(np.zeros(48000, np.float32), sample_rate=16000)
    assert silent.label == "no speech"
    with pytest.raises(ValueError, match="min_confidence"):
        rec.classify(CLIPS[1], min_confidence=-0.1)


@pytest.mark.parametrize("call, quoted", [
    (lambda rec, wave: rec.classify(wave), "sample_rate=None"),
    (lambda rec, wave: rec.classify(wave, sample_rate=0), "sample_rate=0"),
    (lambda rec, wave: rec.classify(wave, sample_rate=16000.5), "sample_rate=16000.5"),
    (lambda rec, wave: rec.classify(wave[None, None], sample_rate=16000), "shape=(1, 1, "),
    (lambda rec, wave: rec.classify(wave.astype(np.complex64), sample_rate=16000), "dtype=complex64"),
    (lambda rec, wave: rec.classify(CLIPS[0], window=2, hop=3), "hop=3, window=2"),
    (lambda rec, wave: rec.classify(CLIPS[0], window=0), "window=0"),
    (lambda rec, wave: rec.classify(CLIPS[0], min_confidence=2), "min_confidence=2"),
    (lambda rec, wave: rec.classify(42), "inputs=<int>"),
    (lambda rec, wave: rec.embed(wave), "sample_rate=None"),
    (lambda rec, wave: rec.embed(wave[None, None], sample_rate=16000), "shape=(1, 1, "),
    (lambda rec, wave: speechmodel.load_audio(CLIPS[0], sample_rate=0), "sample_rate=0"),
    (lambda rec, wave: speechmodel.load_audio(42), "source=<int>"),
    (lambda rec, wave: api.Recognizer("fast"), "model=str"),
])
def test_bad_arguments_raise_a_parameter_error_quoting_the_value(rec, call, quoted):
    wave = load_audio(CLIPS[0])
    with pytest.raises(speechmodel.ParameterError) as caught:
        call(rec, wave)
    assert isinstance(caught.value, speechmodel.Error) and isinstance(caught.value, ValueError)
    assert f"Received: " in str(caught.value) and quoted in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_library_is_quiet_unless_asked():
    """As a user's script: load a model on the Keras runtime and classify
    two clips. Nothing of TensorFlow's C++ logging (oneDNN notes, the
    OUT_OF_RANGE after every prediction) reaches stderr; a level the user
    set is kept."""
    clips = [str(p) for p in ravdess_files("Actor_02/*.wav")[:2]]
    code = (
        "import os, sys, speechmodel\n"
        "rec = speechmodel.load_model('fast', runtime='keras')\n"
        "print([r.label for r in rec.classify(sys.argv[1:])], os.environ['TF_CPP_MIN_LOG_LEVEL'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run([sys.executable, "-c", code, *clips], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith(" 3")
    for noise in ("tensorflow/core", "oneDNN", "OUT_OF_RANGE", "rendezvous"):
        assert noise not in out.stderr, out.stderr
    out = subprocess.run([sys.executable, "-c", "import os, speechmodel; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"],
                         cwd=REPO, env=dict(env, TF_CPP_MIN_LOG_LEVEL="0"), capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "0"
