"""Data augmentation for training, as TensorFlow ops the tf.data pipeline calls.

Everything is driven by a JSON-friendly description stored in the training
config (``training.augment``)::

    {"noise": {"p": 0.5, "snr_db": [5, 20], "kind": ["white", "pink", "brown"]},
     "speed": {"p": 0.5, "factors": [0.9, 1.0, 1.1]},
     "pitch": {"p": 0.5, "semitones": [-2, 2]},
     "specaugment": {"p": 0.8, "freq_masks": 2, "freq_width": 8,
                     "time_masks": 2, "time_width": 10},
     "mixup": {"alpha": 0.2}}

A section that is absent (or ``null``) is off; ``{}`` turns it on with the
defaults of :data:`DEFAULTS`. Unknown sections or keys and bad values raise
``ValueError`` quoting what was received. :class:`Augmentation` parses and
validates the description; ``Augmentation.from_dict(c).to_dict()`` is the
fully resolved form worth saving with a run.

Where each part runs (see ``speechmodel.pipeline.make_dataset``):

* :func:`build_waveform_augment` -> ``fn(waveform, seeds)``, per utterance on
  the 16 kHz float32 waveform, in this order: speed perturbation, pitch
  shift, additive noise (last, so that the SNR is measured against the
  signal the model hears and the noise itself is not pitch-shifted).
* :func:`build_features_augment` -> ``fn(segments, mask, seeds)``, per batch
  on the normalised three-channel log-mel segments: SpecAugment.
* :func:`apply_mixup` / :func:`mixup_batch` on the batched ``(x, labels)``
  dataset: mixup, which needs the labels and so runs after ``make_dataset``.
  The labels become soft one-hot vectors: train with
  ``keras.losses.CategoricalCrossentropy`` (not the sparse loss) and
  ``categorical_accuracy``.

Randomness is stateless: every draw comes from the ``seeds`` the pipeline
passes (new every epoch, reproducible for a run's seed), so the same seeds
always give the same output.

Costs per utterance (measured in graph mode on this project's shared
2-core CPU build machine, one RAVDESS file of 3.3 s at 16 kHz): noise (TF
ops) about 2 ms white, 7 ms pink or brown (an FFT); speed perturbation
(soxr "HQ" through ``tf.numpy_function``) about 2 ms; pitch shift (librosa's
phase vocoder + soxr through ``tf.numpy_function``) about 20 ms, i.e.
roughly 0.6 % of real time on one core. The ``numpy_function`` steps hold Python's
GIL, so they do not scale with ``num_parallel_calls``: with ``pitch.p=0.5``
an epoch of RAVDESS (1440 files) spends about 15 s of one core on it.
"""

import dataclasses
import math
import numbers
import os

import numpy as np
import tensorflow as tf

AUGMENTATIONS = ("noise", "speed", "pitch", "specaugment", "mixup")
NOISE_KINDS = ("white", "pink", "brown")
# Spectral exponent of each colour: power spectral density ~ 1 / f**beta.
_NOISE_BETA = {"white": 0.0, "pink": 1.0, "brown": 2.0}
# Below this frequency the coloured spectra are flat: the mel filterbank
# starts at 20 Hz, and a 1/f**2 slope down to the lowest FFT bin would put
# nearly all the noise power in an inaudible drift the features never see.
COLORED_NOISE_FLOOR_HZ = 20.0
# At most this many samples of noise files are held in memory (512 MB).
MAX_NOISE_SAMPLES = 2**27
# Distinguishes mixup's per-batch seeds from the pipeline's (draw, index).
_MIXUP_SALT = -0x6D6978

DEFAULTS = {
    "noise": {"p": 0.5, "snr_db": [5.0, 20.0], "kind": list(NOISE_KINDS), "noise_files": None},
    "speed": {"p": 0.5, "factors": [0.9, 1.0, 1.1]},
    "pitch": {"p": 0.5, "semitones": [-2.0, 2.0]},
    "specaugment": {"p": 0.8, "freq_masks": 2, "freq_width": 8, "time_masks": 2, "time_width": 10},
    "mixup": {"alpha": 0.2, "p": 1.0},
}


# --------------------------------------------------------------------------
# Validation helpers: one error type, the value quoted.


def _fail(section, name, value, why):
    where = f"augment.{section}" if section else "augment"
    raise ValueError(f"{where}: `{name}` {why}. Received: {name}={value!r}")


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _probability(section, value, name="p"):
    if not _is_number(value) or not 0.0 <= float(value) <= 1.0:
        _fail(section, name, value, "must be a number in [0, 1]")
    return float(value)


def _range(section, name, value, low, high):
    """A number or a ``[low, high]`` pair within [low, high] -> [a, b]."""
    if _is_number(value):
        pair = [value, value]
    elif (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(_is_number(v) for v in value)
    ):
        pair = list(value)
    else:
        _fail(section, name, value, "must be a number or a [low, high] pair of numbers")
    a, b = float(pair[0]), float(pair[1])
    if not (math.isfinite(a) and math.isfinite(b)):
        _fail(section, name, value, "must be finite")
    if a > b:
        _fail(section, name, value, "must be [low, high] with low <= high")
    if a < low or b > high:
        _fail(section, name, value, f"must lie within [{low}, {high}]")
    return [a, b]


