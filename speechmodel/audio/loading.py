"""Loading: any common audio file to mono float32 at a fixed sample rate
(``load_audio``, ``iter_blocks`` for long files, ``read_info`` for the
header), and the sources it accepts (a path, bytes, a file object)."""

import contextlib
import dataclasses
import io
import os
import re
import tempfile

import numpy as np
import soundfile as sf
import soxr

from speechmodel.audio.errors import AudioError, check_exists, open_error
from speechmodel.errors import ParameterError
from speechmodel.audio.wav import open_soundfile

DEFAULT_SAMPLE_RATE = 16000

# The one list of audio file endings: what the corpus loaders scan for and
# what ``infer.py DIR/`` picks up (everything ``load_audio`` decodes).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff")

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
    check_exists(path)
    try:
        with open_soundfile(path) as info:
            return AudioInfo(
                path=path,
                sample_rate=int(info.samplerate),
                channels=int(info.channels),
                frames=int(info.frames),
                format=info.format,
                subtype=info.subtype,
            )
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise open_error(path, exc) from None
    except OSError as exc:  # Raced away, or an I/O error while reading.
        raise AudioError(
            path, f"cannot read the file ({exc.strerror or exc})", kind="corrupt"
        ) from None


def to_mono(y):
    """Averages the channels of a (samples, channels) array; 1-D passes."""
    y = np.asarray(y)
    if y.ndim == 1:
        return y
    if y.ndim != 2:
        raise ParameterError(
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
        raise ParameterError(
            "Sample rates must be positive. "
            f"Received: orig_sr={orig_sr}, target_sr={target_sr}"
        )
    y = np.asarray(y, dtype=np.float32)
    if orig_sr == target_sr or y.size == 0:
        return y
    return soxr.resample(y, orig_sr, target_sr, quality="HQ").astype(
        np.float32, copy=False
    )


def source_name(source):
    """How an audio source is named in messages and results: a path as
    it is; a file object by its ``name`` when it has one; otherwise
    ``<bytes>`` or ``<file object>``."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        return path if isinstance(path, str) else os.fsdecode(path)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    name = getattr(source, "name", None)
    if isinstance(name, (str, os.PathLike)) and not isinstance(name, bytes):
        return os.fspath(name)
    return "<file object>"


def is_file_like(source):
    """A readable file object (``open(path, "rb")``, ``io.BytesIO``, an
    upload)."""
    return callable(getattr(source, "read", None))


@contextlib.contextmanager
def as_file(source):
    """The path of an audio source, for code that reads files.

    ``source``: a path (``str`` or ``os.PathLike``: ONE file, yielded as
    it is), the bytes of an audio file (``bytes``, ``bytearray``,
    ``memoryview``) or a binary file object (read from its current
    position to the end). Bytes and file objects are written to a
    temporary file, removed on exit: libsndfile recognises the format from
    the content and needs to seek for several formats.

    Yields:
        ``(path, name)``: the file to read and the name for messages
        (``source_name``).

    Raises:
        TypeError: another type, or a file object opened in text mode.
    """
    name = source_name(source)
    if isinstance(source, (str, os.PathLike)):
        yield os.fspath(source), name
        return
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif is_file_like(source):
        text_mode = ParameterError(
            f"{name}: the file object is open in text mode; open audio "
            "files in binary mode (open(path, 'rb')). Received: a text file object"
        )
        if isinstance(source, io.TextIOBase):
            raise text_mode
        data = source.read()
        if isinstance(data, str):
            raise text_mode
        data = bytes(data)
    else:
        raise ParameterError(
            "An audio source is a path, the bytes of an audio file or a binary "
            f"file object. Received: source=<{type(source).__name__}>"
        )
    fd, path = tempfile.mkstemp(prefix="speechmodel-audio-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield path, name
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


def integrity_warning(path, info=None):
    """What makes a readable file's analysis worth less, in words, or None:

    * an Ogg stream (Vorbis, Opus) cut short: its last page is incomplete
      or lacks the end-of-stream mark, so libsndfile decodes what remains
      and the rest of the recording is missing;
    * floating-point samples beyond full scale (a peak above 1.0): the
      model hears them at a level it was not trained on (a float WAV a
      million times full scale changes the label completely).

    Reads the file's end (Ogg) or streams its samples (float files only);
    never raises (a file that cannot be read is reported elsewhere).
    """
    try:
        info = info or read_info(path)
        if info.format == "OGG":
            return _ogg_cut_short(path, info)
        if info.subtype in ("FLOAT", "DOUBLE"):
            return _beyond_full_scale(path)
    except Exception:  # Reading problems are reported by the analysis itself.
        return None
    return None


def _ogg_cut_short(path, info):
    with open(path, "rb") as f:
        head = f.read(27)
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - 65536 - 282))
        tail = f.read()
    if len(head) < 27 or not head.startswith(b"OggS"):
        return None
    serial = head[14:18]
    end = len(tail)
    while True:  # The last page header of the stream (its serial number).
        k = tail.rfind(b"OggS", 0, end)
        if k < 0:
            return None
        if tail[k + 4 : k + 5] == b"\0" and tail[k + 14 : k + 18] == serial:
            break
        end = k
    flags = tail[k + 5]
    segments = tail[k + 27 : k + 27 + tail[k + 26]] if k + 27 <= len(tail) else b""
    complete = k + 27 <= len(tail) and len(segments) == tail[k + 26] and k + 27 + len(segments) + sum(segments) <= len(tail)
    if complete and flags & 0x04:
        return None
    return (f"cut short: the Ogg stream ends without its end mark after {info.duration:.2f} s; the rest "
            "of the recording is missing (the file does not say how much) and was not analysed")


def _beyond_full_scale(path):
    import soundfile as sf

    peak = 0.0
    with sf.SoundFile(path) as f:
        for block in f.blocks(blocksize=1 << 16, dtype="float32", always_2d=True):
            if block.size:
                peak = max(peak, float(np.max(np.abs(np.nan_to_num(block, nan=0.0, posinf=1e38, neginf=-1e38)))))
    if peak <= 1.0:
        return None
    return (f"samples beyond full scale: the peak is {peak:.3g} times full scale (floating-point samples "
            "should stay within -1..1); analysed as they are, at a level the model was not trained on")


def load_audio(path, *, sample_rate=DEFAULT_SAMPLE_RATE, mono=True):
    """Loads audio as float32 in [-1, 1] at ``sample_rate``.

    Args:
        path: a path to an audio file (the format is read from its
            content), the bytes of an audio file, or a binary file object
            (``open(path, "rb")``, ``io.BytesIO``; read from its current
            position). A ``str`` is always one path; ``bytes`` are always
            content (a file name given as bytes: ``os.fsdecode`` it).
        sample_rate: output sample rate in Hz; ``None`` keeps the file's rate.
        mono: average the channels (default). With ``False`` the result is
            (samples, channels).

    Returns:
        np.ndarray of float32.

    Raises:
        AudioError: missing, empty, not audio, corrupt, truncated, no samples
            or non-finite samples. The message names the file (bytes:
            ``<bytes>``; a file object: its ``name``, else
            ``<file object>``).
        ParameterError: not a path, bytes or a binary file object; a
            ``sample_rate`` that is not a positive integer.
    """
    if sample_rate is not None and (
        isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0
    ):
        raise ParameterError(f"`sample_rate` must be a positive integer (Hz) or None. Received: sample_rate={sample_rate!r}")
    if isinstance(path, (str, os.PathLike)):
        return _load_path(os.fspath(path), sample_rate=sample_rate, mono=mono)
    with as_file(path) as (file, name):
        try:
            return _load_path(file, sample_rate=sample_rate, mono=mono)
        except AudioError as exc:
            raise AudioError(name, exc.reason, kind=exc.kind) from None


def _load_path(path, *, sample_rate, mono):
    info = read_info(path)
    try:
        with open_soundfile(path) as f:
            extra = f.extra_info
            y = f.read(dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise open_error(path, exc) from None
    except OSError as exc:
        raise AudioError(
            path, f"cannot read the file ({exc.strerror or exc})", kind="corrupt"
        ) from None
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
    try:
        with open_soundfile(path) as f:
            match = _SHOULD_BE.search(f.extra_info or "")
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise open_error(path, exc) from None
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
        with open_soundfile(path) as f:
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
        raise open_error(path, exc) from None
    except OSError as exc:
        raise AudioError(
            path, f"cannot read the file ({exc.strerror or exc})", kind="corrupt"
        ) from None
    if total < info.frames:
        raise AudioError(
            path,
            f"truncated audio file: read {total} of {info.frames} samples "
            "announced by the header",
            kind="truncated",
        )
