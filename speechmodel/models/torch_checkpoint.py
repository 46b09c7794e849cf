"""Read PyTorch checkpoints (``torch.save`` files) without PyTorch.

``load_checkpoint(path)`` returns the object a ``torch.load`` would give,
with every tensor as a NumPy array, from the two layouts ``torch.save``
writes:

* the zip layout (PyTorch >= 1.6, the default): ``<name>/data.pkl``, a
  pickle whose tensors name their storages by persistent id, and
  ``<name>/data/<key>``, the raw bytes of each storage (``<name>/byteorder``
  says ``little`` or ``big``);
* the legacy layout (``_use_new_zipfile_serialization=False`` and files
  written before 1.6, e.g. many torchvision ``.pth``): five pickles in a
  row, the magic number ``0x1950a86a20f9469cfc6c``, the protocol version
  ``1001``, a system-info dict (byte order), the object with persistent
  ids, the sorted list of storage keys, then for each key an 8-byte element
  count and the storage's raw bytes.

Nothing in the file is executed. A pickle names the functions it wants
called ("globals"); ``torch.load`` imports and calls them, so a checkpoint
can run any code. Here a restricted ``pickle.Unpickler`` admits only the
names that describe tensors: PyTorch's tensor-rebuild functions
(``torch._utils._rebuild_tensor``/``_v2``/``_v3``, ``_rebuild_parameter``,
``_rebuild_parameter_with_state``, ``torch._tensor._rebuild_from_type_v2``),
the storage classes (``torch.FloatStorage`` ... and
``torch.storage.UntypedStorage``), the dtypes (``torch.float32`` ...),
``torch.Size``, ``torch.device``, ``collections.OrderedDict``, ``set``,
``frozenset`` and ``_codecs.encode`` (bytes in protocol-2 pickles). Each of
them maps to a function of this module that only records shapes and
offsets; any other global raises ``CheckpointError`` naming the file and
the global, before anything is called.

Tensors are read with their storage offset, shape and strides (views,
transposes and shared storages come out as PyTorch shows them), in their
dtype; ``bfloat16``, which NumPy lacks, becomes ``float32`` (exactly: a
bfloat16 is the upper half of a float32). Storages of the other byte order
are converted to the native one. Quantized and float8 tensors are refused
with a clear error.

Example::

    state = load_checkpoint("alexnet-owt-7be5be79.pth")
    state["features.0.weight"].shape   # (64, 3, 11, 11), float32
"""

import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np
from speechmodel.errors import Error

__all__ = ["CheckpointError", "load_checkpoint", "LEGACY_MAGIC_NUMBER", "LEGACY_PROTOCOL_VERSION"]

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001

# torch dtype name -> NumPy dtype (None: no NumPy equivalent, refused).
_DTYPES = {
    "float64": "float64", "double": "float64",
    "float32": "float32", "float": "float32",
    "float16": "float16", "half": "float16",
    "bfloat16": "bfloat16",
    "complex128": "complex128", "cdouble": "complex128",
    "complex64": "complex64", "cfloat": "complex64",
    "int64": "int64", "long": "int64",
    "int32": "int32", "int": "int32",
    "int16": "int16", "short": "int16",
    "int8": "int8",
    "uint8": "uint8",
    "uint16": "uint16", "uint32": "uint32", "uint64": "uint64",
    "bool": "bool",
    "float8_e4m3fn": None, "float8_e5m2": None, "float8_e4m3fnuz": None,
    "float8_e5m2fnuz": None, "float8_e8m0fnu": None, "complex32": None, "chalf": None,
    "qint8": None, "quint8": None, "qint32": None, "quint4x2": None, "quint2x4": None,
}

# Legacy (typed) storage classes -> the dtype of their elements.
_STORAGES = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "ComplexDoubleStorage": "complex128",
    "ComplexFloatStorage": "complex64",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "QInt8Storage": "qint8",
    "QUInt8Storage": "quint8",
    "QInt32Storage": "qint32",
    "QUInt4x2Storage": "quint4x2",
    "QUInt2x4Storage": "quint2x4",
}


class CheckpointError(Error, ValueError):
    """A file that is not a readable PyTorch checkpoint, or that asks for
    code to be run; the message names the file."""


