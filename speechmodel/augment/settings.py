"""The augmentation settings of a training run (``training.augment``):
``Augmentation.from_dict`` parses and validates the JSON description, one
settings class per augmentation, with the defaults of ``DEFAULTS``. No
TensorFlow here."""

import dataclasses
import math
import numbers
import os

from speechmodel.errors import is_number

AUGMENTATIONS = ("noise", "speed", "pitch", "specaugment", "mixup")
NOISE_KINDS = ("white", "pink", "brown")

DEFAULTS = {
    "noise": {"p": 0.5, "snr_db": [5.0, 20.0], "kind": list(NOISE_KINDS), "noise_files": None},
    "speed": {"p": 0.5, "factors": [0.9, 1.0, 1.1]},
    "pitch": {"p": 0.5, "semitones": [-2.0, 2.0]},
    "specaugment": {"p": 0.8, "freq_masks": 2, "freq_width": 8, "time_masks": 2, "time_width": 10},
    "mixup": {"alpha": 0.2, "p": 1.0},
}


# Validation helpers: one error type, the value quoted.


def fail(section, name, value, why):
    where = f"augment.{section}" if section else "augment"
    raise ValueError(f"{where}: `{name}` {why}. Received: {name}={value!r}")


def probability(section, value, name="p"):
    if not is_number(value) or not 0.0 <= float(value) <= 1.0:
        fail(section, name, value, "must be a number in [0, 1]")
    return float(value)


def _range(section, name, value, low, high):
    """A number or a ``[low, high]`` pair within [low, high] -> [a, b]."""
    if is_number(value):
        pair = [value, value]
    elif (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(is_number(v) for v in value)
    ):
        pair = list(value)
    else:
        fail(section, name, value, "must be a number or a [low, high] pair of numbers")
    a, b = float(pair[0]), float(pair[1])
    if not (math.isfinite(a) and math.isfinite(b)):
        fail(section, name, value, "must be finite")
    if a > b:
        fail(section, name, value, "must be [low, high] with low <= high")
    if a < low or b > high:
        fail(section, name, value, f"must lie within [{low}, {high}]")
    return [a, b]


def count(section, name, value):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
        fail(section, name, value, "must be a non-negative integer")
    return int(value)


def _check_keys(section, given, known):
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(
            f"augment.{section}: unknown keys {unknown}; known keys are "
            f"{sorted(known)}. Received: {section}={given!r}"
        )


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
        p = probability("noise", config.get("p", DEFAULTS["noise"]["p"]))
        snr = _range("noise", "snr_db", config.get("snr_db", DEFAULTS["noise"]["snr_db"]), -50.0, 100.0)
        files = config.get("noise_files")
        if files is not None:
            if isinstance(files, (str, bytes, os.PathLike)) or not isinstance(files, (list, tuple)):
                fail("noise", "noise_files", files, "must be a list of file paths")
            if not files or not all(isinstance(f, (str, os.PathLike)) for f in files):
                fail("noise", "noise_files", files, "must be a non-empty list of file paths")
            files = tuple(os.fspath(f) for f in files)
        kind = config.get("kind", [] if files else list(NOISE_KINDS))
        if isinstance(kind, str):
            kind = [kind]
        if not isinstance(kind, (list, tuple)) or any(k not in NOISE_KINDS for k in kind):
            fail("noise", "kind", config.get("kind"), f"must be one or a list of {list(NOISE_KINDS)}")
        if not kind and not files:
            fail("noise", "kind", config.get("kind"), "must name a colour when no noise_files are given")
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
        p = probability("speed", config.get("p", DEFAULTS["speed"]["p"]))
        factors = config.get("factors", DEFAULTS["speed"]["factors"])
        if is_number(factors):
            factors = [factors]
        if (
            not isinstance(factors, (list, tuple))
            or not factors
            or not all(is_number(f) and 0.5 <= float(f) <= 2.0 for f in factors)
        ):
            fail("speed", "factors", factors, "must be a non-empty list of numbers in [0.5, 2]")
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
        p = probability("pitch", config.get("p", DEFAULTS["pitch"]["p"]))
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
            p=probability("specaugment", config.get("p", d["p"])),
            freq_masks=count("specaugment", "freq_masks", config.get("freq_masks", d["freq_masks"])),
            freq_width=count("specaugment", "freq_width", config.get("freq_width", d["freq_width"])),
            time_masks=count("specaugment", "time_masks", config.get("time_masks", d["time_masks"])),
            time_width=count("specaugment", "time_width", config.get("time_width", d["time_width"])),
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
        if not is_number(alpha) or not 0.0 < float(alpha) < math.inf:
            fail("mixup", "alpha", alpha, "must be a positive number")
        return cls(alpha=float(alpha), p=probability("mixup", config.get("p", DEFAULTS["mixup"]["p"])))

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
