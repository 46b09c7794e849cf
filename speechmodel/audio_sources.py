"""Audio sources read a block at a time, as the audio arrives: standard
input and the microphone.

Each source gives ``sample_rate``, ``channels``, ``description`` and
``blocks()``, float32 ``(frames, channels)`` arrays:

* ``WavStream``: a WAV byte stream read front to back, without seeking
  (``ffmpeg ... -f wav -``, ``sox ... -t wav -``): integer PCM of 8-32 bits
  and 32/64-bit float, plain or ``WAVE_FORMAT_EXTENSIBLE``, RF64; chunks
  before ``data`` are skipped. A ``data`` (or RIFF) size of 0 or 0xFFFFFFFF,
  which writers that cannot seek back put there, means "until the end of
  the stream".
* ``RawStream``: headerless PCM at a stated rate, sample format
  (``SAMPLE_FORMATS``) and channel count (``arecord -f S16_LE -r 16000 -c 1
  -t raw``).
* ``Microphone``: an input device through PortAudio (``sounddevice``),
  the default one or one named (or numbered); ``MicrophoneError`` says in
  one line when PortAudio or an input device is missing.

``mono_blocks`` mixes them down and resamples (soxr, streaming) to the
model's rate; ``limited`` stops after a number of frames. Files are read
in blocks by ``speechmodel.audio.iter_blocks``; the analysis of the blocks
is ``speechmodel.inference.streaming``'s.
"""

import dataclasses
import queue
import struct

import numpy as np

from speechmodel.errors import Error

# name -> (numpy dtype, bytes per sample, kind); s24 is unpacked by hand.
SAMPLE_FORMATS = {
    "u8": ("u1", 1),
    "s8": ("i1", 1),
    "s16le": ("<i2", 2),
    "s16be": (">i2", 2),
    "s24le": (None, 3),
    "s24be": (None, 3),
    "s32le": ("<i4", 4),
    "s32be": (">i4", 4),
    "f32le": ("<f4", 4),
    "f32be": (">f4", 4),
    "f64le": ("<f8", 8),
    "f64be": (">f8", 8),
}
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
_READ_BYTES = 1 << 16


class StreamError(Error, ValueError):
    """A stream that cannot be read as audio: says what is wrong."""


class MicrophoneError(Error, RuntimeError):
    """No microphone to record from: PortAudio or the device is missing."""


@dataclasses.dataclass(frozen=True)
class PCMFormat:
    sample_rate: int
    channels: int
    sample_format: str

    def __post_init__(self):
        if self.sample_format not in SAMPLE_FORMATS:
            raise StreamError(
                f"unknown sample format {self.sample_format!r}: one of {', '.join(SAMPLE_FORMATS)}"
            )
        if not isinstance(self.sample_rate, int) or self.sample_rate <= 0:
            raise StreamError(f"the sample rate must be a positive integer. Received: {self.sample_rate!r}")
        if not isinstance(self.channels, int) or not 1 <= self.channels <= 64:
            raise StreamError(f"the channel count must be 1 to 64. Received: {self.channels!r}")

    @property
    def frame_bytes(self):
        return SAMPLE_FORMATS[self.sample_format][1] * self.channels


