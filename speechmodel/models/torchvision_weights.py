"""Copy torchvision ImageNet weights into speechmodel's AlexNet/ResNet/VGG.

Keras publishes no ImageNet weights for AlexNet, ResNet18/34 or VGG11, but
torchvision does. Export a torchvision state dict to a NumPy ``.npz`` file
once, where PyTorch is installed::

    import numpy as np, torchvision
    sd = torchvision.models.alexnet(weights="IMAGENET1K_V1").state_dict()
    np.savez("alexnet_torchvision.npz", **{k: v.numpy() for k, v in sd.items()})

then pass ``weights="alexnet_torchvision.npz"`` to ``get_backbone`` /
``SpeechModel`` (or call ``load_torchvision_weights`` on a backbone). The
file is read with ``allow_pickle=False``: it holds arrays only, no code.
Use ``preprocessing="imagenet"`` (torchvision normalisation) with them.

Layer ``a_b_c`` of a speechmodel backbone takes the parameters
``a.b.c.weight`` / ``.bias`` / ``.running_mean`` / ``.running_var``:
convolution kernels are transposed from ``(out, in, h, w)`` to
``(h, w, in, out)``, dense kernels from ``(out, in)`` to ``(in, out)``,
and the first dense layer after a flatten has its inputs reordered from
torchvision's ``(channels, height, width)`` to Keras' ``(height, width,
channels)`` order.
"""

import os

import keras
import numpy as np

_BN_PARAMS = ("weight", "bias", "running_mean", "running_var")


def _read(state_dict):
    if isinstance(state_dict, (str, os.PathLike)):
        path = os.fspath(state_dict)
        if not os.path.isfile(path):
            raise ValueError(f"No such torchvision weights file. Received: {path!r}")
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: np.asarray(data[k]) for k in data.files}
        except Exception as e:  # zipfile / format errors, reported with the path
            raise ValueError(
                f"{path}: not a NumPy .npz file of torchvision parameters ({e})"
            ) from e
    return {k: np.asarray(v) for k, v in dict(state_dict).items()}


def _layers_with_weights(model):
    kinds = (keras.layers.Conv2D, keras.layers.Dense, keras.layers.BatchNormalization)
    return [layer for layer in model.layers if isinstance(layer, kinds) and layer.weights]


def _flatten_shapes(model):
    return dict(getattr(model, "torchvision_flatten_shapes", {}) or {})


def load_torchvision_weights(model, state_dict):
    """Loads a torchvision state dict into a speechmodel backbone.

    Args:
        model: an ``AlexNet``, ``ResNet`` or ``VGG`` of speechmodel (or any
            model whose layers are named after torchvision modules).
        state_dict: a mapping from torchvision parameter names to arrays,
            or the path of a ``.npz`` file of them.

    Returns:
        The sorted list of torchvision parameter names the model has no
        layer for (e.g. the classifier when ``include_top=False``).

    Raises:
        ValueError: a model weight has no parameter in ``state_dict``, or a
            shape does not match; nothing is assigned then.
    """
    params = _read(state_dict)
    flatten_shapes = _flatten_shapes(model)
    assignments = []
    used = set()
    problems = []
    for layer in _layers_with_weights(model):
        prefix = layer.name.replace("_", ".")
        if isinstance(layer, keras.layers.BatchNormalization):
            names = [f"{prefix}.{p}" for p in _BN_PARAMS]
        else:
            names = [f"{prefix}.weight"] + ([f"{prefix}.bias"] if len(layer.weights) > 1 else [])
        missing = [n for n in names if n not in params]
        if missing:
            problems.append(f"layer {layer.name!r} has no {missing}")
            continue
        values = [params[n] for n in names]
        if isinstance(layer, keras.layers.Conv2D) and values[0].ndim == 4:
            values[0] = values[0].transpose(2, 3, 1, 0)
        elif isinstance(layer, keras.layers.Dense) and values[0].ndim == 2:
            kernel = values[0]
            if layer.name in flatten_shapes:
                h, w, c = flatten_shapes[layer.name]
                if kernel.shape[1] != h * w * c:
                    problems.append(
                        f"layer {layer.name!r}: {names[0]} has {kernel.shape[1]} "
                        f"inputs, expected {h}*{w}*{c}"
                    )
                    continue
                kernel = (
                    kernel.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(-1, h * w * c)
                )
            values[0] = kernel.T
        expected = [tuple(w.shape) for w in layer.weights]
        got = [tuple(v.shape) for v in values]
        if expected != got:
            problems.append(
                f"layer {layer.name!r}: shapes {got} from {names} do not match "
                f"the model's {expected}"
            )
            continue
        assignments.append((layer, values))
        used.update(names)
    if problems:
        raise ValueError(
            "Cannot load the torchvision weights into "
            f"{model.name!r}: " + "; ".join(problems)
        )
    for layer, values in assignments:
        layer.set_weights(values)
    return sorted(k for k in params if k not in used and not k.endswith("num_batches_tracked"))


def to_torchvision_state_dict(model):
    """The inverse of ``load_torchvision_weights``: arrays named and laid
    out as torchvision's state dict (``num_batches_tracked`` excluded)."""
    flatten_shapes = _flatten_shapes(model)
    out = {}
    for layer in _layers_with_weights(model):
        prefix = layer.name.replace("_", ".")
        values = [np.asarray(w) for w in layer.weights]
        if isinstance(layer, keras.layers.BatchNormalization):
            out.update({f"{prefix}.{p}": v for p, v in zip(_BN_PARAMS, values)})
            continue
        kernel = values[0]
        if isinstance(layer, keras.layers.Conv2D):
            kernel = kernel.transpose(3, 2, 0, 1)
        else:
            kernel = kernel.T
            if layer.name in flatten_shapes:
                h, w, c = flatten_shapes[layer.name]
                kernel = kernel.reshape(-1, h, w, c).transpose(0, 3, 1, 2).reshape(-1, h * w * c)
        out[f"{prefix}.weight"] = kernel
        if len(values) > 1:
            out[f"{prefix}.bias"] = values[1]
    return out