def _count(section, name, value):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
        _fail(section, name, value, "must be a non-negative integer")
    return int(value)


def _check_keys(section, given, known):
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(
            f"augment.{section}: unknown keys {unknown}; known keys are "
            f"{sorted(known)}. Received: {section}={given!r}"
        )


# --------------------------------------------------------------------------
# The description.


@dataclasses.dataclass(frozen=True)
class NoiseSettings:
    """Additive noise at an SNR drawn uniformly in ``snr_db`` (dB).

    Attributes:
        p: probability that an utterance gets noise.
        snr_db: ``[low, high]`` in dB (a single number is a fixed SNR).
        kind: coloured noises generated in TF, each drawn with equal
            probability: ``"white"``, ``"pink"`` (1/f) and ``"brown"``
            (1/f**2), the slopes flattened below 20 Hz.
        noise_files: optional paths of recorded noise. When given, "a file"
            is one more choice next to the ``kind`` colours (its default
            ``kind`` is then ``[]``: files only); a file is picked uniformly
            and a random excerpt of the utterance's length is mixed (looped
            when the file is shorter).
    """

    p: float = 0.5
    snr_db: tuple = (5.0, 20.0)
    kind: tuple = NOISE_KINDS
    noise_files: tuple | None = None

    @classmethod
    def from_dict(cls, config):
        _check_keys("noise", config, DEFAULTS["noise"])
        p = _probability("noise", config.get("p", DEFAULTS["noise"]["p"]))
        snr = _range("noise", "snr_db", config.get("snr_db", DEFAULTS["noise"]["snr_db"]), -50.0, 100.0)
        files = config.get("noise_files")
        if files is not None:
            if isinstance(files, (str, bytes, os.PathLike)) or not isinstance(files, (list, tuple)):
                _fail("noise", "noise_files", files, "must be a list of file paths")
            if not files or not all(isinstance(f, (str, os.PathLike)) for f in files):
                _fail("noise", "noise_files", files, "must be a non-empty list of file paths")
            files = tuple(os.fspath(f) for f in files)
        kind = config.get("kind", [] if files else list(NOISE_KINDS))
        if isinstance(kind, str):
            kind = [kind]
        if not isinstance(kind, (list, tuple)) or any(k not in NOISE_KINDS for k in kind):
            _fail("noise", "kind", config.get("kind"), f"must be one or a list of {list(NOISE_KINDS)}")
        if not kind and not files:
            _fail("noise", "kind", config.get("kind"), "must name a colour when no noise_files are given")
        return cls(p=p, snr_db=tuple(snr), kind=tuple(kind), noise_files=files)

    def to_dict(self):
        return {
            "p": self.p,
            "snr_db": list(self.snr_db),
            "kind": list(self.kind),
            "noise_files": list(self.noise_files) if self.noise_files else None,
        }


@dataclasses.dataclass(frozen=True)
class SpeedSettings:
    """Speed perturbation: resampling by a factor drawn from ``factors``.

    A factor ``f`` plays the utterance ``f`` times faster: the length
    becomes ``n / f`` samples and every frequency is multiplied by ``f``
    (Kaldi-style 3-way perturbation with the defaults).
    """

    p: float = 0.5
    factors: tuple = (0.9, 1.0, 1.1)

    @classmethod
    def from_dict(cls, config):
        _check_keys("speed", config, DEFAULTS["speed"])
        p = _probability("speed", config.get("p", DEFAULTS["speed"]["p"]))
        factors = config.get("factors", DEFAULTS["speed"]["factors"])
        if _is_number(factors):
            factors = [factors]
        if (
            not isinstance(factors, (list, tuple))
            or not factors
            or not all(_is_number(f) and 0.5 <= float(f) <= 2.0 for f in factors)
        ):
            _fail("speed", "factors", factors, "must be a non-empty list of numbers in [0.5, 2]")
        return cls(p=p, factors=tuple(float(f) for f in factors))

    def to_dict(self):
        return {"p": self.p, "factors": list(self.factors)}


@dataclasses.dataclass(frozen=True)
class PitchSettings:
    """Pitch shift by a number of semitones drawn uniformly in
    ``semitones``, keeping the duration (librosa's phase vocoder)."""

    p: float = 0.5
    semitones: tuple = (-2.0, 2.0)

    @classmethod
    def from_dict(cls, config):
        _check_keys("pitch", config, DEFAULTS["pitch"])
        p = _probability("pitch", config.get("p", DEFAULTS["pitch"]["p"]))
        semitones = _range("pitch", "semitones", config.get("semitones", DEFAULTS["pitch"]["semitones"]), -12.0, 12.0)
        return cls(p=p, semitones=tuple(semitones))

    def to_dict(self):
        return {"p": self.p, "semitones": list(self.semitones)}


