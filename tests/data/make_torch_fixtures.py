"""Rebuilds the committed PyTorch checkpoints that test
speechmodel.models.torch_checkpoint (a reader that needs no PyTorch).

    python tests/data/make_torch_fixtures.py      # needs torch, e.g. 2.13.0+cpu

PyTorch is needed only here, to write the files with the real torch.save;
neither the library nor any test imports it. Written:

torch_checkpoint/zip.pt       torch.save(OBJECT, f): the zip layout
torch_checkpoint/legacy.pth   torch.save(OBJECT, f,
                              _use_new_zipfile_serialization=False): the
                              legacy layout (magic number, protocol, system
                              info, pickle, storage keys, raw storages), the
                              layout of older torchvision .pth files
torch_checkpoint/expected.npz every tensor of OBJECT as torch's .numpy()
                              gives it (bfloat16 through .float()), keyed
                              as flatten() below names them

OBJECT holds what a reader must get right: a state dict (OrderedDict with
_metadata), a transposed view, a slice with a storage offset sharing its
storage with another tensor, an expanded tensor (stride 0), a 0-d and an
empty tensor, a Parameter, every NumPy-representable dtype plus bfloat16,
and plain values (ints, floats, strings, bytes, None, tuples, torch.Size, a
dtype). zip.pt adds a uint16 tensor (torch writes those with
_rebuild_tensor_v3 on an untyped storage).
"""

import collections
from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).resolve().parent / "torch_checkpoint"


def build(zip_layout):
    g = torch.Generator().manual_seed(0)
    base = torch.randn(4, 6, generator=g)
    state = collections.OrderedDict()
    state["conv.weight"] = torch.randn(3, 2, 3, 3, generator=g)
    state["conv.bias"] = torch.randn(3, generator=g)
    state["fc.weight"] = base.t()  # (6, 4), strides (1, 6)
    state["fc.bias"] = base[2:, 1:4]  # storage offset 13, strides (6, 1)
    state["_metadata_check"] = torch.tensor(7, dtype=torch.int64)  # 0-d
    state._metadata = collections.OrderedDict({"": {"version": 1}, "conv": {"version": 2}})
    obj = {
        "state_dict": state,
        "base": base,  # the storage fc.weight and fc.bias share
        "expanded": torch.arange(3.0).unsqueeze(0).expand(2, 3),  # stride (0, 1)
        "empty": torch.zeros(0, 5),
        "param": torch.nn.Parameter(torch.linspace(-1, 1, 5)),
        "dtypes": {
            "float64": torch.randn(2, 3, generator=g, dtype=torch.float64),
            "float16": torch.randn(5, generator=g).half(),
            "bfloat16": torch.tensor([1.5, -2.25, 3.0e38, 1e-3, 0.1], dtype=torch.bfloat16),
            "int64": torch.tensor([-(2**40), 0, 2**40]),
            "int32": torch.tensor([-5, 7], dtype=torch.int32),
            "int16": torch.tensor([-300, 300], dtype=torch.int16),
            "int8": torch.tensor([-128, 127], dtype=torch.int8),
            "uint8": torch.tensor([0, 255], dtype=torch.uint8),
            "bool": torch.tensor([True, False, True]),
            "complex64": torch.tensor([1 + 2j, -3.5j], dtype=torch.complex64),
        },
        "meta": {"epoch": 3, "lr": 0.5, "name": "fixture", "raw": b"\x00\xffab",
                 "none": None, "pair": (1, "two"), "size": torch.Size([2, 3]),
                 "dtype": torch.float32},
    }
    if zip_layout:
        obj["dtypes"]["uint16"] = torch.tensor([0, 1, 65535], dtype=torch.uint16)
    return obj


def flatten(obj, prefix=""):
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}/"))
    elif isinstance(obj, torch.Tensor):
        t = obj.detach()
        out[prefix.rstrip("/")] = (t.float() if t.dtype == torch.bfloat16 else t).numpy()
    return out


def main():
    OUT.mkdir(exist_ok=True)
    torch.save(build(True), OUT / "zip.pt")
    torch.save(build(False), OUT / "legacy.pth", _use_new_zipfile_serialization=False)
    expected = flatten(build(True))
    np.savez(OUT / "expected.npz", **{k: np.array(v, order="C") for k, v in expected.items()})
    print(f"torch {torch.__version__}: wrote {sorted(p.name for p in OUT.iterdir())}")


if __name__ == "__main__":
    main()
