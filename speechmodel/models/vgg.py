"""VGG (VGG11, VGG16, ...) with optional batch norm, torchvision layout."""

import keras

from speechmodel.errors import ParameterError
from speechmodel.layers.adaptive_average_pooling import AdaptiveAveragePooling
from speechmodel.models.base import FunctionalModel
from speechmodel.models.image_head import check_head, global_pooling

# torchvision's configurations: ints are 3x3 convolutions, "M" max pooling.
DEPTHS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M",
              512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512,
              "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512,
              512, 512, "M", 512, 512, 512, 512, "M"],
}


@keras.saving.register_keras_serializable(package="speechmodel")
class VGG(FunctionalModel):
    """VGG (Simonyan and Zisserman, 2015) as ``torchvision.models.vgg*``.

    3x3 convolutions (``"same"``, ReLU, optional batch norm) and 2x2 max
    poolings given by ``stackwise_config``, then, with ``include_top``, an
    adaptive average pooling to 7x7 and three fully connected layers
    (4096, 4096, ``num_classes``) with dropout. ``VGG.from_depth("vgg11")``
    (or ``"vgg13"``, ``"vgg16"``, ``"vgg19"``) gives the standard depths.
    Layer names follow torchvision's indices (``features_0``,
    ``classifier_0`` ...) so that torchvision weights convert by name.
    Works on inputs from 32x32 (64x64 segments give a 2x2 last map).

    Args:
        stackwise_config: list of int (filters of a convolution) and
            ``"M"`` (a max pooling).
        batch_norm: bool, batch norm after every convolution (``vgg11_bn``).
        include_top: bool, the fully connected classifier.
        num_classes: int, classes of the top layer.
        pooling: when ``include_top=False``: ``None``, ``"avg"`` or
            ``"max"``.
        input_shape: ``(height, width, 3)``.
        dropout: float, dropout rate in the classifier.
        classifier_activation: activation of the last layer (``None``:
            logits).
        **kwargs: ``name``, ``trainable``.

    Example:
    >>> model = VGG.from_depth("vgg11", include_top=False, pooling="avg",
    ...                        input_shape=(64, 64, 3))
    >>> tuple(model.output_shape)
    (None, 512)
    """

    depths = DEPTHS

    def __init__(
        self,
        *,
        stackwise_config,
        batch_norm=False,
        include_top=True,
        num_classes=1000,
        pooling=None,
        input_shape=(224, 224, 3),
        dropout=0.5,
        classifier_activation="softmax",
        **kwargs,
    ):
        input_shape = tuple(input_shape)
        if not stackwise_config or any(
            v != "M" and (not isinstance(v, int) or v <= 0) for v in stackwise_config
        ):
            raise ValueError(
                "`stackwise_config` must be a non-empty list of positive ints "
                f"and 'M'. Received: stackwise_config={stackwise_config!r}"
            )
        check_head(include_top=include_top, num_classes=num_classes, pooling=pooling)
        n_pools = stackwise_config.count("M")
        if len(input_shape) != 3 or min(input_shape[:2]) < 2**n_pools:
            raise ValueError(
                f"This VGG needs inputs of at least {2**n_pools}x{2**n_pools} "
                f"(height, width, channels). Received: input_shape={input_shape}"
            )

        # === Functional Model ===
        inputs = keras.Input(shape=input_shape, name="image")
        x = inputs
        index = 0
        filters = None
        for v in stackwise_config:
            if v == "M":
                x = keras.layers.MaxPooling2D(2, strides=2, name=f"features_{index}")(x)
                index += 1
                continue
            x = keras.layers.Conv2D(v, 3, padding="same", name=f"features_{index}")(x)
            index += 1
            if batch_norm:
                x = keras.layers.BatchNormalization(
                    epsilon=1e-5, momentum=0.9, name=f"features_{index}"
                )(x)
                index += 1
            x = keras.layers.ReLU(name=f"features_{index}")(x)
            index += 1
            filters = v
        if include_top:
            x = AdaptiveAveragePooling((7, 7), name="avgpool")(x)
            x = keras.layers.Flatten(name="flatten")(x)
            x = keras.layers.Dense(4096, activation="relu", name="classifier_0")(x)
            x = keras.layers.Dropout(dropout, name="classifier_2")(x)
            x = keras.layers.Dense(4096, activation="relu", name="classifier_3")(x)
            x = keras.layers.Dropout(dropout, name="classifier_5")(x)
            x = keras.layers.Dense(
                num_classes, activation=classifier_activation,
                name="classifier_6", dtype="float32",
            )(x)
        else:
            x = global_pooling(x, pooling)
        super().__init__(inputs=inputs, outputs=x, **kwargs)

        # === Config ===
        self.stackwise_config = list(stackwise_config)
        self.batch_norm = batch_norm
        self.include_top = include_top
        self.num_classes = num_classes
        self.pooling = pooling
        self.image_shape = input_shape
        self.dropout = dropout
        self.classifier_activation = classifier_activation
        self.torchvision_flatten_shapes = {"classifier_0": (7, 7, filters)}

    @classmethod
    def from_depth(cls, depth, **kwargs):
        """Builds a named depth (``"vgg11"`` ... ``"vgg19"``), random init."""
        if depth not in cls.depths:
            raise ParameterError(f"Unknown VGG depth; known: {sorted(cls.depths)}. Received: depth={depth!r}")
        name = kwargs.pop("name", depth + ("_bn" if kwargs.get("batch_norm") else ""))
        return cls(stackwise_config=cls.depths[depth], name=name, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "stackwise_config": self.stackwise_config,
                "batch_norm": self.batch_norm,
                "include_top": self.include_top,
                "num_classes": self.num_classes,
                "pooling": self.pooling,
                "input_shape": list(self.image_shape),
                "dropout": self.dropout,
                "classifier_activation": self.classifier_activation,
            }
        )
        return config
