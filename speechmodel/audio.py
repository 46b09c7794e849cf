"""Audio in: any common file to mono float32 at a fixed sample rate.

One place decides how audio is read. ``load_audio`` reads WAV (8/16/24/32-bit
integer and 32/64-bit float PCM), FLAC, OGG/Vorbis, AIFF (and whatever else
libsndfile reads, MP3 included) at any sample rate and channel count, mixes
down to mono by averaging the channels and resamples with soxr's high-quality
band-limited resampler. The format is recognised from the file's content, not
its extension, so a FLAC file named ``.wav`` loads.

Every failure is an :class:`AudioError` that names the file and the cause, with
a machine-readable ``kind``: ``missing``, ``empty``, ``not_audio``,
``corrupt``, ``truncated``, ``no_samples`` or ``non_finite``. Silence is valid
input, not an error.

``tf_load_audio`` makes the same loader usable inside ``tf.data``: it never
raises, it returns the waveform and an error message (empty when the file
loaded), so a pipeline can report the bad file and go on.
"""

import dataclasses
import os
import re

import numpy as np
import soundfile as sf
import soxr

DEFAULT_SAMPLE_RATE = 16000

ERROR_KINDS = (
    "missing",
    "empty",
    "not_audio",
    "corrupt",
    "truncated",
    "no_samples",
    "non_finite",
)


class AudioError(ValueError):
    """A file that cannot be used as audio.

    Attributes:
        path: the file, as given.
        reason: what is wrong, in words.
        kind: one of ``ERROR_KINDS``.
    """

    def __init__(self, path, reason, *, kind):
        if kind not in ERROR_KINDS:
            raise ValueError(
                f"`kind` must be one of {ERROR_KINDS}. Received: kind={kind}"
            )
        self.path = str(path)
        self.reason = reason
        self.kind = kind
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        return (_rebuild_error, (self.path, self.reason, self.kind))


def _rebuild_error(path, reason, kind):
    return AudioError(path, reason, kind=kind)


