"""The project's only use of tensorflow-io: graph-mode FLAC decoding.

tensorflow-io 0.37.1 (its last release) builds its compiled ops against
TensorFlow 2.16.x only: with another TensorFlow, ``import tensorflow_io``
works and the first op call fails. Everything tensorflow-io is therefore
imported here, on first use, and checked once with a real op call, so that a
broken install fails with one clear message instead of deep inside a
``tf.data`` iterator.
"""

import functools

import tensorflow as tf
from speechmodel.errors import Error

_SCALE = {"PCM_16": (tf.int16, 1.0 / 32768.0), "PCM_24": (tf.int32, 1.0 / 2**31)}


class TensorflowIOError(Error, RuntimeError):
    """tensorflow-io is missing or its ops do not run with this TensorFlow."""


@functools.lru_cache(maxsize=1)
def _tfio():
    try:
        import tensorflow_io as tfio
    except ImportError as exc:
        raise TensorflowIOError(
            "tensorflow-io is not installed: pip install -r requirements.txt "
            f"(tensorflow-io==0.37.1 with tensorflow 2.16.x). ({exc})"
        ) from None
    try:
        tfio.audio.decode_flac(tf.constant(b"not flac"), dtype=tf.int16)
    except tf.errors.InvalidArgumentError:
        pass  # The op ran and rejected the bytes: the ops work.
    except Exception as exc:  # NotFoundError / undefined symbol, ...
        raise TensorflowIOError(
            f"tensorflow-io {tfio.__version__} ops do not run with tensorflow "
            f"{tf.__version__} (tensorflow-io 0.37.1 needs tensorflow 2.16.x): "
            f"{type(exc).__name__}: {exc}"
        ) from None
    return tfio


def decode_flac(contents, *, subtype="PCM_16"):
    """Decodes FLAC bytes to float32 (samples, channels) in [-1, 1).

    Args:
        contents: scalar string tensor, the file's bytes.
        subtype: ``"PCM_16"`` or ``"PCM_24"`` (soundfile's names).

    Returns:
        float32 tensor, the same values ``soundfile.read(dtype="float32")``
        gives.
    """
    if subtype not in _SCALE:
        raise ValueError(
            f"`subtype` must be one of {sorted(_SCALE)}. Received: subtype={subtype}"
        )
    dtype, scale = _SCALE[subtype]
    samples = _tfio().audio.decode_flac(contents, dtype=dtype)
    return tf.cast(samples, tf.float32) * scale
