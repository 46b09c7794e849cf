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

``weights``: ``None`` (random init), ``"imagenet"``, or the path of a
local file: a Keras weights file (``.weights.h5``, or a legacy ``.h5`` as
keras.applications distributes) of the same backbone, or, for the
torchvision-layout networks (AlexNet, ResNet18/34, VGG), a torchvision
state dict as a PyTorch checkpoint (``.pth``/``.pt``, read without PyTorch
and without running pickle code, see ``speechmodel.models.torch_checkpoint``)
or a ``.npz`` (see ``speechmodel.models.torchvision_weights``).

``"imagenet"``:

* keras.applications networks: Keras downloads its file once into its cache,
  ``$KERAS_HOME/models`` or ``~/.keras/models``.
* ``alexnet`` / ``alexnet_gap``: torchvision's ImageNet AlexNet
  (``AlexNet_Weights.IMAGENET1K_V1``, ``ALEXNET_IMAGENET_URL``, 233 MiB),
  downloaded once with ``pooch`` into the same cache directory
  (``keras_cache_dir()``) and checked against its full sha256
  (``ALEXNET_IMAGENET_SHA256``; torch.hub itself checks only the first 8 hex
  digits, ``7be5be79``, that the file name carries; the full digest is the
  one recorded for this file by several independent public projects, and it
  starts with that prefix). Set ``$SPEECHMODEL_ALEXNET_IMAGENET`` to a local
  checkpoint to use it instead (offline machines): the torchvision ``.pth``,
  a ``.npz`` of its state dict, or a file of its convolutions only, such as
  the LPIPS AlexNet (``lpips_alex_v0.1.pt``). A file without ``fc6``/``fc7``
  (``classifier.1``/``classifier.4``) leaves those layers of ``alexnet``
  randomly initialised, with a warning; ``alexnet_gap`` needs only the
  convolutions.
* the other torchvision-layout networks: no ImageNet download; pass their
  torchvision ``.pth`` (or ``.npz``) file.
