"""The ONNX Runtime path against the Keras path, on the shipped models and
real RAVDESS clips (float32: equal to 1e-4), and without TensorFlow.

The conversions of the shipped models are built once into
``$SPEECHMODEL_TEST_ONNX_CACHE`` (else ``~/.cache/speechmodel-test-onnx``,
apart from a user's cache) and reused by later runs: the first run
converts both (a few minutes on 2 cores).
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from speechmodel import inference
from speechmodel.inference import Predictor
from tests.paths import ONNX_CACHE, REPO, ravdess_files

ATOL = 1e-4
# The CNN model's log-mel segments differ more: its standardised log-mel
# channel by up to 8e-4 (the converted log-mel, the top_db clip and the
# utterance's mean and variance alone match TensorFlow's; the cause, in how
# the whole front end converts, is not found yet), which moves its
# probabilities by up to 2.6e-3 (measured); runtime "auto" keeps Keras for
# it. Its test checks that bound and that every label is the same.
ATOL_BY_MODEL = {"default": ATOL, "fast": 5e-3}
CACHE = ONNX_CACHE


@pytest.fixture(scope="module", autouse=True)
def onnx_cache():
    saved = os.environ.get("SPEECHMODEL_CACHE")
    os.environ["SPEECHMODEL_CACHE"] = CACHE
    yield CACHE
    if saved is None:
        del os.environ["SPEECHMODEL_CACHE"]
    else:
        os.environ["SPEECHMODEL_CACHE"] = saved


def _clips():
    # Both sexes, several emotions and lengths; one speaker (Actor_23) for
    # the same-speaker check.
    files = ravdess_files("Actor_23/03-01-0[1-8]-02-01-01-23.wav")
    return files + ravdess_files("Actor_24/03-01-0[2-5]-01-02-01-24.wav")


@pytest.fixture(scope="module", params=["default", "fast"])
def models(request):
    keras_model = inference.load_model(request.param, runtime="keras")
    onnx_model = inference.load_model(request.param, runtime="onnx")
    return keras_model, onnx_model, ATOL_BY_MODEL[request.param]


def _predict(model, files, **options):
    report = Predictor(model, batch_size=5, **options).predict(files)
    return report


def test_the_onnx_path_equals_keras_on_real_clips(models):
    keras_model, onnx_model, atol = models
    assert onnx_model.kind == "onnx" and keras_model.kind == "keras"
    assert onnx_model.class_names == keras_model.class_names
    files = _clips()
    expected = _predict(keras_model, files, attention=True)
    got = _predict(onnx_model, files, attention=True)
    assert [g.label for g in got.results] == [e.label for e in expected.results]
    for e, g in zip(expected.results, got.results):
        np.testing.assert_allclose(g.probabilities, e.probabilities, atol=atol)
        assert [s.start for s in g.attention] == [s.start for s in e.attention]
        np.testing.assert_allclose(
            [s.weight for s in g.attention], [s.weight for s in e.attention], atol=atol
        )


def test_batches_of_different_lengths_and_windows_equal_keras(models):
    from speechmodel.audio import load_audio
    from speechmodel.inference.onnx_backend import pad

    keras_model, onnx_model, atol = models
    waves = [load_audio(f) for f in _clips()[:4]]
    waves[1] = waves[1][:3000]  # A short one: one padded segment.
    batch, lengths = pad(waves)
    expected, _ = keras_model.predict_waveforms(batch, lengths, attention=False)
    got, _ = onnx_model.predict_waveforms(batch, lengths, attention=False)
    np.testing.assert_allclose(got, expected, atol=atol)
    e_emb, e_counts = keras_model.embed_waveforms(batch, lengths)
    g_emb, g_counts = onnx_model.embed_waveforms(batch, lengths)
    np.testing.assert_array_equal(g_counts, e_counts)
    for b, n in enumerate(e_counts):
        scale = max(1.0, float(np.abs(e_emb[b, :n]).max()))
        np.testing.assert_allclose(g_emb[b, :n] / scale, e_emb[b, :n] / scale, atol=atol)


def test_same_speaker_equals_keras():
    keras_model = inference.load_model("default", runtime="keras")
    onnx_model = inference.load_model("default", runtime="onnx")
    files = ravdess_files("Actor_23/03-01-0[1-8]-02-01-01-23.wav")
    expected = _predict(keras_model, files, same_speaker=True)
    got = _predict(onnx_model, files, same_speaker=True)
    assert got.settings == expected.settings
    for e, g in zip(expected.results, got.results):
        np.testing.assert_allclose(g.probabilities, e.probabilities, atol=ATOL)


def test_a_bad_file_is_named_and_the_others_go_on(tmp_path):
    model = inference.load_model("fast", runtime="onnx")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    short = tmp_path / "short.wav"
    import soundfile as sf

    sf.write(short, np.zeros(100, np.float32), 16000)
    files = [str(empty), *_clips()[:2], str(short)]
    keras_reasons = [
        getattr(r, "reason", None)
        for r in _predict(inference.load_model("fast", runtime="keras"), files).results
    ]
    results = _predict(model, files).results
    assert [getattr(r, "reason", None) for r in results] == keras_reasons
    assert keras_reasons[0] and keras_reasons[3] and keras_reasons[1] is None


def test_the_default_runtime_is_onnx_and_never_imports_tensorflow():
    clip = _clips()[0]
    code = (
        "import sys, speechmodel\n"
        "assert 'tensorflow' not in sys.modules, 'import speechmodel'\n"
        "for name, runtime in (('default', None), ('fast', 'onnx')):\n"
        "    rec = speechmodel.load_model(name, runtime=runtime)\n"
        f"    print(rec.classify({clip!r}).label, rec.model.kind)\n"
        f"    assert rec.embed({clip!r}).ndim >= 1\n"
        "bad = [m for m in ('tensorflow', 'keras', 'librosa', 'matplotlib') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO), SPEECHMODEL_CACHE=CACHE)
    env.pop("SPEECHMODEL_RUNTIME", None)  # The default: auto, which must pick ONNX for "default".
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count(" onnx") == 2


def test_runtime_and_precision_are_checked():
    from speechmodel.errors import ParameterError

    with pytest.raises(ParameterError, match="runtime"):
        inference.load_model("fast", runtime="tensorrt")
    with pytest.raises(ParameterError, match="precision"):
        inference.load_model("fast", runtime="keras", precision="int8")
    with pytest.raises(ParameterError, match="precision"):
        inference.load_model("fast", precision="int4")


def test_auto_keeps_keras_for_the_cnn_model():
    assert inference.load_model("fast", runtime="auto").kind == "keras"
    assert inference.load_model("default", runtime="auto").kind == "onnx"
