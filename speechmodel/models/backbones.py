"""``get_backbone``: the CNN that maps one segment image to an embedding.

Names and what they give (``input_shape`` is the image the backbone sees,
after any resize):

================  ===========================================  =========
name              network and embedding                        dimension
================  ===========================================  =========
alexnet           AlexNet, ``fc7`` (Zhang et al., 2021)        4096
alexnet_gap       AlexNet convolutions + global avg pooling    256
cnn4              small 4-block CNN with batch norm (CNN4)     256
resnet18          ResNet18 (basic blocks) + global avg pool    512
resnet34          ResNet34 (basic blocks) + global avg pool    512
vgg11             VGG11 + global avg pooling                   512
vgg11_bn          VGG11 with batch norm + global avg pooling   512
vgg16_bn          VGG16 with batch norm + global avg pooling   512
resnet50          keras.applications.ResNet50, avg pooling     2048
resnet50v2        keras.applications.ResNet50V2, avg pooling   2048
vgg16             keras.applications.VGG16, avg pooling        512
mobilenetv2       keras.applications.MobileNetV2, avg pooling  1280
efficientnetb0    keras.applications.EfficientNetB0, avg pool  1280
================  ===========================================  =========

``weights``: ``None`` (random init), ``"imagenet"`` (the keras.applications
networks only: Keras downloads the file once into its cache,
``$KERAS_HOME/models`` or ``~/.keras/models``), or the path of a local
file: a Keras weights file (``.weights.h5``, or a legacy ``.h5`` as
keras.applications distributes) of the same backbone, or, for the
torchvision-layout networks (AlexNet, ResNet18/34, VGG), a ``.npz`` of a
torchvision state dict (see ``speechmodel.models.torchvision_weights``).
"""

import os

import keras

from speechmodel.models.alexnet import AlexNet
from speechmodel.models.cnn4 import CNN4
from speechmodel.models.resnet import ResNet
from speechmodel.models.torchvision_weights import load_torchvision_weights
from speechmodel.models.vgg import VGG

# name -> ImageNet preprocessing mode of speechmodel.layers.ImageNetPreprocessing.
PREPROCESSING_MODES = {
    "alexnet": "torch",
    "alexnet_gap": "torch",
    "cnn4": "torch",
    "resnet18": "torch",
    "resnet34": "torch",
    "vgg11": "torch",
    "vgg11_bn": "torch",
    "vgg16_bn": "torch",
    "resnet50": "caffe",
    "resnet50v2": "tf",
    "vgg16": "caffe",
    "mobilenetv2": "tf",
    "efficientnetb0": "scale",
}
BACKBONE_NAMES = tuple(PREPROCESSING_MODES)

_TORCHVISION_LAYOUT = {
    "alexnet": lambda shape: AlexNet(include_top=False, pooling="fc7", input_shape=shape, name="alexnet"),
    "alexnet_gap": lambda shape: AlexNet(include_top=False, pooling="avg", input_shape=shape, name="alexnet_gap"),
    "cnn4": lambda shape: CNN4(input_shape=shape, name="cnn4"),
    "resnet18": lambda shape: ResNet.from_preset("resnet18", include_top=False, pooling="avg", input_shape=shape),
    "resnet34": lambda shape: ResNet.from_preset("resnet34", include_top=False, pooling="avg", input_shape=shape),
    "vgg11": lambda shape: VGG.from_preset("vgg11", include_top=False, pooling="avg", input_shape=shape),
    "vgg11_bn": lambda shape: VGG.from_preset("vgg11", batch_norm=True, include_top=False, pooling="avg", input_shape=shape),
    "vgg16_bn": lambda shape: VGG.from_preset("vgg16", batch_norm=True, include_top=False, pooling="avg", input_shape=shape),
}

_KERAS_APPLICATIONS = {
    "resnet50": "ResNet50",
    "resnet50v2": "ResNet50V2",
    "vgg16": "VGG16",
    "mobilenetv2": "MobileNetV2",
    "efficientnetb0": "EfficientNetB0",
}


def keras_imagenet_file(name, input_shape=(224, 224, 3)):
    """The file name keras.applications downloads for ``name``'s ImageNet
    weights without the top (``include_top=False``)."""
    if name in ("resnet50", "resnet50v2", "vgg16"):
        return f"{name}_weights_tf_dim_ordering_tf_kernels_notop.h5"
    if name == "mobilenetv2":
        rows = input_shape[0] if input_shape[0] in (96, 128, 160, 192, 224) else 224
        return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"
    if name == "efficientnetb0":
        return "efficientnetb0_notop.h5"
    raise ValueError(
        f"keras.applications has no ImageNet weights for {name!r}. "
        f"Received: name={name!r}"
    )