class _Frozen:
    """Base of every object the unpickler hands to a pickle: no ``__dict__``
    and no BUILD (a pickle could otherwise set attributes on them)."""

    __slots__ = ()

    def __setstate__(self, state):
        raise pickle.UnpicklingError(
            f"refused to set the state of {self!r}: a checkpoint may not modify it"
        )

    def __reduce__(self):
        raise TypeError(f"{self!r} cannot be pickled")


class _StorageType(_Frozen):
    """``torch.FloatStorage`` ... (``dtype`` None: ``UntypedStorage``, bytes)."""

    __slots__ = ("name", "dtype")

    def __init__(self, name, dtype):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "dtype", dtype)

    def __repr__(self):
        return f"torch.{self.name}"


class _Dtype(_Frozen):
    __slots__ = ("name",)

    def __init__(self, name):
        object.__setattr__(self, "name", name)

    def __repr__(self):
        return f"torch.{self.name}"


class _TypeMarker(_Frozen):
    """``torch.Tensor`` / ``torch.nn.Parameter`` as the type argument of
    ``_rebuild_from_type_v2``."""

    __slots__ = ("name",)

    def __init__(self, name):
        object.__setattr__(self, "name", name)

    def __repr__(self):
        return self.name


class _Function(_Frozen):
    """An admitted global that a pickle may call: one of the functions below."""

    __slots__ = ("name", "fn")

    def __init__(self, name, fn):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "fn", fn)

    def __call__(self, *args):
        return self.fn(*args)

    def __repr__(self):
        return self.name


class _Storage(_Frozen):
    """A storage named by a persistent id; its bytes arrive later (legacy
    files store them after the pickle). A legacy storage view points at its
    root with a byte offset."""

    __slots__ = ("key", "dtype", "numel", "data", "root", "byte_offset", "nbytes")
    __hash__ = None

    def __init__(self, key, dtype, numel, root=None, byte_offset=0, nbytes=None):
        for name, value in (("key", key), ("dtype", dtype), ("numel", numel), ("data", None),
                            ("root", root), ("byte_offset", byte_offset), ("nbytes", nbytes)):
            object.__setattr__(self, name, value)

    def set_data(self, data):
        object.__setattr__(self, "data", data)

    def buffer(self):
        if self.root is not None:
            data = self.root.buffer()
            return data[self.byte_offset : self.byte_offset + self.nbytes]
        if self.data is None:
            raise pickle.UnpicklingError(f"the bytes of storage {self.key!r} are missing")
        return self.data

    def __repr__(self):
        return f"<storage {self.key}>"


class _Tensor(_Frozen):
    """A tensor to be read once every storage has its bytes."""

    __slots__ = ("storage", "offset", "shape", "stride", "dtype")
    __hash__ = None

    def __init__(self, storage, offset, shape, stride, dtype):
        for name, value in (("storage", storage), ("offset", offset), ("shape", shape),
                            ("stride", stride), ("dtype", dtype)):
            object.__setattr__(self, name, value)

    def __repr__(self):
        return f"<tensor {self.dtype} {self.shape}>"


# ------------------------------------------------------ admitted globals


def _ints(value, what):
    if isinstance(value, (list, tuple)) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    ):
        return tuple(int(v) for v in value)
    raise pickle.UnpicklingError(f"{what} must be a tuple of non-negative ints, got {value!r}")


def _offset(value):
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return int(value)
    raise pickle.UnpicklingError(f"storage offset must be a non-negative int, got {value!r}")


def _tensor(storage, storage_offset, size, stride, dtype=None):
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError(f"a tensor's storage must be a storage, got {storage!r}")
    shape = _ints(size, "size")
    strides = _ints(stride, "stride")
    if len(shape) != len(strides):
        raise pickle.UnpicklingError(f"size {shape} and stride {strides} differ in length")
    if dtype is None:
        dtype = storage.dtype
        if dtype is None:
            raise pickle.UnpicklingError("a tensor on an untyped storage needs a dtype")
    return _Tensor(storage, _offset(storage_offset), shape, strides, dtype)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return _tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                       dtype, metadata=None):
    if not isinstance(dtype, _Dtype):
        raise pickle.UnpicklingError(f"_rebuild_tensor_v3 needs a torch dtype, got {dtype!r}")
    return _tensor(storage, storage_offset, size, stride, dtype.name)


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    if not isinstance(data, _Tensor):
        raise pickle.UnpicklingError(f"a parameter must hold a tensor, got {data!r}")
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    if not isinstance(func, _Function) or func.fn not in _REBUILDERS:
        raise pickle.UnpicklingError(f"_rebuild_from_type_v2 got the function {func!r}")
    if not isinstance(new_type, _TypeMarker):
        raise pickle.UnpicklingError(f"_rebuild_from_type_v2 got the type {new_type!r}")
    if not isinstance(args, tuple):
        raise pickle.UnpicklingError("_rebuild_from_type_v2 needs an argument tuple")
    return func.fn(*args)


