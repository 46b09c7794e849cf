"""Adaptive average pooling with torchvision's semantics, any sizes."""

import keras
import numpy as np
from keras import ops


def pooling_matrix(in_size, out_size):
    """``(out_size, in_size)`` averaging matrix of ``AdaptiveAvgPool``:
    output ``i`` averages inputs ``floor(i * in / out)`` to
    ``ceil((i + 1) * in / out) - 1`` (repeats inputs when ``out > in``)."""
    matrix = np.zeros((out_size, in_size), dtype="float32")
    for i in range(out_size):
        start = (i * in_size) // out_size
        end = -((-(i + 1) * in_size) // out_size)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


@keras.saving.register_keras_serializable(package="speechmodel")
class AdaptiveAveragePooling(keras.layers.Layer):
    """2D adaptive average pooling, exactly ``torch.nn.AdaptiveAvgPool2d``.

    Pools a ``(batch, height, width, channels)`` map to ``output_size``
    with torch's windows, also when the map is smaller than the output
    (e.g. AlexNet's 1x1 map of a 64x64 segment repeated to 6x6), in eager
    and graph mode. Height and width must be static.

    Args:
        output_size: int or ``[height, width]``.
        **kwargs: base layer arguments.

    Example:
    >>> layer = AdaptiveAveragePooling(6)
    >>> tuple(layer(np.ones((2, 1, 1, 4), "float32")).shape)
    (2, 6, 6, 4)
    """

    def __init__(self, output_size, **kwargs):
        super().__init__(**kwargs)
        size = [output_size] * 2 if isinstance(output_size, int) else list(output_size)
        if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
            raise ValueError(
                "`output_size` must be a positive int or [height, width]. "
                f"Received: output_size={output_size!r}"
            )
        self.output_size = tuple(size)

    def build(self, input_shape):
        if len(input_shape) != 4 or None in tuple(input_shape[1:3]):
            raise ValueError(
                "`AdaptiveAveragePooling` expects (batch, height, width, "
                f"channels) with static height and width. Received: {input_shape}"
            )
        self._rows = pooling_matrix(input_shape[1], self.output_size[0])
        self._cols = pooling_matrix(input_shape[2], self.output_size[1])

    def call(self, inputs):
        rows = ops.convert_to_tensor(self._rows, dtype=inputs.dtype)
        cols = ops.convert_to_tensor(self._cols, dtype=inputs.dtype)
        return ops.einsum("ih,bhwc,jw->bijc", rows, inputs, cols)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.output_size, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"output_size": list(self.output_size)})
        return config
