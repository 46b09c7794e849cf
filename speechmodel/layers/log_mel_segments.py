import keras
import tensorflow as tf

from speechmodel import features as F
from speechmodel.config import FeatureConfig


@keras.saving.register_keras_serializable(package="speechmodel")
class LogMelSegments(keras.layers.Layer):
    """Raw waveforms -> three-channel log-mel segments and their mask.

    The same computation as the tf.data pipeline (``speechmodel.features``),
    as a layer, so that a saved model takes 16 kHz waveforms. It runs with
    the TensorFlow backend (the features are TensorFlow signal ops).

    Args:
        feature_config: dict of ``FeatureConfig`` fields (defaults if None).

    Call arguments:
        waveforms: float (B, samples), zero-padded at the end.
        lengths: optional int (B,), the valid samples of each waveform;
            ``None`` means every waveform is ``samples`` long.

    Returns:
        ``(segments, mask)``: float32 (B, N, frames, n_mels, 3) and bool
        (B, N), N the largest segment count in the batch.

    Example:
    >>> layer = LogMelSegments()
    >>> segments, mask = layer(np.zeros((2, 16000), "float32"))
    >>> tuple(segments.shape), tuple(mask.shape)
    ((2, 3, 64, 64, 3), (2, 3))
    """

    def __init__(self, feature_config=None, **kwargs):
        super().__init__(**kwargs)
        self.config = FeatureConfig.from_dict(feature_config or {})
        self.feature_config = self.config.to_dict()
        self.supports_masking = False

    def _one(self, waveform, length):
        return F.segment_features(waveform[:length], config=self.config)

    def call(self, waveforms, lengths=None):
        waveforms = tf.cast(waveforms, tf.float32)
        if lengths is None:
            lengths = tf.fill(tf.shape(waveforms)[:1], tf.shape(waveforms)[1])
        lengths = tf.cast(tf.reshape(lengths, [-1]), tf.int32)
        lengths = tf.maximum(lengths, 1)
        ragged = tf.map_fn(
            lambda args: self._one(*args),
            (waveforms, lengths),
            fn_output_signature=tf.RaggedTensorSpec(
                shape=[None, *self.config.segment_shape],
                dtype=tf.float32,
                ragged_rank=0,
            ),
        )
        segments = ragged.to_tensor()
        counts = ragged.row_lengths()
        mask = tf.sequence_mask(counts, maxlen=tf.shape(segments)[1])
        return segments, mask

    def compute_output_spec(self, waveforms, lengths=None):
        batch = waveforms.shape[0]
        return (
            keras.KerasTensor(
                (batch, None, *self.config.segment_shape), dtype="float32"
            ),
            keras.KerasTensor((batch, None), dtype="bool"),
        )

    def get_config(self):
        config = super().get_config()
        config.update({"feature_config": self.feature_config})
        return config
