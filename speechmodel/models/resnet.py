"""ResNet with basic blocks (ResNet18, ResNet34), torchvision layout."""

import keras

from speechmodel.errors import ParameterError
from speechmodel.models.base import FunctionalModel
from speechmodel.models.image_head import check_head, global_pooling

DEPTHS = {
    "resnet18": {
        "stackwise_num_filters": [64, 128, 256, 512],
        "stackwise_num_blocks": [2, 2, 2, 2],
        "stackwise_num_strides": [1, 2, 2, 2],
    },
    "resnet34": {
        "stackwise_num_filters": [64, 128, 256, 512],
        "stackwise_num_blocks": [3, 4, 6, 3],
        "stackwise_num_strides": [1, 2, 2, 2],
    },
}

_BN = {"epsilon": 1e-5, "momentum": 0.9}  # torchvision's BatchNorm2d


def _conv(x, filters, kernel, stride, padding, name):
    if padding:
        x = keras.layers.ZeroPadding2D(padding, name=f"{name}_pad")(x)
    return keras.layers.Conv2D(
        filters, kernel, strides=stride, use_bias=False, name=name
    )(x)


def _basic_block(x, filters, stride, name):
    shortcut = x
    y = _conv(x, filters, 3, stride, 1, f"{name}_conv1")
    y = keras.layers.BatchNormalization(**_BN, name=f"{name}_bn1")(y)
    y = keras.layers.ReLU(name=f"{name}_relu1")(y)
    y = _conv(y, filters, 3, 1, 1, f"{name}_conv2")
    y = keras.layers.BatchNormalization(**_BN, name=f"{name}_bn2")(y)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _conv(x, filters, 1, stride, 0, f"{name}_downsample_0")
        shortcut = keras.layers.BatchNormalization(
            **_BN, name=f"{name}_downsample_1"
        )(shortcut)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


@keras.saving.register_keras_serializable(package="speechmodel")
class ResNet(FunctionalModel):
    """ResNet with basic residual blocks (He et al., 2016), as torchvision.

    A 7x7/2 convolution, batch norm, ReLU and 3x3/2 max pooling stem, then
    stacks of basic blocks (two 3x3 convolutions; a 1x1 projection on the
    shortcut when the shape changes). ``ResNet.from_depth("resnet18")``
    and ``"resnet34"`` give the two standard depths. Layer names follow the
    torchvision parameter names (``layer1_0_conv1`` is ``layer1.0.conv1``),
    and convolutions pad explicitly as torchvision does, so torchvision
    weights convert by name (``speechmodel.models.torchvision_weights``).
    Works on inputs from 32x32 (64x64 segments give a 2x2 last map).

    Args:
        stackwise_num_filters: list of int, filters of each stack.
        stackwise_num_blocks: list of int, blocks of each stack.
        stackwise_num_strides: list of int, stride of each stack's first
            block.
        include_top: bool, global average pooling and a ``fc`` classifier.
        num_classes: int, classes of the top layer.
        pooling: when ``include_top=False``: ``None``, ``"avg"`` or
            ``"max"``.
        input_shape: ``(height, width, 3)``.
        classifier_activation: activation of ``fc`` (``None``: logits).
        **kwargs: ``name``, ``trainable``.

    Example:
    >>> model = ResNet.from_depth("resnet18", include_top=False,
    ...                           pooling="avg", input_shape=(64, 64, 3))
    >>> tuple(model.output_shape)
    (None, 512)
    """

    depths = DEPTHS

    def __init__(
        self,
        *,
        stackwise_num_filters,
        stackwise_num_blocks,
        stackwise_num_strides,
        include_top=True,
        num_classes=1000,
        pooling=None,
        input_shape=(224, 224, 3),
        classifier_activation="softmax",
        **kwargs,
    ):
        input_shape = tuple(input_shape)
        stacks = (stackwise_num_filters, stackwise_num_blocks, stackwise_num_strides)
        if len({len(s) for s in stacks}) != 1 or not stackwise_num_filters:
            raise ValueError(
                "`stackwise_num_filters`, `stackwise_num_blocks` and "
                "`stackwise_num_strides` must be non-empty lists of the same "
                f"length. Received: {stackwise_num_filters}, "
                f"{stackwise_num_blocks}, {stackwise_num_strides}"
            )
        check_head(include_top=include_top, num_classes=num_classes, pooling=pooling)
        if len(input_shape) != 3 or min(input_shape[:2]) < 32:
            raise ValueError(
                "ResNet needs inputs of at least 32x32 (height, width, "
                f"channels). Received: input_shape={input_shape}"
            )

        # === Functional Model ===
        inputs = keras.Input(shape=input_shape, name="image")
        x = _conv(inputs, 64, 7, 2, 3, "conv1")
        x = keras.layers.BatchNormalization(**_BN, name="bn1")(x)
        x = keras.layers.ReLU(name="relu")(x)
        # Zero padding equals torchvision's -inf padding after a ReLU.
        x = keras.layers.ZeroPadding2D(1, name="maxpool_pad")(x)
        x = keras.layers.MaxPooling2D(3, strides=2, name="maxpool")(x)
        for stack, (filters, blocks, stride) in enumerate(zip(*stacks), start=1):
            for block in range(blocks):
                x = _basic_block(
                    x, filters, stride if block == 0 else 1, f"layer{stack}_{block}"
                )
        if include_top:
            x = keras.layers.GlobalAveragePooling2D(name="avgpool")(x)
            x = keras.layers.Dense(
                num_classes, activation=classifier_activation, name="fc",
                dtype="float32",
            )(x)
        else:
            x = global_pooling(x, pooling)
        super().__init__(inputs=inputs, outputs=x, **kwargs)

        # === Config ===
        self.stackwise_num_filters = list(stackwise_num_filters)
        self.stackwise_num_blocks = list(stackwise_num_blocks)
        self.stackwise_num_strides = list(stackwise_num_strides)
        self.include_top = include_top
        self.num_classes = num_classes
        self.pooling = pooling
        self.image_shape = input_shape
        self.classifier_activation = classifier_activation

    torchvision_flatten_shapes = {}

    @classmethod
    def from_depth(cls, depth, **kwargs):
        """Builds a named depth (``"resnet18"``, ``"resnet34"``), random init."""
        if depth not in cls.depths:
            raise ParameterError(f"Unknown ResNet depth; known: {sorted(cls.depths)}. Received: depth={depth!r}")
        return cls(**cls.depths[depth], name=kwargs.pop("name", depth), **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "stackwise_num_filters": self.stackwise_num_filters,
                "stackwise_num_blocks": self.stackwise_num_blocks,
                "stackwise_num_strides": self.stackwise_num_strides,
                "include_top": self.include_top,
                "num_classes": self.num_classes,
                "pooling": self.pooling,
                "input_shape": list(self.image_shape),
                "classifier_activation": self.classifier_activation,
            }
        )
        return config
