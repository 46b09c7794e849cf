"""Speech detection: which stretches of a stream are speech, and where the
utterances begin and end.

Two detectors share one streaming interface (``add(block)`` returns the
speech probability of every frame that the block completed; frame ``k``
starts at ``frame_start(k)`` samples):

* ``SileroVAD``: Silero VAD (MIT), a small recurrent network, run with
  onnxruntime on the ONNX file that the ``silero-vad`` wheel ships
  (``silero_vad/data/silero_vad.onnx``): nothing is downloaded and PyTorch
  is never imported (the package is located, not imported; install it with
  ``pip install --no-deps silero-vad``). Frames of 512 samples at 16 kHz
  (32 ms; 256 at 8 kHz); other rates are resampled to 16 kHz for it.
* ``VoicingVAD``: ``speechmodel.inference.VoicingDetector`` (periodicity
  of 32 ms frames every 40 ms), the dependency-free fallback: it finds
  voiced speech (vowels), so it needs a longer hangover to bridge
  consonants, and it also accepts periodic noise (music, hum).

``Segmenter`` turns frame probabilities into utterances, in bounded memory:
speech starts at a frame whose probability reaches ``threshold`` and ends
after ``min_silence`` seconds below ``neg_threshold``; utterances shorter
than ``min_speech`` are dropped, each kept one is padded by ``pad`` seconds
on both sides (never over its neighbour), and one longer than
``max_speech`` is cut at its least speech-like frame in its second half.

``make_detector("auto")`` gives Silero when onnxruntime and the model file
are there, else the voicing detector; ``speech_regions`` runs a detector
and the segmenter over a whole signal.
"""

import dataclasses
import functools
import importlib.util
import logging
import os
import threading

import numpy as np
from speechmodel.errors import Error

DETECTORS = ("auto", "silero", "voicing")
SILERO_RATE = 16000
_SILERO_FILE = os.path.join("data", "silero_vad.onnx")


class VADUnavailable(Error, RuntimeError):
    """The asked-for detector cannot run here (says what is missing)."""


def silero_model_path():
    """The ONNX file shipped in the installed ``silero-vad`` wheel, found
    without importing the package (its ``__init__`` imports torch).

    Raises:
        VADUnavailable: the package or its ONNX file is not installed.
    """
    spec = importlib.util.find_spec("silero_vad")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = os.path.join(location, _SILERO_FILE)
        if os.path.isfile(path):
            return path
    raise VADUnavailable(
        "Silero VAD is not installed: `pip install --no-deps silero-vad` "
        "(its wheel ships silero_vad/data/silero_vad.onnx) and onnxruntime"
    )


_SESSIONS = {}
_SESSIONS_LOCK = threading.Lock()


