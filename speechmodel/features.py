"""Three-channel log-mel segments as TensorFlow ops.

The public functions return NumPy arrays for NumPy (or Python) input run
eagerly, and TensorFlow tensors for tensor input or inside a trace
(``tf.function``, ``tf.data``).

The computation, for one utterance (a 1-D waveform at ``sample_rate``):

1. Power spectrogram: Hann window of ``win_ms`` (periodic, as librosa's),
   hop ``hop_ms``, ``n_fft`` points, frames centred on ``t * hop`` with the
   signal zero-padded by half a window at both ends (librosa's
   ``center=True, pad_mode="constant"`` gives the same magnitudes).
2. Mel filterbank from ``librosa.filters.mel`` (Slaney scale and area
   normalisation by default; HTK on request), ``fmin`` to ``fmax``.
3. ``10 log10(max(S, amin))``, clipped to ``max - top_db`` per utterance
   (librosa's ``power_to_db(S, ref=1.0)``).
4. Deltas: Savitzky-Golay derivatives over ``delta_width`` frames, first and
   second order, exactly librosa's ``feature.delta(width, order,
   mode="interp")``: at the edges the polynomial fit of the first (last) full
   window is used. An utterance shorter than ``delta_width`` frames is first
   extended to ``delta_width`` frames by repeating its last frame.
5. Stacked as channels -> (frames, n_mels, 3), normalised per utterance and
   channel over its frames (``standard`` or ``minmax``; ``none`` skips).
6. Framed into segments of ``segment_frames`` with a hop of
   ``segment_hop`` -> (N, segment_frames, n_mels, 3). The frames are padded
   at the end with zeros (after normalisation: the per-utterance mean for
   ``standard``, the minimum for ``minmax``) up to the smallest length that
   segments exactly: an utterance shorter than one segment gives one padded
   segment, and the last partial segment is kept, padded, never dropped.
   ``N = 1 + ceil(max(0, frames - segment_frames) / segment_hop)``.
"""

import functools

import numpy as np
import tensorflow as tf

from speechmodel.config import FeatureConfig