def _size(*args):
    if len(args) != 1:
        raise pickle.UnpicklingError("torch.Size takes one argument")
    return _ints(args[0], "torch.Size")


def _device(*args):
    if not args or not isinstance(args[0], str) or not all(isinstance(a, int) for a in args[1:]):
        raise pickle.UnpicklingError(f"torch.device got {args!r}")
    return args[0] if len(args) == 1 else f"{args[0]}:{args[1]}"


def _codecs_encode(text, encoding="utf-8"):
    # Protocol-2 pickles store bytes as _codecs.encode(str, "latin1").
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode got {encoding!r}")
    return text.encode("latin1")


_REBUILDERS = (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter)


def _admitted():
    table = {}
    for name, fn in (
        ("_rebuild_tensor", _rebuild_tensor),
        ("_rebuild_tensor_v2", _rebuild_tensor_v2),
        ("_rebuild_tensor_v3", _rebuild_tensor_v3),
        ("_rebuild_parameter", _rebuild_parameter),
        ("_rebuild_parameter_with_state", _rebuild_parameter),
    ):
        table[("torch._utils", name)] = _Function(f"torch._utils.{name}", fn)
    table[("torch._tensor", "_rebuild_from_type_v2")] = _Function(
        "torch._tensor._rebuild_from_type_v2", _rebuild_from_type_v2
    )
    for module in ("torch", "torch.cuda"):
        for name, dtype in _STORAGES.items():
            table[(module, name)] = _StorageType(name, dtype)
    for module in ("torch", "torch.storage"):
        table[(module, "UntypedStorage")] = _StorageType("UntypedStorage", None)
    for name in _DTYPES:
        table[("torch", name)] = _Dtype(name)
    table[("torch", "Size")] = _Function("torch.Size", _size)
    table[("torch", "device")] = _Function("torch.device", _device)
    table[("torch", "Tensor")] = _TypeMarker("torch.Tensor")
    table[("torch.nn.parameter", "Parameter")] = _TypeMarker("torch.nn.Parameter")
    table[("_codecs", "encode")] = _Function("_codecs.encode", _codecs_encode)
    table[("collections", "OrderedDict")] = collections.OrderedDict
    for module in ("builtins", "__builtin__"):
        table[(module, "set")] = set
        table[(module, "frozenset")] = frozenset
    return table


_ADMITTED = _admitted()


class _RefusedGlobal(pickle.UnpicklingError):
    pass


def _text(value):
    return value.decode("ascii") if isinstance(value, bytes) else value


class _Unpickler(pickle.Unpickler):
    """Admits only ``_ADMITTED`` globals; storages come from ``storages``."""

    def __init__(self, file, storages=None, legacy=False):
        super().__init__(file, encoding="utf-8")
        self.storages = storages if storages is not None else {}
        self.legacy = legacy

    def find_class(self, module, name):
        try:
            return _ADMITTED[(module, name)]
        except (KeyError, TypeError):
            raise _RefusedGlobal(f"{module}.{name}") from None

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        typename = _text(pid[0])
        if typename == "module":
            raise pickle.UnpicklingError(
                "the file holds a pickled torch.nn.Module (a whole model object); only "
                "tensors can be read without PyTorch: save model.state_dict() instead"
            )
        if typename != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id type {typename!r}")
        if self.legacy:
            if len(pid) != 6:
                raise pickle.UnpicklingError(f"unexpected legacy storage id {pid!r}")
            storage_type, key, _, numel, view = pid[1:]
        else:
            if len(pid) != 5:
                raise pickle.UnpicklingError(f"unexpected storage id {pid!r}")
            storage_type, key, _, numel = pid[1:]
            view = None
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unexpected storage type {storage_type!r}")
        key = _text(key)
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise pickle.UnpicklingError(f"unexpected storage id {pid!r}")
        dtype = storage_type.dtype or "uint8"
        root = self.storages.get(key)
        if root is None:
            root = self.storages[key] = _Storage(key, dtype, numel)
        if view is None:
            return root
        if not (isinstance(view, tuple) and len(view) == 3):
            raise pickle.UnpicklingError(f"unexpected storage view {view!r}")
        view_key, offset, size = _text(view[0]), view[1], view[2]
        itemsize = _itemsize(dtype)
        view_storage = self.storages.get(view_key)
        if view_storage is None:
            view_storage = self.storages[view_key] = _Storage(
                view_key, dtype, _offset(size), root=root,
                byte_offset=_offset(offset) * itemsize, nbytes=_offset(size) * itemsize,
            )
        return view_storage


