"""Utterance-level features for the classical baselines, by feature set.

Three feature sets, chosen by name (``feature_config``, the config's
``training.classical.features``, ``train.py --features``):

==========  =====  ========================================================
name        dims   what
==========  =====  ========================================================
statistics  784    the librosa statistics below (``ClassicalFeatureConfig``;
                   the default)
egemaps     88     openSMILE's eGeMAPSv02 functionals
compare     6373   openSMILE's ComParE 2016 functionals
==========  =====  ========================================================

(openSMILE's sets: ``speechmodel.classical.opensmile_features``.) Every set
is extracted, cached and reported the same way (``extract_features``).

The statistics: each utterance (16 kHz mono by default) becomes one fixed-length vector:
frame-level descriptors from librosa, summarised over the utterance's frames
by aggregators (mean, std, min, max). The descriptors are those of the seed
recognisers:

==========  ====  ==========================================================
name        dims  what
==========  ====  ==========================================================
mfcc        40    MFCCs (``n_mfcc``) of the log-mel spectrogram
chroma      12    chromagram of the STFT power (librosa's tuning estimate)
mel         128   mel spectrogram (``n_mels``), in dB unless ``mel_db=False``
contrast    7     spectral contrast (``contrast_bands + 1``)
tonnetz     6     tonal centroids of the harmonic part (HPSS) of the signal
zcr         1     zero-crossing rate
rms         1     RMS energy
flatness    1     spectral flatness
pitch       1+1   f0 by probabilistic YIN over voiced frames only, plus the
                  voiced fraction (not aggregated)
==========  ====  ==========================================================

All STFT-based descriptors share ``n_fft`` and ``hop_length`` (librosa's
defaults 2048 / 512, as in the seed recogniser). ``mel_db=False`` with the
aggregators ``("mean",)`` and the features mfcc, chroma and mel reproduces the
seed recogniser's default 180-value vector; its optional contrast and tonnetz
add 7 + 6 values.

Pitch is off by default because ``librosa.pyin`` dominates the cost: measured
on RAVDESS (3.5 s utterances, one core) the default set takes about 0.25 s per
file and pitch adds about 0.32 s, i.e. roughly doubles extraction time (about
3 min vs. 6-7 min for the 1440 RAVDESS files on 2 cores). An utterance without
a voiced frame gets f0 statistics of 0 and a voiced fraction of 0 (never NaN).

Silence is valid input; every value is checked to be finite, and a file whose
features are not is reported as a failure, never passed on.
"""

import dataclasses
import hashlib
import io
import os
import typing
import warnings

import numpy as np

from speechmodel import fileio
from speechmodel.audio import AudioError, load_audio
from speechmodel.classical.opensmile_features import (
    FEATURE_SETS as OPENSMILE_SETS,
    OpenSmileFeatureConfig,
    compute_opensmile,
    opensmile_feature_names,
)
from speechmodel.config import JsonConfig
from speechmodel.errors import Error

# Bump when the computation changes, so caches made by older code are unused.
FEATURE_CODE_VERSION = 1

FEATURES = (
    "mfcc",
    "chroma",
    "mel",
    "contrast",
    "tonnetz",
    "zcr",
    "rms",
    "flatness",
    "pitch",
)
AGGREGATORS = ("mean", "std", "min", "max")
# Everything but pitch (pyin costs more than all the others together).
DEFAULT_FEATURES = tuple(name for name in FEATURES if name != "pitch")
# The feature sets by name; "statistics" (ClassicalFeatureConfig) is the default.
FEATURE_SETS = ("statistics",) + tuple(OPENSMILE_SETS)


class FeatureError(Error, ValueError):
    """Features of an utterance could not be computed (e.g. non-finite)."""