@dataclasses.dataclass(frozen=True)
class SpecAugmentSettings:
    """SpecAugment masks on the log-mel segments (see :func:`spec_augment`)."""

    p: float = 0.8
    freq_masks: int = 2
    freq_width: int = 8
    time_masks: int = 2
    time_width: int = 10

    @classmethod
    def from_dict(cls, config):
        _check_keys("specaugment", config, DEFAULTS["specaugment"])
        d = DEFAULTS["specaugment"]
        return cls(
            p=_probability("specaugment", config.get("p", d["p"])),
            freq_masks=_count("specaugment", "freq_masks", config.get("freq_masks", d["freq_masks"])),
            freq_width=_count("specaugment", "freq_width", config.get("freq_width", d["freq_width"])),
            time_masks=_count("specaugment", "time_masks", config.get("time_masks", d["time_masks"])),
            time_width=_count("specaugment", "time_width", config.get("time_width", d["time_width"])),
        )

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class MixupSettings:
    """Mixup (Zhang et al., 2018): ``lambda ~ Beta(alpha, alpha)`` per
    example; ``p`` is the fraction of examples that get mixed."""

    alpha: float = 0.2
    p: float = 1.0

    @classmethod
    def from_dict(cls, config):
        _check_keys("mixup", config, DEFAULTS["mixup"])
        alpha = config.get("alpha", DEFAULTS["mixup"]["alpha"])
        if not _is_number(alpha) or not 0.0 < float(alpha) < math.inf:
            _fail("mixup", "alpha", alpha, "must be a positive number")
        return cls(alpha=float(alpha), p=_probability("mixup", config.get("p", DEFAULTS["mixup"]["p"])))

    def to_dict(self):
        return dataclasses.asdict(self)


_SETTINGS = {
    "noise": NoiseSettings,
    "speed": SpeedSettings,
    "pitch": PitchSettings,
    "specaugment": SpecAugmentSettings,
    "mixup": MixupSettings,
}


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """The validated augmentation description of a training run.

    Each attribute is the settings of one augmentation, or ``None`` when
    it is off. Build it with :meth:`from_dict` from the JSON form.
    """

    noise: NoiseSettings | None = None
    speed: SpeedSettings | None = None
    pitch: PitchSettings | None = None
    specaugment: SpecAugmentSettings | None = None
    mixup: MixupSettings | None = None

    @classmethod
    def from_dict(cls, config):
        """Parses ``{"noise": {...}, ...}``; ``None`` or ``{}`` is no
        augmentation. A section set to ``null`` is off, ``{}`` is on with
        the defaults.

        Raises:
            ValueError: unknown sections or keys, or bad values.
        """
        if isinstance(config, cls):
            return config
        if config is None:
            return cls()
        if not isinstance(config, dict):
            raise ValueError(
                "The augmentation config must be a dict of sections "
                f"{list(AUGMENTATIONS)}. Received: {config!r}"
            )
        unknown = sorted(set(config) - set(AUGMENTATIONS))
        if unknown:
            raise ValueError(
                f"augment: unknown augmentations {unknown}; known ones are "
                f"{list(AUGMENTATIONS)}. Received: {unknown[0]}={config[unknown[0]]!r}"
            )
        sections = {}
        for name, value in config.items():
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ValueError(
                    f"augment.{name} must be a dict of settings (or null to turn "
                    f"it off). Received: {name}={value!r}"
                )
            sections[name] = _SETTINGS[name].from_dict(value)
        return cls(**sections)

    def to_dict(self):
        """The resolved JSON form, every default filled in; off sections
        are left out."""
        return {
            name: getattr(self, name).to_dict()
            for name in AUGMENTATIONS
            if getattr(self, name) is not None
        }

    @property
    def active(self):
        """Names of the sections that change anything (``p > 0``)."""
        out = []
        for name in AUGMENTATIONS:
            settings = getattr(self, name)
            if settings is not None and settings.p > 0:
                out.append(name)
        return out


# --------------------------------------------------------------------------
# Waveform operations.


def _seed(seed):
    """An int, a pair, or a (2,) tensor -> an int64 (2,) stateless seed."""
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return tf.constant([int(seed), 0], tf.int64)
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    if seed.shape.rank is not None and seed.shape.as_list() not in ([2], [None]):
        raise ValueError(f"A seed is an int or a (2,) tensor. Received: seed shape={seed.shape}")
    return tf.reshape(seed, [2])