# ---------------------------------------------------------------- arrays


_NUMPY_NAMES = frozenset(v for v in _DTYPES.values() if v)


def _numpy_dtype(dtype):
    name = _DTYPES.get(dtype, dtype)
    if name not in _NUMPY_NAMES:
        raise pickle.UnpicklingError(
            f"tensors of dtype torch.{dtype} have no NumPy equivalent and are not supported"
        )
    return np.dtype("uint16") if name == "bfloat16" else np.dtype(name)


def _itemsize(dtype):
    return _numpy_dtype(dtype).itemsize


def _array(tensor, byteorder):
    dtype = _numpy_dtype(tensor.dtype)
    buffer = tensor.storage.buffer()
    stored = dtype.newbyteorder("<" if byteorder == "little" else ">")
    n = len(buffer) // dtype.itemsize
    out_dtype = np.dtype("float32") if tensor.dtype == "bfloat16" else dtype
    if any(d == 0 for d in tensor.shape):
        return np.zeros(tensor.shape, out_dtype)
    last = tensor.offset + sum((d - 1) * s for d, s in zip(tensor.shape, tensor.stride))
    if last >= n:
        raise pickle.UnpicklingError(
            f"tensor of shape {tensor.shape}, stride {tensor.stride} at offset "
            f"{tensor.offset} reaches element {last} of storage {tensor.storage.key!r}, "
            f"which holds {n}"
        )
    flat = np.frombuffer(buffer, dtype=stored, count=n)
    view = np.lib.stride_tricks.as_strided(
        flat[tensor.offset :],
        shape=tensor.shape,
        strides=tuple(s * dtype.itemsize for s in tensor.stride),
        writeable=False,
    )
    array = np.array(view, dtype=dtype)  # a copy, native byte order
    if tensor.dtype == "bfloat16":
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def _materialize(obj, byteorder):
    """Replaces the placeholders in the loaded tree: tensors by arrays,
    storages by their bytes, dtypes by their names."""
    done = {}

    def convert(x):
        if isinstance(x, _Tensor):
            if id(x) not in done:
                done[id(x)] = (x, _array(x, byteorder))
            return done[id(x)][1]
        if isinstance(x, _Storage):
            return np.frombuffer(bytes(x.buffer()), dtype=np.uint8).copy()
        if isinstance(x, (_Dtype, _StorageType, _TypeMarker, _Function)):
            return repr(x)
        if isinstance(x, (dict, list)):
            if id(x) in done:
                return x
            done[id(x)] = (x, x)
            if isinstance(x, dict):
                for k in list(x):
                    x[k] = convert(x[k])
            else:
                for i, v in enumerate(x):
                    x[i] = convert(v)
            extra = getattr(x, "__dict__", None)  # e.g. a state dict's _metadata
            if extra:
                for k in list(extra):
                    extra[k] = convert(extra[k])
            return x
        if isinstance(x, tuple):
            return tuple(convert(v) for v in x)
        return x

    return convert(obj)


# ---------------------------------------------------------------- layouts


