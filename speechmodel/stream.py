"""Live audio: standard input and the microphone, analysed as it arrives.

Sources (each gives ``sample_rate``, ``channels`` and ``blocks()``, float32
``(frames, channels)`` arrays, read a block at a time):

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
model's rate; ``StreamAnalyzer`` cuts the result into the same windows as
``infer.py`` uses for a long file (or into utterances with a voice activity
detector, ``segment="vad"``) and classifies each as soon as it is complete.
Memory is bounded whatever the length: one window (or one utterance, at
most ``max_utterance`` seconds) plus one block, and running sums for the
overall result. ``run_stream`` is ``infer.py -`` / ``infer.py --mic``: one
line per window or utterance, flushed as it is made, then the overall
result.
"""

import dataclasses
import json
import os
import queue
import struct
import sys

import numpy as np

from speechmodel.inference import Prediction, Window
from speechmodel.inference.results import NO_SPEECH
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
SEGMENTATIONS = ("windows", "vad")
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
_READ_BYTES = 1 << 16


class StreamError(Error, ValueError):
    """A stream that cannot be read as audio: says what is wrong."""


class MicrophoneError(Error, RuntimeError):
    """No microphone to record from: PortAudio or the device is missing."""


# ---------------------------------------------------------------------------
# PCM.


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


# ---------------------------------------------------------------------------
# Analysis.


class Utterance(Window):
    """An utterance found by the voice activity detector: a Window whose
    ``voiced`` is the fraction of its frames the detector called speech."""

    def to_dict(self):
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "label": self.label,
            "confidence": round(self.confidence, 6),
            "probabilities": {c: round(float(p), 6) for c, p in zip(self.class_names, self.probabilities)},
            "speech": round(float(self.voiced), 4),
        }


class SegmentedPrediction(Prediction):
    """A recording cut into utterances by the voice activity detector. Its
    probabilities are the duration-weighted mean over the utterances; with
    no speech at all it has no emotion (``probabilities`` is None)."""

    @property
    def no_speech(self):
        return self.probabilities is None

    @no_speech.setter
    def no_speech(self, value):
        pass  # Decided by the VAD: no utterance, no probabilities.

    @property
    def uncertain(self):
        return self.probabilities is not None and super().uncertain

    @property
    def confidence(self):
        return None if self.probabilities is None else super().confidence

    def top_k(self, k):
        return [] if self.probabilities is None else super().top_k(k)

    def to_dict(self, *, top_k=1):
        if self.probabilities is not None:
            out = super().to_dict(top_k=top_k)
        else:
            out = {
                "file": self.file, "label": NO_SPEECH, "confidence": None, "probabilities": None,
                "top_k": [], "duration": round(self.duration, 3), "windowed": True,
                "weighting": self.weighting, "timeline": [],
            }
            if self.plot is not None:
                out["plot"] = self.plot
        out["segmentation"] = "vad"
        return out


def waveform_classifier(model, *, batch_size=32, statistics=None):
    """``classify(list of 1-D float32 arrays) -> (n, C) probabilities``
    through ``model.predict_waveforms`` in zero-padded batches
    (``statistics``: one speaker's, for a speaker-normalised model)."""
    options = {} if statistics is None else {"statistics": statistics}

    def classify(waveforms):
        out = []
        for i in range(0, len(waveforms), batch_size):
            part = waveforms[i : i + batch_size]
            lengths = np.array([len(w) for w in part], np.int32)
            batch = np.zeros((len(part), int(lengths.max())), np.float32)
            for b, w in enumerate(part):
                batch[b, : len(w)] = w
            probs, _ = model.predict_waveforms(batch, lengths, attention=False, **options)
            out.append(np.asarray(probs, np.float32))
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    return classify


