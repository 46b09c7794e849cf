"""Attention pooling of a sequence into one vector, padding excluded."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="speechmodel")
class AttentionPooling(keras.layers.Layer):
    """Additive attention pooling over the time axis, respecting a mask.

    For a sequence ``h_1..h_N`` (e.g. BLSTM outputs) the layer scores each
    step, ``e_t = v^T tanh(W h_t + b)`` (or ``e_t = v^T h_t`` when
    ``units=None``), normalises the scores with a softmax over the *valid*
    steps only, ``a_t = exp(e_t) / sum_{s valid} exp(e_s)``, and returns
    ``sum_t a_t h_t``. Masked steps get a weight of exactly 0 and never
    contribute, whatever their value; a sequence with no valid step pools
    to zeros. The softmax is computed in float32 under mixed precision.

    Args:
        units: int, the width of the scoring MLP; ``None`` scores with a
            single linear projection.
        use_bias: bool, whether the scoring MLP has a bias.
        kernel_initializer: initializer of ``W`` and ``v``.
        bias_initializer: initializer of ``b``.
        **kwargs: base layer arguments (``name``, ``dtype``, ...).

    Call arguments:
        inputs: float tensor ``(batch, steps, features)``.
        mask: optional bool tensor ``(batch, steps)``, True for valid steps.
        return_attention: bool; also return the attention weights.

    Returns:
        ``(batch, features)``, or ``(pooled, weights)`` with
        ``weights`` float32 ``(batch, steps)`` when ``return_attention``;
        the weights of a sequence sum to 1 over its valid steps.

    Example:
    >>> layer = AttentionPooling(units=8)
    >>> x = np.random.rand(2, 5, 4).astype("float32")
    >>> mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    >>> pooled, weights = layer(x, mask=mask, return_attention=True)
    >>> tuple(pooled.shape), tuple(weights.shape)
    ((2, 4), (2, 5))
    """

    def __init__(
        self,
        units=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if units is not None and (
            not isinstance(units, int) or isinstance(units, bool) or units <= 0
        ):
            raise ValueError(
                "`units` must be a positive int or None. "
                f"Received: units={units!r}"
            )
        self.units = units
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                "`AttentionPooling` expects inputs of shape "
                "(batch, steps, features) with a known feature size. "
                f"Received: input_shape={input_shape}"
            )
        dim = input_shape[-1]
        self.kernel = None
        self.bias = None
        if self.units is not None:
            self.kernel = self.add_weight(
                name="kernel",
                shape=(dim, self.units),
                initializer=self.kernel_initializer,
            )
            if self.use_bias:
                self.bias = self.add_weight(
                    name="bias",
                    shape=(self.units,),
                    initializer=self.bias_initializer,
                )
        self.context = self.add_weight(
            name="context",
            shape=(self.units or dim, 1),
            initializer=self.kernel_initializer,
        )

    def call(self, inputs, mask=None, return_attention=False):
        x = inputs
        if mask is not None:
            mask = ops.cast(mask, "bool")
            x = ops.where(ops.expand_dims(mask, -1), x, ops.zeros_like(x))
        hidden = x
        if self.kernel is not None:
            hidden = ops.matmul(x, self.kernel)
            if self.bias is not None:
                hidden = hidden + self.bias
            hidden = ops.tanh(hidden)
        scores = ops.squeeze(ops.matmul(hidden, self.context), axis=-1)
        scores = ops.cast(scores, "float32")
        if mask is not None:
            scores = ops.where(mask, scores, ops.full_like(scores, -1e9))
        weights = ops.softmax(scores, axis=-1)
        if mask is not None:
            weights = ops.where(mask, weights, ops.zeros_like(weights))
        pooled = ops.sum(
            x * ops.cast(ops.expand_dims(weights, -1), x.dtype), axis=1
        )
        if return_attention:
            return pooled, weights
        return pooled

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_spec(self, inputs, mask=None, return_attention=False):
        pooled = keras.KerasTensor(
            (inputs.shape[0], inputs.shape[-1]), dtype=self.compute_dtype
        )
        if return_attention:
            weights = keras.KerasTensor(tuple(inputs.shape[:2]), dtype="float32")
            return pooled, weights
        return pooled

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
            }
        )
        return config