def _numpy_in_numpy_out(function):
    """Public functions return NumPy for NumPy (or Python) input, run
    eagerly; a TensorFlow tensor in, or a trace (``tf.function``,
    ``tf.data``), gives tensors as before."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        out = function(*args, **kwargs)
        if not tf.executing_eagerly() or any(
            tf.is_tensor(a) for a in (*args, *kwargs.values())
        ):
            return out
        if isinstance(out, tuple):
            return tuple(o.numpy() if tf.is_tensor(o) else o for o in out)
        return out.numpy() if tf.is_tensor(out) else out

    return wrapper


@functools.lru_cache(maxsize=16)
def _mel_matrix(config):
    import librosa

    mel = librosa.filters.mel(
        sr=config.sample_rate,
        n_fft=config.fft_length,
        n_mels=config.n_mels,
        fmin=config.fmin,
        fmax=config.fmax,
        htk=config.mel_scale == "htk",
        norm=config.mel_norm,
        dtype=np.float64,
    )
    return mel.T.astype(np.float32)  # (n_fft // 2 + 1, n_mels)


def mel_filterbank(config=None):
    """The (n_fft // 2 + 1, n_mels) mel matrix the features use."""
    return _mel_matrix(config or FeatureConfig())


@functools.lru_cache(maxsize=16)
def _delta_kernel(width, orders):
    from scipy.signal import savgol_coeffs

    # use="dot": out[t] = sum_k c[k] * x[t - width // 2 + k]
    coeffs = [savgol_coeffs(width, o, deriv=o, use="dot") for o in orders]
    return np.stack(coeffs, axis=-1).astype(np.float32)  # (width, orders)


def _batch_log_mel(waveforms, config):
    """(B, samples) -> (B, frames, n_mels) dB, frames = 1 + samples // hop."""
    half = config.win_length // 2
    padded = tf.pad(waveforms, [[0, 0], [half, half]])
    short = tf.maximum(0, config.win_length - tf.shape(padded)[1])
    padded = tf.pad(padded, [[0, 0], [0, short]])
    stft = tf.signal.stft(
        padded,
        frame_length=config.win_length,
        frame_step=config.hop_length,
        fft_length=config.fft_length,
        window_fn=functools.partial(tf.signal.hann_window, periodic=True),
        pad_end=False,
    )
    # |X|^2 through tf.abs: ONNX conversion (tf2onnx) maps an RFFT
    # followed by ComplexAbs, the one form it converts.
    power = tf.square(tf.abs(stft))
    if config.power != 2.0:
        power = tf.pow(power, config.power / 2.0)
    mel = tf.einsum("btf,fm->btm", power, tf.constant(_mel_matrix(config)))
    return 10.0 * (tf.math.log(tf.maximum(mel, config.amin)) / tf.math.log(10.0))


def _batch_delta(data, width, orders):
    """Savitzky-Golay derivatives at the centre of every full window.

    (B, T, M) -> (B, T - width + 1, M, len(orders)); output t is the
    derivative at frame ``t + width // 2``.
    """
    kernel = tf.constant(_delta_kernel(width, tuple(orders)))
    return tf.nn.conv2d(
        data[..., tf.newaxis],
        tf.reshape(kernel, [width, 1, 1, len(orders)]),
        strides=1,
        padding="VALID",
    )


@_numpy_in_numpy_out
def log_mel(waveform, *, config=None):
    """Log-mel spectrogram of one utterance.

    Args:
        waveform: float32 (samples,) at ``config.sample_rate``.
        config: FeatureConfig (defaults if None).

    Returns:
        float32 (frames, n_mels), in dB, clipped to ``max - top_db``;
        ``frames = 1 + samples // hop_length``.
    """
    config = config or FeatureConfig()
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    log_spec = _batch_log_mel(waveform[tf.newaxis], config)[0]
    if config.top_db is not None:
        log_spec = tf.maximum(log_spec, tf.reduce_max(log_spec) - config.top_db)
    return log_spec


@_numpy_in_numpy_out
def delta(data, *, width=9, order=1):
    """librosa's ``feature.delta(data.T, width=width, order=order).T``.

    Savitzky-Golay derivative over ``width`` frames with librosa's
    ``mode="interp"`` edges: the first and last ``width // 2`` frames take
    the value of the first and last full window.

    Args:
        data: float32 (frames, bins), frames >= width.
        width: odd window length >= 3.
        order: derivative order (1 or 2).

    Returns:
        float32 (frames, bins).
    """
    data = tf.convert_to_tensor(data, tf.float32)
    centre = _batch_delta(data[tf.newaxis], width, (order,))[0, ..., 0]
    half = width // 2
    return tf.concat(
        [tf.repeat(centre[:1], half, axis=0), centre, tf.repeat(centre[-1:], half, axis=0)],
        axis=0,
    )


@_numpy_in_numpy_out
def num_segments(frames, *, config=None):
    """N = 1 + ceil(max(0, frames - segment_frames) / segment_hop)."""
    config = config or FeatureConfig()
    extra = tf.maximum(0, frames - config.segment_frames)
    return 1 + (extra + config.segment_hop - 1) // config.segment_hop


@_numpy_in_numpy_out
def batch_segment_features(waveforms, lengths, *, config=None):
    """Three-channel log-mel segments of a zero-padded batch, vectorised.

    Utterance by utterance, the result equals the computation described in
    the module docstring on ``waveforms[b, :lengths[b]]`` alone: the zeros
    of the batch padding are exactly the zeros that computation pads with,
    and every per-utterance step (top_db clip, delta edges, normalisation
    statistics, segment count) is masked to the utterance's own frames.

    Args:
        waveforms: float32 (B, samples), each row zero-padded at the end.
        lengths: int (B,), valid samples per row.
        config: FeatureConfig (defaults if None).

    Returns:
        ``(segments, counts)``: float32 (B, N, segment_frames, n_mels, 3),
        padded segments all zeros, and int32 (B,) segment counts.
    """
    config = config or FeatureConfig()
    waveforms = tf.convert_to_tensor(waveforms, tf.float32)
    lengths = tf.cast(tf.convert_to_tensor(lengths), tf.int32)
    width, half = config.delta_width, config.delta_width // 2

    log_spec = _batch_log_mel(waveforms, config)
    frames = 1 + lengths // config.hop_length  # (B,)
    # At least `width` frames on the time axis, for the deltas.
    t_max = tf.maximum(tf.shape(log_spec)[1], width)
    log_spec = tf.pad(log_spec, [[0, 0], [0, t_max - tf.shape(log_spec)[1]], [0, 0]])
    time = tf.range(t_max)[tf.newaxis, :]  # (1, T)
    if config.top_db is not None:
        valid = (time < frames[:, tf.newaxis])[..., tf.newaxis]
        peak = tf.reduce_max(
            tf.where(valid, log_spec, -np.inf), axis=[1, 2], keepdims=True
        )
        log_spec = tf.maximum(log_spec, peak - config.top_db)
    # Repeat the last frame past the end: extends an utterance shorter than
    # `width` frames, and is masked out beyond that.
    log_spec = tf.gather(
        log_spec, tf.minimum(time, frames[:, tf.newaxis] - 1), batch_dims=1
    )
    frames = tf.maximum(frames, width)

    centre = _batch_delta(log_spec, width, (1, 2))  # (B, T - w + 1, M, 2)
    source = tf.minimum(tf.maximum(time, half), frames[:, tf.newaxis] - 1 - half)
    deltas = tf.gather(centre, source - half, batch_dims=1)  # (B, T, M, 2)
    features = tf.concat([log_spec[..., tf.newaxis], deltas], axis=-1)

    weight = tf.cast(time < frames[:, tf.newaxis], tf.float32)
    weight = weight[:, :, tf.newaxis, tf.newaxis]  # (B, T, 1, 1)
    # Normalise as (x - shift) * scale, with the padding frames' scale 0: one
    # pass over the features, which also zeroes the frames past the end.
    if config.normalization == "standard":
        count = tf.cast(frames * config.n_mels, tf.float32)
        count = count[:, tf.newaxis, tf.newaxis, tf.newaxis]
        shift = tf.reduce_sum(features * weight, axis=[1, 2], keepdims=True) / count
        var = tf.reduce_sum(
            tf.square(features - shift) * weight, axis=[1, 2], keepdims=True
        ) / count
        scale = weight / tf.maximum(tf.sqrt(var), 1e-5)
    elif config.normalization == "minmax":
        inside = weight > 0
        shift = tf.reduce_min(tf.where(inside, features, np.inf), axis=[1, 2], keepdims=True)
        high = tf.reduce_max(tf.where(inside, features, -np.inf), axis=[1, 2], keepdims=True)
        scale = weight / tf.maximum(high - shift, 1e-5)
    else:
        shift, scale = 0.0, weight
    features = (features - shift) * scale

    counts = num_segments(frames, config=config)
    if config.max_segments is not None:
        counts = tf.minimum(counts, config.max_segments)
    # Segment n of utterance b takes frames n * hop ... n * hop + F - 1; a
    # segment past the utterance's count takes the all-zero frame appended
    # at the end (it would otherwise overlap the utterance's last frames).
    n_max = tf.reduce_max(counts)
    zero_frame = tf.shape(features)[1]
    features = tf.pad(features, [[0, 0], [0, 1], [0, 0], [0, 0]])
    starts = tf.range(n_max) * config.segment_hop  # (N,)
    index = starts[:, tf.newaxis] + tf.range(config.segment_frames)[tf.newaxis, :]  # (N, F)
    index = tf.minimum(index, zero_frame)  # frames past the padded end are zeros too
    valid = tf.range(n_max)[tf.newaxis, :] < counts[:, tf.newaxis]  # (B, N)
    index = tf.where(valid[:, :, tf.newaxis], index[tf.newaxis], zero_frame)  # (B, N, F)
    segments = tf.gather(features, index, batch_dims=1)  # (B, N, F, M, 3)
    return segments, counts


@_numpy_in_numpy_out
def segment_features(waveform, *, config=None):
    """One utterance (samples,) -> (N, segment_frames, n_mels, 3)."""
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    segments, counts = batch_segment_features(
        waveform[tf.newaxis], tf.shape(waveform)[:1], config=config
    )
    return segments[0, : counts[0]]