"""

import os

from absl import logging
import keras

from speechmodel import keras_compat
from speechmodel.models.alexnet import AlexNet
from speechmodel.models.cnn4 import CNN4
from speechmodel.models.registry import BACKBONE_NAMES, BACKBONES
from speechmodel.models.resnet import ResNet
from speechmodel.models.torchvision_weights import load_torchvision_weights
from speechmodel.models.torchvision_weights import read_state_dict
from speechmodel.models.vgg import VGG


_TORCHVISION_LAYOUT = {
    "alexnet": lambda shape: AlexNet(include_top=False, pooling="fc7", input_shape=shape, name="alexnet"),
    "alexnet_gap": lambda shape: AlexNet(include_top=False, pooling="avg", input_shape=shape, name="alexnet_gap"),
    "cnn4": lambda shape: CNN4(input_shape=shape, name="cnn4"),
    "resnet18": lambda shape: ResNet.from_depth("resnet18", include_top=False, pooling="avg", input_shape=shape),
    "resnet34": lambda shape: ResNet.from_depth("resnet34", include_top=False, pooling="avg", input_shape=shape),
    "vgg11": lambda shape: VGG.from_depth("vgg11", include_top=False, pooling="avg", input_shape=shape),
    "vgg11_bn": lambda shape: VGG.from_depth("vgg11", batch_norm=True, include_top=False, pooling="avg", input_shape=shape),
    "vgg16_bn": lambda shape: VGG.from_depth("vgg16", batch_norm=True, include_top=False, pooling="avg", input_shape=shape),
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
    base = os.path.expanduser(keras_compat.keras_home())
    if not os.access(base, os.W_OK):  # as keras.utils.get_file does
        base = os.path.join("/tmp", ".keras")
    return os.path.join(base, "models")


# torchvision's ImageNet AlexNet (AlexNet_Weights.IMAGENET1K_V1).
ALEXNET_IMAGENET_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
ALEXNET_IMAGENET_SHA256 = "7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02"
# A local checkpoint that weights="imagenet" uses instead of downloading.
ALEXNET_IMAGENET_ENV = "SPEECHMODEL_ALEXNET_IMAGENET"
# AlexNet's fully connected layers (fc6, fc7), absent from conv-only files.
_ALEXNET_FC = ("classifier_1", "classifier_4")


def alexnet_imagenet_file():
    """The local path of torchvision's ImageNet AlexNet checkpoint.

    ``$SPEECHMODEL_ALEXNET_IMAGENET`` if set; else the file in
    ``keras_cache_dir()``, downloaded from ``ALEXNET_IMAGENET_URL`` the first
    time (``pooch.retrieve``; a file whose sha256 is not
    ``ALEXNET_IMAGENET_SHA256`` is refused and not kept).

    Raises:
        ValueError: the variable names no file, or the download failed
            (offline) or gave another file; the message says what is
            missing, where it would be cached, the URL and the alternatives.
    """
    local = os.environ.get(ALEXNET_IMAGENET_ENV)
    if local:
        if not os.path.isfile(local):
            raise ValueError(
                f"${ALEXNET_IMAGENET_ENV} names no file. Point it at torchvision's "
                "ImageNet AlexNet checkpoint (alexnet-owt-7be5be79.pth), a .npz of its "
                "state dict or a file of its convolutions, or unset it to download "
                f"the checkpoint. Received: {ALEXNET_IMAGENET_ENV}={local!r}"
            )
        return local
    fname = ALEXNET_IMAGENET_URL.rsplit("/", 1)[-1]
    cache = keras_cache_dir()
    try:
        import pooch

        return pooch.retrieve(
            ALEXNET_IMAGENET_URL, known_hash=f"sha256:{ALEXNET_IMAGENET_SHA256}",
            fname=fname, path=cache, progressbar=False,
        )
    except Exception as e:
        if "hash" in str(e).lower() and "match" in str(e).lower():
            what = (
                f"the file downloaded from {ALEXNET_IMAGENET_URL} is not the expected "
                f"one and was refused (its sha256 is not {ALEXNET_IMAGENET_SHA256}: {e})"
            )
        else:
            what = f"it is not in the cache and downloading it failed ({type(e).__name__}: {e})"
        raise ValueError(
            "Could not get the ImageNet weights of AlexNet: torchvision's checkpoint "
            f"{fname} is needed at {os.path.join(cache, fname)}, and {what}. "
            f"It comes from {ALEXNET_IMAGENET_URL}. Offline: copy that file there "
            "(the directory follows $KERAS_HOME), or set "
            f"{ALEXNET_IMAGENET_ENV}=/path/to/file, or pass weights=<file> "
            "(train.py --weights FILE): the torchvision .pth, a .npz of its state "
            "dict, or a checkpoint of its convolutions only (e.g. lpips_alex_v0.1.pt; "
            "fc6/fc7 then start random). Received: weights='imagenet'"
        ) from e


def _load_torchvision_file(model, name, path, *, imagenet):
    """Loads a torchvision state dict file (``.pth``/``.pt``/``.npz`` ...)
    into a torchvision-layout backbone; logs what was loaded."""
    params = read_state_dict(path)
    skip = ()
    fc = [n for n in _ALEXNET_FC if n in {layer.name for layer in model.layers}]
    if fc and not any(k.startswith(("classifier.1.", "classifier.4.")) for k in params):
        skip = tuple(fc)
        logging.warning(
            "Backbone %r: %s holds only the convolution layers (no classifier.1/"
            "classifier.4): its fully connected layers fc6 and fc7 (%s) keep their "
            "random initialisation.", name, path, ", ".join(fc),
        )
    unused = load_torchvision_weights(model, params, skip_layers=skip)
    loaded = sorted(set(params) - set(unused))
    logging.info(
        "Backbone %r: loaded the %s weights %s (%d tensors: %s)", name,
        "ImageNet" if imagenet else "torchvision", path,
        len(loaded), ", ".join(loaded),
    )


def _check_name(name):
    if name not in BACKBONE_NAMES:
        raise ValueError(
            f"Unknown backbone; known: {list(BACKBONE_NAMES)}. Received: backbone={name!r}"
        )


def embedding_dim(name):
    """The size of the embedding ``get_backbone(name)`` outputs."""
    _check_name(name)
    return BACKBONES[name].embedding_dim


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
        weights: ``None``, ``"imagenet"`` (keras.applications networks,
            ``alexnet`` and ``alexnet_gap``) or a local weights file
            (``.weights.h5`` / ``.h5``, or for the torchvision-layout
            networks a torchvision ``.pth``/``.pt`` checkpoint or ``.npz``).
        input_shape: ``(height, width, 3)`` of the images it receives.
        trainable: bool, whether the backbone's weights train.

    Returns:
        A ``keras.Model`` mapping ``(batch, *input_shape)`` images to
        ``(batch, embedding_dim(name))``. It expects the input range of its
        weights: see ``speechmodel.models.registry.BACKBONES`` and
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
        if weights is not None and weights.lower().endswith((".npz", ".pth", ".pt")):
            raise ValueError(
                f"torchvision weights apply to {sorted(_TORCHVISION_LAYOUT)}, "
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
        imagenet = weights == "imagenet"
        if imagenet and name not in ("alexnet", "alexnet_gap"):
            raise ValueError(
                f"No ImageNet weights are published for Keras for backbone "
                f"{name!r}. Pass torchvision's checkpoint (.pth, read without "
                "PyTorch) or a NumPy .npz of its state dict (see "
                "speechmodel.models.torchvision_weights) as weights=<file>, or a "
                "Keras .weights.h5 file of this backbone. Received: weights='imagenet'"
            )
        if imagenet:
            weights = alexnet_imagenet_file()
        model = _TORCHVISION_LAYOUT[name](input_shape)
        if weights is not None:
            try:
                if weights.lower().endswith((".h5", ".keras")):
                    model.load_weights(weights)
                else:
                    _load_torchvision_file(model, name, weights, imagenet=imagenet)
            except Exception as e:
                raise ValueError(
                    f"Cannot load the weights file {weights!r} into backbone "
                    f"{name!r}: {e}"
                ) from e
    model.trainable = trainable
    return model
