"""Audio inside a TensorFlow graph: ``tf_load_audio`` makes ``load_audio``
usable in ``tf.data``; it never raises, it returns the waveform and an
error message (empty when the file loaded), so a pipeline can report the
bad file and go on. A graph decoder (``tf.audio.decode_wav``,
tensorflow-io's FLAC op) is used only for a file ``graph_decoder`` proves
it decodes exactly, and any error it still raises falls back to the Python
decoder, for that file alone.

File names travel through TensorFlow as their raw bytes (``as_tf_path``,
``os.fsencode``) and come back as the same ``str`` (``as_str``,
``os.fsdecode``), UTF-8 or not.
"""

import os

import numpy as np
import soundfile as sf

from speechmodel.audio.errors import AudioError
from speechmodel.audio.loading import DEFAULT_SAMPLE_RATE, load_audio
from speechmodel.audio.wav import wav_layout


def _decodes_exactly_with_decode_wav(layout, sample_rate):
    """Whether ``tf.audio.decode_wav`` reads exactly what libsndfile reads.

    Only the canonical layout qualifies: the RIFF size matches the file; a
    16-bit PCM ``fmt `` chunk of 16 bytes (or 18 with cbSize 0) comes
    first, with consistent block align and byte rate; every chunk has an
    even size (decode_wav does not skip pad bytes); one non-empty ``data``
    chunk of whole frames; and the chunks end exactly at the end of the
    file (no stray bytes, no size field past it). Everything else goes to
    the Python decoder.
    """
    if layout is None or layout.fmt is None or not layout.chunks:
        return False
    tag, channels, rate, byte_rate, block_align, bits, cb_size = layout.fmt
    first_id, first_size, _ = layout.chunks[0]
    if first_id != b"fmt " or first_size not in (16, 18):
        return False
    if first_size == 18 and cb_size != 0:
        return False
    if tag != 1 or bits != 16 or channels < 1 or rate != sample_rate:
        return False
    if block_align != 2 * channels or byte_rate != rate * block_align:
        return False
    if layout.riff_size != layout.size - 8 or layout.end != layout.size:
        return False
    data = [size for cid, size, _ in layout.chunks if cid == b"data"]
    if len(data) != 1 or data[0] == 0 or data[0] % block_align:
        return False
    return all(size % 2 == 0 and size <= 0x7FFFFFFF for _, size, _ in layout.chunks)


GRAPH_DECODERS = ("python", "wav", "flac16", "flac24")


def graph_decoder(path, *, sample_rate=DEFAULT_SAMPLE_RATE):
    """Which decoder reads ``path`` exactly inside a TensorFlow graph.

    ``"wav"``: a 16-bit PCM WAV in the canonical layout that
    ``tf.audio.decode_wav`` reads exactly (see
    ``_decodes_exactly_with_decode_wav``: no chunk before ``fmt ``, no
    odd-sized chunk, no stray byte, no size field past the end, ...).
    ``"flac16"`` / ``"flac24"``: a 16/24-bit FLAC whose last sample can be
    read (so not truncated), read by tensorflow-io's FLAC op (a corrupted
    frame makes that op fail; ``tf_load_audio`` then falls back to Python
    for that file). In both cases the file must already be at
    ``sample_rate`` and hold samples. ``"python"``: everything else, read
    by ``load_audio``, which also reports every error. Decided from the
    content, whatever the extension; never raises.
    """
    path = os.fspath(path)
    try:
        layout = wav_layout(path)
        if layout is not None:
            return "wav" if _decodes_exactly_with_decode_wav(layout, sample_rate) else "python"
        with open(path, "rb") as raw:
            if raw.read(4) != b"fLaC":
                return "python"
        with sf.SoundFile(os.fsencode(path)) as f:
            if f.samplerate != sample_rate or f.frames <= 0:
                return "python"
            if f.format == "FLAC" and f.subtype in ("PCM_16", "PCM_24"):
                f.seek(f.frames - 1)
                if f.read(1, dtype="int16").shape[0] == 1:
                    return "flac16" if f.subtype == "PCM_16" else "flac24"
    except Exception:  # Any failure: the Python path will report it.
        pass
    return "python"