def _load_zip(path, archive):
    names = archive.namelist()
    pickles = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
    if not pickles:
        raise CheckpointError(f"{path}: a zip file without data.pkl, not a PyTorch checkpoint")
    pkl = min(pickles, key=len)
    prefix = pkl[: -len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in names:
        byteorder = archive.read(prefix + "byteorder").decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise CheckpointError(f"{path}: unknown byte order {byteorder!r}")
    unpickler = _Unpickler(io.BytesIO(archive.read(pkl)))
    result = unpickler.load()
    for key, storage in unpickler.storages.items():
        if storage.root is not None:
            continue
        record = f"{prefix}data/{key}"
        if record not in names:
            raise pickle.UnpicklingError(f"the storage record {record} is missing")
        data = archive.read(record)
        expected = storage.numel * _itemsize(storage.dtype)
        if len(data) < expected:
            raise pickle.UnpicklingError(
                f"storage {key!r} holds {len(data)} bytes, {expected} expected"
            )
        storage.set_data(data)
    return _materialize(result, byteorder)


def _load_legacy(path, f):
    def header(what):
        try:
            return _Unpickler(f).load()
        except _RefusedGlobal:
            raise
        except Exception as e:
            raise CheckpointError(
                f"{path}: not a PyTorch checkpoint (neither a zip archive nor the legacy "
                f"layout: cannot read its {what}: {type(e).__name__}: {e})"
            ) from None

    magic = header("magic number")
    if magic != LEGACY_MAGIC_NUMBER:
        raise CheckpointError(
            f"{path}: not a PyTorch checkpoint (neither a zip archive nor the legacy layout: "
            f"its first pickle is not the magic number 0x{LEGACY_MAGIC_NUMBER:x})"
        )
    version = header("protocol version")
    if version != LEGACY_PROTOCOL_VERSION:
        raise CheckpointError(
            f"{path}: legacy PyTorch checkpoint of protocol version {version!r}; "
            f"only {LEGACY_PROTOCOL_VERSION} is known"
        )
    sys_info = header("system information")
    little = True
    if isinstance(sys_info, dict):
        little = bool(sys_info.get("little_endian", True))
    storages = {}
    unpickler = _Unpickler(f, storages=storages, legacy=True)
    result = unpickler.load()
    keys = _Unpickler(f).load()
    if not isinstance(keys, list):
        raise pickle.UnpicklingError(f"the storage key list is a {type(keys).__name__}")
    for key in keys:
        key = _text(key)
        storage = storages.get(key)
        if storage is None or storage.root is not None:
            raise pickle.UnpicklingError(f"storage key {key!r} is not a storage of the pickle")
        count = f.read(8)
        if len(count) != 8:
            raise pickle.UnpicklingError(f"the file ends before storage {key!r}")
        (numel,) = struct.unpack("<q" if little else ">q", count)
        nbytes = numel * _itemsize(storage.dtype)
        if numel < 0 or numel < storage.numel:
            raise pickle.UnpicklingError(
                f"storage {key!r} has {numel} elements, {storage.numel} expected"
            )
        data = f.read(nbytes)
        if len(data) != nbytes:
            raise pickle.UnpicklingError(
                f"the file ends inside storage {key!r} ({len(data)} of {nbytes} bytes)"
            )
        storage.set_data(data)
    return _materialize(result, "little" if little else "big")


def load_checkpoint(path):
    """Reads a ``torch.save`` file without PyTorch and without running code.

    Args:
        path: a checkpoint file (``.pt``/``.pth``/``.bin`` ...), in the zip
            or the legacy layout.

    Returns:
        The saved object: dicts (``OrderedDict`` for state dicts), lists,
        tuples, numbers and strings as saved, every tensor and parameter a
        NumPy array (``bfloat16`` as ``float32``), a bare storage a
        ``uint8`` array of its bytes, a ``torch.dtype`` its name
        (``"torch.float32"``).

    Raises:
        CheckpointError (a ``ValueError``): the file is missing, is not a
            PyTorch checkpoint, is damaged, holds a whole pickled module or a
            tensor type NumPy cannot hold, or names a global other than the
            tensor-rebuild ones (``"refused global os.system"``): nothing
            of the file is executed.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"No such checkpoint file: {path!r}")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return _load_zip(path, archive)
        with open(path, "rb") as f:
            return _load_legacy(path, f)
    except CheckpointError:
        raise
    except _RefusedGlobal as e:
        raise CheckpointError(
            f"{path}: refused global {e}: a checkpoint read without PyTorch may only "
            "rebuild tensors, numbers, strings and containers, and this file asks to "
            f"call {e} (it would run code on torch.load); nothing was executed"
        ) from None
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, OSError, ValueError,
            TypeError, AttributeError, IndexError, KeyError, struct.error, MemoryError,
            RecursionError, UnicodeDecodeError) as e:
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})"
        ) from None
