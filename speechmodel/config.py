"""The feature configuration: every parameter of the audio front end.

A ``FeatureConfig`` is data: it round-trips through JSON, is saved next to
every run and inside every model, and its ``digest()`` keys feature caches so
that a changed setting never reuses stale features.
"""

import dataclasses
import hashlib
import json

_NORMALIZATIONS = ("standard", "minmax", "none")
_MEL_SCALES = ("slaney", "htk")
_MEL_NORMS = ("slaney", None)


class JsonConfig:
    """JSON round-trip of a frozen dataclass config; unknown keys raise."""

    @classmethod
    def from_dict(cls, config):
        if isinstance(config, cls):
            return config
        if not isinstance(config, dict):
            raise ValueError(
                f"{cls.__name__}.from_dict takes a dict. "
                f"Received: {type(config).__name__}"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(
                f"{cls.__name__}: unknown keys {unknown}; known keys are "
                f"{sorted(known)}. Received: {config}"
            )
        return cls(**config)

    def to_json(self):
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class FeatureConfig(JsonConfig):
    """Three-channel log-mel segments, as in Zhang et al. (2021).

    Attributes:
        sample_rate: audio rate in Hz the features are computed at.
        n_mels: mel bands (the segment height).
        win_ms: analysis window length in ms (25 ms -> 400 samples).
        hop_ms: frame hop in ms (10 ms -> 160 samples).
        n_fft: FFT size; ``None`` is the next power of two >= the window.
        fmin, fmax: mel filterbank range in Hz; ``fmax=None`` is Nyquist.
        mel_scale: ``"slaney"`` (librosa's default) or ``"htk"``.
        mel_norm: ``"slaney"`` (area-normalised triangles, librosa's
            default) or ``None``.
        power: exponent of the magnitude spectrogram (2.0 = power).
        amin: floor before the logarithm.
        top_db: clip each utterance's log-mel to ``max - top_db`` dB;
            ``None`` disables it.
        delta_width: frames in the Savitzky-Golay window of the deltas
            (librosa's ``delta(width=9)``); odd, >= 3.
        segment_frames: frames per segment (the segment width).
        segment_hop: frames between segment starts.
        normalization: ``"standard"`` (per utterance and channel, zero mean
            and unit variance over its valid frames), ``"minmax"`` (per
            utterance and channel to [0, 1], the paper's image-style input)
            or ``"none"``.
        max_segments: keep at most this many segments of an utterance
            (``None``: keep all; long utterances are never cut by default).
    """

    sample_rate: int = 16000
    n_mels: int = 64
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int | None = None
    fmin: float = 20.0
    fmax: float | None = 8000.0
    mel_scale: str = "slaney"
    mel_norm: str | None = "slaney"
    power: float = 2.0
    amin: float = 1e-10
    top_db: float | None = 80.0
    delta_width: int = 9
    segment_frames: int = 64
    segment_hop: int = 32
    normalization: str = "standard"
    max_segments: int | None = None

    def __post_init__(self):
        def bad(name, why):
            raise ValueError(
                f"FeatureConfig: `{name}` {why}. "
                f"Received: {name}={getattr(self, name)!r}"
            )

        for name in ("sample_rate", "n_mels", "segment_frames", "segment_hop"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                bad(name, "must be a positive integer")
        if not self.win_ms > 0:
            bad("win_ms", "must be positive")
        if not self.hop_ms > 0:
            bad("hop_ms", "must be positive")
        if self.n_fft is not None and self.n_fft < self.win_length:
            bad("n_fft", f"must be >= the window ({self.win_length} samples)")
        nyquist = self.sample_rate / 2
        if self.fmax is not None and not 0 < self.fmax <= nyquist:
            bad("fmax", f"must be in (0, {nyquist}] (Nyquist)")
        if not 0 <= self.fmin < (self.fmax or nyquist):
            bad("fmin", "must be >= 0 and below fmax")
        if self.mel_scale not in _MEL_SCALES:
            bad("mel_scale", f"must be one of {_MEL_SCALES}")
        if self.mel_norm not in _MEL_NORMS:
            bad("mel_norm", f"must be one of {_MEL_NORMS}")
        if not self.power > 0:
            bad("power", "must be positive")
        if not self.amin > 0:
            bad("amin", "must be positive")
        if self.top_db is not None and not self.top_db > 0:
            bad("top_db", "must be positive or None")
        if (
            not isinstance(self.delta_width, int)
            or self.delta_width < 3
            or self.delta_width % 2 == 0
        ):
            bad("delta_width", "must be an odd integer >= 3")
        if self.normalization not in _NORMALIZATIONS:
            bad("normalization", f"must be one of {_NORMALIZATIONS}")
        if self.max_segments is not None and (
            not isinstance(self.max_segments, int) or self.max_segments <= 0
        ):
            bad("max_segments", "must be a positive integer or None")

    # Derived sizes, in samples.
    @property
    def win_length(self):
        return int(round(self.sample_rate * self.win_ms / 1000.0))

    @property
    def hop_length(self):
        return int(round(self.sample_rate * self.hop_ms / 1000.0))

    @property
    def fft_length(self):
        if self.n_fft is not None:
            return self.n_fft
        n = 1
        while n < self.win_length:
            n *= 2
        return n

    @property
    def segment_shape(self):
        return (self.segment_frames, self.n_mels, 3)

    def to_dict(self):
        return dataclasses.asdict(self)

    def digest(self):
        """A short stable hash of every parameter, for cache keys."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()[:16]


def too_short_reason(samples, config):
    """The per-file reason for a clip too short to analyse."""
    rate = config.sample_rate
    return (
        f"too short to analyse: {samples} sample{'s' if samples != 1 else ''} "
        f"({samples / rate:.4f} s) at {rate} Hz; the model needs at least "
        f"{config.win_length} samples ({config.win_length / rate:.3f} s, one "
        "analysis window)"
    )
