"""torch_checkpoint: real torch-written files read exactly, hand-written
layouts (storage views, big-endian), malicious pickles refused unexecuted."""

import os
import pickle
import struct
import sys
import zipfile

import numpy as np
import pytest

from speechmodel.models.torch_checkpoint import LEGACY_MAGIC_NUMBER
from speechmodel.models.torch_checkpoint import CheckpointError
from speechmodel.models.torch_checkpoint import load_checkpoint
from tests.paths import DATA
from tests.paths import WEIGHTS
from tests.paths import require

FIXTURES = DATA / "torch_checkpoint"  # written by tests/data/make_torch_fixtures.py
SHARED = WEIGHTS / "alexnet_imagenet_conv"
LPIPS = SHARED / "lpips_alex_v0.1.pt"
CONV_NPZ = SHARED / "torchvision_alexnet_conv.npz"


# ------------------------------------------- hand-written pickle opcodes


def _str(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _int(i):
    return b"J" + struct.pack("<i", i)


def _global(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def _tuple(*items):
    return b"(" + b"".join(items) + b"t"


def _tensor_v2(pid, offset, shape, stride):
    """``torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
    False, OrderedDict())`` as torch pickles it."""
    return (
        _global("torch._utils", "_rebuild_tensor_v2")
        + b"(" + pid + b"Q" + _int(offset)
        + _tuple(*map(_int, shape)) + _tuple(*map(_int, stride))
        + b"\x89" + _global("collections", "OrderedDict") + b")R" + b"tR"
    )


def _dict(items):
    return b"}(" + b"".join(_str(k) + v for k, v in items.items()) + b"u"


def _pickle(body):
    return b"\x80\x02" + body + b"."


def _legacy_file(main, storages, little=True):
    """The legacy layout: magic, protocol, sys info, ``main`` (a pickle),
    the sorted storage keys, then per key an 8-byte element count and the
    raw bytes. ``storages``: key -> (element count, bytes)."""
    order = "<q" if little else ">q"
    out = [
        pickle.dumps(LEGACY_MAGIC_NUMBER, protocol=2),
        pickle.dumps(1001, protocol=2),
        pickle.dumps({"protocol_version": 1001, "little_endian": little,
                      "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2),
        main,
        pickle.dumps(sorted(storages), protocol=2),
    ]
    for key in sorted(storages):
        numel, data = storages[key]
        out += [struct.pack(order, numel), data]
    return b"".join(out)


def _zip_file(path, data_pkl, records, byteorder="little"):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", data_pkl)
        z.writestr("archive/byteorder", byteorder)
        for key, data in records.items():
            z.writestr(f"archive/data/{key}", data)
    return path


class _Evil:
    """Pickles as ``os.system(command)``: what a malicious checkpoint does."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


# ------------------------------------------------------------- the tests


def _get(tree, key):
    for part in key.split("/"):
        tree = tree[part]
    return tree


def test_real_torch_zip_file_equals_the_npz_exactly():
    obj = load_checkpoint(require(LPIPS))
    conv = np.load(CONV_NPZ)
    assert obj["net"] == "alex" and obj["channels"] == [64, 192, 384, 256, 256]
    assert len(obj["trunk"]) == 5
    for layer, index in zip(obj["trunk"], (0, 3, 6, 8, 10)):
        for name in ("weight", "bias"):
            expected = conv[f"features.{index}.{name}"]
            got = layer[name]
            assert got.dtype == expected.dtype == np.float32
            assert got.shape == expected.shape
            np.testing.assert_array_equal(got, expected)
    assert [layer["stride"] for layer in obj["trunk"]] == [4, 1, 1, 1, 1]
    assert [a.shape for a in obj["lin"]] == [(1, c, 1, 1) for c in (64, 192, 384, 256, 256)]
    assert obj["source"]["trunk"].startswith("torchvision AlexNet_Weights.IMAGENET1K_V1")
    assert "torch" not in sys.modules  # read without PyTorch


@pytest.mark.parametrize("name", ["zip.pt", "legacy.pth"])
def test_torch_written_fixtures_every_dtype_view_and_value(name):
    obj = load_checkpoint(FIXTURES / name)
    expected = np.load(FIXTURES / "expected.npz")
    keys = [k for k in expected.files if not (name == "legacy.pth" and k == "dtypes/uint16")]
    assert len(keys) >= 18
    for key in keys:
        got, want = _get(obj, key), expected[key]
        assert isinstance(got, np.ndarray), key
        assert (got.dtype, got.shape) == (want.dtype, want.shape), key
        np.testing.assert_array_equal(got, want, err_msg=key)
    state = obj["state_dict"]
    assert type(state).__name__ == "OrderedDict"
    assert list(state) == ["conv.weight", "conv.bias", "fc.weight", "fc.bias", "_metadata_check"]
    assert state._metadata == {"": {"version": 1}, "conv": {"version": 2}}
    # Views keep torch's semantics: the transposed and offset slices of "base".
    np.testing.assert_array_equal(state["fc.weight"], obj["base"].T)
    np.testing.assert_array_equal(state["fc.bias"], obj["base"][2:, 1:4])
    assert state["_metadata_check"].shape == () and int(state["_metadata_check"]) == 7
    assert obj["dtypes"]["bfloat16"].dtype == np.float32  # NumPy has no bfloat16
    assert obj["dtypes"]["bfloat16"][1] == -2.25
    assert obj["meta"] == {"epoch": 3, "lr": 0.5, "name": "fixture", "raw": b"\x00\xffab",
                           "none": None, "pair": (1, "two"), "size": (2, 3),
                           "dtype": "torch.float32"}
    assert "torch" not in sys.modules


def test_legacy_layout_storage_views_offsets_and_counts(tmp_path):
    data = np.arange(6, dtype="<f4").tobytes()
    root = _tuple(_str("storage"), _global("torch", "FloatStorage"), _str("k1"), _str("cpu"),
                  _int(6), b"N")
    view = _tuple(_str("storage"), _global("torch", "FloatStorage"), _str("k1"), _str("cpu"),
                  _int(6), _tuple(_str("v1"), _int(2), _int(3)))
    main = _pickle(_dict({
        "view": _tensor_v2(view, 0, (3,), (1,)),
        "cols": _tensor_v2(root, 1, (2, 2), (1, 2)),
    }))
    path = tmp_path / "legacy.pth"
    path.write_bytes(_legacy_file(main, {"k1": (6, data)}))
    obj = load_checkpoint(path)
    np.testing.assert_array_equal(obj["view"], [2, 3, 4])
    np.testing.assert_array_equal(obj["cols"], [[1, 3], [2, 4]])

    # Big-endian files (sys info little_endian=False): counts and data swapped.
    big = _legacy_file(main, {"k1": (6, np.arange(6, dtype=">f4").tobytes())}, little=False)
    path.write_bytes(big)
    obj = load_checkpoint(path)
    assert obj["cols"].dtype == np.float32 and obj["cols"].dtype.isnative
    np.testing.assert_array_equal(obj["cols"], [[1, 3], [2, 4]])

    # A truncated file: the storage is incomplete.
    path.write_bytes(_legacy_file(main, {"k1": (6, data)})[:-5])
    with pytest.raises(CheckpointError, match="ends inside storage 'k1'"):
        load_checkpoint(path)


def test_zip_layout_big_endian_and_bounds(tmp_path):
    pid = _tuple(_str("storage"), _global("torch", "DoubleStorage"), _str("0"), _str("cpu"), _int(4))
    pkl = _pickle(_tensor_v2(pid, 1, (3,), (1,)))
    path = _zip_file(tmp_path / "big.pt", pkl, {"0": np.array([9, 1, 2, 3], ">f8").tobytes()}, "big")
    got = load_checkpoint(path)
    assert got.dtype == np.float64 and got.dtype.isnative
    np.testing.assert_array_equal(got, [1, 2, 3])
    # A tensor reaching past its storage is refused, not read out of bounds.
    pkl = _pickle(_tensor_v2(pid, 2, (3,), (1,)))
    path = _zip_file(tmp_path / "oob.pt", pkl, {"0": np.zeros(4, "<f8").tobytes()})
    with pytest.raises(CheckpointError, match="reaches element 4 of storage '0', which holds 4"):
        load_checkpoint(path)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_malicious_pickles_are_refused_without_running(tmp_path, protocol):
    marker = tmp_path / "pwned"
    evil = pickle.dumps({"weight": _Evil(f"touch {marker}")}, protocol=protocol)
    global_name = f"{os.system.__module__}.system"  # posix.system
    cases = {
        "zip": _zip_file(tmp_path / "evil.pt", evil, {}),
        "legacy": tmp_path / "evil.pth",
        "legacy_header": tmp_path / "evil_header.pth",
    }
    cases["legacy"].write_bytes(_legacy_file(evil, {}))
    cases["legacy_header"].write_bytes(evil)
    for layout, path in cases.items():
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path)
        message = str(info.value)
        assert str(path) in message, layout
        assert f"refused global {global_name}" in message, (layout, message)
        assert not marker.exists(), layout
    # The unrestricted unpickler would have run it: the test would notice.
    pickle.loads(evil)
    assert marker.exists()


@pytest.mark.parametrize("module,name", [
    ("builtins", "eval"), ("builtins", "getattr"), ("subprocess", "Popen"),
    ("torch.serialization", "load"), ("torch._utils", "_rebuild_device_tensor_from_numpy"),
    ("numpy.core.multiarray", "_reconstruct"),
])
def test_only_the_tensor_rebuild_globals_are_admitted(tmp_path, module, name):
    pkl = _pickle(_global(module, name) + _tuple(_str("1")) + b"R")
    path = _zip_file(tmp_path / "x.pt", pkl, {})
    with pytest.raises(CheckpointError, match=f"refused global {module}.{name}"):
        load_checkpoint(path)


def test_admitted_globals_cannot_be_modified_by_a_pickle(tmp_path):
    # BUILD on the FloatStorage marker would change the dtype every later
    # load sees; it is refused.
    pkl = _pickle(_global("torch", "FloatStorage") + _dict({"dtype": _str("int8")}) + b"b")
    path = _zip_file(tmp_path / "build.pt", pkl, {})
    with pytest.raises(CheckpointError, match="refused to set the state of torch.FloatStorage"):
        load_checkpoint(path)
    pkl = _pickle(_global("torch._utils", "_rebuild_tensor_v2")
                  + _tuple(b"N", _dict({"fn": b"N"})) + b"b")
    with pytest.raises(CheckpointError, match="refused to set the state"):
        load_checkpoint(_zip_file(tmp_path / "build2.pt", pkl, {}))
    obj = load_checkpoint(FIXTURES / "zip.pt")
    assert obj["state_dict"]["conv.weight"].dtype == np.float32


def test_pickled_modules_and_bad_files_give_clear_errors(tmp_path):
    pid = _tuple(_str("module"), _str("Net"), _str("net.py"), _str("class Net: ..."))
    path = _zip_file(tmp_path / "module.pt", _pickle(pid + b"Q"), {})
    with pytest.raises(CheckpointError, match="pickled torch.nn.Module"):
        load_checkpoint(path)
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint\n")
    with pytest.raises(CheckpointError, match="notes.pth: not a PyTorch checkpoint"):
        load_checkpoint(text)
    npz = tmp_path / "arrays.npz"
    np.savez(npz, a=np.zeros(2))
    with pytest.raises(CheckpointError, match="without data.pkl"):
        load_checkpoint(npz)
    with pytest.raises(CheckpointError, match="No such checkpoint file"):
        load_checkpoint(tmp_path / "missing.pth")
    # A storage record missing from the archive.
    pid = _tuple(_str("storage"), _global("torch", "FloatStorage"), _str("0"), _str("cpu"), _int(2))
    path = _zip_file(tmp_path / "norecord.pt", _pickle(_tensor_v2(pid, 0, (2,), (1,))), {})
    with pytest.raises(CheckpointError, match="archive/data/0 is missing"):
        load_checkpoint(path)
    # float8 has no NumPy dtype.
    pid = _tuple(_str("storage"), _global("torch.storage", "UntypedStorage"), _str("0"),
                 _str("cpu"), _int(2))
    body = (_global("torch._utils", "_rebuild_tensor_v3") + b"(" + pid + b"Q" + _int(0)
            + _tuple(_int(2)) + _tuple(_int(1)) + b"\x89" + b"N"
            + _global("torch", "float8_e4m3fn") + b"tR")
    path = _zip_file(tmp_path / "f8.pt", _pickle(body), {"0": b"\x00\x01"})
    with pytest.raises(CheckpointError, match="float8_e4m3fn have no NumPy equivalent"):
        load_checkpoint(path)


def test_shared_storage_and_a_list_at_the_top(tmp_path):
    # Two tensors on one storage (a slice of it); storages that no tensor
    # names are ignored.
    pid = _tuple(_str("storage"), _global("torch", "IntStorage"), _str("7"), _str("cpu"), _int(3))
    pkl = _pickle(b"(" + _tensor_v2(pid, 0, (3,), (1,)) + _tensor_v2(pid, 1, (2,), (1,)) + b"l")
    path = _zip_file(tmp_path / "shared.pt", pkl,
                     {"7": np.array([5, 6, 7], "<i4").tobytes(), "8": b"unused"})
    a, b = load_checkpoint(path)
    assert a.dtype == b.dtype == np.int32
    np.testing.assert_array_equal(a, [5, 6, 7])
    np.testing.assert_array_equal(b, [6, 7])
    a[1] = 0  # each array owns its memory
    np.testing.assert_array_equal(b, [6, 7])