def keras_cache_dir():
    """The directory where Keras keeps downloaded weights (``models`` under
    ``$KERAS_HOME``, else ``~/.keras``; ``/tmp/.keras`` if not writable)."""
    from keras.src.backend import config as keras_config

    base = os.path.expanduser(keras_config.keras_home())
    if not os.access(base, os.W_OK):  # as keras.utils.get_file does
        base = os.path.join("/tmp", ".keras")
    return os.path.join(base, "models")


def _check_name(name):
    if name not in BACKBONE_NAMES:
        raise ValueError(
            f"Unknown backbone; known: {list(BACKBONE_NAMES)}. Received: backbone={name!r}"
        )


def embedding_dim(name):
    """The size of the embedding ``get_backbone(name)`` outputs."""
    _check_name(name)
    return {"alexnet": 4096, "alexnet_gap": 256, "cnn4": 256, "resnet50": 2048,
            "resnet50v2": 2048, "mobilenetv2": 1280, "efficientnetb0": 1280}.get(name, 512)


def _keras_application(name, weights, input_shape):
    constructor = getattr(keras.applications, _KERAS_APPLICATIONS[name])
    kwargs = dict(include_top=False, pooling="avg", input_shape=tuple(input_shape))
    if weights != "imagenet":
        return constructor(weights=weights, **kwargs)
    try:
        return constructor(weights="imagenet", **kwargs)
    except Exception as e:
        fname = keras_imagenet_file(name, input_shape)
        cache = keras_cache_dir()
        if os.path.isfile(os.path.join(cache, fname)):
            raise
        raise ValueError(
            f"Could not get the ImageNet weights of backbone {name!r}: Keras "
            f"needs the file {fname} in {cache} (downloading it failed: {e}). "
            f"Offline, copy {fname} into {cache} (the directory follows "
            "$KERAS_HOME), or pass weights=<path to that file>. "
            f"Received: weights='imagenet'"
        ) from e


def get_backbone(name, *, weights=None, input_shape=(64, 64, 3), trainable=True):
    """Builds a segment-embedding CNN.

    Args:
        name: one of ``BACKBONE_NAMES`` (see the module docstring).
        weights: ``None``, ``"imagenet"`` (keras.applications networks) or a
            local weights file (``.weights.h5`` / ``.h5``, or a torchvision
            ``.npz`` for the torchvision-layout networks).
        input_shape: ``(height, width, 3)`` of the images it receives.
        trainable: bool, whether the backbone's weights train.

    Returns:
        A ``keras.Model`` mapping ``(batch, *input_shape)`` images to
        ``(batch, embedding_dim(name))``. It expects the input range of its
        weights: see ``PREPROCESSING_MODES`` and
        ``speechmodel.layers.ImageNetPreprocessing``.

    Raises:
        ValueError: unknown name, ImageNet weights unavailable (offline or
            not published for Keras), or a weights file that does not load;
            the message names the file.
    """
    _check_name(name)
    input_shape = tuple(int(d) for d in input_shape)
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise ValueError(
            "`weights` must be None, 'imagenet' or a file path. "
            f"Received: weights={weights!r}"
        )
    weights = os.fspath(weights) if weights is not None else None
    if weights is not None and weights != "imagenet" and not os.path.isfile(weights):
        raise ValueError(
            f"No such weights file for backbone {name!r}. Received: weights={weights!r}"
        )

    if name in _KERAS_APPLICATIONS:
        if weights is not None and weights.endswith(".npz"):
            raise ValueError(
                f"torchvision .npz weights apply to {sorted(_TORCHVISION_LAYOUT)}, "
                f"not to the keras.applications backbone {name!r}. "
                f"Received: weights={weights!r}"
            )
        try:
            model = _keras_application(name, weights, input_shape)
        except ValueError:
            raise
        except Exception as e:  # e.g. an h5 file of another network
            raise ValueError(
                f"Cannot load the weights file {weights!r} into backbone {name!r}: {e}"
            ) from e
    else:
        if weights == "imagenet":
            raise ValueError(
                f"No ImageNet weights are published for Keras for backbone "
                f"{name!r}. Convert torchvision's: export its state dict to a "
                "NumPy .npz file (see speechmodel.models.torchvision_weights) "
                "and pass weights=<path to the .npz>, or pass a Keras "
                ".weights.h5 file of this backbone. Received: weights='imagenet'"
            )
        model = _TORCHVISION_LAYOUT[name](input_shape)
        if weights is not None:
            try:
                if weights.endswith(".npz"):
                    load_torchvision_weights(model, weights)
                else:
                    model.load_weights(weights)
            except Exception as e:
                raise ValueError(
                    f"Cannot load the weights file {weights!r} into backbone "
                    f"{name!r}: {e}"
                ) from e
    model.trainable = trainable
    return model