def decode_pcm(data, fmt):
    """Bytes holding whole frames -> float32 (frames, channels) in [-1, 1]."""
    dtype, width = SAMPLE_FORMATS[fmt.sample_format]
    name = fmt.sample_format
    if name in ("s24le", "s24be"):
        raw = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.int32)
        lo, mid, hi = (raw[:, 0], raw[:, 1], raw[:, 2]) if name == "s24le" else (raw[:, 2], raw[:, 1], raw[:, 0])
        value = lo | (mid << 8) | (hi << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        samples = value.astype(np.float32) / np.float32(1 << 23)
    else:
        x = np.frombuffer(data, dtype)
        if name == "u8":
            samples = (x.astype(np.float32) - 128.0) / 128.0
        elif name.startswith("s"):
            samples = x.astype(np.float32) / np.float32(2.0 ** (8 * width - 1))
        else:
            samples = x.astype(np.float32)
    samples = samples.reshape(-1, fmt.channels)
    if not np.isfinite(samples).all():
        raise StreamError("the stream holds NaN or infinite samples")
    return samples


class _Reader:
    """Reads a binary stream (a pipe: no seeking) with byte counts."""

    def __init__(self, stream):
        self.stream = stream
        self._read = getattr(stream, "read1", None) or stream.read
        self.position = 0

    def some(self, n):
        data = self._read(n)
        self.position += len(data)
        return data

    def exact(self, n):
        parts, got = [], 0
        while got < n:
            data = self.some(n - got)
            if not data:
                break
            parts.append(data)
            got += len(data)
        return b"".join(parts)


class _PCMSource:
    block_seconds = 0.5

    def __init__(self, reader, fmt, data_bytes=None):
        self.reader = reader
        self.format = fmt
        self.sample_rate = fmt.sample_rate
        self.channels = fmt.channels
        self.data_bytes = data_bytes  # None: until the end of the stream.
        self.bytes_read = 0
        self.truncated = False

    def blocks(self):
        """Yields float32 (frames, channels) arrays as bytes arrive."""
        frame = self.format.frame_bytes
        rest = b""
        while True:
            want = _READ_BYTES
            if self.data_bytes is not None:
                want = min(want, self.data_bytes - self.bytes_read)
                if want <= 0:
                    break
            data = self.reader.some(want)
            if not data:
                if self.data_bytes is not None:
                    self.truncated = True
                break
            self.bytes_read += len(data)
            data = rest + data
            usable = len(data) - len(data) % frame
            rest = data[usable:]
            if usable:
                yield decode_pcm(data[:usable], self.format)


class RawStream(_PCMSource):
    """Headerless PCM (see the module docstring)."""

    def __init__(self, stream, *, sample_rate, sample_format="s16le", channels=1):
        fmt = PCMFormat(int(sample_rate), int(channels), sample_format)
        super().__init__(_Reader(stream), fmt)
        self.description = f"raw {sample_format}, {sample_rate} Hz, {channels} channel(s)"


_EXTENSIBLE_TAIL = bytes.fromhex("000000001000800000aa00389b71")


class WavStream(_PCMSource):
    """A WAV byte stream (see the module docstring).

    Raises:
        StreamError: not a WAV stream, an unsupported encoding, or a header
            cut short (names which).
    """

    def __init__(self, stream):
        reader = _Reader(stream)
        head = reader.exact(12)
        if not head:
            raise StreamError("the stream is empty (no WAV header)")
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            raise StreamError(
                "not a WAV stream (it does not start with RIFF....WAVE); for "
                "headerless PCM pass --raw with --rate, --sample_format and --channels"
            )
        rf64 = head[:4] == b"RF64"
        fmt, ds64_data = None, None
        while True:
            chunk = reader.exact(8)
            if len(chunk) < 8:
                raise StreamError("the WAV header ends before its data chunk")
            name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"data":
                if rf64 and size == 0xFFFFFFFF and ds64_data:
                    size = ds64_data
                if fmt is None:
                    raise StreamError("the WAV stream has no fmt chunk before its data")
                data_bytes = None if size in _UNKNOWN_SIZES else size
                break
            if size == 0xFFFFFFFF:
                raise StreamError(f"the WAV chunk {name!r} has an unknown size")
            body = reader.exact(size + (size & 1))
            if len(body) < size:
                raise StreamError(f"the WAV header is cut short in its {name.decode('latin-1')!r} chunk")
            if name == b"fmt ":
                fmt = self._parse_fmt(body[:size])
            elif name == b"ds64" and size >= 16:
                ds64_data = struct.unpack("<Q", body[8:16])[0]
        super().__init__(reader, fmt, data_bytes)
        self.description = f"WAV {fmt.sample_format}, {fmt.sample_rate} Hz, {fmt.channels} channel(s)"

    @staticmethod
    def _parse_fmt(body):
        if len(body) < 16:
            raise StreamError("the WAV fmt chunk is too short")
        tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
        if tag == 0xFFFE and len(body) >= 40:
            if body[26:40] != _EXTENSIBLE_TAIL:
                raise StreamError("unsupported WAVE_FORMAT_EXTENSIBLE sub-format")
            tag = struct.unpack("<H", body[24:26])[0]
        names = {(1, 8): "u8", (1, 16): "s16le", (1, 24): "s24le", (1, 32): "s32le",
                 (3, 32): "f32le", (3, 64): "f64le"}
        if (tag, bits) not in names:
            raise StreamError(
                f"unsupported WAV encoding (format tag {tag:#x}, {bits} bits): "
                "integer PCM of 8, 16, 24 or 32 bits and 32/64-bit float are read"
            )
        if channels < 1 or rate < 1:
            raise StreamError(f"the WAV header has {channels} channels at {rate} Hz")
        return PCMFormat(int(rate), int(channels), names[(tag, bits)])


class Microphone:
    """An input device through PortAudio (``sounddevice``).

    Args:
        device: None for the default input device, an index, or a
            (sub)string of a device name.
        sample_rate: asked of the device; if it refuses, the device's own
            default rate is used (and resampled later).
        block_seconds: the size of each block.
        max_seconds: stop after this many seconds (None: until stopped).
        queue_blocks: at most this many blocks wait for the analysis; when
            it falls behind, the oldest are dropped (and counted in
            ``dropped``), so memory stays bounded.
        sounddevice: the module (tests pass a simulated one).

    Raises:
        MicrophoneError: PortAudio is missing, there is no input device, or
            the named one does not exist (the message lists the inputs).
    """

    def __init__(self, device=None, *, sample_rate=16000, block_seconds=0.25, max_seconds=None,
                 queue_blocks=400, sounddevice=None):
        if sounddevice is None:
            try:
                import sounddevice
            except OSError as exc:  # The module loads, the library does not.
                raise MicrophoneError(
                    f"no microphone: the PortAudio library is not installed ({exc}); "
                    "install it (Debian: apt-get install libportaudio2)"
                ) from None
            except ImportError:
                raise MicrophoneError(
                    "no microphone: the sounddevice package is not installed (pip install sounddevice)"
                ) from None
        self.sd = sounddevice
        if isinstance(device, str) and device.strip().isdigit():
            device = int(device)
        self.device = device
        try:
            info = self.sd.query_devices(device, "input")
        except (ValueError, self.sd.PortAudioError) as exc:
            inputs = self.input_names()
            which = "no input device" if device is None else f"no input device {device!r}"
            listed = f"; input devices: {', '.join(inputs)}" if inputs else "; this machine has none"
            raise MicrophoneError(f"{which} ({' '.join(str(exc).split())}){listed}") from None
        self.name = info["name"]
        self.channels = 1
        rate = int(sample_rate)
        try:
            self.sd.check_input_settings(device, channels=1, samplerate=rate, dtype="float32")
        except Exception:
            rate = int(info["default_samplerate"])
        self.sample_rate = rate
        self.block_frames = max(1, int(block_seconds * rate))
        self.max_frames = None if max_seconds is None else int(round(max_seconds * rate))
        self.queue = queue.Queue(maxsize=queue_blocks)
        self.dropped = 0
        self.non_finite = 0
        self.description = f"microphone {self.name!r}, {rate} Hz"

    def input_names(self):
        try:
            return [d["name"] for d in self.sd.query_devices() if d["max_input_channels"] > 0]
        except Exception:
            return []

    def _callback(self, indata, frames, time, status):
        del frames, time, status
        block = np.array(indata, np.float32, copy=True)
        if not np.isfinite(block).all():  # Never from a working device.
            block = np.nan_to_num(block, nan=0.0, posinf=0.0, neginf=0.0)
            self.non_finite += 1
        try:
            self.queue.put_nowait(block)
        except queue.Full:
            try:
                self.queue.get_nowait()
                self.dropped += 1
            except queue.Empty:
                pass
            self.queue.put_nowait(block)

    def blocks(self):
        try:
            stream = self.sd.InputStream(
                device=self.device, channels=1, samplerate=self.sample_rate, dtype="float32",
                blocksize=self.block_frames, callback=self._callback,
            )
        except Exception as exc:
            raise MicrophoneError(f"cannot open the input device {self.name!r} ({exc})") from None
        frames = 0
        with stream:
            while self.max_frames is None or frames < self.max_frames:
                try:
                    block = self.queue.get(timeout=5.0)
                except queue.Empty:
                    raise MicrophoneError(f"the input device {self.name!r} sends no audio") from None
                if self.max_frames is not None:
                    block = block[: self.max_frames - frames]
                frames += len(block)
                yield block


def mono_blocks(source, sample_rate):
    """The source's blocks as mono float32 at ``sample_rate`` (soxr HQ,
    streaming: the result does not depend on the block sizes)."""
    import soxr

    from speechmodel.audio import to_mono

    resampler = None
    if source.sample_rate != sample_rate:
        resampler = soxr.ResampleStream(source.sample_rate, sample_rate, 1, dtype="float32", quality="HQ")
    for block in source.blocks():
        y = np.ascontiguousarray(to_mono(block), np.float32)
        if resampler is not None:
            y = resampler.resample_chunk(y)
        if y.size:
            yield y
    if resampler is not None:
        y = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
        if y.size:
            yield y


def limited(blocks, max_frames):
    """The first ``max_frames`` frames of ``blocks`` (all if None)."""
    if max_frames is None:
        yield from blocks
        return
    seen = 0
    for block in blocks:
        if seen >= max_frames:
            return
        block = block[: max_frames - seen]
        seen += len(block)
        yield block
