"""AlexNet in the torchvision layout, for any input of at least 63x63."""

import keras

from speechmodel.layers.adaptive_average_pooling import AdaptiveAveragePooling
from speechmodel.models import image_head
from speechmodel.models.base import FunctionalModel

POOLINGS = (*image_head.POOLINGS, "fc7")


@keras.saving.register_keras_serializable(package="speechmodel")
class AlexNet(FunctionalModel):
    """AlexNet (Krizhevsky et al., 2012) as in ``torchvision.models.alexnet``.

    Five convolutions (64-192-384-256-256 filters, the single-tower
    torchvision variant) with three 3x3/2 max poolings, then an adaptive
    average pooling to 6x6 and the fully connected ``fc6``, ``fc7`` (4096
    units each, ReLU, dropout before each) and ``predictions`` layers.
    Zhang et al. (2021) take the 4096-d ``fc7`` output of an ImageNet
    AlexNet as the feature of each 227x227 log-mel segment
    (``pooling="fc7"``); seed 000's FCN+GAP model keeps the convolutions
    and replaces the fully connected layers by a global average pooling
    (``pooling="avg"``, 256-d, 2.5 M parameters).

    Layer names follow the torchvision parameter names (``features_0`` is
    ``features.0``, ``classifier_1`` is ``classifier.1`` ...) so that
    torchvision weights convert by name (see
    ``speechmodel.models.torchvision_weights``). Convolutions pad
    explicitly as torchvision does. On 64x64 inputs the last feature map
    is 1x1 and the adaptive pooling repeats it to 6x6, as torchvision's
    ``AdaptiveAvgPool2d`` does.

    Args:
        include_top: bool, the full classifier ``fc6``-``fc7``-
            ``predictions`` (``num_classes`` units).
        num_classes: int, classes of the top layer.
        pooling: when ``include_top=False``: ``None`` (the 256-channel
            feature map), ``"avg"`` or ``"max"`` (global pooling, 256-d),
            or ``"fc7"`` (``fc6`` and ``fc7``, 4096-d).
        input_shape: ``(height, width, 3)``, at least 63x63.
        dropout: float, dropout rate before ``fc6`` and ``fc7``.
        classifier_activation: activation of ``predictions`` (``None``
            gives logits).
        **kwargs: ``name``, ``trainable``.

    Example:
    >>> model = AlexNet(include_top=False, pooling="avg", input_shape=(64, 64, 3))
    >>> tuple(model.output_shape)
    (None, 256)
    """

    def __init__(
        self,
        *,
        include_top=True,
        num_classes=1000,
        pooling=None,
        input_shape=(224, 224, 3),
        dropout=0.5,
        classifier_activation="softmax",
        **kwargs,
    ):
        input_shape = tuple(input_shape)
        image_head.check_head(include_top=include_top, num_classes=num_classes, pooling=pooling, poolings=POOLINGS)
        if len(input_shape) != 3 or min(input_shape[:2]) < 63:
            raise ValueError(
                "AlexNet needs inputs of at least 63x63 (height, width, "
                "channels); resize smaller segments first (`input_size`). "
                f"Received: input_shape={input_shape}"
            )

        # === Functional Model ===
        inputs = keras.Input(shape=input_shape, name="image")
        x = inputs
        # (filters, kernel, stride, padding, maxpool after, torchvision index)
        convs = [
            (64, 11, 4, 2, True, 0),
            (192, 5, 1, 2, True, 3),
            (384, 3, 1, 1, False, 6),
            (256, 3, 1, 1, False, 8),
            (256, 3, 1, 1, True, 10),
        ]
        for filters, kernel, stride, pad, pool, index in convs:
            x = keras.layers.ZeroPadding2D(pad, name=f"features_{index}_pad")(x)
            x = keras.layers.Conv2D(
                filters, kernel, strides=stride, activation="relu",
                name=f"features_{index}",
            )(x)
            if pool:
                x = keras.layers.MaxPooling2D(
                    3, strides=2, name=f"features_{index + 2}"
                )(x)
        if include_top or pooling == "fc7":
            x = AdaptiveAveragePooling((6, 6), name="avgpool")(x)
            x = keras.layers.Flatten(name="flatten")(x)
            x = keras.layers.Dropout(dropout, name="classifier_0")(x)
            x = keras.layers.Dense(4096, activation="relu", name="classifier_1")(x)
            x = keras.layers.Dropout(dropout, name="classifier_3")(x)
            x = keras.layers.Dense(4096, activation="relu", name="classifier_4")(x)
            if include_top:
                x = keras.layers.Dense(
                    num_classes, activation=classifier_activation,
                    name="classifier_6", dtype="float32",
                )(x)
        else:
            x = image_head.global_pooling(x, pooling)
        super().__init__(inputs=inputs, outputs=x, **kwargs)

        # === Config ===
        self.include_top = include_top
        self.num_classes = num_classes
        self.pooling = pooling
        self.image_shape = input_shape
        self.dropout = dropout
        self.classifier_activation = classifier_activation

    # torchvision flattens (channels, 6, 6), Keras (6, 6, channels).
    torchvision_flatten_shapes = {"classifier_1": (6, 6, 256)}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "include_top": self.include_top,
                "num_classes": self.num_classes,
                "pooling": self.pooling,
                "input_shape": list(self.image_shape),
                "dropout": self.dropout,
                "classifier_activation": self.classifier_activation,
            }
        )
        return config
