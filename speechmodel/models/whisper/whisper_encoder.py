"""The OpenAI Whisper audio encoder as one Keras layer."""

import keras
import numpy as np
import tensorflow as tf

from speechmodel.models.whisper import whisper_weights
from speechmodel.models.whisper.whisper_config import WHISPER_BASE_CONFIG as BASE

_MARKER = "whisper_weights_sha256"
# The projections of a block that get low-rank adapters (``lora_rank``).
_LORA_PROJECTIONS = ("qkv", "out", "fc1", "fc2")


def whisper_sinusoids(length, channels, max_timescale=10000):
    """Whisper's positional embedding: (length, channels) float32, the sines
    of ``channels // 2`` timescales then their cosines."""
    if channels % 2:
        raise ValueError(
            f"The sinusoidal embedding needs an even width. Received: channels={channels}"
        )
    increment = np.log(max_timescale) / (channels // 2 - 1)
    inv_timescales = np.exp(-increment * np.arange(channels // 2))
    scaled = np.arange(length)[:, np.newaxis] * inv_timescales[np.newaxis, :]
    return np.concatenate([np.sin(scaled), np.cos(scaled)], axis=1).astype(np.float32)


def _positive_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")


@keras.saving.register_keras_serializable(package="speechmodel")
class WhisperEncoder(keras.layers.Layer):
    """Whisper's audio encoder: log-mel frames -> the output of every block.

    conv1 (k3, pad 1) + GELU, conv2 (k3, stride 2, pad 1) + GELU, plus the
    sinusoidal positional embedding, ``num_layers`` pre-LayerNorm blocks
    (self-attention with query/value/output biases and no key bias, MLP
    with exact erf GELU, LayerNorm epsilon 1e-5), and ``ln_post`` after the
    last block. All parameters are this layer's own variables (no
    sub-layers), named as ``whisper_weights.encoder_variable_shapes``.

    Each utterance is computed as if it were alone: mel frames past its
    ``frame_lengths`` are zeroed before conv1 (so they act as the zero
    padding of a shorter input), conv1 outputs past it before conv2, and
    padded tokens are masked out as attention keys; token outputs past an
    utterance's ``token_lengths`` are 0. Inputs longer than
    ``2 * max_positions`` frames (30 s for Whisper) are encoded in windows
    of that many frames, each with positions from 0, and joined along time.

    Args:
        num_layers: transformer blocks (6 for Whisper base).
        hidden_dim: model width (512).
        num_heads: attention heads (8).
        intermediate_dim: MLP width (2048).
        num_mels: mel bands of the input (80).
        max_positions: positional embedding length, tokens per window (1500).
        weights: ``None`` (random initialisation), ``"whisper_base"`` (the
            pretrained encoder, see ``whisper_weights.load_whisper_weights``)
            or the path of a local CTranslate2 ``model.bin`` / OpenAI ``.pt``.
            The sizes must match the checkpoint's.
        fine_tune_blocks: 0 freezes everything; ``k`` makes the top ``k``
            blocks and ``ln_post`` trainable (convolutions and positions
            stay frozen). ``lower_states`` and ``upper_blocks`` split the
            computation there, so that the frozen part can be computed once
            per file.
        lora_rank: 0, or the rank ``r`` of low-rank adapters (LoRA) on the
            query/key/value, output and both MLP projections of the top
            ``fine_tune_blocks`` blocks: ``x @ W + x @ A @ B`` with ``A``
            (in, r) He-uniform and ``B`` (r, out) zero at the start, as
            ``keras.layers.Dense.enable_lora``; then only the adapters
            train.

    Saving: with pretrained ``weights``, the weights file holds the sha256
    of those weights and the trainable variables (tuned blocks, adapters);
    loading resolves ``weights`` again, checks that it gives the same
    numbers and puts the saved trainable variables over them. Without
    ``weights`` (and whenever frozen weights were changed) every variable
    is saved.

    Call arguments:
        mel: float (B, F, num_mels), e.g. ``WhisperAudioConverter``'s output.
        frame_lengths: optional int (B,) valid frames; ``None`` is all F.

    Returns:
        ``(hidden, token_lengths)``: float (B, num_layers, T, hidden_dim)
        with ``T = ceil(F / 2)`` tokens of 20 ms, ``hidden[:, i]`` the
        output of block ``i + 1`` (the last after ``ln_post``), and int32
        (B,) ``ceil(frame_lengths / 2)``.

    Example:
    >>> encoder = WhisperEncoder(num_layers=2, hidden_dim=8, num_heads=2,
    ...                          intermediate_dim=16, num_mels=4)
    >>> hidden, tokens = encoder(np.zeros((2, 7, 4), "float32"),
    ...                          np.array([7, 3], "int32"))
    >>> tuple(hidden.shape), tokens.numpy().tolist()
    ((2, 2, 4, 8), [4, 2])
    """

    def __init__(
        self,
        num_layers=BASE.num_layers,
        hidden_dim=BASE.hidden_dim,
        num_heads=BASE.num_heads,
        intermediate_dim=BASE.intermediate_dim,
        num_mels=BASE.num_mels,
        max_positions=BASE.max_positions,
        weights=None,
        fine_tune_blocks=0,
        lora_rank=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("num_layers", num_layers),
            ("hidden_dim", hidden_dim),
            ("num_heads", num_heads),
            ("intermediate_dim", intermediate_dim),
            ("num_mels", num_mels),
            ("max_positions", max_positions),
        ):
            _positive_int(name, value)
        if hidden_dim % num_heads or hidden_dim % 2:
            raise ValueError(
                "`hidden_dim` must be even and divisible by `num_heads`. "
                f"Received: hidden_dim={hidden_dim}, num_heads={num_heads}"
            )
        if (
            not isinstance(fine_tune_blocks, int)
            or isinstance(fine_tune_blocks, bool)
            or not 0 <= fine_tune_blocks <= num_layers
        ):
            raise ValueError(
                f"`fine_tune_blocks` must be an integer in [0, {num_layers}]. "
                f"Received: fine_tune_blocks={fine_tune_blocks!r}"
            )
        if not isinstance(lora_rank, int) or isinstance(lora_rank, bool) or lora_rank < 0:
            raise ValueError(
                f"`lora_rank` must be an integer >= 0. Received: lora_rank={lora_rank!r}"
            )
        if lora_rank and not fine_tune_blocks:
            raise ValueError(
                "`lora_rank` adds adapters to the top `fine_tune_blocks` blocks, "
                f"which is 0. Received: lora_rank={lora_rank}, fine_tune_blocks=0"
            )
        if weights is not None and (not isinstance(weights, str) or not weights):
            raise ValueError(
                f"`weights` is None, {whisper_weights.WHISPER_BASE!r} or a file "
                f"path. Received: weights={weights!r}"
            )
        self.num_layers = num_layers
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.num_mels = num_mels
        self.max_positions = max_positions
        self.weights_source = weights
        self.fine_tune_blocks = fine_tune_blocks
        self.lora_rank = lora_rank
        self.supports_masking = False
        # Set by from_config: the variables are then filled by
        # load_own_variables (or, failing that, at the first call).
        self._defer_source_load = False
        self._source_pending = False
        self._loaded_digest = None
        self._load_error = None  # The first failure of load_own_variables.
        self._loaded_frozen_digest = None

    @property
    def window_frames(self):
        """Mel frames per encoder window (3000 = 30 s for Whisper)."""
        return 2 * self.max_positions

    @property
    def first_tuned_block(self):
        """The index of the first block that trains (``num_layers`` when
        none does): blocks below it are the frozen lower blocks."""
        return self.num_layers - self.fine_tune_blocks

    def _variable_trainable(self, name):
        if "_lora_" in name:
            return True
        if self.lora_rank:
            return False  # Adapters only: the pretrained weights stay.
        if name.startswith("block_"):
            return int(name.split("_")[1]) >= self.first_tuned_block
        if name.startswith("ln_post"):
            return self.fine_tune_blocks > 0
        return False

    def _variable_shapes(self):
        shapes = whisper_weights.encoder_variable_shapes(
            num_layers=self.num_layers,
            hidden_dim=self.hidden_dim,
            intermediate_dim=self.intermediate_dim,
            num_mels=self.num_mels,
            max_positions=self.max_positions,
        )
        if self.lora_rank:
            for i in range(self.first_tuned_block, self.num_layers):
                for projection in _LORA_PROJECTIONS:
                    fan_in, fan_out = shapes[f"block_{i}_{projection}_kernel"]
                    shapes[f"block_{i}_{projection}_lora_a"] = (fan_in, self.lora_rank)
                    shapes[f"block_{i}_{projection}_lora_b"] = (self.lora_rank, fan_out)
        return shapes

    def build(self, mel_shape=None, frame_lengths_shape=None):
        self._vars = {}
        for name, shape in self._variable_shapes().items():
            if name == "positional_embedding":
                initializer = keras.initializers.Constant(
                    whisper_sinusoids(self.max_positions, self.hidden_dim)
                )
            elif name.endswith("_gamma"):
                initializer = "ones"
            elif name.endswith("_lora_a"):
                # As keras.layers.Dense.enable_lora: A random, B zero, so
                # the adapted block starts as the pretrained one.
                initializer = keras.initializers.HeUniform()
            elif name.endswith("_kernel"):
                initializer = "glorot_uniform"
            else:
                initializer = "zeros"
            self._vars[name] = self.add_weight(
                name=name,
                shape=shape,
                initializer=initializer,
                trainable=self._variable_trainable(name),
            )
        self.built = True
        if self.weights_source is not None:
            if self._defer_source_load:
                self._source_pending = True
            else:
                self._load_source()

    # Weights ---------------------------------------------------------------

    def _current_weights(self, names=None):
        return {
            name: np.asarray(v.numpy())
            for name, v in self._vars.items()
            if names is None or name in names
        }

    def _frozen_names(self):
        return [n for n in self._vars if not self._variable_trainable(n)]

    def _tuned_names(self):
        return [n for n in self._vars if self._variable_trainable(n)]

    def _assign(self, weights, where, names=None):
        """Assigns ``weights`` to the variables ``names`` (all: None)."""
        shapes = self._variable_shapes()
        if names is not None:
            shapes = {k: v for k, v in shapes.items() if k in names}
        bad = {
            k: (tuple(np.shape(weights[k])) if k in weights else None, s)
            for k, s in shapes.items()
            if k not in weights or tuple(np.shape(weights[k])) != s
        }
        extra = sorted(set(weights) - set(shapes))
        if bad or extra:
            raise ValueError(
                f"{where} does not fit this WhisperEncoder (variable: (found, "
                f"expected) {dict(list(bad.items())[:4])}, unexpected "
                f"{extra[:4]}). Received: config={self.get_config()}"
            )
        for name in shapes:
            self._vars[name].assign(np.asarray(weights[name], np.float32))

    def _load_source(self, expected_digest=None):
        weights, used = whisper_weights.load_whisper_weights(
            self.weights_source, return_source=True
        )
        digest = whisper_weights.weights_digest(weights)
        if expected_digest is not None and digest != expected_digest:
            raise ValueError(
                f"The saved model's frozen Whisper weights have sha256 "
                f"{expected_digest}, but weights={self.weights_source!r} now "
                f"resolves to {used}, whose weights have sha256 {digest}. "
                f"Received: weights={self.weights_source!r}"
            )
        # The checkpoint's variables; adapters (not in it) keep theirs.
        self._assign(weights, used, names=[n for n in self._vars if "_lora_" not in n])
        self._loaded_digest = digest
        self._loaded_frozen_digest = whisper_weights.weights_digest(
            self._current_weights(self._frozen_names())
        )
        self._source_pending = False

    def save_own_variables(self, store):
        """Saves the variables: frozen pretrained weights as the sha256 of
        their source, the trainable ones (tuned blocks, adapters) in full.

        Args:
            store: the weights store of ``model.save``.
        """
        if not self.built:
            return
        if self.weights_source is not None:
            if self._source_pending:
                self._load_source()
            frozen = self._current_weights(self._frozen_names())
            if whisper_weights.weights_digest(frozen) == self._loaded_frozen_digest:
                store[_MARKER] = np.frombuffer(bytes.fromhex(self._loaded_digest), np.uint8)
                for name in self._tuned_names():
                    store[name] = self._vars[name]
                return
        for name, variable in self._vars.items():
            store[name] = variable

    def load_own_variables(self, store):
        """Loads what ``save_own_variables`` saved: the variables, or the
        pretrained weights from ``weights`` (their sha256 checked) and the
        trainable variables saved beside them.

        Args:
            store: the weights store of ``keras.saving.load_model``.
        """
        if self._load_error is not None:
            # Keras tries a layer again under another path of the model
            # (with an empty store) and reports the last error: the first
            # says what was wrong (a tampered file, not a CTranslate2 file,
            # a pickle the safe reader refused).
            raise self._load_error
        try:
            self._load_own_variables(store)
        except Exception as exc:
            self._load_error = exc
            raise

    def _load_own_variables(self, store):
        keys = set(store.keys())
        if _MARKER in keys:
            if self.weights_source is None:
                raise ValueError(
                    "The saved weights refer to pretrained Whisper weights, "
                    "but this layer has weights=None. Received: "
                    f"config={self.get_config()}"
                )
            expected = bytes(np.asarray(store[_MARKER], np.uint8)).hex()
            holds_frozen = (
                not self._source_pending
                and self._loaded_digest == expected
                and whisper_weights.weights_digest(
                    self._current_weights(self._frozen_names())
                )
                == self._loaded_frozen_digest
            )
            if not holds_frozen:
                self._load_source(expected_digest=expected)
            tuned = self._tuned_names()
            self._assign({k: store[k] for k in keys - {_MARKER}}, "The saved weights", tuned)
            return
        self._assign({k: store[k] for k in keys}, "The saved weights")
        self._source_pending = False

    @classmethod
    def from_config(cls, config):
        layer = super().from_config(config)
        # Deserialisation is followed by load_own_variables: do not read
        # the weights source twice.
        layer._defer_source_load = True
        return layer

    # Computation -----------------------------------------------------------

    def _layer_norm(self, x, prefix):
        # Statistics in float32 (Whisper's LayerNorm runs in float32).
        x32 = tf.cast(x, tf.float32)
        mean = tf.reduce_mean(x32, axis=-1, keepdims=True)
        centred = x32 - mean
        var = tf.reduce_mean(tf.square(centred), axis=-1, keepdims=True)
        normalized = tf.cast(centred * tf.math.rsqrt(var + 1e-5), x.dtype)
        return normalized * self._vars[prefix + "_gamma"] + self._vars[prefix + "_beta"]

    def _project(self, x, prefix):
        """``x @ kernel`` (+ the low-rank adapter's ``x @ A @ B`` if any)."""
        y = tf.matmul(x, self._vars[prefix + "_kernel"])
        if prefix + "_lora_a" in self._vars:
            y = y + tf.matmul(
                tf.matmul(x, self._vars[prefix + "_lora_a"]), self._vars[prefix + "_lora_b"]
            )
        return y

    def _block(self, x, i, batch, tokens, key_bias):
        """x: (batch * tokens, hidden) -> the same after block i."""
        d, h = self.hidden_dim, self.num_heads
        p = f"block_{i}_"
        v = self._vars
        qkv_bias = tf.concat(
            [v[p + "q_bias"], tf.zeros_like(v[p + "q_bias"]), v[p + "v_bias"]], axis=0
        )
        qkv = self._project(self._layer_norm(x, p + "attn_ln"), p + "qkv") + qkv_bias
        qkv = tf.transpose(
            tf.reshape(qkv, [batch, tokens, 3, h, d // h]), [2, 0, 3, 1, 4]
        )  # (3, B, H, T, dh)
        q = qkv[0] * ((d // h) ** -0.5)
        scores = tf.cast(tf.matmul(q, qkv[1], transpose_b=True), tf.float32)
        weights = tf.cast(tf.nn.softmax(scores + key_bias, axis=-1), x.dtype)
        attn = tf.matmul(weights, qkv[2])  # (B, H, T, dh)
        attn = tf.reshape(tf.transpose(attn, [0, 2, 1, 3]), [batch * tokens, d])
        x = x + self._project(attn, p + "out") + v[p + "out_bias"]
        y = self._project(self._layer_norm(x, p + "mlp_ln"), p + "fc1") + v[p + "fc1_bias"]
        y = tf.nn.gelu(y, approximate=False)
        return x + self._project(y, p + "fc2") + v[p + "fc2_bias"]

    def _conv(self, x, name, stride):
        x = tf.pad(x, [[0, 0], [1, 1], [0, 0]])
        x = tf.nn.conv1d(x, self._vars[name + "_kernel"], stride=stride, padding="VALID")
        return tf.nn.gelu(x + self._vars[name + "_bias"], approximate=False)

    def _stem(self, mel, frame_lengths):
        """Windows mel (W, F, M), F <= window_frames -> the tokens entering
        block 0, (W, T, D): the convolutions plus the positions."""
        frames = tf.shape(mel)[1]
        tokens = (frames + 1) // 2
        frame_valid = tf.range(frames)[tf.newaxis, :] < frame_lengths[:, tf.newaxis]
        frame_valid = tf.cast(frame_valid, mel.dtype)[..., tf.newaxis]
        x = self._conv(mel * frame_valid, "conv1", 1) * frame_valid
        x = self._conv(x, "conv2", 2)  # (W, T, D)
        return x + self._vars["positional_embedding"][:tokens]

    def _blocks(self, x, token_lengths, start, stop):
        """Windows of tokens (W, T, D) through blocks ``start .. stop - 1``.

        Returns:
            ``(outputs, x)``: the list of each block's (W, T, D) output
            (the encoder's last block after ``ln_post``) and the residual
            stream after block ``stop - 1`` (before ``ln_post``).
        """
        batch, tokens = tf.shape(x)[0], tf.shape(x)[1]
        key_valid = tf.range(tokens)[tf.newaxis, :] < token_lengths[:, tf.newaxis]
        # Added to the float32 scores: padded keys get exactly 0 weight.
        key_bias = tf.where(key_valid, 0.0, -1e9)[:, tf.newaxis, tf.newaxis, :]
        x = tf.reshape(x, [batch * tokens, self.hidden_dim])
        outputs = []
        for i in range(start, stop):
            x = self._block(x, i, batch, tokens, key_bias)
            out = self._layer_norm(x, "ln_post") if i == self.num_layers - 1 else x
            outputs.append(tf.reshape(out, [batch, tokens, self.hidden_dim]))
        return outputs, tf.reshape(x, [batch, tokens, self.hidden_dim])

    def _prepare(self, mel, frame_lengths):
        if self._source_pending:
            with tf.init_scope():
                self._load_source()
        mel = tf.cast(mel, self.compute_dtype)
        batch, frames = tf.shape(mel)[0], tf.shape(mel)[1]
        if frame_lengths is None:
            frame_lengths = tf.fill([batch], frames)
        frame_lengths = tf.clip_by_value(
            tf.cast(tf.reshape(frame_lengths, [-1]), tf.int32), 0, frames
        )
        return mel, frame_lengths

    @staticmethod
    def _split(x, lengths, window):
        """(B, S, ...) -> windows (B * W, window, ...) of at most ``window``
        steps each, their valid lengths (B * W,), and W."""
        batch, steps = tf.shape(x)[0], tf.shape(x)[1]
        num_windows = (steps + window - 1) // window
        tail = tf.shape(x)[2:]
        pad = tf.concat([[[0, 0], [0, num_windows * window - steps]],
                         tf.zeros([tf.rank(x) - 2, 2], tf.int32)], axis=0)
        x = tf.reshape(tf.pad(x, pad), tf.concat([[batch * num_windows, window], tail], 0))
        starts = tf.range(num_windows) * window
        window_lengths = tf.clip_by_value(lengths[:, tf.newaxis] - starts[tf.newaxis, :], 0, window)
        return x, tf.reshape(window_lengths, [-1]), num_windows

    def _join(self, x, batch, num_windows, tokens, token_lengths):
        """Windows (B * W, L, Tw, D) -> (B, L, T, D), zero past the lengths."""
        layers, window_tokens = tf.shape(x)[1], tf.shape(x)[2]
        x = tf.reshape(x, [batch, num_windows, layers, window_tokens, self.hidden_dim])
        x = tf.transpose(x, [0, 2, 1, 3, 4])
        x = tf.reshape(x, [batch, layers, num_windows * window_tokens, self.hidden_dim])[:, :, :tokens]
        valid = tf.range(tokens)[tf.newaxis, :] < token_lengths[:, tf.newaxis]
        return x * tf.cast(valid, x.dtype)[:, tf.newaxis, :, tf.newaxis]

    def _encode(self, mel, frame_lengths, stop, with_states=False):
        """The first ``stop`` blocks: ``(outputs (B, stop, T, D), states
        (B, T, D) the residual stream after them or None, token_lengths
        (B,))``."""
        mel, frame_lengths = self._prepare(mel, frame_lengths)
        batch, frames = tf.shape(mel)[0], tf.shape(mel)[1]
        token_lengths = (frame_lengths + 1) // 2
        tokens = (frames + 1) // 2
        # Windows of at most window_frames frames (an even number, so that
        # window boundaries fall between tokens), each encoded alone.
        window = tf.maximum(tf.minimum(frames, self.window_frames), 1)
        mel, window_lengths, num_windows = self._split(mel, frame_lengths, window)
        x = self._stem(mel, window_lengths)
        outputs, x = self._blocks(x, (window_lengths + 1) // 2, 0, stop)
        if not with_states:
            joined = self._join(tf.stack(outputs, axis=1), batch, num_windows, tokens, token_lengths)
            return joined, None, token_lengths
        joined = self._join(tf.stack(outputs + [x], axis=1), batch, num_windows, tokens, token_lengths)
        return joined[:, :-1], joined[:, -1], token_lengths

    def call(self, mel, frame_lengths=None):
        hidden, _, token_lengths = self._encode(mel, frame_lengths, self.num_layers)
        return hidden, token_lengths

    def lower_states(self, mel, frame_lengths=None):
        """The frozen lower blocks (below ``first_tuned_block``), computed
        once per file when only the top blocks train.

        Args:
            mel: float (B, F, num_mels), as ``call``.
            frame_lengths: optional int (B,) valid frames.

        Returns:
            ``(hidden, states, token_lengths)``: float (B, first_tuned_block,
            T, D) the lower blocks' outputs (as ``call``'s first blocks),
            float (B, T, D) the residual stream entering the first tuned
            block (zero past a file's tokens), and int32 (B,).
        """
        return self._encode(mel, frame_lengths, self.first_tuned_block, with_states=True)

    def upper_blocks(self, states, token_lengths):
        """The tuned top blocks on ``lower_states``' states: ``call`` on
        the same input gives the same outputs for these blocks (each
        window of ``max_positions`` tokens attends within itself, padded
        tokens are masked out as keys).

        Args:
            states: float (B, T, D), zero-padded.
            token_lengths: int (B,) valid tokens.

        Returns:
            float (B, fine_tune_blocks, T, D): the outputs of the blocks
            ``first_tuned_block + 1 .. num_layers`` (the last after
            ``ln_post``), zero past a file's tokens.
        """
        if self._source_pending:
            with tf.init_scope():
                self._load_source()
        states = tf.cast(states, self.compute_dtype)
        batch, tokens = tf.shape(states)[0], tf.shape(states)[1]
        token_lengths = tf.clip_by_value(
            tf.cast(tf.reshape(token_lengths, [-1]), tf.int32), 0, tokens
        )
        window = tf.maximum(tf.minimum(tokens, self.max_positions), 1)
        x, window_lengths, num_windows = self._split(states, token_lengths, window)
        outputs, _ = self._blocks(x, window_lengths, self.first_tuned_block, self.num_layers)
        return self._join(tf.stack(outputs, axis=1), batch, num_windows, tokens, token_lengths)

    def compute_output_spec(self, mel, frame_lengths=None):
        batch, frames = mel.shape[0], mel.shape[1]
        tokens = None if frames is None else (frames + 1) // 2
        return (
            keras.KerasTensor(
                (batch, self.num_layers, tokens, self.hidden_dim),
                dtype=self.compute_dtype,
            ),
            keras.KerasTensor((batch,), dtype="int32"),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_layers": self.num_layers,
                "hidden_dim": self.hidden_dim,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "num_mels": self.num_mels,
                "max_positions": self.max_positions,
                "weights": self.weights_source,
                "fine_tune_blocks": self.fine_tune_blocks,
                "lora_rank": self.lora_rank,
            }
        )
        return config
