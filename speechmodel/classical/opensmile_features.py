"""The openSMILE feature sets of affective computing, per utterance.

audEERING's ``opensmile`` package (its extractor ships in the wheel, nothing
is downloaded at run time) computes the field's standard utterance vectors:

=========  ====  ==========================================================
name       dims  what
=========  ====  ==========================================================
egemaps    88    eGeMAPSv02 functionals (Eyben et al. 2016): pitch, jitter,
                 shimmer, loudness, formants, spectral balance, HNR and
                 their statistics, voiced and unvoiced segment lengths
compare    6373  ComParE 2016 functionals (Schuller et al. 2016): 65
                 low-level descriptors and their deltas, with many
                 functionals each
=========  ====  ==========================================================

The audio is decoded by the toolkit's own loader
(``speechmodel.audio.load_audio``: any container, rate and channel count,
mono at ``sample_rate``) and given to openSMILE as a signal
(``Smile.process_signal``); openSMILE never reads a file itself.

Both sets need at least 60 ms of signal (their longest analysis window):
a shorter clip gives NaN, and is reported as too short.
"""

import dataclasses
import functools
import hashlib
import math
import warnings

import numpy as np

from speechmodel.config import JsonConfig
from speechmodel.errors import Error

# Bump when the computation changes, so caches made by older code are unused.
OPENSMILE_CODE_VERSION = 1

# Name -> (opensmile.FeatureSet member, number of values).
FEATURE_SETS = {"egemaps": ("eGeMAPSv02", 88), "compare": ("ComParE_2016", 6373)}
# The longest analysis window of both sets, in seconds: a shorter signal
# gives NaN (measured on RAVDESS: 944 samples at 16 kHz do, 960 do not).
MIN_SECONDS = 0.06


class OpenSmileMissingError(Error, ImportError):
    """The ``opensmile`` package, which the openSMILE feature sets need, is
    not installed."""


def _opensmile():
    try:
        import opensmile
    except ImportError as exc:
        raise OpenSmileMissingError(
            "The egemaps and compare feature sets need audEERING's opensmile package "
            f"(pip install -r requirements.txt, which pins it). Received: {exc}"
        ) from None
    return opensmile


@dataclasses.dataclass(frozen=True)
class OpenSmileFeatureConfig(JsonConfig):
    """An openSMILE feature set's functionals, one vector per utterance.

    Attributes:
        feature_set: ``"egemaps"`` (eGeMAPSv02, 88 values) or ``"compare"``
            (ComParE 2016, 6373 values).
        sample_rate: audio is loaded (and resampled) at this rate, in Hz,
            before openSMILE sees it.
    """

    feature_set: str = "egemaps"
    sample_rate: int = 16000

    def __post_init__(self):
        if self.feature_set not in FEATURE_SETS:
            raise ValueError(
                f"OpenSmileFeatureConfig: `feature_set` must be one of "
                f"{sorted(FEATURE_SETS)}. Received: feature_set={self.feature_set!r}"
            )
        rate = self.sample_rate
        if not isinstance(rate, int) or isinstance(rate, bool) or rate < 8000:
            raise ValueError(
                "OpenSmileFeatureConfig: `sample_rate` must be a whole number of "
                f"Hz >= 8000. Received: sample_rate={rate!r}"
            )

    def to_dict(self):
        return dataclasses.asdict(self)

    @property
    def min_samples(self):
        """The shortest signal openSMILE gives finite values for."""
        return math.ceil(MIN_SECONDS * self.sample_rate)

    def digest(self):
        """A short stable hash of the settings, the code version and the
        openSMILE version (another extractor may give other values)."""
        opensmile = _opensmile()
        text = f"opensmile:{OPENSMILE_CODE_VERSION}:{opensmile.__version__}:{self.to_json()}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def _smile(feature_set):
    """One ``opensmile.Smile`` per feature set and process (building one
    parses the set's configuration)."""
    opensmile = _opensmile()
    member, _ = FEATURE_SETS[feature_set]
    return opensmile.Smile(
        feature_set=getattr(opensmile.FeatureSet, member),
        feature_level=opensmile.FeatureLevel.Functionals,
    )


def opensmile_feature_names(config):
    """openSMILE's names of the set's values, e.g. ``F0semitoneFrom27.5Hz_sma3nz_amean``."""
    return list(_smile(config.feature_set).feature_names)


def compute_opensmile(y, *, config):
    """The set's functionals of one utterance, float32 (may hold NaN for a
    clip shorter than ``config.min_samples``; the caller checks).

    Args:
        y: 1-D float waveform at ``config.sample_rate``.
        config: OpenSmileFeatureConfig.
    """
    with warnings.catch_warnings():
        # "Segment too short, filling with NaN": reported by the caller.
        warnings.filterwarnings("ignore", message="Segment too short", category=UserWarning)
        frame = _smile(config.feature_set).process_signal(
            np.asarray(y, dtype=np.float32), config.sample_rate
        )
    values = np.asarray(frame.to_numpy(), dtype=np.float32).reshape(-1)
    expected = FEATURE_SETS[config.feature_set][1]
    if values.shape != (expected,):  # pragma: no cover - openSMILE's contract
        raise ValueError(
            f"openSMILE's {config.feature_set} gave {values.size} values, not {expected}"
        )
    return values