@dataclasses.dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header."""

    path: str
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration(self):
        return self.frames / self.sample_rate if self.sample_rate else 0.0


_SHOULD_BE = re.compile(r"data\s*:\s*(\d+)\s*\(should be (\d+)\)")


def _open_error(path, exc):
    """Turns a libsndfile open error into an AudioError of the right kind."""
    message = str(exc)
    if (
        "Format not recognised" in message
        or "unknown format" in message
        or "not a regular file" in message
    ):
        return AudioError(
            path,
            "not an audio file (libsndfile does not recognise the format)",
            kind="not_audio",
        )
    if "No 'data' chunk" in message or "truncated" in message.lower():
        return AudioError(
            path, f"truncated audio file ({message})", kind="truncated"
        )
    return AudioError(path, f"corrupt audio file ({message})", kind="corrupt")


def _check_exists(path):
    if not os.path.exists(path):
        raise AudioError(path, "file not found", kind="missing")
    if os.path.isdir(path):
        raise AudioError(path, "is a directory, not a file", kind="not_audio")
    if os.path.getsize(path) == 0:
        raise AudioError(path, "file is empty (0 bytes)", kind="empty")


def read_info(path):
    """Reads a file's header.

    Args:
        path: path to an audio file.

    Returns:
        AudioInfo.

    Raises:
        AudioError: the file is missing, empty or not readable audio.
    """
    path = os.fspath(path)
    _check_exists(path)
    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise _open_error(path, exc) from None
    return AudioInfo(
        path=path,
        sample_rate=int(info.samplerate),
        channels=int(info.channels),
        frames=int(info.frames),
        format=info.format,
        subtype=info.subtype,
    )


def to_mono(y):
    """Averages the channels of a (samples, channels) array; 1-D passes."""
    y = np.asarray(y)
    if y.ndim == 1:
        return y
    if y.ndim != 2:
        raise ValueError(
            "Audio must be 1-D or (samples, channels). "
            f"Received: shape={y.shape}"
        )
    if y.shape[1] == 1:
        return y[:, 0]
    return y.mean(axis=1, dtype=np.float64).astype(np.float32)


def resample(y, *, orig_sr, target_sr):
    """Band-limited resampling with soxr ("HQ" quality).

    Args:
        y: 1-D float signal.
        orig_sr: its sample rate in Hz.
        target_sr: the wanted sample rate in Hz.

    Returns:
        float32 signal at ``target_sr``.
    """
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(
            "Sample rates must be positive. "
            f"Received: orig_sr={orig_sr}, target_sr={target_sr}"
        )
    y = np.asarray(y, dtype=np.float32)
    if orig_sr == target_sr or y.size == 0:
        return y
    return soxr.resample(y, orig_sr, target_sr, quality="HQ").astype(
        np.float32, copy=False
    )


def load_audio(path, *, sample_rate=DEFAULT_SAMPLE_RATE, mono=True):
    """Loads a file as float32 in [-1, 1] at ``sample_rate``.

    Args:
        path: path to an audio file (the format is read from its content).
        sample_rate: output sample rate in Hz; ``None`` keeps the file's rate.
        mono: average the channels (default). With ``False`` the result is
            (samples, channels).

    Returns:
        np.ndarray of float32.

    Raises:
        AudioError: missing, empty, not audio, corrupt, truncated, no samples
            or non-finite samples. The message names the file.
    """
    path = os.fspath(path)
    info = read_info(path)
    try:
        with sf.SoundFile(path) as f:
            extra = f.extra_info
            y = f.read(dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise _open_error(path, exc) from None
    match = _SHOULD_BE.search(extra or "")
    if match and int(match.group(2)) < int(match.group(1)):
        raise AudioError(
            path,
            f"truncated audio file: the header announces {match.group(1)} "
            f"bytes of samples but only {match.group(2)} are present",
            kind="truncated",
        )
    if info.frames > 0 and y.shape[0] < info.frames:
        raise AudioError(
            path,
            f"truncated audio file: read {y.shape[0]} of {info.frames} "
            "samples announced by the header",
            kind="truncated",
        )
    if y.shape[0] == 0:
        raise AudioError(path, "the file holds no samples", kind="no_samples")
    if not np.isfinite(y).all():
        bad = int(np.size(y) - np.count_nonzero(np.isfinite(y)))
        raise AudioError(
            path,
            f"{bad} samples are NaN or infinite",
            kind="non_finite",
        )
    if mono:
        y = to_mono(y)
        if sample_rate is not None:
            y = resample(y, orig_sr=info.sample_rate, target_sr=sample_rate)
        return np.ascontiguousarray(y, dtype=np.float32)
    if sample_rate is not None and sample_rate != info.sample_rate:
        y = np.stack(
            [
                resample(y[:, c], orig_sr=info.sample_rate, target_sr=sample_rate)
                for c in range(y.shape[1])
            ],
            axis=1,
        )
    return np.ascontiguousarray(y, dtype=np.float32)


def iter_blocks(path, *, sample_rate=DEFAULT_SAMPLE_RATE, block_seconds=60.0):
    """Streams a long file as mono blocks at ``sample_rate``.

    Memory stays bounded by ``block_seconds`` whatever the file's length. The
    blocks are contiguous: concatenated, they equal ``load_audio(path)`` up to
    the resampler's block edges (soxr's streaming mode keeps its state, so
    there are no seams).

    Yields:
        float32 1-D arrays.

    Raises:
        AudioError: as ``load_audio``.
    """
    path = os.fspath(path)
    info = read_info(path)
    if info.frames == 0:
        raise AudioError(path, "the file holds no samples", kind="no_samples")
    with sf.SoundFile(path) as f:
        match = _SHOULD_BE.search(f.extra_info or "")
    if match and int(match.group(2)) < int(match.group(1)):
        raise AudioError(
            path,
            f"truncated audio file: the header announces {match.group(1)} "
            f"bytes of samples but only {match.group(2)} are present",
            kind="truncated",
        )
    block = max(1, int(block_seconds * info.sample_rate))
    stream = None
    if sample_rate is not None and sample_rate != info.sample_rate:
        stream = soxr.ResampleStream(
            info.sample_rate, sample_rate, 1, dtype="float32", quality="HQ"
        )
    total = 0
    try:
        with sf.SoundFile(path) as f:
            while True:
                y = f.read(block, dtype="float32", always_2d=True)
                last = y.shape[0] < block
                total += y.shape[0]
                if not np.isfinite(y).all():
                    raise AudioError(
                        path, "samples are NaN or infinite", kind="non_finite"
                    )
                y = to_mono(y)
                if stream is not None:
                    y = stream.resample_chunk(y, last=last)
                if y.size:
                    yield np.ascontiguousarray(y, dtype=np.float32)
                if last:
                    break
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise _open_error(path, exc) from None
    if total < info.frames:
        raise AudioError(
            path,
            f"truncated audio file: read {total} of {info.frames} samples "
            "announced by the header",
            kind="truncated",
        )


GRAPH_DECODERS = ("python", "wav", "flac16", "flac24")


def graph_decoder(path, *, sample_rate=DEFAULT_SAMPLE_RATE):
    """Which decoder reads ``path`` exactly inside a TensorFlow graph.

    ``"wav"``: a well-formed, untruncated 16-bit PCM WAV (format tag 1), read
    by ``tf.audio.decode_wav``. ``"flac16"`` / ``"flac24"``: a 16/24-bit FLAC
    whose last sample can be read (so not truncated), read by
    tensorflow-io's FLAC op. In both cases the file must already be at
    ``sample_rate`` and hold samples. ``"python"``: everything else, read by
    ``load_audio``, which also reports every error. Decided from the content,
    whatever the extension; never raises.
    """
    try:
        with sf.SoundFile(os.fspath(path)) as f:
            if f.samplerate != sample_rate or f.frames <= 0:
                return "python"
            extra = f.extra_info or ""
            if f.format == "WAV" and f.subtype == "PCM_16":
                if "0x1 => WAVE_FORMAT_PCM" in extra and "should be" not in extra:
                    return "wav"
            elif f.format == "FLAC" and f.subtype in ("PCM_16", "PCM_24"):
                f.seek(f.frames - 1)
                if f.read(1, dtype="int16").shape[0] == 1:
                    return "flac16" if f.subtype == "PCM_16" else "flac24"
    except Exception:  # Any failure: the Python path will report it.
        pass
    return "python"


def _as_str(value):
    """A numpy_function argument (bytes, np.bytes_ or a 0-d array) as str."""
    value = value.item() if isinstance(value, np.ndarray) else value
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _load_for_tf(path, sample_rate):
    path = _as_str(path)
    try:
        return load_audio(path, sample_rate=int(sample_rate)), b""
    except AudioError as exc:
        return np.zeros([0], np.float32), str(exc).encode("utf-8")
    except Exception as exc:  # Unexpected: still name the file, never abort.
        message = f"{path}: unexpected error {type(exc).__name__}: {exc}"
        return np.zeros([0], np.float32), message.encode("utf-8")


def tf_load_audio(
    path, *, sample_rate=DEFAULT_SAMPLE_RATE, decoder=None, use_flac_op=True
):
    """``load_audio`` as a TensorFlow op, for ``tf.data``.

    Args:
        path: scalar string tensor.
        sample_rate: output rate in Hz.
        decoder: optional scalar int tensor, the index in
            ``GRAPH_DECODERS`` of ``graph_decoder(path)`` computed
            beforehand: WAV and FLAC files that it clears are decoded by
            graph ops (no Python, no GIL; the same samples as
            ``load_audio``).
        use_flac_op: build the tensorflow-io FLAC branches (otherwise FLAC
            goes through Python); off when no file needs them, so that
            tensorflow-io is not even imported.

    Returns:
        ``(waveform, error)``: float32 (samples,) and a scalar string that is
        empty when the file loaded, else ``"<path>: <reason>"`` (the waveform
        is then empty). It never raises, so one bad file cannot end an epoch.
    """
    import tensorflow as tf

    def python_decode():
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

    def graph_decode(decode):
        def fn():
            decoded = decode(tf.io.read_file(path))
            return tf.reduce_mean(decoded, axis=1), tf.constant("")

        return fn

    def flac(subtype):
        from speechmodel import tfio_ops

        return lambda contents: tfio_ops.decode_flac(contents, subtype=subtype)

    if decoder is None:
        return python_decode()
    return tf.switch_case(
        tf.cast(decoder, tf.int32),
        [
            python_decode,
            graph_decode(lambda contents: tf.audio.decode_wav(contents).audio),
            graph_decode(flac("PCM_16")) if use_flac_op else python_decode,
            graph_decode(flac("PCM_24")) if use_flac_op else python_decode,
        ],
    )
