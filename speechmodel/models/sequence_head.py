"""``SequenceHead``: segment embeddings -> BLSTM -> attention -> DNN -> classes."""

import keras

from speechmodel.layers.attention_pooling import AttentionPooling
from speechmodel.layers.block_weighted_sum import BlockWeightedSum
from speechmodel.models.base import FunctionalModel
from speechmodel.models.base import Graph


def _positive_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")


@keras.saving.register_keras_serializable(package="speechmodel")
class SequenceHead(FunctionalModel):
    """The utterance-level part of DCNN-BLSTMwA (Zhang et al., 2021).

    Inputs ``{"embeddings": (batch, N, embedding_dim), "mask": bool (batch,
    N)}``: one embedding per segment, padded segments masked. Stacked
    bidirectional LSTMs (sequences returned, mask respected), attention
    pooling over the valid segments only (``AttentionPooling``), dense
    ReLU layers with dropout, and a softmax; the output ``(batch,
    num_classes)`` is float32 under mixed precision.

    With ``embedding_blocks=L`` the embeddings are ``(batch, N, L,
    embedding_dim)``: one vector per segment from each of the ``L`` blocks
    of a pretrained encoder (e.g. Whisper's), mixed by a learned
    softmax-weighted sum (``BlockWeightedSum``) before the BLSTM.

    Trained alone on cached embeddings, it is stage two of the two-stage
    training; ``SpeechModel`` holds one as ``model.sequence_head``.

    Args:
        num_classes: int, number of classes.
        embedding_dim: int, size of a segment embedding.
        lstm_units: int, units of each LSTM direction.
        lstm_layers: int, stacked bidirectional LSTM layers.
        attention_units: int, width of the attention scoring MLP
            (``None``: a linear score).
        dense_units: list of int, the hidden dense layers.
        dropout: float, dropout rate after each hidden dense layer.
        embedding_blocks: ``None`` (one embedding per segment) or int ``L``,
            the encoder blocks whose embeddings are mixed.
        input_dropout: float, dropout rate on the (mixed) segment
            embeddings before the BLSTM.
        **kwargs: ``name``, ``trainable``.

    Example:
    >>> head = SequenceHead(num_classes=4, embedding_dim=16, lstm_units=8,
    ...                     attention_units=8, dense_units=[8])
    >>> probs = head({"embeddings": np.random.rand(2, 5, 16).astype("float32"),
    ...               "mask": np.array([[1, 1, 1, 0, 0], [1] * 5], bool)})
    >>> tuple(probs.shape)
    (2, 4)
    """

    def __init__(
        self,
        num_classes,
        *,
        embedding_dim,
        lstm_units=128,
        lstm_layers=1,
        attention_units=128,
        dense_units=(256,),
        dropout=0.5,
        embedding_blocks=None,
        input_dropout=0.0,
        **kwargs,
    ):
        _positive_int("num_classes", num_classes)
        if embedding_blocks is not None:
            _positive_int("embedding_blocks", embedding_blocks)
        if not 0.0 <= input_dropout < 1.0:
            raise ValueError(
                f"`input_dropout` must be in [0, 1). Received: input_dropout={input_dropout!r}"
            )
        _positive_int("embedding_dim", embedding_dim)
        _positive_int("lstm_units", lstm_units)
        _positive_int("lstm_layers", lstm_layers)
        dense_units = list(dense_units or [])
        for units in dense_units:
            _positive_int("dense_units", units)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")

        # === Layers ===
        self.block_mix = (
            BlockWeightedSum(embedding_blocks, name="block_mix")
            if embedding_blocks is not None
            else None
        )
        self.input_dropout_layer = (
            keras.layers.Dropout(input_dropout, name="input_dropout") if input_dropout else None
        )
        self.blstm_layers = [
            keras.layers.Bidirectional(
                keras.layers.LSTM(lstm_units, return_sequences=True),
                name=f"blstm_{i}",
            )
            for i in range(lstm_layers)
        ]
        self.attention = AttentionPooling(attention_units, name="attention")
        self.dense_layers = [
            keras.layers.Dense(units, activation="relu", name=f"dense_{i}")
            for i, units in enumerate(dense_units)
        ]
        self.dropout_layers = [
            keras.layers.Dropout(dropout, name=f"dropout_{i}")
            for i in range(len(dense_units))
        ]
        self.logits = keras.layers.Dense(num_classes, name="logits")
        self.softmax = keras.layers.Activation(
            "softmax", dtype="float32", name="probabilities"
        )

        # === Functional Model ===
        blocks = () if embedding_blocks is None else (embedding_blocks,)
        inputs = {
            "embeddings": keras.Input((None, *blocks, embedding_dim), name="embeddings"),
            "mask": keras.Input((None,), dtype="bool", name="mask"),
        }
        mask = inputs["mask"]
        x = inputs["embeddings"]
        if self.block_mix is not None:
            x = self.block_mix(x)
        if self.input_dropout_layer is not None:
            x = self.input_dropout_layer(x)
        for blstm in self.blstm_layers:
            x = blstm(x, mask=mask)
        x, _ = self.attention(x, mask=mask, return_attention=True)
        for dense, drop in zip(self.dense_layers, self.dropout_layers):
            x = drop(dense(x))
        outputs = self.softmax(self.logits(x))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.num_classes = num_classes
        self.embedding_dim = embedding_dim
        self.lstm_units = lstm_units
        self.lstm_layers = lstm_layers
        self.attention_units = attention_units
        self.dense_units = dense_units
        self.dropout = dropout
        self.embedding_blocks = embedding_blocks
        self.input_dropout = input_dropout

    def with_attention(self):
        """A model sharing these weights that outputs ``{"probabilities":
        (batch, num_classes), "attention": float32 (batch, N)}``; the
        attention weights of a sequence sum to 1 over its valid segments
        and are 0 on padding."""
        _, weights = self.attention.output
        return Graph(
            self.input,
            {"probabilities": self.output, "attention": weights},
            name=f"{self.name}_with_attention",
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "embedding_dim": self.embedding_dim,
                "lstm_units": self.lstm_units,
                "lstm_layers": self.lstm_layers,
                "attention_units": self.attention_units,
                "dense_units": list(self.dense_units),
                "dropout": self.dropout,
                "embedding_blocks": self.embedding_blocks,
                "input_dropout": self.input_dropout,
            }
        )
        return config
