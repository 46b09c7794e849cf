"""Whisper's log-mel front end as a Keras layer (TensorFlow ops)."""

import functools

import keras
import numpy as np
import tensorflow as tf

from speechmodel.models.whisper.whisper_config import WHISPER_BASE_CONFIG as BASE

SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160


@functools.lru_cache(maxsize=4)
def whisper_mel_filters(num_mels=BASE.num_mels):
    """The (n_fft // 2 + 1, num_mels) float32 mel matrix Whisper uses:
    ``librosa.filters.mel(sr=16000, n_fft=400, n_mels=num_mels)`` (Slaney
    scale, Slaney area normalisation), transposed."""
    import librosa

    mel = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=num_mels)
    return np.ascontiguousarray(mel.T, dtype=np.float32)


@keras.saving.register_keras_serializable(package="speechmodel")
class WhisperAudioConverter(keras.layers.Layer):
    """16 kHz waveforms -> Whisper's normalised log-mel spectrogram.

    Exactly OpenAI Whisper's ``log_mel_spectrogram`` of each utterance
    zero-padded at the end (Whisper pads with 30 s of zeros), restricted to
    the utterance's own frames: a 400-point FFT of Hann(400, periodic)
    windowed frames every 160 samples, centred (reflect padding at the
    start; the zeros after the valid samples at the end), ``|STFT|^2``,
    Slaney mel filters (``librosa.filters.mel(sr=16000, n_fft=400,
    n_mels=80)``), ``log10(max(x, 1e-10))``, floored at the utterance's
    maximum over its valid frames minus 8, then ``(x + 4) / 4``.

    An utterance of ``length`` samples has ``max(1, length // 160)``
    frames (Whisper's frame count, at least one: a shorter input is
    zero-padded). Frames past an utterance's count are exactly 0, and each
    utterance's frames do not depend on the rest of the batch.

    Args:
        num_mels: mel bands (80 for Whisper base).

    Call arguments:
        waveforms: float (B, samples) at 16 kHz, zero-padded at the end.
        lengths: optional int (B,), the valid samples of each row; ``None``
            means every row is ``samples`` long.

    Returns:
        ``(mel, frame_lengths)``: float32 (B, F, num_mels) with ``F =
        max(1, samples // 160)``, and int32 (B,) frame counts.

    Example:
    >>> layer = WhisperAudioConverter()
    >>> mel, frames = layer(np.zeros((2, 16000), "float32"),
    ...                     np.array([16000, 8000], "int32"))
    >>> tuple(mel.shape), frames.numpy().tolist()
    ((2, 100, 80), [100, 50])
    """

    def __init__(self, num_mels=BASE.num_mels, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(num_mels, int) or isinstance(num_mels, bool) or num_mels <= 0:
            raise ValueError(
                f"`num_mels` must be a positive integer. Received: num_mels={num_mels!r}"
            )
        self.num_mels = num_mels
        self.sample_rate = SAMPLE_RATE
        self.hop_length = HOP_LENGTH
        self.n_fft = N_FFT
        self.built = True

    def frame_lengths(self, lengths):
        """Frame counts of utterances of ``lengths`` samples."""
        lengths = tf.cast(lengths, tf.int32)
        return tf.maximum(lengths // self.hop_length, 1)

    def call(self, waveforms, lengths=None):
        waveforms = tf.cast(waveforms, tf.float32)
        samples = tf.shape(waveforms)[1]
        if lengths is None:
            lengths = tf.fill(tf.shape(waveforms)[:1], samples)
        lengths = tf.clip_by_value(
            tf.cast(tf.reshape(lengths, [-1]), tf.int32), 0, samples
        )
        frame_lengths = self.frame_lengths(lengths)
        num_frames = self.frame_lengths(samples)
        half = self.n_fft // 2

        # The utterance zero-padded at the end (whatever the batch holds
        # past its length), as long as its last frame needs.
        inside = tf.range(samples)[tf.newaxis, :] < lengths[:, tf.newaxis]
        signal = tf.where(inside, waveforms, 0.0)
        total = tf.maximum(num_frames * self.hop_length + half, half + 1)
        signal = tf.pad(signal[:, :total], [[0, 0], [0, tf.maximum(0, total - samples)]])
        # torch.stft(center=True, pad_mode="reflect") at the start.
        signal = tf.concat([tf.reverse(signal[:, 1 : half + 1], axis=[1]), signal], axis=1)
        frames = tf.signal.frame(signal, self.n_fft, self.hop_length, pad_end=False)
        frames = frames[:, :num_frames]
        window = tf.signal.hann_window(self.n_fft, periodic=True)
        spectrum = tf.signal.rfft(frames * window, fft_length=[self.n_fft])
        # |X|^2 through tf.abs: ONNX conversion (tf2onnx) maps an RFFT
        # followed by ComplexAbs, the one form it converts.
        power = tf.square(tf.abs(spectrum))
        mel = tf.einsum(
            "btf,fm->btm", power, tf.constant(whisper_mel_filters(self.num_mels))
        )
        log_spec = tf.math.log(tf.maximum(mel, 1e-10)) / np.float32(np.log(10.0))

        valid = (tf.range(num_frames)[tf.newaxis, :] < frame_lengths[:, tf.newaxis])[
            ..., tf.newaxis
        ]
        peak = tf.reduce_max(
            tf.where(valid, log_spec, -np.inf), axis=[1, 2], keepdims=True
        )
        log_spec = (tf.maximum(log_spec, peak - 8.0) + 4.0) / 4.0
        return tf.where(valid, log_spec, 0.0), frame_lengths

    def compute_output_spec(self, waveforms, lengths=None):
        batch, samples = waveforms.shape[0], waveforms.shape[1]
        frames = None if samples is None else max(samples // self.hop_length, 1)
        return (
            keras.KerasTensor((batch, frames, self.num_mels), dtype="float32"),
            keras.KerasTensor((batch,), dtype="int32"),
        )

    def get_config(self):
        config = super().get_config()
        config.update({"num_mels": self.num_mels})
        return config
