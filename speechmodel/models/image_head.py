"""The end of the ImageNet CNNs (AlexNet, VGG, ResNet), as keras-hub's
image backbones have it: with ``include_top`` their own classifier, else a
feature map (``pooling=None``) or its global average or max (``"avg"``,
``"max"``). One check of those arguments, one pooling, for every CNN."""

import keras

from speechmodel.errors import ParameterError

POOLINGS = (None, "avg", "max")


def check_head(*, include_top, num_classes, pooling, poolings=POOLINGS):
    """Checks a CNN's ``include_top`` / ``num_classes`` / ``pooling``.

    ``poolings``: the values the CNN takes (AlexNet adds ``"fc7"``).

    Raises:
        ParameterError: ``pooling`` is not one of ``poolings``, or
            ``num_classes`` is not a positive int with ``include_top``.
    """
    if pooling not in poolings:
        raise ParameterError(f"`pooling` must be one of {poolings}. Received: pooling={pooling!r}")
    if include_top and (isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1):
        raise ParameterError(
            f"`num_classes` must be a positive int with include_top=True. Received: num_classes={num_classes!r}"
        )


def global_pooling(x, pooling):
    """``x`` (a feature map) pooled as ``pooling`` says: ``"avg"`` or
    ``"max"`` over height and width (layers ``avg_pool`` / ``max_pool``),
    anything else (None) as it is."""
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x
