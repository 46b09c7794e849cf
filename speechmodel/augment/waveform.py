"""Waveform augmentation, per utterance on the 16 kHz float32 waveform:
speed perturbation, pitch shift and additive noise at an SNR
(``build_waveform_augment``)."""

import math
import numbers

import numpy as np
import tensorflow as tf

from speechmodel.augment.seeds import stateless_seed
from speechmodel.augment.settings import NOISE_KINDS, Augmentation
from speechmodel.errors import is_number


# Spectral exponent of each colour: power spectral density ~ 1 / f**beta.
_NOISE_BETA = {"white": 0.0, "pink": 1.0, "brown": 2.0}
# Below this frequency the coloured spectra are flat: the mel filterbank
# starts at 20 Hz, and a 1/f**2 slope down to the lowest FFT bin would put
# nearly all the noise power in an inaudible drift the features never see.
COLORED_NOISE_FLOOR_HZ = 20.0
# At most this many samples of noise files are held in memory (512 MB).
MAX_NOISE_SAMPLES = 2**27


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
    white = tf.random.stateless_normal([n], stateless_seed(seed))
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
    if is_number(factor) and not factor > 0:
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
        keys = tf.random.experimental.stateless_split(stateless_seed(seeds), num=len(steps))
        for k, (p, step) in enumerate(steps):
            waveform = _gate(p, keys[k], step, waveform)
        return waveform

    return waveform_augment
