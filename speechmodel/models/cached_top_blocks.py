"""``CachedTopBlocks``: an ``AudioSpeechModel`` trained from cached states."""

import keras
import tensorflow as tf

# Tokens (20 ms each) per span of frame masking: 100 ms.
MASK_SPAN = 5


@keras.saving.register_keras_serializable(package="speechmodel")
class CachedTopBlocks(keras.Model):
    """The trainable part of an ``AudioSpeechModel`` whose top encoder
    blocks fine-tune, on what its frozen lower blocks computed once.

    The front end's ``lower`` gives, per file, the lower blocks' segment
    embeddings and the residual stream entering the first tuned block
    (``training.fine_tune``: cached, the stream in float16). This model
    runs the rest: the tuned blocks on the stream, the same segment
    pooling, the head. It shares every variable with ``model``, so
    training it trains ``model``, which is what is saved (from waveforms).

    Frame masking (``frame_mask``, training only): spans of ``MASK_SPAN``
    tokens starting at a random ``frame_mask / MASK_SPAN`` of the valid
    tokens (about ``frame_mask`` of them masked, SpecAugment's time masks
    as wav2vec 2.0 applies them to its encoder's input) are replaced by
    the file's mean state. Its randomness is a ``SeedGenerator``'s, saved
    with the training backups like the dropout's.

    Args:
        model: an ``AudioSpeechModel`` on a front end with
            ``fine_tune_blocks > 0`` (``lower`` and ``from_states``).
        frame_mask: float in [0, 1), the share of tokens masked.
        seed: int, the masking's seed.

    Inputs: ``{"lower": float (B, N, first_tuned_block, D), "mask": bool
    (B, N), "states": float (B, T, D), "token_lengths": int32 (B,)}``.
    Output: float32 (B, num_classes) probabilities.
    """

    def __init__(self, model, *, frame_mask=0.0, seed=0, **kwargs):
        super().__init__(**kwargs)
        embedder = getattr(model, "embedder", None)
        if not hasattr(embedder, "from_states") or not embedder.encoder.fine_tune_blocks:
            raise ValueError(
                "CachedTopBlocks needs an AudioSpeechModel whose front end fine-tunes its top "
                f"blocks (fine_tune_blocks > 0). Received: model={getattr(model, 'name', model)!r}"
            )
        if not 0.0 <= frame_mask < 1.0:
            raise ValueError(f"`frame_mask` must be in [0, 1). Received: frame_mask={frame_mask!r}")
        self.model = model
        self.frame_mask = float(frame_mask)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _mask_frames(self, states, token_lengths):
        batch, tokens = tf.shape(states)[0], tf.shape(states)[1]
        valid = tf.sequence_mask(token_lengths, tokens)
        draw = keras.random.uniform((batch, tokens), seed=self.seed_generator)
        starts = tf.cast((draw < self.frame_mask / MASK_SPAN) & valid, tf.float32)
        # A token is masked when a span starts at it or up to MASK_SPAN - 1 before.
        padded = tf.pad(starts, [[0, 0], [MASK_SPAN - 1, 0]])
        covered = tf.nn.max_pool1d(padded[..., tf.newaxis], MASK_SPAN, 1, "VALID")[..., 0]
        masked = (covered > 0) & valid
        weight = tf.cast(valid, states.dtype)[..., tf.newaxis]
        mean = tf.reduce_sum(states * weight, axis=1, keepdims=True) / tf.maximum(
            tf.reduce_sum(weight, axis=1, keepdims=True), 1.0
        )
        return tf.where(masked[..., tf.newaxis], mean, states)

    def call(self, inputs, training=False):
        states = tf.cast(inputs["states"], tf.float32)
        token_lengths = tf.cast(inputs["token_lengths"], tf.int32)
        if training and self.frame_mask:
            states = self._mask_frames(states, token_lengths)
        embeddings, mask = self.model.embedder.from_states(
            inputs["lower"], inputs["mask"], states, token_lengths
        )
        embeddings = self.model._normalized(embeddings)
        return self.model.sequence_head({"embeddings": embeddings, "mask": mask}, training=training)
