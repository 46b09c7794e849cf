"""Audio in: any common file to mono float32 at a fixed sample rate.

One place decides how audio is read. ``load_audio`` reads WAV (8/16/24/32-bit
integer and 32/64-bit float PCM), FLAC, OGG/Vorbis, AIFF (and whatever else
libsndfile reads, MP3 included) at any sample rate and channel count, mixes
down to mono by averaging the channels and resamples with soxr's high-quality
band-limited resampler. The format is recognised from the file's content, not
its extension, so a FLAC file named ``.wav`` loads.

Every failure is an :class:`AudioError` that names the file and the cause, with
a machine-readable ``kind``: ``missing`` (no such file, a broken symbolic
link, a symbolic link loop), ``permission`` (the file, or a directory on
its way, cannot be read), ``not_regular`` (a directory, a named pipe, a
device), ``empty``, ``not_audio``, ``corrupt``, ``truncated``,
``no_samples`` or ``non_finite``. Silence is valid input, not an error.

A WAV file written to a pipe (``ffmpeg ... -f wav -``) cannot go back to
fill in its size fields: they say 0xFFFFFFFF or 0. Such a file is read to
its end.

``tf_load_audio`` makes the same loader usable inside ``tf.data``: it never
raises, it returns the waveform and an error message (empty when the file
loaded), so a pipeline can report the bad file and go on. A graph decoder
(``tf.audio.decode_wav``, tensorflow-io's FLAC op) is used only for a file
``graph_decoder`` proves it decodes exactly, and any error it still raises
falls back to the Python decoder, for that file alone.

File names are handled as the operating system gives them: a name that is
not UTF-8 (Latin-1 bytes, say) travels through TensorFlow as its raw bytes
(``os.fsencode``) and comes back as the same ``str`` (``os.fsdecode``).
"""

import contextlib
import dataclasses
import errno
import io
import os
import re
import stat
import struct
import tempfile

import numpy as np
import soundfile as sf
import soxr
from speechmodel.errors import Error, ParameterError

DEFAULT_SAMPLE_RATE = 16000

ERROR_KINDS = (
    "missing",
    "permission",
    "not_regular",
    "empty",
    "not_audio",
    "corrupt",
    "truncated",
    "no_samples",
    "non_finite",
)


# The one list of audio file endings: what the corpus loaders scan for and
# what ``infer.py DIR/`` picks up (everything ``load_audio`` decodes).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff")

class AudioError(Error, ValueError):
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


# The first bytes of the containers libsndfile (and the MP3 decoder) read.
_AUDIO_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"BW64", b"fLaC", b"OggS", b"FORM", b"ID3",
                b".snd", b"caff", b"wvpk", b"#!AMR", b"2BIT", b"NIST", b"Crea", b"MThd")


def _has_audio_magic(path):
    """False when ``path``'s first bytes are no audio container libsndfile
    knows (an MPEG frame sync counts as audio); None when unreadable."""
    try:
        if isinstance(path, (str, bytes, os.PathLike)):
            with open(path, "rb") as f:
                head = f.read(12)
        else:
            return None
    except OSError:
        return None
    if head.startswith(_AUDIO_MAGIC) or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return True
    return False


