"""A learned softmax-weighted sum over the blocks of a pretrained encoder."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="speechmodel")
class BlockWeightedSum(keras.layers.Layer):
    """Mixes the per-block outputs of an encoder with learned weights.

    For inputs ``x[..., l, :]`` from ``L`` blocks (e.g. the transformer
    blocks of Whisper's encoder), returns ``sum_l softmax(w)_l *
    norm(x[..., l, :])`` with one learned scalar ``w_l`` per block (as in
    SUPERB's weighted-sum probing of speech encoders). The weights start
    equal, so the layer starts as the mean over the blocks. ``normalize``
    applies a parameter-free layer normalisation to each block's vectors
    first, which puts blocks of very different scales on one footing.

    Args:
        num_blocks: int, the number of blocks ``L``.
        normalize: bool, layer-normalise every block's vectors first.
        epsilon: float, the normalisation's variance epsilon.
        **kwargs: base layer arguments (``name``, ``dtype``, ...).

    Call arguments:
        inputs: float ``(..., L, D)``.

    Returns:
        ``(..., D)``.

    Example:
    >>> layer = BlockWeightedSum(3, normalize=False)
    >>> x = np.stack([np.full((2, 4), v, "float32") for v in (0.0, 3.0, 6.0)], axis=1)
    >>> [round(float(v), 4) for v in np.asarray(layer(x))[0]]
    [3.0, 3.0, 3.0, 3.0]
    >>> [round(float(w), 4) for w in np.asarray(layer.block_weights())]
    [0.3333, 0.3333, 0.3333]
    """

    def __init__(self, num_blocks, *, normalize=True, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(num_blocks, int) or isinstance(num_blocks, bool) or num_blocks <= 0:
            raise ValueError(
                f"`num_blocks` must be a positive int. Received: num_blocks={num_blocks!r}"
            )
        self.num_blocks = num_blocks
        self.normalize = bool(normalize)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        if input_shape[-2] is not None and input_shape[-2] != self.num_blocks:
            raise ValueError(
                f"The inputs must have {self.num_blocks} blocks on axis -2. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.logits = self.add_weight(
            shape=(self.num_blocks,), initializer="zeros", name="block_logits"
        )

    def block_weights(self):
        """The current softmax weights of the blocks, ``(L,)``."""
        return ops.softmax(ops.cast(self.logits, "float32"))

    def call(self, inputs):
        x = inputs
        if self.normalize:
            mean = ops.mean(x, axis=-1, keepdims=True)
            var = ops.mean(ops.square(x - mean), axis=-1, keepdims=True)
            x = (x - mean) * ops.rsqrt(var + self.epsilon)
        weights = ops.cast(ops.softmax(self.logits), x.dtype)
        return ops.einsum("...ld,l->...d", x, weights)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-2]) + (input_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"num_blocks": self.num_blocks, "normalize": self.normalize, "epsilon": self.epsilon}
        )
        return config