def as_str(value):
    """A numpy_function argument (bytes, np.bytes_ or a 0-d array) as str.

    Bytes are decoded as the operating system decodes file names
    (``os.fsdecode``: UTF-8, other bytes kept as surrogate escapes), so a
    Latin-1 file name comes back as the ``str`` it started as.
    """
    value = value.item() if isinstance(value, np.ndarray) else value
    return os.fsdecode(value) if isinstance(value, bytes) else str(value)


def as_tf_path(path):
    """A path as the bytes TensorFlow takes (``os.fsencode``): any file
    name, UTF-8 or not, survives the trip through a string tensor."""
    return os.fsencode(os.fspath(path))


def _message_bytes(message):
    return message.encode("utf-8", "surrogateescape")


def _load_for_tf(path, sample_rate):
    path = as_str(path)
    try:
        return load_audio(path, sample_rate=int(sample_rate)), b""
    except AudioError as exc:
        return np.zeros([0], np.float32), _message_bytes(str(exc))
    except Exception as exc:  # Unexpected: still name the file, never abort.
        message = f"{path}: unexpected error {type(exc).__name__}: {exc}"
        return np.zeros([0], np.float32), _message_bytes(message)


def tf_load_audio(
    path, *, sample_rate=DEFAULT_SAMPLE_RATE, decoder=None, use_flac_op=True
):
    """``load_audio`` as a TensorFlow op, for ``tf.data``.

    Args:
        path: scalar string tensor (the file name's bytes, see
            ``as_tf_path``).
        sample_rate: output rate in Hz.
        decoder: optional scalar int tensor, the index in
            ``GRAPH_DECODERS`` of ``graph_decoder(path)`` computed
            beforehand: WAV and FLAC files that it clears are decoded by
            graph ops (no Python, no GIL; the same samples as
            ``load_audio``). Should a graph decoder still fail on a file
            (it changed since, or a corrupted FLAC frame), that file alone
            is decoded again by ``load_audio``, which reads it or says why
            not.
        use_flac_op: build the tensorflow-io FLAC branches (otherwise FLAC
            goes through Python); off when no file needs them, so that
            tensorflow-io is not even imported.

    Returns:
        ``(waveform, error)``: float32 (samples,) and a scalar string that is
        empty when the file loaded, else ``"<path>: <reason>"`` (the waveform
        is then empty). It never raises, so one bad file cannot end an epoch.
    """
    import tensorflow as tf

    def python_decode(path):
        waveform, error = tf.numpy_function(
            _load_for_tf,
            [path, sample_rate],
            [tf.float32, tf.string],
            stateful=False,
            name="load_audio",
        )
        waveform.set_shape([None])
        error.set_shape([])
        return waveform, error

    if decoder is None:
        return python_decode(path)

    def graph_decode(decode):
        def fn(path):
            decoded = decode(tf.io.read_file(path))
            return tf.reduce_mean(decoded, axis=1), tf.constant("")

        return fn

    def flac(subtype):
        from speechmodel import tfio_ops

        return lambda contents: tfio_ops.decode_flac(contents, subtype=subtype)

    branches = [
        None,
        graph_decode(lambda contents: tf.audio.decode_wav(contents).audio),
        graph_decode(flac("PCM_16")) if use_flac_op else None,
        graph_decode(flac("PCM_24")) if use_flac_op else None,
    ]
    decoder = tf.cast(decoder, tf.int32)

    def by_graph(path):
        return tf.switch_case(
            decoder,
            [
                (lambda fn=fn: fn(path)) if fn is not None else (lambda: python_decode(path))
                for fn in branches
            ],
        )

    # A graph op error cannot be caught inside a graph: the decode runs in a
    # one-element dataset whose error drops that element (ignore_errors),
    # followed by the Python decode, which runs only when the graph decode
    # gave nothing.
    source = tf.data.Dataset.from_tensors(path)
    graph = source.map(by_graph).ignore_errors()
    fallback = source.map(python_decode)
    return graph.concatenate(fallback).take(1).get_single_element()