class StreamAnalyzer:
    """Windows or utterances of a stream, classified as they complete.

    Args:
        classify: ``list of waveforms -> (n, C) probabilities`` (see
            ``waveform_classifier``).
        sample_rate: the rate of the blocks (the model's).
        class_names: the C classes.
        segment: ``"windows"`` (``window`` seconds every ``hop``, the last
            one ending at the end; each weighted by its voiced seconds, as
            ``Predictor`` does for a long file) or ``"vad"`` (utterances at
            speech boundaries, at most ``max_utterance`` seconds; silence
            and noise between them get no emotion).
        vad: the detector for ``"vad"`` (``speechmodel.vad.DETECTORS``).
        vad_options: Segmenter options (seconds), over the detector's
            defaults.
        context: ``"vad"``: seconds of audio on each side of an utterance
            that the classifier also gets (never past the neighbouring
            utterances): the models are trained on clips with about a
            second of silence around the speech, and cut tight to the
            speech they do much worse (on held-in RAVDESS actors 21-22
            with the shipped model, 47 % accuracy without context, 80 %
            with 1 s). The reported start and end stay the speech's.
        min_confidence: None, or a probability: windows, utterances and
            the overall result below it are labelled ``uncertain``.

    In ``"windows"`` mode, a stream without speech
    (``speechmodel.signal.has_speech`` over all of it) gets ``no speech``
    as its overall result.

    ``add(block)`` returns the windows (or utterances) that the block
    completed, classified; ``finish()`` the rest; ``prediction(file)``
    the overall result.
    """

    def __init__(self, classify, *, sample_rate, class_names, segment="windows", window=4.0, hop=2.0,
                 vad="auto", max_utterance=20.0, vad_options=None, context=1.0, min_confidence=None):
        from speechmodel import inference
        from speechmodel.signal import VoicedRuns

        if segment not in SEGMENTATIONS:
            raise ValueError(f"`segment` must be one of {', '.join(SEGMENTATIONS)}. Received: segment={segment!r}")
        if not window > 0 or not 0 < hop <= window:
            raise ValueError(
                f"`hop` must be positive and at most `window`. Received: window={window!r}, hop={hop!r}"
            )
        self.classify = classify
        self.rate = int(sample_rate)
        self.class_names = list(class_names)
        self.segment = segment
        self.window_seconds, self.hop_seconds = float(window), float(hop)
        self.max_utterance = float(max_utterance)
        self.min_confidence = min_confidence
        self.total = 0
        self.count = 0
        self._sum = None  # Weighted sum of probabilities (float64).
        self._weight = 0.0
        self._plain = None  # Unweighted sum (the fallback when nothing is voiced).
        self._buffer = np.zeros(0, np.float32)
        self._buffer_start = 0
        self.finished = False
        if segment == "windows":
            self.win = max(1, int(round(window * self.rate)))
            self.hop = max(1, int(round(hop * self.rate)))
            self._next_start = 0
            self._last_end = None
            self._voicing = inference.VoicingDetector(self.rate)
            self._voiced_runs = VoicedRuns(self._voicing.hop / self.rate)
            self._voiced = np.zeros(0, bool)
            self._voiced_first = 0  # Frame index of _voiced[0].
            self._pending = []  # (start, samples) waiting for their voicing.
            self.detector = None
        else:
            from speechmodel import vad as V

            self.detector = V.make_detector(vad, self.rate)
            self.segmenter = V.segmenter_for(self.detector, max_speech=self.max_utterance, **(vad_options or {}))
            self.context = max(0, int(round(context * self.rate)))
            self._waiting = []  # Utterances found, waiting for their right context.
            self._previous_end = 0  # End of the last utterance classified.

    @property
    def settings(self):
        out = {"segment": self.segment, "sample_rate": self.rate}
        if self.segment == "windows":
            out.update(window=self.window_seconds, hop=self.hop_seconds,
                       overall="mean of window probabilities weighted by voiced seconds")
        else:
            s = self.segmenter
            out.update(
                vad=self.detector.name, threshold=s.threshold,
                min_speech=s.min_speech / self.rate, min_silence=s.min_silence / self.rate,
                pad=s.pad / self.rate, max_utterance=self.max_utterance, context=self.context / self.rate,
                overall="mean of utterance probabilities weighted by duration",
            )
        return out

    # -- windows --------------------------------------------------------

    def _cut_windows(self, final):
        """Moves complete windows from the buffer to _pending (the same
        windows as ``inference.stream_windows``)."""
        end_of_data = self._buffer_start + len(self._buffer)
        while self._next_start + self.win <= end_of_data:
            offset = self._next_start - self._buffer_start
            self._pending.append((self._next_start, self._buffer[offset : offset + self.win].copy()))
            self._last_end = self._next_start + self.win
            self._next_start += self.hop
            drop = min(self._next_start - self._buffer_start, len(self._buffer))
            self._buffer = self._buffer[drop:]
            self._buffer_start += drop
        if final and (self._last_end is None or self._last_end < end_of_data) and end_of_data > self._next_start:
            offset = self._next_start - self._buffer_start
            self._pending.append((self._next_start, self._buffer[offset:].copy()))
            self._last_end = end_of_data
            self._buffer = np.zeros(0, np.float32)
            self._buffer_start = end_of_data

    def _window_results(self, final):
        parts, self._voicing.parts = self._voicing.parts, []
        if parts:
            self._voiced = np.concatenate([self._voiced, *parts])
            for part in parts:
                self._voiced_runs.add(part)
        frame_hop = self._voicing.hop
        ready = [
            (s, w) for s, w in self._pending if final or self._voicing.next >= s + len(w)
        ]
        self._pending = self._pending[len(ready):]
        if not ready:
            return []
        probs = self.classify([w for _, w in ready])
        out = []
        for (start, w), p in zip(ready, probs):
            end = start + len(w)
            lo, hi = -(-start // frame_hop), -(-end // frame_hop)
            frames = self._voiced[max(0, lo - self._voiced_first) : max(0, hi - self._voiced_first)]
            fraction = float(frames.mean()) if frames.size else 0.0
            self._accumulate(p, fraction * (end - start) / self.rate)
            out.append(Window(start / self.rate, end / self.rate, np.asarray(p, np.float32), fraction,
                              self.class_names, min_confidence=self.min_confidence))
        # Frames before the next window's start are no longer needed.
        keep_from = -(-(self._pending[0][0] if self._pending else self._next_start) // frame_hop)
        drop = max(0, min(len(self._voiced), keep_from - self._voiced_first))
        self._voiced = self._voiced[drop:]
        self._voiced_first += drop
        return out

    # -- utterances -----------------------------------------------------

    def _ready_utterances(self, final):
        """The waiting utterances whose right context is known: (region,
        first sample, end sample) to classify."""
        ready = []
        while self._waiting:
            region = self._waiting[0]
            following = None
            if len(self._waiting) > 1:
                following = self._waiting[1].start
            elif self.segmenter.triggered:
                following = max(region.end, self.segmenter.detector.frame_start(self.segmenter.start_frame)
                                - self.segmenter.pad)
            right = region.end + self.context
            if following is not None:
                right = min(right, max(region.end, following))
            elif final:
                right = min(right, self.total)
            elif self.total < right:
                break
            left = max(self._previous_end, region.start - self.context)
            ready.append((region, left, right))
            self._previous_end = region.end
            self._waiting.pop(0)
        return ready

    def _utterance_results(self, ready):
        if not ready:
            return []
        regions = [r for r, _, _ in ready]
        waves = [self._buffer[a - self._buffer_start : b - self._buffer_start].copy() for _, a, b in ready]
        probs = self.classify(waves)
        out = []
        for r, p in zip(regions, probs):
            self._accumulate(p, (r.end - r.start) / self.rate)
            out.append(Utterance(r.start / self.rate, r.end / self.rate, np.asarray(p, np.float32), r.speech,
                                 self.class_names, min_confidence=self.min_confidence))
        return out

    def _trim_utterance_buffer(self):
        keep = self.segmenter.pending_start()
        if self._waiting:
            keep = min(keep, self._waiting[0].start)
        keep -= self.context  # The left context of what is still to come.
        drop = max(0, min(len(self._buffer), keep - self._buffer_start))
        self._buffer = self._buffer[drop:]
        self._buffer_start += drop

    # -- common ---------------------------------------------------------

    def _accumulate(self, probs, weight):
        p = np.asarray(probs, np.float64)
        if self._sum is None:
            self._sum, self._plain = np.zeros_like(p), np.zeros_like(p)
        self._sum += weight * p
        self._plain += p
        self._weight += weight
        self.count += 1

    def add(self, block):
        """Takes the next block (float32 mono at ``sample_rate``); returns
        the windows or utterances it completed."""
        if self.finished:
            raise RuntimeError("add() after finish()")
        block = np.asarray(block, np.float32).reshape(-1)
        if not block.size:
            return []
        self.total += len(block)
        self._buffer = np.concatenate([self._buffer, block])
        if self.segment == "windows":
            self._voicing.add(block)
            self._cut_windows(final=False)
            return self._window_results(final=False)
        self._waiting += self.segmenter.add(self.detector.add(block))
        out = self._utterance_results(self._ready_utterances(final=False))
        self._trim_utterance_buffer()
        return out

    def finish(self):
        """Ends the stream: the last windows or utterances."""
        if self.finished:
            return []
        self.finished = True
        if self.segment == "windows":
            self._cut_windows(final=True)
            return self._window_results(final=True)
        probs = self.detector.add(np.zeros(0, np.float32), last=True)
        self._waiting += self.segmenter.add(probs) + self.segmenter.finish(self.total)
        return self._utterance_results(self._ready_utterances(final=True))

    @property
    def duration(self):
        return self.total / self.rate

    def overall(self):
        """``(probabilities or None, weighting)`` so far."""
        if self._sum is None:
            return None, ("speech" if self.segment == "vad" else "uniform")
        if self.segment == "vad":
            return (self._sum / self._weight).astype(np.float32), "speech"
        if self._weight > 0:
            return (self._sum / self._weight).astype(np.float32), "voiced"
        return (self._plain / self.count).astype(np.float32), "uniform"

    def prediction(self, file, timeline=None):
        """The overall result as a Prediction (``timeline``: the windows or
        utterances, if the caller kept them)."""
        from speechmodel.signal import MIN_VOICED_SECONDS

        probs, weighting = self.overall()
        if self.segment == "vad":
            return SegmentedPrediction(file, probs, self.class_names, self.duration,
                                       timeline=list(timeline or []), weighting=weighting,
                                       min_confidence=self.min_confidence)
        return Prediction(file, probs, self.class_names, self.duration, timeline=timeline, weighting=weighting,
                          min_confidence=self.min_confidence,
                          no_speech=self._voiced_runs.seconds < MIN_VOICED_SECONDS)


def analyze_blocks(blocks, analyzer, file):
    """Runs ``analyzer`` over all ``blocks``; returns the Prediction with
    its whole timeline (for files, whose timeline is small)."""
    timeline = []
    for block in blocks:
        timeline += analyzer.add(block)
    timeline += analyzer.finish()
    return analyzer.prediction(file, timeline)


# ---------------------------------------------------------------------------
# The command line (infer.py - / --mic).


STREAM_FORMATS = ("table", "jsonl", "csv")


class LinePrinter:
    """Writes each window or utterance as one flushed line."""

    def __init__(self, out, output_format, class_names, *, top_k=1, file="-"):
        self.out = out
        self.format = output_format
        self.names = list(class_names)
        self.top_k = top_k
        self.file = file

    def _write(self, line):
        self.out.write(line + "\n")
        self.out.flush()

    def start(self, model, settings, description):
        if self.format == "jsonl":
            self._write(json.dumps({"type": "stream", "source": description, "model": model,
                                    "class_names": self.names, "settings": settings}))
        elif self.format == "csv":
            import csv
            import io

            header = ["file", "kind", "start", "end", "duration", "label", "confidence"]
            header += [f"p_{c}" for c in self.names]
            header += ["voiced", "weighting"]
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="").writerow(header)
            self._write(buffer.getvalue())

    def _csv(self, values):
        import csv
        import io

        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow(values)
        self._write(buffer.getvalue())

    def item(self, result):
        kind = "utterance" if isinstance(result, Utterance) else "window"
        if self.format == "jsonl":
            self._write(json.dumps({"type": kind, **result.to_dict()}))
        elif self.format == "csv":
            p = result.probabilities
            self._csv([self.file, kind, f"{result.start:.3f}", f"{result.end:.3f}",
                       f"{result.end - result.start:.3f}", result.label, f"{result.confidence:.6f}",
                       *[f"{float(q):.6f}" for q in p], f"{result.voiced:.4f}", ""])
        else:
            note = "speech" if kind == "utterance" else "voiced"
            top = ""
            if self.top_k > 1:
                order = np.argsort(-result.probabilities, kind="stable")[: self.top_k]
                top = "  " + ", ".join(f"{self.names[i]} {result.probabilities[i]:.3f}" for i in order)
            self._write(f"{result.start:9.2f}-{result.end:9.2f} s  {result.label:<12} "
                        f"{result.confidence:.3f}  {note} {result.voiced:.2f}{top}")

    def summary(self, prediction, count):
        if self.format == "jsonl":
            entry = prediction.to_dict(top_k=self.top_k)
            entry.pop("timeline", None)
            self._write(json.dumps({"type": "summary", "count": count, **entry}))
        elif self.format == "csv":
            p = prediction.probabilities
            if p is None:
                self._csv([self.file, "stream", "0.000", f"{prediction.duration:.3f}",
                           f"{prediction.duration:.3f}", "", "", *[""] * len(self.names), "",
                           prediction.weighting])
            else:
                self._csv([self.file, "stream", "0.000", f"{prediction.duration:.3f}",
                           f"{prediction.duration:.3f}", prediction.label, f"{prediction.confidence:.6f}",
                           *[f"{float(q):.6f}" for q in p], "", prediction.weighting])
        else:
            what = "utterances" if isinstance(prediction, SegmentedPrediction) else "windows"
            if prediction.probabilities is None:
                self._write(f"overall: no speech ({count} {what}, {prediction.duration:.2f} s)")
            else:
                top = ", ".join(f"{n} {q:.3f}" for n, q in prediction.top_k(max(1, self.top_k)))
                if prediction.label != prediction.emotion:  # uncertain, or no speech
                    top = f"{prediction.label} ({top})"
                self._write(f"overall: {top} ({count} {what}, {prediction.duration:.2f} s, "
                            f"weighting {prediction.weighting})")


def open_source(*, mic=False, device=None, raw=False, rate=None, sample_format="s16le", channels=1,
                stdin=None, sample_rate=16000, max_seconds=None, sounddevice=None):
    """The source for ``infer.py -`` or ``--mic``.

    Raises:
        StreamError, MicrophoneError: with a one-line reason.
    """
    if mic:
        return Microphone(device, sample_rate=sample_rate, max_seconds=max_seconds, sounddevice=sounddevice)
    if stdin is None:
        # Python sets sys.stdin to None when descriptor 0 is closed.
        if getattr(sys.stdin, "buffer", None) is None:
            raise StreamError("standard input is closed: nothing to read from - "
                              "(pipe or redirect the audio into it)")
        stdin = sys.stdin.buffer
    if raw:
        if rate is None:
            raise StreamError("--raw needs --rate (the sample rate in Hz)")
        return RawStream(stdin, sample_rate=rate, sample_format=sample_format, channels=channels)
    return WavStream(stdin)


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


def run_stream(model, *, source_args=None, source=None, output_format="table", top_k=1, window=4.0,
               hop=2.0, segment="windows", vad="auto", max_utterance=20.0, batch_size=32, max_seconds=None,
               min_confidence=None, stdout=None, stderr=None, prog="infer.py"):
    """``infer.py -`` / ``infer.py --mic`` with a loaded model: returns the
    exit status (0, or 1 when the stream could not be read to its end, 2
    when it cannot be opened at all). ``source`` is an opened source, or
    ``source_args`` the ``open_source`` arguments to open one."""
    source_args = dict(source_args or {})
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr

    def error(message, status):
        print(f"{prog}: error: {message}", file=stderr, flush=True)
        return status

    if output_format not in STREAM_FORMATS:
        return error(
            f"--format for a stream must be one of {', '.join(STREAM_FORMATS)} (results are "
            f"printed as they are made). Received: --format={output_format}", 2,
        )
    try:
        analyzer = StreamAnalyzer(
            waveform_classifier(model, batch_size=batch_size), sample_rate=model.sample_rate,
            class_names=model.class_names, segment=segment, window=window, hop=hop, vad=vad,
            max_utterance=max_utterance, min_confidence=min_confidence,
        )
    except (ValueError, RuntimeError) as exc:
        return error(str(exc), 2)
    if source is None:
        try:
            source = open_source(sample_rate=model.sample_rate, max_seconds=max_seconds, **source_args)
        except (StreamError, MicrophoneError) as exc:
            return error(str(exc), 2)
    name = "mic" if isinstance(source, Microphone) else "-"
    printer = LinePrinter(stdout, output_format, model.class_names, top_k=top_k, file=name)
    status = 0
    try:
        try:
            printer.start(model.describe(), analyzer.settings, source.description)
            max_frames = None if max_seconds is None else int(round(max_seconds * model.sample_rate))
            for block in limited(mono_blocks(source, model.sample_rate), max_frames):
                for result in analyzer.add(block):
                    printer.item(result)
        except KeyboardInterrupt:  # Ctrl-C ends a live stream: report it.
            pass
        except (StreamError, MicrophoneError) as exc:
            print(f"{prog}: error: {exc}; the results so far follow", file=stderr, flush=True)
            status = 1
        if getattr(source, "truncated", False):
            print(f"{prog}: warning: the stream ended after {source.bytes_read} of the "
                  f"{source.data_bytes} data bytes its header announced", file=stderr, flush=True)
        if getattr(source, "non_finite", 0):
            print(f"{prog}: warning: the input device sent NaN or infinite samples in "
                  f"{source.non_finite} blocks (set to 0)", file=stderr, flush=True)
        if getattr(source, "dropped", 0):
            print(f"{prog}: warning: {source.dropped} microphone blocks were dropped "
                  "(the analysis fell behind)", file=stderr, flush=True)
        for result in analyzer.finish():
            printer.item(result)
        if analyzer.total == 0:
            return error("the stream holds no audio", max(status, 1))
        # An empty timeline (the lines above gave it): marks the result as
        # windowed and keeps its weighting, as for a long file.
        printer.summary(analyzer.prediction(name, timeline=[]), analyzer.count)
    except BrokenPipeError:  # `... | head`: the reader left; not an error.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return status
    return status