def _session(path):
    """One onnxruntime session per model file, shared by every detector
    (``run`` is thread-safe; the recurrent state is passed explicitly)."""
    with _SESSIONS_LOCK:
        if path not in _SESSIONS:
            # onnxruntime's Linux builds carry Microsoft telemetry (1DS: a
            # session file in the temporary directory, events for a remote
            # collector); off unless the user asked otherwise.
            os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
            try:
                import onnxruntime
            except ImportError as exc:
                raise VADUnavailable(
                    f"Silero VAD needs onnxruntime (`pip install onnxruntime`): {exc}"
                ) from None
            if os.environ["ORT_DISABLE_TELEMETRY"] == "1":
                onnxruntime.disable_telemetry_events()
            options = onnxruntime.SessionOptions()
            options.inter_op_num_threads = 1
            options.intra_op_num_threads = 1
            options.log_severity_level = 3
            try:
                _SESSIONS[path] = onnxruntime.InferenceSession(
                    path, sess_options=options, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # onnxruntime raises its own types.
                raise VADUnavailable(
                    f"cannot load the Silero VAD model {path} ({type(exc).__name__}: {exc})"
                ) from None
        return _SESSIONS[path]


class SileroVAD:
    """Silero VAD on a stream, block by block (see the module docstring).

    Args:
        sample_rate: the rate of the blocks given to ``add``.
        model_path: the ONNX file; default: the one in the silero-vad wheel.

    Raises:
        VADUnavailable: onnxruntime or the model file is missing.
    """

    name = "silero"

    def __init__(self, sample_rate, *, model_path=None):
        self.sample_rate = int(sample_rate)
        self.model_path = model_path or silero_model_path()
        self._session = _session(self.model_path)
        self._run_rate = self.sample_rate if self.sample_rate in (8000, 16000) else SILERO_RATE
        self._frame = 512 if self._run_rate == 16000 else 256
        self._context_size = 64 if self._run_rate == 16000 else 32
        self._resampler = None
        if self._run_rate != self.sample_rate:
            import soxr

            self._resampler = soxr.ResampleStream(
                self.sample_rate, self._run_rate, 1, dtype="float32", quality="HQ"
            )
        # One frame in the caller's samples (fractional when resampled).
        self.hop = self._frame * self.sample_rate / self._run_rate
        self.frame_seconds = self._frame / self._run_rate
        self.reset()

    def reset(self):
        self._state = np.zeros((2, 1, 128), np.float32)
        self._context = np.zeros(self._context_size, np.float32)
        self._pending = np.zeros(0, np.float32)
        self._sr = np.array(self._run_rate, np.int64)
        self.frames = 0

    def frame_start(self, k):
        """The first sample (caller's rate) of frame ``k``."""
        return int(round(k * self.hop))

    def add(self, block, *, last=False):
        """Speech probabilities (float32) of the frames completed by
        ``block``. ``last=True`` flushes the resampler (if any); a final
        partial frame is never scored."""
        block = np.asarray(block, np.float32).reshape(-1)
        if self._resampler is not None:
            block = self._resampler.resample_chunk(block, last=last)
        data = np.concatenate([self._pending, block]) if self._pending.size else block
        n = len(data) // self._frame
        out = np.empty(n, np.float32)
        for i in range(n):
            chunk = data[i * self._frame : (i + 1) * self._frame]
            x = np.concatenate([self._context, chunk])[None]
            prob, self._state = self._session.run(
                None, {"input": x, "state": self._state, "sr": self._sr}
            )
            out[i] = prob[0, 0]
            self._context = chunk[-self._context_size :]
        self._pending = data[n * self._frame :].copy()
        self.frames += n
        return out


class VoicingVAD:
    """The periodicity voicing detector as a speech detector: probability
    1 for a voiced 32 ms frame, 0 otherwise, every 40 ms. Dependency-free."""

    name = "voicing"

    def __init__(self, sample_rate, **options):
        from speechmodel.signal import VoicingDetector

        self.sample_rate = int(sample_rate)
        self._options = options
        self._detector_class = VoicingDetector
        self.reset()
        self.frame_seconds = self._detector.frame / self.sample_rate

    def reset(self):
        self._detector = self._detector_class(self.sample_rate, **self._options)
        self.hop = self._detector.hop
        self.frames = 0

    def frame_start(self, k):
        return int(k * self.hop)

    def add(self, block, *, last=False):
        del last
        self._detector.add(block)
        parts, self._detector.parts = self._detector.parts, []
        out = (np.concatenate(parts) if parts else np.zeros(0, bool)).astype(np.float32)
        self.frames += len(out)
        return out


@functools.lru_cache(maxsize=None)
def _fallback_notice():
    """Once per process: ``auto`` took the voicing detector."""
    logging.getLogger(__name__).warning(
        "Silero VAD is not installed (pip install --no-deps silero-vad): speech is detected "
        "with the voicing detector, whose utterance boundaries (and so labels) differ."
    )


def make_detector(name, sample_rate, **options):
    """A detector by name: ``silero``, ``voicing`` or ``auto`` (Silero when
    onnxruntime and its model file are installed, else voicing).

    Raises:
        VADUnavailable: ``silero`` asked for but not installed.
        ValueError: an unknown name.
    """
    if name not in DETECTORS:
        raise ValueError(f"`vad` must be one of {', '.join(DETECTORS)}. Received: vad={name!r}")
    if name in ("silero", "auto"):
        try:
            return SileroVAD(sample_rate, **options)
        except VADUnavailable:
            if name == "silero":
                raise
            _fallback_notice()
    return VoicingVAD(sample_rate)


def resolve_detector(name):
    """The detector ``make_detector(name, ...)`` would give, by name,
    checked now: ``auto`` -> ``silero`` or ``voicing``.

    Raises:
        VADUnavailable: ``silero`` asked for but not installed.
        ValueError: an unknown name.
    """
    if name not in DETECTORS:
        raise ValueError(f"`vad` must be one of {', '.join(DETECTORS)}. Received: vad={name!r}")
    if name == "voicing":
        return "voicing"
    if silero_available():
        return "silero"
    if name == "silero":
        silero_model_path()
        _session(silero_model_path())
    _fallback_notice()
    return "voicing"


def silero_available():
    try:
        path = silero_model_path()
        _session(path)
        return True
    except VADUnavailable:
        return False


# Segmenter defaults per detector: Silero's own defaults (threshold 0.5,
# 250 ms minimum speech, 30 ms pad) with a 300 ms minimum silence, and a
# longer hangover for voicing, which is silent on consonants.
SEGMENTER_DEFAULTS = {
    "silero": dict(threshold=0.5, min_speech=0.25, min_silence=0.3, pad=0.1),
    "voicing": dict(threshold=0.5, min_speech=0.2, min_silence=0.5, pad=0.15),
}


@dataclasses.dataclass
class Region:
    """An utterance: ``start``/``end`` in samples, ``speech`` the fraction
    of its frames (before padding) at or above the threshold."""

    start: int
    end: int
    speech: float


class Segmenter:
    """Frame probabilities -> utterances, streaming (see module docstring).

    Args:
        detector: gives ``frame_start(k)`` and ``sample_rate``.
        threshold: a frame at or above it starts (or continues) speech.
        neg_threshold: below it, a frame counts as silence (default
            ``threshold - 0.15``).
        min_speech, min_silence, pad, max_speech: seconds.

    ``add(probabilities)`` takes the next frames' probabilities and returns
    the utterances that ended; ``finish(total_samples)`` closes the last.
    """

    def __init__(self, detector, *, threshold=0.5, neg_threshold=None, min_speech=0.25,
                 min_silence=0.3, pad=0.1, max_speech=20.0):
        if not 0 < threshold < 1:
            raise ValueError(f"`threshold` must be in (0, 1). Received: threshold={threshold!r}")
        if not max_speech > 2 * pad + min_speech:
            raise ValueError(
                "`max_speech` must exceed `min_speech` plus twice `pad`. "
                f"Received: max_speech={max_speech!r}"
            )
        self.detector = detector
        rate = detector.sample_rate
        self.threshold = float(threshold)
        self.neg_threshold = (
            max(threshold - 0.15, 0.01) if neg_threshold is None else float(neg_threshold)
        )
        self.min_speech = int(round(min_speech * rate))
        self.min_silence = int(round(min_silence * rate))
        self.pad = int(round(pad * rate))
        self.max_speech = int(round(max_speech * rate))
        self.frame = 0  # Index of the next frame.
        self.triggered = False
        self.start_frame = 0
        self.silence_frame = None  # First frame of the current silence.
        self.probs = []  # Probabilities of the current utterance's frames.
        self.last_end = 0  # Padded end of the last emitted utterance.
        self._held = None  # An utterance waiting for its right pad to be known.

    def _at(self, k):
        return self.detector.frame_start(k)

    def _release(self, next_start, out):
        """Emits the held utterance, its right pad limited by the gap to an
        utterance starting at ``next_start`` (None: no such limit)."""
        held, self._held = self._held, None
        if held is None:
            return
        if next_start is None:
            held.end += self.pad
        else:
            held.end += min(self.pad, max(0, (next_start - held.end) // 2))
        self.last_end = held.end
        out.append(held)

    def _close(self, end_frame, out, end=None):
        n = end_frame - self.start_frame
        start = self._at(self.start_frame)
        end = self._at(end_frame) if end is None else end
        if n > 0 and end - start >= self.min_speech:
            probs = np.asarray(self.probs[:n], np.float32)
            speech = float(np.mean(probs >= self.threshold))
            # The right pad is added when the next utterance (or the end of
            # the stream, or enough silence) is known.
            self._held = Region(max(self.last_end, start - self.pad), end, speech)

    def _start(self, k, out):
        start = self._at(k)
        if self._held is not None:
            self._release(start, out)
        self.triggered = True
        self.start_frame = k
        self.silence_frame = None

    def add(self, probabilities):
        out = []
        for p in np.asarray(probabilities, np.float32):
            k = self.frame
            self.frame += 1
            if not self.triggered:
                if p >= self.threshold:
                    self._start(k, out)
                    self.probs = [p]
                elif self._held is not None and self._at(k + 1) >= self._held.end + 2 * self.pad:
                    self._release(None, out)
                continue
            self.probs.append(p)
            if p >= self.threshold:
                self.silence_frame = None
            elif p < self.neg_threshold and self.silence_frame is None:
                self.silence_frame = k
            if (
                self.silence_frame is not None
                and self._at(k + 1) - self._at(self.silence_frame) >= self.min_silence
            ):
                self._close(self.silence_frame, out)
                self.triggered = False
                self.probs = []
                continue
            if self._at(k + 1) - self._at(self.start_frame) > self.max_speech:
                if self.silence_frame is not None:  # Already in a pause: end there.
                    self._close(self.silence_frame, out)
                    self.triggered = False
                    self.probs = []
                    continue
                # Cut at the least speech-like frame of the second half; the
                # rest goes on as the next utterance from its first speech
                # frame (if any).
                n = len(self.probs)
                half = n // 2
                cut = half + int(np.argmin(self.probs[half : n - 1])) + 1 if n - 1 > half else n
                rest = np.asarray(self.probs[cut:], np.float32)
                self._close(self.start_frame + cut, out)
                speech = np.flatnonzero(rest >= self.threshold)
                if not speech.size:
                    self.triggered = False
                    self.probs = []
                    continue
                self._release(self._at(self.start_frame + cut + int(speech[0])), out)
                self.start_frame += cut + int(speech[0])
                rest = rest[int(speech[0]) :]
                self.probs = list(rest)
                last = int(np.flatnonzero(rest >= self.threshold)[-1])
                quiet = np.flatnonzero(rest[last:] < self.neg_threshold)
                self.silence_frame = self.start_frame + last + int(quiet[0]) if quiet.size else None
        return out

    def finish(self, total):
        """Closes the stream at ``total`` samples: returns the remaining
        utterances (the last one ends at most at ``total``)."""
        out = []
        if self.triggered:
            if self.silence_frame is not None:
                self._close(self.silence_frame, out, min(total, self._at(self.silence_frame)))
            else:
                self._close(self.frame, out, total)
            self.triggered = False
            self.probs = []
        if self._held is not None:
            self._release(None, out)
            self.last_end = out[-1].end = min(total, out[-1].end)
        return out

    def pending_start(self):
        """The earliest sample a not yet emitted utterance can start at
        (for callers that buffer audio)."""
        candidates = [self._at(self.frame) - self.pad]
        if self.triggered:
            candidates.append(self._at(self.start_frame) - self.pad)
        if self._held is not None:
            candidates.append(self._held.start)
        return max(0, min(candidates))


def segmenter_for(detector, **overrides):
    """A Segmenter with the detector's defaults, ``overrides`` on top."""
    options = dict(SEGMENTER_DEFAULTS.get(detector.name, SEGMENTER_DEFAULTS["silero"]))
    options.update({k: v for k, v in overrides.items() if v is not None})
    return Segmenter(detector, **options)


def frame_probabilities(waveform, detector):
    """Every frame's speech probability of a whole signal."""
    detector.reset()
    return detector.add(np.asarray(waveform, np.float32), last=True)


def speech_regions(waveform, *, sample_rate, vad="auto", block_seconds=10.0, **options):
    """Utterances of a whole signal: a list of Region (samples).

    Args:
        waveform: float 1-D.
        sample_rate: Hz.
        vad: ``auto``, ``silero`` or ``voicing``.
        block_seconds: fed in blocks of this length (the result does not
            depend on it).
        options: Segmenter options (seconds).
    """
    detector = make_detector(vad, sample_rate)
    segmenter = segmenter_for(detector, **options)
    waveform = np.asarray(waveform, np.float32).reshape(-1)
    step = max(1, int(block_seconds * sample_rate))
    regions = []
    for i in range(0, len(waveform), step):
        block = waveform[i : i + step]
        regions += segmenter.add(detector.add(block, last=i + step >= len(waveform)))
    return regions + segmenter.finish(len(waveform))
