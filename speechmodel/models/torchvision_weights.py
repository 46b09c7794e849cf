"""Copy torchvision ImageNet weights into speechmodel's AlexNet/ResNet/VGG.

Keras publishes no ImageNet weights for AlexNet, ResNet18/34 or VGG11, but
torchvision does. Its checkpoints (``.pth``, e.g. ``alexnet-owt-7be5be79.pth``)
are read directly, without PyTorch and without running pickle code, by
``speechmodel.models.torch_checkpoint``; pass the file as
``weights="alexnet-owt-7be5be79.pth"`` to ``get_backbone`` / ``SpeechModel``
(``weights="imagenet"`` downloads that one for the AlexNets), or call
``load_torchvision_weights`` on a backbone. A NumPy ``.npz`` of a state dict
works too (read with ``allow_pickle=False``)::

    import numpy as np, torchvision
    sd = torchvision.models.alexnet(weights="IMAGENET1K_V1").state_dict()
    np.savez("alexnet_torchvision.npz", **{k: v.numpy() for k, v in sd.items()})

``read_state_dict`` accepts a plain state dict, one wrapped as
``{"state_dict": ...}`` / ``{"model": ...}``, and the LPIPS AlexNet layout
(``{"trunk": [5 x {"weight", "bias"}], ...}``, the convolution trunk of
torchvision's ImageNet AlexNet, named ``features.0/3/6/8/10`` here).
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

from speechmodel.models.torch_checkpoint import load_checkpoint

_BN_PARAMS = ("weight", "bias", "running_mean", "running_var")


# The LPIPS AlexNet trunk: its 5 convolutions are these torchvision layers.
ALEXNET_CONV_INDICES = (0, 3, 6, 8, 10)
_WRAPPERS = ("state_dict", "model", "model_state_dict")


def _arrays(mapping):
    return {
        str(k): v for k, v in mapping.items()
        if isinstance(k, str) and isinstance(v, np.ndarray)
    }


def _lpips_trunk(obj):
    trunk = obj.get("trunk") if isinstance(obj, dict) else None
    if not (
        isinstance(trunk, list) and len(trunk) == len(ALEXNET_CONV_INDICES)
        and all(isinstance(t, dict) and isinstance(t.get("weight"), np.ndarray)
                and isinstance(t.get("bias"), np.ndarray) for t in trunk)
    ):
        return None
    out = {}
    for index, layer in zip(ALEXNET_CONV_INDICES, trunk):
        out[f"features.{index}.weight"] = layer["weight"]
        out[f"features.{index}.bias"] = layer["bias"]
    return out


def state_dict_from_checkpoint(obj, source="checkpoint"):
    """The ``{name: array}`` state dict inside a loaded checkpoint.

    Args:
        obj: what ``torch_checkpoint.load_checkpoint`` returned.
        source: how to name it in errors (the file path).

    Returns:
        A dict of parameter names to arrays: the top-level arrays of a plain
        state dict, those under ``"state_dict"`` / ``"model"`` /
        ``"model_state_dict"``, or the LPIPS AlexNet trunk as
        ``features.0/3/6/8/10.weight`` / ``.bias``.

    Raises:
        ValueError: nothing in it looks like a state dict.
    """
    trunk = _lpips_trunk(obj)
    if trunk is not None:
        return trunk
    if isinstance(obj, dict):
        params = _arrays(obj)
        if params:
            return params
        for key in _WRAPPERS:
            if isinstance(obj.get(key), dict):
                params = _arrays(obj[key])
                if params:
                    return params
    keys = sorted(str(k) for k in obj) if isinstance(obj, dict) else type(obj).__name__
    raise ValueError(
        f"{source}: no state dict of arrays found (a mapping of parameter names such as "
        f"'features.0.weight' to tensors, possibly under {list(_WRAPPERS)}, or the LPIPS "
        f"AlexNet 'trunk'). Found: {keys}"
    )


def read_state_dict(state_dict):
    """A torchvision state dict as ``{name: np.ndarray}``.

    Args:
        state_dict: a mapping of names to arrays, the path of a ``.npz``
            file of them, or the path of a PyTorch checkpoint (``.pth``,
            ``.pt`` ...: any other file), read without PyTorch and without
            running code (see ``state_dict_from_checkpoint`` for the layouts).

    Raises:
        ValueError: missing or unreadable file (the message names it).
    """
    if isinstance(state_dict, (str, os.PathLike)):
        path = os.fspath(state_dict)
        if not os.path.isfile(path):
            raise ValueError(f"No such torchvision weights file. Received: {path!r}")
        if path.lower().endswith(".npz"):
            try:
                with np.load(path, allow_pickle=False) as data:
                    return {k: np.asarray(data[k]) for k in data.files}
            except Exception as e:  # zipfile / format errors, reported with the path
                raise ValueError(
                    f"{path}: not a NumPy .npz file of torchvision parameters ({e})"
                ) from e
        return state_dict_from_checkpoint(load_checkpoint(path), path)
    return {k: np.asarray(v) for k, v in dict(state_dict).items()}


def _layers_with_weights(model):
    kinds = (keras.layers.Conv2D, keras.layers.Dense, keras.layers.BatchNormalization)
    return [layer for layer in model.layers if isinstance(layer, kinds) and layer.weights]


def _flatten_shapes(model):
    return dict(getattr(model, "torchvision_flatten_shapes", {}) or {})


def load_torchvision_weights(model, state_dict, *, skip_layers=()):
    """Loads a torchvision state dict into a speechmodel backbone.

    Args:
        model: an ``AlexNet``, ``ResNet`` or ``VGG`` of speechmodel (or any
            model whose layers are named after torchvision modules).
        state_dict: a mapping from torchvision parameter names to arrays,
            or the path of a ``.npz`` file or PyTorch checkpoint of them
            (see ``read_state_dict``).
        skip_layers: names of layers of ``model`` to leave as they are
            (e.g. ``("classifier_1", "classifier_4")``, AlexNet's fc6 and
            fc7, when the file holds only the convolutions).

    Returns:
        The sorted list of torchvision parameter names the model has no
        layer for (e.g. the classifier when ``include_top=False``).

    Raises:
        ValueError: a model weight has no parameter in ``state_dict``, or a
            shape does not match; nothing is assigned then.
    """
    params = read_state_dict(state_dict)
    flatten_shapes = _flatten_shapes(model)
    assignments = []
    used = set()
    problems = []
    skip_layers = set(skip_layers)
    unknown = sorted(skip_layers - {layer.name for layer in model.layers})
    if unknown:
        raise ValueError(
            f"skip_layers names layers {model.name!r} does not have: {unknown}"
        )
    for layer in _layers_with_weights(model):
        if layer.name in skip_layers:
            continue
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
        if not all(np.issubdtype(v.dtype, np.floating) for v in values):
            problems.append(
                f"layer {layer.name!r}: {names} are not floating point "
                f"({[str(v.dtype) for v in values]})"
            )
            continue
        # float16 / float64 checkpoints: to the variables' dtype.
        values = [
            np.asarray(v, dtype=keras.backend.standardize_dtype(w.dtype))
            for v, w in zip(values, layer.weights)
        ]
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