@dataclasses.dataclass(frozen=True)
class ClassicalFeatureConfig(JsonConfig):
    """Which utterance statistics to compute, and how.

    Attributes:
        features: descriptor names, a subset of ``FEATURES`` in any order
            (the vector follows this order).
        aggregators: statistics over frames, a subset of ``AGGREGATORS``.
        sample_rate: audio is loaded (and resampled) at this rate, in Hz.
        n_fft: STFT size in samples (also the window length).
        hop_length: STFT hop in samples.
        n_mfcc: MFCC coefficients.
        n_mels: mel bands of the ``mel`` descriptor (MFCCs use librosa's
            default 128 bands as well).
        mel_db: the ``mel`` descriptor in dB (``power_to_db``, ref 1.0);
            ``False`` keeps the power, as the seed recogniser did.
        n_chroma: chroma bins.
        contrast_bands: spectral contrast octave bands (gives bands + 1 rows).
        contrast_fmin: lower edge of the first contrast band, in Hz.
        pitch_fmin, pitch_fmax: pYIN search range in Hz.
    """

    features: tuple = DEFAULT_FEATURES
    aggregators: tuple = AGGREGATORS
    sample_rate: int = 16000
    n_fft: int = 2048
    hop_length: int = 512
    n_mfcc: int = 40
    n_mels: int = 128
    mel_db: bool = True
    n_chroma: int = 12
    contrast_bands: int = 6
    contrast_fmin: float = 200.0
    pitch_fmin: float = 60.0
    pitch_fmax: float = 500.0

    # The set's name (a class attribute, not a setting).
    feature_set = "statistics"

    def __post_init__(self):
        # Lists from JSON become tuples, so the config stays hashable.
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "aggregators", tuple(self.aggregators))

        def bad(name, why):
            raise ValueError(
                f"ClassicalFeatureConfig: `{name}` {why}. "
                f"Received: {name}={getattr(self, name)!r}"
            )

        for name, allowed in (
            ("features", FEATURES),
            ("aggregators", AGGREGATORS),
        ):
            value = getattr(self, name)
            if not value:
                bad(name, "must not be empty")
            unknown = [v for v in value if v not in allowed]
            if unknown:
                bad(name, f"holds unknown names {unknown}; known: {allowed}")
            if len(set(value)) != len(value):
                bad(name, "must not repeat a name")
        for name in (
            "sample_rate",
            "n_fft",
            "hop_length",
            "n_mfcc",
            "n_mels",
            "n_chroma",
            "contrast_bands",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                bad(name, "must be a positive integer")
        if not isinstance(self.mel_db, bool):
            bad("mel_db", "must be a bool")
        nyquist = self.sample_rate / 2
        if not 0 < self.contrast_fmin:
            bad("contrast_fmin", "must be positive")
        if self.contrast_fmin * 2 ** (self.contrast_bands - 1) >= nyquist:
            bad(
                "contrast_fmin",
                f"times 2**(contrast_bands - 1) must stay below Nyquist "
                f"({nyquist} Hz) with contrast_bands={self.contrast_bands}",
            )
        if not 0 < self.pitch_fmin < self.pitch_fmax:
            bad("pitch_fmin", f"must be in (0, pitch_fmax={self.pitch_fmax})")
        if self.pitch_fmax >= nyquist:
            bad("pitch_fmax", f"must be below Nyquist ({nyquist} Hz)")

    def to_dict(self):
        """A JSON-ready dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["features"] = list(self.features)
        d["aggregators"] = list(self.aggregators)
        return d

    def digest(self):
        """A short stable hash of the settings and the feature code version."""
        text = f"{FEATURE_CODE_VERSION}:{self.to_json()}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    @property
    def min_samples(self):
        """The shortest signal analysed: one STFT hop."""
        return self.hop_length


def feature_config(value=None):
    """The feature configuration of a feature set.

    Args:
        value: None (the default statistics), a set's name (``"statistics"``,
            ``"egemaps"``, ``"compare"``), a dict of settings with an
            optional ``feature_set`` key (default ``"statistics"``; the
            statistics' other keys are ``ClassicalFeatureConfig``'s), or a
            ``ClassicalFeatureConfig`` / ``OpenSmileFeatureConfig``.

    Returns:
        ``ClassicalFeatureConfig`` or ``OpenSmileFeatureConfig``.

    Raises:
        ValueError: an unknown set or setting (the message quotes it).
    """
    if value is None:
        return ClassicalFeatureConfig()
    if isinstance(value, (ClassicalFeatureConfig, OpenSmileFeatureConfig)):
        return value
    if isinstance(value, str):
        value = {"feature_set": value}
    if not isinstance(value, dict):
        raise ValueError(
            "A feature configuration is a set's name or a dict of settings. "
            f"Received: {type(value).__name__}"
        )
    settings = dict(value)
    name = settings.pop("feature_set", "statistics")
    if name not in FEATURE_SETS:
        raise ValueError(
            f"Unknown feature set; known: {', '.join(FEATURE_SETS)}. "
            f"Received: feature_set={name!r}"
        )
    if name == "statistics":
        return ClassicalFeatureConfig.from_dict(settings)
    return OpenSmileFeatureConfig.from_dict({"feature_set": name, **settings})


def feature_config_dict(config):
    """A feature configuration as JSON-ready settings, naming its set
    (``feature_config`` reads it back)."""
    return {"feature_set": config.feature_set, **config.to_dict()}


def _dims(name, config):
    return {
        "mfcc": config.n_mfcc,
        "chroma": config.n_chroma,
        "mel": config.n_mels,
        "contrast": config.contrast_bands + 1,
        "tonnetz": 6,
        "zcr": 1,
        "rms": 1,
        "flatness": 1,
        "pitch": 1,
    }[name]


def feature_names(config=None):
    """Names of the vector's columns, e.g. ``mfcc_00_mean`` or ``zcr_std``.

    Within a descriptor the columns run aggregator by aggregator, coefficient
    by coefficient; pitch adds ``pitch_voiced_fraction`` after its f0
    statistics (``pitch_f0_mean`` ...).
    """
    config = feature_config(config)
    if isinstance(config, OpenSmileFeatureConfig):
        return opensmile_feature_names(config)
    names = []
    for feature in config.features:
        dims = _dims(feature, config)
        for agg in config.aggregators:
            if feature == "pitch":
                names.append(f"pitch_f0_{agg}")
            elif dims == 1:
                names.append(f"{feature}_{agg}")
            else:
                names.extend(f"{feature}_{i:02d}_{agg}" for i in range(dims))
        if feature == "pitch":
            names.append("pitch_voiced_fraction")
    return names


def _aggregate(frames, aggregators):
    """(dims, frames) -> concatenated per-aggregator (dims,) statistics."""
    frames = np.asarray(frames, dtype=np.float64)
    fns = {"mean": np.mean, "std": np.std, "min": np.min, "max": np.max}
    return [fns[agg](frames, axis=-1) for agg in aggregators]


def compute_features(y, *, config=None):
    """The statistics vector of one utterance.

    Args:
        y: 1-D float waveform at ``config.sample_rate``.
        config: a feature configuration (``feature_config``: a set's name,
            settings or config; the default statistics if None).

    Returns:
        float32 array of ``len(feature_names(config))`` values.

    Raises:
        ValueError: ``y`` is not a non-empty 1-D finite signal.
        FeatureError: a value came out non-finite, or (an openSMILE set)
            ``y`` is shorter than ``config.min_samples``.
    """
    config = feature_config(config)
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(
            "compute_features takes a non-empty 1-D waveform. "
            f"Received: shape={y.shape}"
        )
    if not np.isfinite(y).all():
        raise ValueError("compute_features: the waveform holds NaN or inf.")
    if isinstance(config, OpenSmileFeatureConfig):
        if len(y) < config.min_samples:  # openSMILE would give NaN.
            raise FeatureError(too_short_reason(len(y), config))
        values = compute_opensmile(y, config=config)
        if not np.isfinite(values).all():
            raise FeatureError(
                f"the `{config.feature_set}` functionals are not finite "
                f"({int(np.sum(~np.isfinite(values)))} values)"
            )
        return values
    return _statistics(y, config)


def _statistics(y, config):
    """``compute_features`` of the librosa statistics (checked input)."""
    import librosa

    sr = config.sample_rate
    stft = dict(n_fft=config.n_fft, hop_length=config.hop_length)
    parts = {}
    with warnings.catch_warnings():
        # Short inputs make librosa warn (n_fft larger than the signal,
        # tuning of an empty set); the results are still defined.
        warnings.filterwarnings("ignore", category=UserWarning, module="librosa")
        magnitude = np.abs(librosa.stft(y, **stft))
        power = magnitude**2
        mel_power = None
        wanted = set(config.features)
        if wanted & {"mfcc", "mel"}:
            mel_power = librosa.feature.melspectrogram(
                S=power, sr=sr, n_mels=config.n_mels
            )
        for feature in config.features:
            if feature == "mfcc":
                mfcc_mel = mel_power
                if config.n_mels != 128:
                    mfcc_mel = librosa.feature.melspectrogram(S=power, sr=sr)
                frames = librosa.feature.mfcc(
                    S=librosa.power_to_db(mfcc_mel), n_mfcc=config.n_mfcc
                )
            elif feature == "chroma":
                frames = librosa.feature.chroma_stft(
                    S=power, sr=sr, n_chroma=config.n_chroma, **stft
                )
            elif feature == "mel":
                frames = (
                    librosa.power_to_db(mel_power) if config.mel_db else mel_power
                )
            elif feature == "contrast":
                frames = librosa.feature.spectral_contrast(
                    S=magnitude,
                    sr=sr,
                    n_bands=config.contrast_bands,
                    fmin=config.contrast_fmin,
                    **stft,
                )
            elif feature == "tonnetz":
                harmonic = librosa.effects.harmonic(y)
                frames = librosa.feature.tonnetz(
                    y=harmonic, sr=sr, hop_length=config.hop_length
                )
            elif feature == "zcr":
                frames = librosa.feature.zero_crossing_rate(
                    y, frame_length=config.n_fft, hop_length=config.hop_length
                )
            elif feature == "rms":
                # From the samples: the STFT's window would bias it low.
                frames = librosa.feature.rms(
                    y=y, frame_length=config.n_fft, hop_length=config.hop_length
                )
            elif feature == "flatness":
                frames = librosa.feature.spectral_flatness(S=magnitude)
            elif feature == "pitch":
                f0, voiced, _ = librosa.pyin(
                    y,
                    fmin=config.pitch_fmin,
                    fmax=config.pitch_fmax,
                    sr=sr,
                    frame_length=config.n_fft,
                    hop_length=config.hop_length,
                )
                voiced = voiced & np.isfinite(f0)
                f0 = f0[voiced]
                if f0.size:
                    stats = _aggregate(f0[None, :], config.aggregators)
                else:
                    stats = [np.zeros(1) for _ in config.aggregators]
                stats.append(np.array([voiced.mean() if voiced.size else 0.0]))
                parts[feature] = np.concatenate(stats)
                continue
            parts[feature] = np.concatenate(
                _aggregate(frames, config.aggregators)
            )
    for feature, values in parts.items():
        if not np.isfinite(values).all():
            raise FeatureError(
                f"the `{feature}` statistics are not finite "
                f"({int(np.sum(~np.isfinite(values)))} values)"
            )
    return np.concatenate([parts[f] for f in config.features]).astype(np.float32)


class FeatureFailure(typing.NamedTuple):
    """A file whose features could not be computed.

    Attributes:
        index: its position in the ``paths`` given to ``extract_features``.
        path: the file, as given.
        reason: what went wrong, in words.
    """

    index: int
    path: str
    reason: str


class FeatureMatrix(typing.NamedTuple):
    """What ``extract_features`` returns; unpacks as ``X, names, failures``.

    Attributes:
        X: float32 (n_ok, d), one row per file that succeeded, in the order
            of ``paths``.
        feature_names: the d column names.
        failures: list of FeatureFailure (the rows missing from X).
    """

    X: np.ndarray
    feature_names: list
    failures: list

    @property
    def kept(self):
        """int64 indices into ``paths`` of the rows of ``X``, ascending."""
        n = len(self.X) + len(self.failures)
        mask = np.ones(n, dtype=bool)
        mask[[f.index for f in self.failures]] = False
        return np.flatnonzero(mask)


def cache_key(path, config):
    """Cache key of one file's features: path, size, mtime and config.

    Any change of the file (size or modification time, in ns) or of the
    configuration (including the feature code version) changes the key.
    """
    path = os.path.abspath(os.fspath(path))
    stat = os.stat(path)
    text = "\0".join(
        [path, str(stat.st_size), str(stat.st_mtime_ns), config.digest()]
    )
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def too_short_reason(samples, config):
    """The reason for a clip too short for the feature set: less than
    ``config.min_samples`` of signal (the statistics: one STFT hop; the
    openSMILE sets: their 60 ms analysis window)."""
    rate, least = config.sample_rate, config.min_samples
    what = "classical features" if config.feature_set == "statistics" else f"{config.feature_set} features"
    return (
        f"too short to analyse: {samples} sample{'s' if samples != 1 else ''} "
        f"({samples / rate:.4f} s) at {rate} Hz; the {what} need at "
        f"least {least} samples ({least / rate:.3f} s)"
    )


def _extract_one(index, path, config_dict, cache_dir):
    """Worker: (index, vector or None, reason or None). Never raises."""
    config = feature_config(config_dict)
    cache_file = None
    try:
        if cache_dir is not None and os.path.isfile(path):
            cache_file = os.path.join(cache_dir, cache_key(path, config) + ".npy")
            if os.path.exists(cache_file):
                try:
                    vector = np.load(cache_file, allow_pickle=False)
                    if vector.shape == (len(feature_names(config)),):
                        return index, vector, None
                except (OSError, ValueError):
                    pass  # Unreadable cache entry: recompute and overwrite.
        y = load_audio(path, sample_rate=config.sample_rate)
        if len(y) < config.min_samples:
            return index, None, too_short_reason(len(y), config)
        vector = compute_features(y, config=config)
    except AudioError as exc:
        return index, None, exc.reason
    except (FeatureError, ValueError) as exc:
        return index, None, f"feature extraction failed: {exc}"
    except Exception as exc:  # Reported with the file, never swallowed.
        return index, None, f"feature extraction failed: {type(exc).__name__}: {exc}"
    if cache_file is not None:
        buffer = io.BytesIO()
        np.save(buffer, vector, allow_pickle=False)
        try:
            fileio.atomic_write_bytes(cache_file, buffer.getvalue())
        except OSError:  # A cache that cannot be written (full disk) is no error.
            pass
    return index, vector, None


def extract_features(paths, config=None, *, n_jobs=2, cache_dir=None):
    """Statistics vectors of many files, in parallel, optionally cached.

    Args:
        paths: audio file paths.
        config: a feature configuration (``feature_config``: a set's name,
            settings or config; the default statistics if None).
        n_jobs: worker processes (1 runs in this process).
        cache_dir: directory of per-file ``.npy`` vectors keyed by
            ``cache_key`` (absolute path, size, mtime, config digest);
            created if missing. ``None`` disables caching.

    Returns:
        FeatureMatrix ``(X, feature_names, failures)``: a file that cannot be
        loaded or featurised is left out of ``X`` and listed in ``failures``
        as ``FeatureFailure(index, path, reason)``; ``result.kept`` gives the
        indices of the rows that are in ``X``.
    """
    config = feature_config(config)
    if isinstance(paths, (str, os.PathLike)):
        raise ValueError(
            "extract_features takes a list of paths, not one path. "
            f"Received: paths={paths!r}"
        )
    paths = [os.fspath(p) for p in paths]
    if not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(
            f"`n_jobs` must be a positive integer or -1. Received: n_jobs={n_jobs}"
        )
    if cache_dir is not None:
        cache_dir = os.fspath(cache_dir)
        os.makedirs(cache_dir, exist_ok=True)
    # An openSMILE set without the package: one error, not one per file.
    names = feature_names(config)
    jobs = [(i, p, feature_config_dict(config), cache_dir) for i, p in enumerate(paths)]
    if n_jobs == 1 or len(paths) <= 1:
        results = [_extract_one(*job) for job in jobs]
    else:
        import joblib

        results = joblib.Parallel(n_jobs=n_jobs, batch_size=8)(
            joblib.delayed(_extract_one)(*job) for job in jobs
        )
    rows, failures = [], []
    for index, vector, reason in sorted(results, key=lambda r: r[0]):
        if vector is None:
            failures.append(FeatureFailure(index, paths[index], reason))
        else:
            rows.append(vector)
    X = (
        np.stack(rows).astype(np.float32)
        if rows
        else np.zeros((0, len(names)), np.float32)
    )
    return FeatureMatrix(X, names, failures)
