"""Whisper encoder outputs pooled onto the toolkit's segment grid."""

import keras
import tensorflow as tf

from speechmodel import features as F
from speechmodel.config import FeatureConfig
from speechmodel.models.whisper import whisper_audio_converter as wac
from speechmodel.models.whisper.whisper_audio_converter import WhisperAudioConverter
from speechmodel.models.whisper.whisper_config import WHISPER_BASE_CONFIG as BASE
from speechmodel.models.whisper.whisper_encoder import WhisperEncoder

# Samples per Whisper token: conv2 halves the 10 ms frame rate.
TOKEN_SAMPLES = 2 * wac.HOP_LENGTH


def segment_counts(lengths, config):
    """The number of segments ``speechmodel.features`` cuts an utterance of
    ``lengths`` samples into (``max_segments`` applied), int32 (B,)."""
    lengths = tf.cast(lengths, tf.int32)
    frames = tf.maximum(1 + lengths // config.hop_length, config.delta_width)
    counts = F.num_segments(frames, config=config)
    if config.max_segments is not None:
        counts = tf.minimum(counts, config.max_segments)
    return counts


def segment_token_ranges(num_segments, config):
    """Whisper token range ``[start, end)`` of each segment, int32 (N,).

    Segment n covers the feature frames ``[n * segment_hop, n * segment_hop
    + segment_frames)``, i.e. the samples ``hop_length`` times those; the
    tokens are those of ``TOKEN_SAMPLES`` samples that overlap them.
    """
    n = tf.range(num_segments)
    start = n * config.segment_hop * config.hop_length
    end = start + config.segment_frames * config.hop_length
    return start // TOKEN_SAMPLES, (end + TOKEN_SAMPLES - 1) // TOKEN_SAMPLES


def max_segment_tokens(config):
    """The most tokens a segment's range can hold."""
    width = -(-config.segment_frames * config.hop_length // TOKEN_SAMPLES)
    aligned = (config.segment_hop * config.hop_length) % TOKEN_SAMPLES == 0
    return width if aligned else width + 1


@keras.saving.register_keras_serializable(package="speechmodel")
class WhisperSegmentEmbedder(keras.layers.Layer):
    """Waveforms -> per-block Whisper embeddings of the toolkit's segments.

    The waveforms go through ``WhisperAudioConverter`` and
    ``WhisperEncoder``; every block's token outputs are then mean-pooled
    onto the same N segments ``speechmodel.features`` cuts the utterance
    into (``FeatureConfig``: ``N = 1 + ceil(max(0, frames -
    segment_frames) / segment_hop)``, ``frames = 1 + length //
    hop_length``). Segment n averages the utterance's valid tokens of 20 ms
    overlapping its frames ``[n * segment_hop, n * segment_hop +
    segment_frames)`` (tokens ``[n * segment_hop / 2, (n * segment_hop +
    segment_frames) / 2)`` at 10 ms frames); a segment with no valid token
    takes the last valid one. Segments past an utterance's count are zeros
    with a False mask, and each utterance's result does not depend on the
    rest of the batch.

    Args:
        feature_config: dict of ``FeatureConfig`` fields (defaults if None);
            ``sample_rate`` must be 16000 (Whisper's).
        weights: the encoder's ``weights`` (None, ``"whisper_base"`` or a
            file path).
        fine_tune_blocks: the encoder's trainable top blocks (0: frozen).
        lora_rank: 0, or the rank of low-rank adapters on those blocks
            (only the adapters train; see ``WhisperEncoder``).
        num_layers, hidden_dim, num_heads, intermediate_dim, num_mels,
            max_positions: the encoder's sizes (Whisper base's defaults).

    Call arguments:
        waveforms: float (B, samples) at 16 kHz, zero-padded at the end.
        lengths: optional int (B,) valid samples; ``None`` is all samples.

    Returns:
        ``(embeddings, mask)``: float32 (B, N, num_blocks, embedding_dim)
        and bool (B, N), N the segment count of ``samples`` samples (the
        padded length).

    Example:
    >>> embedder = WhisperSegmentEmbedder(
    ...     num_layers=2, hidden_dim=8, num_heads=2, intermediate_dim=16)
    >>> embeddings, mask = embedder(np.zeros((2, 16000), "float32"),
    ...                             np.array([16000, 4000], "int32"))
    >>> tuple(embeddings.shape), mask.numpy().sum(axis=1).tolist()
    ((2, 3, 2, 8), [3, 1])
    """

    def __init__(
        self,
        feature_config=None,
        weights=None,
        fine_tune_blocks=0,
        lora_rank=0,
        num_layers=BASE.num_layers,
        hidden_dim=BASE.hidden_dim,
        num_heads=BASE.num_heads,
        intermediate_dim=BASE.intermediate_dim,
        num_mels=BASE.num_mels,
        max_positions=BASE.max_positions,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.config = FeatureConfig.from_dict(feature_config or {})
        if self.config.sample_rate != wac.SAMPLE_RATE:
            raise ValueError(
                f"Whisper takes {wac.SAMPLE_RATE} Hz audio. Received: "
                f"feature_config sample_rate={self.config.sample_rate}"
            )
        self.feature_config = self.config.to_dict()
        self.converter = WhisperAudioConverter(num_mels=num_mels, name="converter")
        self.encoder = WhisperEncoder(
            num_layers=num_layers,
            hidden_dim=hidden_dim,
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            num_mels=num_mels,
            max_positions=max_positions,
            weights=weights,
            fine_tune_blocks=fine_tune_blocks,
            lora_rank=lora_rank,
            dtype=self.dtype_policy,
            name="encoder",
        )
        self.supports_masking = False

    @property
    def num_blocks(self):
        """L: the encoder blocks whose outputs are pooled."""
        return self.encoder.num_layers

    @property
    def embedding_dim(self):
        """D: the width of each block's embedding."""
        return self.encoder.hidden_dim

    def build(self, waveforms_shape=None, lengths_shape=None):
        if not self.encoder.built:
            self.encoder.build()
        self.built = True

    def pool(self, hidden, token_lengths, lengths, samples=None):
        """Mean-pools encoder outputs onto the segment grid.

        Args:
            hidden: float (B, L, T, D), ``WhisperEncoder``'s output.
            token_lengths: int (B,) valid tokens.
            lengths: int (B,) valid samples of the waveforms.
            samples: the padded waveform length; N is its segment count
                (``None``: the largest count of ``lengths``).

        Returns:
            ``(embeddings, mask)`` as ``call``.
        """
        counts = segment_counts(lengths, self.config)
        if samples is None:
            num_segments = tf.reduce_max(counts)
        else:
            num_segments = segment_counts(samples, self.config)
        return self.pool_segments(hidden, token_lengths, counts, num_segments)

    def pool_segments(self, hidden, token_lengths, counts, num_segments):
        """``pool`` given each utterance's segment count (int (B,)) and
        the padded count N."""
        token_lengths = tf.cast(token_lengths, tf.int32)
        counts = tf.cast(counts, tf.int32)
        start, end = segment_token_ranges(num_segments, self.config)
        width = max_segment_tokens(self.config)
        index = start[:, tf.newaxis] + tf.range(width)[tf.newaxis, :]  # (N, K)
        inside = (index < end[:, tf.newaxis])[tf.newaxis]  # (1, N, K)
        valid = inside & (index[tf.newaxis] < token_lengths[:, tf.newaxis, tf.newaxis])
        count = tf.reduce_sum(tf.cast(valid, tf.int32), axis=-1)  # (B, N)
        last = tf.maximum(token_lengths - 1, 0)[:, tf.newaxis, tf.newaxis]
        index = tf.where(valid, index[tf.newaxis], last)  # (B, N, K)
        weight = tf.cast(valid, hidden.dtype) / tf.cast(
            tf.maximum(count, 1), hidden.dtype
        )[..., tf.newaxis]
        # No valid token in range: all the weight on index[..., 0] = last.
        weight = tf.where(
            (count == 0)[..., tf.newaxis],
            tf.one_hot(0, width, dtype=hidden.dtype),
            weight,
        )
        mask = tf.range(num_segments)[tf.newaxis, :] < counts[:, tf.newaxis]
        weight = weight * tf.cast(mask, hidden.dtype)[..., tf.newaxis]

        tokens = tf.transpose(hidden, [0, 2, 1, 3])  # (B, T, L, D)
        index = tf.minimum(index, tf.maximum(tf.shape(tokens)[1] - 1, 0))
        gathered = tf.gather(tokens, index, batch_dims=1)  # (B, N, K, L, D)
        embeddings = tf.einsum("bnk,bnkld->bnld", weight, gathered)
        return tf.cast(embeddings, tf.float32), mask

    def call(self, waveforms, lengths=None):
        waveforms, lengths = self._clip(waveforms, lengths)
        mel, frame_lengths = self.converter(waveforms, lengths)
        hidden, token_lengths = self.encoder(mel, frame_lengths)
        return self.pool(hidden, token_lengths, lengths, tf.shape(waveforms)[1])

    def lower(self, waveforms, lengths=None):
        """What does not change while only the top blocks train, per file:
        the frozen lower blocks' segment embeddings and the residual stream
        entering the first tuned block (``WhisperEncoder.lower_states``).

        Args:
            waveforms, lengths: as ``call``.

        Returns:
            ``(embeddings, mask, states, token_lengths)``: float32 (B, N,
            first_tuned_block, D) and bool (B, N) as ``call`` for the lower
            blocks, float (B, T, D) and int32 (B,).
        """
        waveforms, lengths = self._clip(waveforms, lengths)
        mel, frame_lengths = self.converter(waveforms, lengths)
        hidden, states, token_lengths = self.encoder.lower_states(mel, frame_lengths)
        embeddings, mask = self.pool(hidden, token_lengths, lengths, tf.shape(waveforms)[1])
        return embeddings, mask, states, token_lengths

    def from_states(self, lower, mask, states, token_lengths):
        """``call``'s output from ``lower``'s: the tuned top blocks on the
        states, pooled, after the lower blocks' embeddings.

        Args:
            lower: float (B, N, first_tuned_block, D) segment embeddings.
            mask: bool (B, N), the valid segments.
            states: float (B, T, D) zero-padded; token_lengths: int (B,).

        Returns:
            ``(embeddings (B, N, num_blocks, D) float32, mask)``.
        """
        upper = self.encoder.upper_blocks(states, token_lengths)
        counts = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
        pooled, _ = self.pool_segments(upper, token_lengths, counts, tf.shape(mask)[1])
        return tf.concat([tf.cast(lower, tf.float32), pooled], axis=2), mask

    def _clip(self, waveforms, lengths):
        waveforms = tf.cast(waveforms, tf.float32)
        if lengths is None:
            lengths = tf.fill(tf.shape(waveforms)[:1], tf.shape(waveforms)[1])
        lengths = tf.clip_by_value(
            tf.cast(tf.reshape(lengths, [-1]), tf.int32), 0, tf.shape(waveforms)[1]
        )
        return waveforms, lengths

    def compute_output_spec(self, waveforms, lengths=None):
        batch, samples = waveforms.shape[0], waveforms.shape[1]
        count = None
        if samples is not None:
            c = self.config
            frames = max(1 + samples // c.hop_length, c.delta_width)
            count = 1 + -(-max(0, frames - c.segment_frames) // c.segment_hop)
            if c.max_segments is not None:
                count = min(count, c.max_segments)
        return (
            keras.KerasTensor(
                (batch, count, self.num_blocks, self.embedding_dim), dtype="float32"
            ),
            keras.KerasTensor((batch, count), dtype="bool"),
        )

    @classmethod
    def from_config(cls, config):
        layer = super().from_config(config)
        # Deserialisation is followed by load_own_variables: the encoder
        # reads its weights source at most once.
        layer.encoder._defer_source_load = True
        return layer

    def get_config(self):
        config = super().get_config()
        encoder = self.encoder.get_config()
        config.update(
            {
                "feature_config": self.feature_config,
                "weights": encoder["weights"],
                "fine_tune_blocks": encoder["fine_tune_blocks"],
                "lora_rank": encoder["lora_rank"],
                "num_layers": encoder["num_layers"],
                "hidden_dim": encoder["hidden_dim"],
                "num_heads": encoder["num_heads"],
                "intermediate_dim": encoder["intermediate_dim"],
                "num_mels": encoder["num_mels"],
                "max_positions": encoder["max_positions"],
            }
        )
        return config
