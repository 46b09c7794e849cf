import keras

from speechmodel.models.base import FunctionalModel


@keras.saving.register_keras_serializable(package="speechmodel")
class CNN4(FunctionalModel):
    """A small four-block CNN with batch norm, for training from scratch.

    The "CNN with 4 layers" of the IEMOCAP seed project, sized for CPUs:
    a stride-2 stem convolution, then blocks of 3x3 convolution, batch norm,
    ReLU and 2x2 max pooling, and global average pooling. On a 64x64 segment
    it costs about a tenth of AlexNet's convolutions and, thanks to batch
    norm, trains from random weights in a few epochs; it is the toolkit's
    default CNN where no ImageNet weights are available.

    Args:
        filters: list of int, the filters of the stem and each block.
        input_shape: ``(height, width, channels)`` of a segment image.
        **kwargs: ``name``, ``trainable``.

    Example:
    >>> net = CNN4(input_shape=(64, 64, 3))
    >>> tuple(net(np.zeros((2, 64, 64, 3), "float32")).shape)
    (2, 256)
    """

    def __init__(self, filters=(32, 64, 128, 256), input_shape=(64, 64, 3), **kwargs):
        filters = [int(f) for f in filters]
        if len(filters) < 2 or min(filters) <= 0:
            raise ValueError(
                f"`filters` must list at least two positive ints. Received: filters={filters}"
            )
        input_shape = tuple(int(d) for d in input_shape)

        # === Layers ===
        layers = []
        for i, f in enumerate(filters):
            layers.append(
                (
                    keras.layers.Conv2D(
                        f, 3, strides=2 if i == 0 else 1, padding="same", use_bias=False,
                        name=f"conv{i + 1}",
                    ),
                    keras.layers.BatchNormalization(name=f"bn{i + 1}"),
                    keras.layers.ReLU(name=f"relu{i + 1}"),
                    keras.layers.MaxPooling2D(2, name=f"pool{i + 1}") if i > 0 else None,
                )
            )
        pooling = keras.layers.GlobalAveragePooling2D(name="avg_pool")

        # === Functional Model ===
        images = keras.Input(input_shape, name="images")
        x = images
        for conv, norm, relu, pool in layers:
            x = relu(norm(conv(x)))
            if pool is not None:
                x = pool(x)
        outputs = pooling(x)
        super().__init__(inputs=images, outputs=outputs, **kwargs)

        # === Config ===
        self.filters = filters
        self.image_shape = input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "input_shape": list(self.image_shape)})
        return config