def _open_error(path, exc):
    """Turns a libsndfile open error into an AudioError of the right kind."""
    # soundfile says "Error opening <the path's repr>: <libsndfile's
    # message>"; the error names the file already (a service must not show
    # its own temporary paths).
    message = re.sub(r"""^Error opening (b?'(?:[^'\\]|\\.)*'|b?"(?:[^"\\]|\\.)*"): """, "", str(exc)).strip()
    if "Permission denied" in message:
        return AudioError(
            path, "permission denied: the file cannot be read", kind="permission"
        )
    if (
        "Format not recognised" in message
        or "unknown format" in message
        or "not a regular file" in message
        or _has_audio_magic(path) is False
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


_NOT_REGULAR = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _blocked_directory(path):
    """The first directory on the way to ``path`` that cannot be searched."""
    parts = os.path.abspath(path).split(os.sep)
    for n in range(2, len(parts)):
        directory = os.sep.join(parts[:n]) or os.sep
        try:
            os.stat(os.path.join(directory, os.curdir))  # Needs search permission.
        except OSError:
            return directory
    return None


def path_problem(path):
    """What keeps ``path`` from being read as a file, or None.

    Says what is actually wrong: no such file, a broken symbolic link or a
    symbolic link loop (kind ``missing``), a file or a directory on its way
    that this user may not read (``permission``), a directory, a named pipe
    or a device (``not_regular``; a pipe is never opened, which would wait
    for a writer), an empty file (``empty``).

    Returns:
        AudioError or None.
    """
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        code = exc.errno
        if code == errno.ELOOP:
            return AudioError(
                path, "symbolic link loop (too many levels of symbolic links)",
                kind="missing",
            )
        if code == errno.EACCES:
            blocked = _blocked_directory(path)
            where = f" ({blocked} cannot be searched)" if blocked else ""
            return AudioError(
                path,
                f"permission denied: a directory on the way to the file cannot be read{where}",
                kind="permission",
            )
        if code == errno.ENOENT and os.path.islink(path):
            try:
                target = os.readlink(path)
            except OSError:
                target = "?"
            return AudioError(
                path,
                f"broken symbolic link (it points to {target}, which does not exist)",
                kind="missing",
            )
        if code == errno.ENOENT:
            return AudioError(path, "file not found", kind="missing")
        if code == errno.ENOTDIR:
            return AudioError(
                path, "file not found (a part of the path is a file, not a directory)",
                kind="missing",
            )
        if code == errno.ENAMETOOLONG:
            return AudioError(path, "file name too long", kind="missing")
        return AudioError(
            path, f"cannot access the file ({exc.strerror or exc})", kind="missing"
        )
    if stat.S_ISDIR(st.st_mode):
        return AudioError(path, "is a directory, not a file", kind="not_regular")
    for test, what in _NOT_REGULAR:
        if test(st.st_mode):
            return AudioError(
                path,
                f"is {what}, not a regular file: audio is read from files "
                "(save the stream to a file first)",
                kind="not_regular",
            )
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        return AudioError(
            path, "permission denied: the file cannot be read", kind="permission"
        )
    except OSError as exc:
        return AudioError(
            path, f"cannot open the file ({exc.strerror or exc})", kind="missing"
        )
    if st.st_size == 0:
        return AudioError(path, "file is empty (0 bytes)", kind="empty")
    return None


def _check_exists(path):
    problem = path_problem(path)
    if problem is not None:
        raise problem


# ---------------------------------------------------------------------------
# WAV layout: the graph decoder's preconditions, and streamed WAV files.

_STREAM_SIZES = (0, 0xFFFFFFFF)


@dataclasses.dataclass(frozen=True)
class WavLayout:
    """The chunk structure of a RIFF/WAVE file, read from its headers.

    Attributes:
        size: the file's size in bytes.
        riff_size: the RIFF size field.
        chunks: ``(id, declared size, payload offset)`` of every chunk
            header met, in order.
        end: where the last chunk (with its pad byte) ends; ``> size``
            when its size field overruns the file.
        fmt: ``(format tag, channels, sample rate, bytes per second,
            block align, bits per sample, cbSize or None)`` or None.
    """

    size: int
    riff_size: int
    chunks: tuple
    end: int
    fmt: tuple = None

    def chunk(self, chunk_id):
        """The first chunk ``chunk_id`` (bytes) as (size, offset), or None."""
        for cid, size, offset in self.chunks:
            if cid == chunk_id:
                return size, offset
        return None

    @property
    def streamed(self):
        """The size fields of a WAV written to a pipe (0xFFFFFFFF or 0):
        the data chunk runs to the end of the file."""
        data = self.chunk(b"data")
        if data is None or self.fmt is None or self.fmt[4] <= 0:
            return False
        size, offset = data
        if size == 0xFFFFFFFF:
            return True
        return size == 0 and self.riff_size in _STREAM_SIZES and self.size > offset


def wav_layout(path):
    """The ``WavLayout`` of a RIFF/WAVE file, or None for any other file.

    Reads the chunk headers only (seeks over the payloads). Never raises.
    """
    try:
        with open(os.fspath(path), "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            riff_size = struct.unpack("<I", head[4:8])[0]
            chunks, fmt, offset = [], None, 12
            while offset + 8 <= size and len(chunks) < 10000:
                f.seek(offset)
                header = f.read(8)
                chunk_id, chunk_size = header[:4], struct.unpack("<I", header[4:])[0]
                chunks.append((chunk_id, chunk_size, offset + 8))
                if chunk_id == b"fmt " and fmt is None and chunk_size >= 16:
                    body = f.read(min(chunk_size, 18))
                    if len(body) >= 16:
                        fields = struct.unpack("<HHIIHH", body[:16])
                        cb_size = struct.unpack("<H", body[16:18])[0] if len(body) >= 18 else None
                        fmt = (*fields, cb_size)
                offset += 8 + chunk_size + (chunk_size & 1)
            return WavLayout(size, riff_size, tuple(chunks), offset, fmt)
    except (OSError, struct.error):
        return None


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


class _PatchedFile(io.RawIOBase):
    """A read-only view of a file with some bytes replaced (the size fields
    of a streamed WAV), for libsndfile's virtual I/O."""

    def __init__(self, path, patches):
        super().__init__()
        self.name = path
        self._file = open(path, "rb")
        self._patches = tuple(patches.items())

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=io.SEEK_SET):
        return self._file.seek(offset, whence)

    def tell(self):
        return self._file.tell()

    def readinto(self, buffer):
        start = self._file.tell()
        n = self._file.readinto(buffer)
        if n:
            view = memoryview(buffer).cast("B")
            for offset, data in self._patches:
                lo, hi = max(start, offset), min(start + n, offset + len(data))
                if lo < hi:
                    view[lo - start : hi - start] = data[lo - offset : hi - offset]
        return n

    def close(self):
        try:
            self._file.close()
        finally:
            super().close()


def _open_soundfile(path):
    """``soundfile.SoundFile`` of ``path``; a streamed WAV is opened with
    its size fields set to what the file holds (its data runs to the end,
    whole frames)."""
    layout = wav_layout(path)
    if layout is None or not layout.streamed:
        # As bytes: soundfile would encode a str strictly, failing on a file
        # name that is not UTF-8.
        return sf.SoundFile(os.fsencode(path))
    _, offset = layout.chunk(b"data")
    block_align = layout.fmt[4]
    data_size = min((layout.size - offset) // block_align * block_align, 0xFFFFFFFF - 64)
    data_size -= data_size % block_align
    riff_size = min(offset + data_size - 8, 0xFFFFFFFF)
    patches = {4: struct.pack("<I", riff_size), offset - 4: struct.pack("<I", data_size)}
    raw = _PatchedFile(path, patches)
    try:
        return sf.SoundFile(raw)  # raw is closed when the SoundFile goes.
    except BaseException:
        raw.close()
        raise


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
        with _open_soundfile(path) as info:
            return AudioInfo(
                path=path,
                sample_rate=int(info.samplerate),
                channels=int(info.channels),
                frames=int(info.frames),
                format=info.format,
                subtype=info.subtype,
            )
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise _open_error(path, exc) from None
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
        with _open_soundfile(path) as f:
            extra = f.extra_info
            y = f.read(dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise _open_error(path, exc) from None
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
        with _open_soundfile(path) as f:
            match = _SHOULD_BE.search(f.extra_info or "")
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise _open_error(path, exc) from None
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
        with _open_soundfile(path) as f:
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


def _as_str(value):
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
    path = _as_str(path)
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
