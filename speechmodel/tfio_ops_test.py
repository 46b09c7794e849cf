import numpy as np
import soundfile as sf
import tensorflow as tf

from speechmodel import tfio_ops


def test_tensorflow_io_flac_op_runs_and_matches_soundfile(tmp_path):
    # Calls the compiled op: an import alone passes even when the ops are
    # broken (tensorflow-io 0.37.1 runs only with TensorFlow 2.16.x).
    y = np.random.default_rng(0).uniform(-0.9, 0.9, (4000, 2))
    for subtype in ("PCM_16", "PCM_24"):
        path = tmp_path / f"x_{subtype}.flac"
        sf.write(path, y, 16000, format="FLAC", subtype=subtype)
        decoded = tfio_ops.decode_flac(tf.io.read_file(str(path)), subtype=subtype)
        expected, _ = sf.read(path, dtype="float32")
        np.testing.assert_array_equal(decoded.numpy(), expected)


def test_rejects_unknown_subtype():
    try:
        tfio_ops.decode_flac(tf.constant(b""), subtype="FLOAT")
    except ValueError as exc:
        assert "Received: subtype=FLOAT" in str(exc)
    else:
        raise AssertionError("expected ValueError")
