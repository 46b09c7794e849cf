"""The OpenAI Whisper audio encoder as one Keras layer."""

import keras
import numpy as np
import tensorflow as tf

from speechmodel.models.whisper import whisper_weights

_MARKER = "whisper_weights_sha256"


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
            stay frozen).

    Saving: with ``fine_tune_blocks=0`` and pretrained ``weights``, the
    weights file holds only the sha256 of the weights; loading resolves
    ``weights`` again and checks that it gives the same numbers. Otherwise
    (and whenever the frozen weights were changed) every variable is saved.

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
        num_layers=6,
        hidden_dim=512,
        num_heads=8,
        intermediate_dim=2048,
        num_mels=80,
        max_positions=1500,
        weights=None,
        fine_tune_blocks=0,
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
        self.supports_masking = False
        # Set by from_config: the variables are then filled by
        # load_own_variables (or, failing that, at the first call).
        self._defer_source_load = False
        self._source_pending = False
        self._loaded_digest = None
        self._load_error = None  # The first failure of load_own_variables.

    @property
    def window_frames(self):
        """Mel frames per encoder window (3000 = 30 s for Whisper)."""
        return 2 * self.max_positions

    def _variable_trainable(self, name):
        first_tuned = self.num_layers - self.fine_tune_blocks
        if name.startswith("block_"):
            return int(name.split("_")[1]) >= first_tuned
        if name.startswith("ln_post"):
            return self.fine_tune_blocks > 0
        return False

    def _variable_shapes(self):
        return whisper_weights.encoder_variable_shapes(
            num_layers=self.num_layers,
            hidden_dim=self.hidden_dim,
            intermediate_dim=self.intermediate_dim,
            num_mels=self.num_mels,
            max_positions=self.max_positions,
        )

    def build(self, mel_shape=None, frame_lengths_shape=None):
        self._vars = {}
        for name, shape in self._variable_shapes().items():
            if name == "positional_embedding":
                initializer = keras.initializers.Constant(
                    whisper_sinusoids(self.max_positions, self.hidden_dim)
                )
            elif name.endswith("_gamma"):
                initializer = "ones"
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

    def _current_weights(self):
        return {name: np.asarray(v.numpy()) for name, v in self._vars.items()}

    def _assign(self, weights, where):
        shapes = self._variable_shapes()
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
        for name, variable in self._vars.items():
            variable.assign(np.asarray(weights[name], np.float32))

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
        self._assign(weights, used)
        self._loaded_digest = digest
        self._source_pending = False

    def _saves_by_reference(self):
        return self.weights_source is not None and self.fine_tune_blocks == 0

    def save_own_variables(self, store):
        """Saves the variables; frozen pretrained weights as their sha256.

        Args:
            store: the weights store of ``model.save``.
        """
        if not self.built:
            return
        if self._saves_by_reference():
            if self._source_pending:
                self._load_source()
            digest = whisper_weights.weights_digest(self._current_weights())
            if digest == self._loaded_digest:
                store[_MARKER] = np.frombuffer(bytes.fromhex(digest), np.uint8)
                return
        for name, variable in self._vars.items():
            store[name] = variable

    def load_own_variables(self, store):
        """Loads what ``save_own_variables`` saved: the variables, or the
        pretrained weights from ``weights`` after checking their sha256.

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
            if (
                not self._source_pending
                and self._loaded_digest == expected
                and whisper_weights.weights_digest(self._current_weights()) == expected
            ):
                return  # Already holds exactly these weights.
            self._load_source(expected_digest=expected)
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

    def _block(self, x, i, batch, tokens, key_bias):
        """x: (batch * tokens, hidden) -> the same after block i."""
        d, h = self.hidden_dim, self.num_heads
        p = f"block_{i}_"
        v = self._vars
        qkv_bias = tf.concat(
            [v[p + "q_bias"], tf.zeros_like(v[p + "q_bias"]), v[p + "v_bias"]], axis=0
        )
        qkv = tf.matmul(self._layer_norm(x, p + "attn_ln"), v[p + "qkv_kernel"]) + qkv_bias
        qkv = tf.transpose(
            tf.reshape(qkv, [batch, tokens, 3, h, d // h]), [2, 0, 3, 1, 4]
        )  # (3, B, H, T, dh)
        q = qkv[0] * ((d // h) ** -0.5)
        scores = tf.cast(tf.matmul(q, qkv[1], transpose_b=True), tf.float32)
        weights = tf.cast(tf.nn.softmax(scores + key_bias, axis=-1), x.dtype)
        attn = tf.matmul(weights, qkv[2])  # (B, H, T, dh)
        attn = tf.reshape(tf.transpose(attn, [0, 2, 1, 3]), [batch * tokens, d])
        x = x + tf.matmul(attn, v[p + "out_kernel"]) + v[p + "out_bias"]
        y = tf.matmul(self._layer_norm(x, p + "mlp_ln"), v[p + "fc1_kernel"]) + v[p + "fc1_bias"]
        y = tf.nn.gelu(y, approximate=False)
        return x + tf.matmul(y, v[p + "fc2_kernel"]) + v[p + "fc2_bias"]

    def _conv(self, x, name, stride):
        x = tf.pad(x, [[0, 0], [1, 1], [0, 0]])
        x = tf.nn.conv1d(x, self._vars[name + "_kernel"], stride=stride, padding="VALID")
        return tf.nn.gelu(x + self._vars[name + "_bias"], approximate=False)

    def _encode_windows(self, mel, frame_lengths):
        """mel (W, F, M), F <= window_frames -> list of (W, T, D) per block."""
        batch, frames = tf.shape(mel)[0], tf.shape(mel)[1]
        tokens = (frames + 1) // 2
        token_lengths = (frame_lengths + 1) // 2
        frame_valid = tf.range(frames)[tf.newaxis, :] < frame_lengths[:, tf.newaxis]
        frame_valid = tf.cast(frame_valid, mel.dtype)[..., tf.newaxis]
        x = self._conv(mel * frame_valid, "conv1", 1) * frame_valid
        x = self._conv(x, "conv2", 2)  # (W, T, D)
        x = x + self._vars["positional_embedding"][:tokens]
        key_valid = tf.range(tokens)[tf.newaxis, :] < token_lengths[:, tf.newaxis]
        # Added to the float32 scores: padded keys get exactly 0 weight.
        key_bias = tf.where(key_valid, 0.0, -1e9)[:, tf.newaxis, tf.newaxis, :]
        x = tf.reshape(x, [batch * tokens, self.hidden_dim])
        outputs = []
        for i in range(self.num_layers):
            x = self._block(x, i, batch, tokens, key_bias)
            out = self._layer_norm(x, "ln_post") if i == self.num_layers - 1 else x
            outputs.append(tf.reshape(out, [batch, tokens, self.hidden_dim]))
        return outputs

    def call(self, mel, frame_lengths=None):
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
        token_lengths = (frame_lengths + 1) // 2
        tokens = (frames + 1) // 2

        # Windows of at most window_frames frames (an even number, so that
        # window boundaries fall between tokens), each encoded alone.
        window = tf.maximum(tf.minimum(frames, self.window_frames), 1)
        num_windows = (frames + window - 1) // window
        mel = tf.pad(mel, [[0, 0], [0, num_windows * window - frames], [0, 0]])
        mel = tf.reshape(mel, [batch * num_windows, window, self.num_mels])
        starts = tf.range(num_windows) * window
        window_lengths = tf.clip_by_value(
            frame_lengths[:, tf.newaxis] - starts[tf.newaxis, :], 0, window
        )
        outputs = self._encode_windows(mel, tf.reshape(window_lengths, [-1]))

        hidden = tf.stack(outputs, axis=1)  # (B * W, L, Tw, D)
        window_tokens = tf.shape(hidden)[2]
        hidden = tf.reshape(
            hidden,
            [batch, num_windows, self.num_layers, window_tokens, self.hidden_dim],
        )
        hidden = tf.transpose(hidden, [0, 2, 1, 3, 4])
        hidden = tf.reshape(
            hidden, [batch, self.num_layers, num_windows * window_tokens, self.hidden_dim]
        )[:, :, :tokens]
        valid = tf.range(tokens)[tf.newaxis, :] < token_lengths[:, tf.newaxis]
        hidden = hidden * tf.cast(valid, hidden.dtype)[:, tf.newaxis, :, tf.newaxis]
        return hidden, token_lengths

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
            }
        )
        return config