def colored_noise(num_samples, *, kind, seed, sample_rate=16000):
    """Gaussian noise of unit power with a 1/f**beta power spectrum.

    Args:
        num_samples: length (int or scalar tensor).
        kind: ``"white"`` (beta 0), ``"pink"`` (beta 1) or ``"brown"``
            (beta 2). The slopes are flat below 20 Hz and the DC is zero
            for pink and brown.
        seed: stateless seed (int or int (2,) tensor).
        sample_rate: in Hz, for the 20 Hz floor.

    Returns:
        float32 (num_samples,) with mean square 1.
    """
    if kind not in NOISE_KINDS:
        raise ValueError(f"`kind` must be one of {list(NOISE_KINDS)}. Received: kind={kind!r}")
    n = tf.cast(num_samples, tf.int32)
    white = tf.random.stateless_normal([n], _seed(seed))
    beta = _NOISE_BETA[kind]
    if beta == 0.0:
        noise = white
    else:
        spectrum = tf.signal.rfft(white, fft_length=[n])
        bins = tf.range(n // 2 + 1, dtype=tf.float32)
        freq = bins * float(sample_rate) / tf.cast(tf.maximum(n, 1), tf.float32)
        gain = tf.pow(tf.maximum(freq, COLORED_NOISE_FLOOR_HZ), -beta / 2.0)
        gain = tf.where(bins > 0, gain, 0.0)
        noise = tf.signal.irfft(spectrum * tf.cast(gain, tf.complex64), fft_length=[n])
    power = tf.reduce_mean(tf.square(noise))
    return noise * tf.math.rsqrt(tf.maximum(power, 1e-30))


def mix_at_snr(waveform, noise, *, snr_db):
    """``waveform + g * noise`` with ``g`` set so that the added noise has
    ``snr_db`` dB less power than the waveform (mean squares over the whole
    utterance). A silent waveform (power 0) is returned unchanged, as is
    everything when the noise is silent.

    Args:
        waveform: float32 (samples,).
        noise: float32 (samples,).
        snr_db: scalar, in dB.
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    noise = tf.convert_to_tensor(noise, tf.float32)
    signal_power = tf.reduce_mean(tf.square(waveform))
    noise_power = tf.reduce_mean(tf.square(noise))
    target = signal_power * tf.pow(10.0, -tf.cast(snr_db, tf.float32) / 10.0)
    gain = tf.where(
        (signal_power > 0) & (noise_power > 0),
        tf.sqrt(target / tf.maximum(noise_power, 1e-30)),
        0.0,
    )
    return waveform + gain * noise


def _np_speed(y, factor):
    import soxr

    factor = float(factor)
    y = np.asarray(y, np.float32)
    if factor == 1.0 or y.size == 0:
        return y
    return soxr.resample(y, factor, 1.0, quality="HQ").astype(np.float32, copy=False)


def speed_perturb(waveform, *, factor):
    """Plays ``waveform`` ``factor`` times faster by resampling it (soxr
    "HQ", band-limited): ``n`` samples become ``round(n / factor)`` and every
    frequency is multiplied by ``factor``. A TF op (``tf.numpy_function``).

    Args:
        waveform: float32 (samples,).
        factor: scalar > 0 (float or tensor).
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    if _is_number(factor) and not factor > 0:
        raise ValueError(f"`factor` must be positive. Received: factor={factor!r}")
    out = tf.numpy_function(
        _np_speed, [waveform, tf.cast(factor, tf.float64)], tf.float32, stateful=False
    )
    out.set_shape([None])
    return out


def _pitch_fft(sample_rate):
    """The phase vocoder's FFT: the power of two nearest 64 ms (1024 at
    16 kHz), long enough to resolve the harmonics of a low voice."""
    return int(2 ** round(math.log2(0.064 * sample_rate)))


def _np_pitch(y, semitones, sample_rate):
    import librosa

    semitones, sample_rate = float(semitones), int(sample_rate)
    y = np.asarray(y, np.float32)
    if semitones == 0.0 or y.size == 0:
        return y
    n_fft = _pitch_fft(sample_rate)
    n = y.size
    padded = np.pad(y, (0, max(0, n_fft - n)))
    out = librosa.effects.pitch_shift(
        padded, sr=sample_rate, n_steps=semitones, n_fft=n_fft,
        hop_length=n_fft // 4, res_type="soxr_hq",
    )
    return np.ascontiguousarray(out[:n], dtype=np.float32)


def pitch_shift(waveform, *, semitones, sample_rate=16000):
    """Shifts the pitch by ``semitones`` keeping the length: librosa's
    ``effects.pitch_shift`` (phase-vocoder time stretch, then soxr
    resampling), FFT of 64 ms, hop of a quarter of it. A TF op
    (``tf.numpy_function``); about 20 ms for 3.3 s of 16 kHz audio.

    Args:
        waveform: float32 (samples,).
        semitones: scalar (float or tensor); positive is higher.
        sample_rate: in Hz.
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    out = tf.numpy_function(
        _np_pitch,
        [waveform, tf.cast(semitones, tf.float64), tf.constant(int(sample_rate), tf.int64)],
        tf.float32,
        stateful=False,
    )
    out.set_shape(waveform.shape)
    return out


def _load_noise_bank(files, sample_rate):
    from speechmodel.audio import load_audio

    clips = []
    total = 0
    for path in files:
        clip = load_audio(path, sample_rate=sample_rate)  # AudioError names the file
        if not np.any(clip):
            raise ValueError(
                f"{path}: the noise file is silent (all samples are zero). "
                f"Received: noise_files=[..., {path!r}, ...]"
            )
        total += clip.size
        if total > MAX_NOISE_SAMPLES:
            raise ValueError(
                f"augment.noise: the noise files hold more than {MAX_NOISE_SAMPLES} "
                f"samples at {sample_rate} Hz (kept in memory); pass fewer or "
                f"shorter files. Received: {len(files)} noise_files, over the limit at {path}"
            )
        clips.append(clip)
    lengths = np.array([c.size for c in clips], np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return np.concatenate(clips).astype(np.float32), offsets, lengths


def _file_noise(bank, offsets, lengths, n, seed):
    """A random excerpt of ``n`` samples from a random file (looped)."""
    keys = tf.random.experimental.stateless_split(seed, num=2)
    which = tf.random.stateless_uniform(
        [], keys[0], minval=0, maxval=lengths.shape[0], dtype=tf.int64
    )
    length = tf.gather(lengths, which)
    start = tf.random.stateless_uniform(
        [], keys[1], minval=0, maxval=tf.int64.max, dtype=tf.int64
    ) % length
    index = tf.gather(offsets, which) + (start + tf.range(tf.cast(n, tf.int64))) % length
    return tf.gather(bank, index)


def _gate(p, key, apply, waveform):
    """``apply(waveform, key')`` with probability ``p``, else ``waveform``."""
    keys = tf.random.experimental.stateless_split(key, num=2)
    if p >= 1.0:
        return apply(waveform, keys[1])
    hit = tf.random.stateless_uniform([], keys[0]) < p
    return tf.cond(hit, lambda: apply(waveform, keys[1]), lambda: tf.identity(waveform))


def build_waveform_augment(config, *, sample_rate=16000):
    """The per-utterance waveform augmentation of a description.

    Args:
        config: a dict as in the module docstring (or an Augmentation).
            Only ``noise``, ``speed`` and ``pitch`` are used here; the
            other sections are validated and left to their builders.
        sample_rate: the waveform's rate in Hz (the features' rate).

    Returns:
        ``fn(waveform, seeds) -> waveform`` (float32 (samples,), int64 (2,)
        seeds; TF ops, usable in ``tf.data`` maps), or ``None`` when no
        waveform augmentation has ``p > 0``. Speed perturbation changes
        the length; the others keep it.

    Raises:
        ValueError: a bad description; AudioError: a noise file that cannot
            be read (the message names it).
    """
    aug = Augmentation.from_dict(config)
    if not isinstance(sample_rate, numbers.Integral) or sample_rate <= 0:
        raise ValueError(f"`sample_rate` must be a positive integer. Received: sample_rate={sample_rate!r}")
    steps = []
    if aug.speed is not None and aug.speed.p > 0 and any(f != 1.0 for f in aug.speed.factors):
        factors = tf.constant(aug.speed.factors, tf.float32)

        def speed(waveform, key):
            pick = tf.random.stateless_uniform(
                [], key, minval=0, maxval=len(aug.speed.factors), dtype=tf.int32
            )
            factor = tf.gather(factors, pick)
            return tf.cond(
                tf.equal(factor, 1.0),
                lambda: tf.identity(waveform),
                lambda: speed_perturb(waveform, factor=factor),
            )

        steps.append((aug.speed.p, speed))
    if aug.pitch is not None and aug.pitch.p > 0 and aug.pitch.semitones != (0.0, 0.0):
        low, high = aug.pitch.semitones

        def pitch(waveform, key):
            if low == high:
                semitones = tf.constant(low, tf.float32)
            else:
                semitones = tf.random.stateless_uniform([], key, minval=low, maxval=high)
            return pitch_shift(waveform, semitones=semitones, sample_rate=sample_rate)

        steps.append((aug.pitch.p, pitch))
    if aug.noise is not None and aug.noise.p > 0:
        kinds = list(aug.noise.kind)
        sources = [
            (lambda n, key, kind=kind: colored_noise(n, kind=kind, seed=key, sample_rate=sample_rate))
            for kind in kinds
        ]
        if aug.noise.noise_files:
            bank, offsets, lengths = _load_noise_bank(aug.noise.noise_files, sample_rate)
            bank, offsets, lengths = tf.constant(bank), tf.constant(offsets), tf.constant(lengths)
            sources.append(lambda n, key: _file_noise(bank, offsets, lengths, n, key))
        low, high = aug.noise.snr_db

        def noise(waveform, key):
            keys = tf.random.experimental.stateless_split(key, num=3)
            if low == high:
                snr = tf.constant(low, tf.float32)
            else:
                snr = tf.random.stateless_uniform([], keys[0], minval=low, maxval=high)
            n = tf.shape(waveform)[0]
            if len(sources) == 1:
                added = sources[0](n, keys[2])
            else:
                pick = tf.random.stateless_uniform(
                    [], keys[1], minval=0, maxval=len(sources), dtype=tf.int32
                )
                added = tf.switch_case(
                    pick, [lambda s=s: s(n, keys[2]) for s in sources]
                )
            return mix_at_snr(waveform, added, snr_db=snr)

        steps.append((aug.noise.p, noise))
    if not steps:
        return None

    def waveform_augment(waveform, seeds):
        waveform = tf.convert_to_tensor(waveform, tf.float32)
        keys = tf.random.experimental.stateless_split(_seed(seeds), num=len(steps))
        for k, (p, step) in enumerate(steps):
            waveform = _gate(p, keys[k], step, waveform)
        return waveform

    return waveform_augment


# --------------------------------------------------------------------------
# Feature operations.


def _mask_rows(starts, widths, active, length):
    """(B, K) intervals [start, start + width) -> bool (B, length): frames
    covered by an active interval (a +1/-1 difference array, summed)."""
    b = tf.shape(starts)[0]
    size = length + 1
    row = tf.range(b)[:, tf.newaxis] * size
    weight = tf.cast(active, tf.int32)
    ends = tf.minimum(starts + widths, length)
    index = tf.concat([tf.reshape(row + starts, [-1]), tf.reshape(row + ends, [-1])], 0)
    delta = tf.concat([tf.reshape(weight, [-1]), -tf.reshape(weight, [-1])], 0)
    diff = tf.math.unsorted_segment_sum(delta, index, b * size)
    covered = tf.cumsum(tf.reshape(diff, [b, size]), axis=1) > 0
    return covered[:, :length]


def spec_augment(
    segments,
    mask,
    seeds,
    *,
    freq_masks=2,
    freq_width=8,
    time_masks=2,
    time_width=10,
    segment_hop=32,
    p=1.0,
):
    """SpecAugment masks (Park et al., 2019) on batches of segments.

    For each utterance, with probability ``p``:

    * ``freq_masks`` frequency masks, each of ``w ~ U{0..freq_width}`` mel
      bands starting at ``f0 ~ U{0..n_mels - w}``: the same bands in all
      its segments and channels;
    * time masks on the utterance's own timeline: frame ``j`` of segment
      ``k`` is utterance frame ``k * segment_hop + j``, so a masked frame is
      masked in every segment that holds it (segments overlap). There are
      ``time_masks`` masks per valid segment (long and short utterances are
      masked in the same proportion), each of ``w ~ U{0..time_width}``
      frames starting uniformly within the utterance's segment span.

    Masked values are set to 0, the utterance mean after ``standard``
    normalisation. Padded segments (``mask`` False) are left as they are
    (all zeros from the pipeline). Each utterance's masks depend only on
    its own seed, so the same seeds give the same output.

    Args:
        segments: float (B, N, frames, n_mels, channels).
        mask: bool (B, N), True for valid segments.
        seeds: int (B, 2) stateless seeds, one per utterance.
        freq_masks, freq_width, time_masks, time_width: as above.
        segment_hop: frames between segment starts (the FeatureConfig's).
        p: probability that an utterance is masked.

    Returns:
        The masked segments, same shape and dtype.
    """
    for name, value in (
        ("freq_masks", freq_masks), ("freq_width", freq_width),
        ("time_masks", time_masks), ("time_width", time_width),
    ):
        _count("specaugment", name, value)
    if not isinstance(segment_hop, numbers.Integral) or segment_hop <= 0:
        raise ValueError(f"`segment_hop` must be a positive integer. Received: segment_hop={segment_hop!r}")
    p = _probability("specaugment", p)
    segments = tf.convert_to_tensor(segments)
    mask = tf.cast(tf.convert_to_tensor(mask), tf.bool)
    if segments.shape.rank != 5:
        raise ValueError(
            "`segments` must be (batch, segments, frames, n_mels, channels). "
            f"Received: shape={segments.shape}"
        )
    frames, n_mels = segments.shape[2], segments.shape[3]
    if n_mels is not None and freq_width > n_mels:
        _fail("specaugment", "freq_width", freq_width, f"must be <= the {n_mels} mel bands")
    if frames is not None and time_width > frames:
        _fail("specaugment", "time_width", time_width, f"must be <= the {frames} frames of a segment")
    if p == 0 or (freq_masks * freq_width == 0 and time_masks * time_width == 0):
        return segments
    frames = frames if frames is not None else tf.shape(segments)[2]
    n_mels = n_mels if n_mels is not None else tf.shape(segments)[3]
    seeds = tf.reshape(tf.cast(seeds, tf.int64), [-1, 2])
    num = tf.shape(segments)[1]
    k_time = time_masks * num
    counts = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)  # (B,)
    span = (counts - 1) * segment_hop + frames  # (B,) frames of the timeline
    timeline = (num - 1) * segment_hop + frames

    def draw(seed):
        keys = tf.random.experimental.stateless_split(seed, num=5)
        return (
            tf.random.stateless_uniform([], keys[0]),
            tf.random.stateless_uniform([freq_masks], keys[1], minval=0, maxval=freq_width + 1, dtype=tf.int32),
            tf.random.stateless_uniform([freq_masks], keys[2]),
            tf.random.stateless_uniform([k_time], keys[3], minval=0, maxval=time_width + 1, dtype=tf.int32),
            tf.random.stateless_uniform([k_time], keys[4]),
        )

    gate, f_width, f_start, t_width, t_start = tf.map_fn(
        draw,
        seeds,
        fn_output_signature=(
            tf.TensorSpec([], tf.float32),
            tf.TensorSpec([freq_masks], tf.int32),
            tf.TensorSpec([freq_masks], tf.float32),
            tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([None], tf.float32),
        ),
    )
    hit = gate < p  # (B,)
    f_start = tf.cast(tf.floor(f_start * tf.cast(n_mels - f_width + 1, tf.float32)), tf.int32)
    f_start = tf.minimum(f_start, n_mels - f_width)
    bands = _mask_rows(f_start, f_width, tf.ones_like(f_width, tf.bool), n_mels)  # (B, F)
    room = tf.maximum(span[:, tf.newaxis] - t_width + 1, 1)
    t_start = tf.minimum(
        tf.cast(tf.floor(t_start * tf.cast(room, tf.float32)), tf.int32), room - 1
    )
    active = tf.range(k_time)[tf.newaxis, :] < time_masks * counts[:, tf.newaxis]
    times = _mask_rows(t_start, t_width, active, timeline)  # (B, timeline)
    index = (
        tf.range(num)[:, tf.newaxis] * segment_hop + tf.range(frames)[tf.newaxis, :]
    )  # (N, frames)
    seg_times = tf.gather(times, index, axis=1)  # (B, N, frames)
    masked = seg_times[:, :, :, tf.newaxis] | bands[:, tf.newaxis, tf.newaxis, :]
    masked &= (hit[:, tf.newaxis] & mask)[:, :, tf.newaxis, tf.newaxis]
    return tf.where(masked[..., tf.newaxis], tf.zeros([], segments.dtype), segments)


def build_features_augment(config, *, feature_config=None):
    """The per-batch feature augmentation (SpecAugment) of a description.

    Args:
        config: a dict as in the module docstring (or an Augmentation);
            only ``specaugment`` is used here.
        feature_config: the FeatureConfig of the segments (default
            ``FeatureConfig()``): its ``segment_hop`` places the time masks,
            and the mask widths are checked against its sizes.

    Returns:
        ``fn(segments, mask, seeds) -> segments`` (see :func:`spec_augment`)
        or ``None`` when SpecAugment is off or has ``p == 0``.
    """
    from speechmodel.config import FeatureConfig

    aug = Augmentation.from_dict(config)
    feature_config = FeatureConfig.from_dict(feature_config or FeatureConfig())
    s = aug.specaugment
    if s is None or s.p == 0 or (s.freq_masks * s.freq_width == 0 and s.time_masks * s.time_width == 0):
        return None
    if s.freq_width > feature_config.n_mels:
        _fail("specaugment", "freq_width", s.freq_width, f"must be <= n_mels={feature_config.n_mels}")
    if s.time_width > feature_config.segment_frames:
        _fail(
            "specaugment", "time_width", s.time_width,
            f"must be <= segment_frames={feature_config.segment_frames}",
        )
    kwargs = dict(s.to_dict(), segment_hop=feature_config.segment_hop)

    def features_augment(segments, mask, seeds):
        return spec_augment(segments, mask, seeds, **kwargs)

    return features_augment


# --------------------------------------------------------------------------
# Mixup.


def mixup_batch(x, y, *, alpha, num_classes, seed, p=1.0):
    """Mixes pairs of utterances within a batch (mixup, Zhang et al. 2018).

    Each example ``i`` is paired with ``j = perm[i]`` (a random permutation
    of the batch) and ``lambda_i ~ Beta(alpha, alpha)``: labels become
    ``lambda_i * onehot(y_i) + (1 - lambda_i) * onehot(y_j)``; segments
    where both utterances are valid become ``lambda_i * x_i + (1 -
    lambda_i) * x_j``, segments valid in only one are kept as they are, and
    the mask is the OR of the pair's masks. With ``p < 1`` an example is
    mixed with probability ``p`` and otherwise left as it is (hard one-hot).

    The labels are soft: train with ``keras.losses.CategoricalCrossentropy``
    and ``categorical_accuracy``, not their sparse versions.

    Args:
        x: ``{"segments": (B, N, frames, n_mels, C), "mask": bool (B, N)}``.
        y: int (B,) class indices in ``[0, num_classes)``.
        alpha: Beta parameter, > 0 (small: mostly light mixing).
        num_classes: number of classes.
        seed: stateless seed (int or int (2,) tensor).
        p: probability that an example is mixed.

    Returns:
        ``({"segments", "mask"}, float32 (B, num_classes))``.
    """
    if not _is_number(alpha) or not float(alpha) > 0:
        raise ValueError(f"`alpha` must be a positive number. Received: alpha={alpha!r}")
    if not isinstance(num_classes, numbers.Integral) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"`num_classes` must be a positive integer. Received: num_classes={num_classes!r}")
    p = _probability("mixup", p)
    if not isinstance(x, dict) or set(x) != {"segments", "mask"}:
        raise ValueError(
            "`x` must be a dict with keys 'segments' and 'mask'. "
            f"Received: x={type(x).__name__} with keys {sorted(x) if isinstance(x, dict) else None}"
        )
    segments = tf.convert_to_tensor(x["segments"])
    mask = tf.cast(tf.convert_to_tensor(x["mask"]), tf.bool)
    y = tf.convert_to_tensor(y)
    if not y.dtype.is_integer:
        raise ValueError(
            "`y` must be integer class indices (mixup makes the soft labels). "
            f"Received: y dtype={y.dtype.name}"
        )
    if y.shape.rank != 1:
        raise ValueError(f"`y` must be 1-D (batch,). Received: y shape={y.shape}")
    checks = []
    if tf.executing_eagerly():
        values = y.numpy()
        bad = values[(values < 0) | (values >= num_classes)]
        if bad.size:
            raise ValueError(
                f"Labels must lie in [0, {num_classes}) for num_classes={num_classes}. "
                f"Received: y={values.tolist()}"
            )
    else:
        checks = [
            tf.debugging.assert_non_negative(y, message="mixup: labels must be >= 0"),
            tf.debugging.assert_less(
                y, tf.cast(num_classes, y.dtype),
                message=f"mixup: labels must be < num_classes={num_classes}",
            ),
        ]
    with tf.control_dependencies(checks):
        y = tf.identity(y)
    keys = tf.random.experimental.stateless_split(_seed(seed), num=4)
    b = tf.shape(y)[0]
    perm = tf.argsort(tf.random.stateless_uniform([b], keys[0]))
    g1 = tf.random.stateless_gamma([b], keys[1], alpha=float(alpha))
    g2 = tf.random.stateless_gamma([b], keys[2], alpha=float(alpha))
    total = g1 + g2
    # Both gammas can underflow to 0 for a tiny alpha: Beta is then ~{0, 1}.
    lam = tf.where(total > 0, g1 / tf.maximum(total, 1e-30), tf.cast(g1 >= g2, tf.float32))
    if p < 1.0:
        chosen = tf.random.stateless_uniform([b], keys[3]) < p
        perm = tf.where(chosen, perm, tf.range(b))
        lam = tf.where(chosen, lam, 1.0)
    onehot = tf.one_hot(y, num_classes, dtype=tf.float32)
    soft = lam[:, tf.newaxis] * onehot + (1.0 - lam[:, tf.newaxis]) * tf.gather(onehot, perm)
    other = tf.gather(segments, perm)
    other_mask = tf.gather(mask, perm)
    weight = tf.cast(lam, segments.dtype)[:, tf.newaxis, tf.newaxis, tf.newaxis, tf.newaxis]
    both = (mask & other_mask)[:, :, tf.newaxis, tf.newaxis, tf.newaxis]
    only_other = (other_mask & ~mask)[:, :, tf.newaxis, tf.newaxis, tf.newaxis]
    mixed = tf.where(
        both,
        weight * segments + (1 - weight) * other,
        tf.where(only_other, other, segments),
    )
    return {"segments": mixed, "mask": mask | other_mask}, soft


