"""Apply a per-segment network to the valid steps of a padded sequence."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="speechmodel")
class MaskedTimeDistributed(keras.layers.Wrapper):
    """Like ``TimeDistributed``, but padded steps are never computed.

    The wrapped layer (typically a CNN backbone that maps one segment
    ``(H, W, C)`` to an embedding) runs on the valid steps of the
    ``(batch, steps, ...)`` input gathered into one flat batch; its outputs
    are scattered back to ``(batch, steps, ...)`` with zeros at the padded
    steps. So a padded segment costs nothing, cannot change the output at a
    valid step, and is never seen by BatchNormalization statistics in
    training (a plain ``TimeDistributed`` would feed it to every layer).

    With ``skip_masked=False`` the layer runs on every step (static shapes,
    XLA-compilable) and the padded outputs are zeroed; the outputs at valid
    steps are the same in inference, but BatchNormalization in training
    sees the padded steps.

    Args:
        layer: a ``keras.layers.Layer`` (or model) applied to each step.
        skip_masked: bool, compute only the valid steps (default).
        **kwargs: base layer arguments.

    Call arguments:
        inputs: tensor ``(batch, steps, *step_shape)``; ``step_shape`` must
            be static.
        mask: optional bool tensor ``(batch, steps)``, True for valid steps;
            ``None`` computes every step.
        training: passed to the wrapped layer.

    Returns:
        ``(batch, steps, *layer_output_shape)``, zeros at padded steps.
    """

    def __init__(self, layer, skip_masked=True, **kwargs):
        super().__init__(layer, **kwargs)
        self.skip_masked = bool(skip_masked)
        self.supports_masking = True
        # A data-dependent gather has no static shape for XLA.
        self.supports_jit = not self.skip_masked

    def _child_shape(self, input_shape):
        if len(input_shape) < 3 or any(d is None for d in input_shape[2:]):
            raise ValueError(
                "`MaskedTimeDistributed` expects inputs of shape "
                "(batch, steps, *step_shape) with a static step shape. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        return (None, *input_shape[2:])

    def build(self, input_shape):
        super().build(self._child_shape(input_shape))

    def call(self, inputs, mask=None, training=None):
        shape = ops.shape(inputs)
        batch, steps = shape[0], shape[1]
        step_shape = tuple(inputs.shape[2:])
        flat = ops.reshape(inputs, (-1, *step_shape))
        if mask is None:
            outputs = self.layer(flat, training=training)
        else:
            flat_mask = ops.reshape(ops.cast(mask, "bool"), (-1,))
            if self.skip_masked:
                (indices,) = ops.nonzero(flat_mask)
                valid = self.layer(
                    ops.take(flat, indices, axis=0), training=training
                )
                outputs = ops.scatter(
                    ops.expand_dims(indices, -1),
                    valid,
                    (batch * steps, *valid.shape[1:]),
                )
            else:
                outputs = self.layer(flat, training=training)
                keep = ops.reshape(
                    flat_mask, (-1,) + (1,) * (len(outputs.shape) - 1)
                )
                outputs = ops.where(keep, outputs, ops.zeros_like(outputs))
        return ops.reshape(outputs, (batch, steps, *outputs.shape[1:]))

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_spec(self, inputs, mask=None, training=None):
        child = self.layer.compute_output_spec(
            keras.KerasTensor(self._child_shape(inputs.shape), dtype=inputs.dtype)
        )
        return keras.KerasTensor(
            (inputs.shape[0], inputs.shape[1], *child.shape[1:]),
            dtype=child.dtype,
        )

    def get_config(self):
        config = super().get_config()
        config.update({"skip_masked": self.skip_masked})
        return config