def apply_mixup(dataset, *, alpha, num_classes, seed=0, p=1.0, epoch=None):
    """Maps :func:`mixup_batch` over a batched ``(x, labels)`` dataset.

    Each batch gets a fresh stateless seed per epoch, reproducible for
    ``seed`` (like ``make_dataset``'s augmentations). Apply it to the
    training set only, and compile the model with
    ``keras.losses.CategoricalCrossentropy`` on the soft labels.

    Args:
        dataset: elements ``({"segments", "mask"}, int labels (B,))``, e.g.
            ``make_dataset(paths, labels, training=True)``.
        alpha, num_classes, p: as :func:`mixup_batch`.
        seed: int.
        epoch: optional ``speechmodel.pipeline.EpochCounter`` (the one
            given to ``make_dataset``): the seed of batch ``b`` of a pass is
            then a pure function of ``(seed, epoch, b)``, so a resumed run
            mixes the same pairs as an uninterrupted one.

    Returns:
        tf.data.Dataset of ``({"segments", "mask"}, float32 (B, num_classes))``.
    """
    spec = dataset.element_spec
    if (
        not isinstance(spec, tuple)
        or len(spec) != 2
        or not isinstance(spec[0], dict)
        or set(spec[0]) != {"segments", "mask"}
    ):
        raise ValueError(
            "apply_mixup needs a batched dataset of (x, labels) with x = "
            "{'segments', 'mask'} (make_dataset with labels, without "
            f"with_index). Received: element_spec={spec}"
        )
    # Validate the scalar arguments now rather than inside the map.
    if not _is_number(alpha) or not float(alpha) > 0:
        raise ValueError(f"`alpha` must be a positive number. Received: alpha={alpha!r}")
    if not isinstance(num_classes, numbers.Integral) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"`num_classes` must be a positive integer. Received: num_classes={num_classes!r}")
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        raise ValueError(f"`seed` must be an integer. Received: seed={seed!r}")
    p = _probability("mixup", p)
    if epoch is not None:
        from speechmodel import pipeline

        def one_pass(number):
            key = pipeline.pass_seed(seed, number, _MIXUP_SALT)
            return dataset.enumerate().map(
                lambda b, element: (element, tf.bitwise.bitwise_xor(key, b))
            )

        ds = pipeline.epoch_numbers(epoch).flat_map(one_pass)
    else:
        draws = tf.data.Dataset.random(seed=int(seed), rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((dataset, draws))

    def mix(element, draw):
        x, y = element
        return mixup_batch(
            x, y, alpha=alpha, num_classes=num_classes, p=p,
            seed=tf.stack([draw, tf.constant(_MIXUP_SALT, tf.int64)]),
        )

    return ds.map(mix, num_parallel_calls=tf.data.AUTOTUNE)


__all__ = [
    "AUGMENTATIONS",
    "DEFAULTS",
    "NOISE_KINDS",
    "Augmentation",
    "NoiseSettings",
    "SpeedSettings",
    "PitchSettings",
    "SpecAugmentSettings",
    "MixupSettings",
    "build_waveform_augment",
    "build_features_augment",
    "colored_noise",
    "mix_at_snr",
    "speed_perturb",
    "pitch_shift",
    "spec_augment",
    "mixup_batch",
    "apply_mixup",
]
