"""``AudioSpeechModel``: DCNN-BLSTMwA on a pretrained speech encoder."""

import keras

from speechmodel.layers.speaker_normalization import SpeakerNormalization
from speechmodel.models.base import FunctionalModel
from speechmodel.models.base import Graph
from speechmodel.models.sequence_head import SequenceHead


@keras.saving.register_keras_serializable(package="speechmodel")
class AudioSpeechModel(FunctionalModel):
    """The paper's BLSTM + attention + DNN head on a pretrained encoder.

    Zhang et al. (2021) embed each log-mel segment with an ImageNet CNN.
    Here the segment embedder is a pretrained *speech* encoder (a front end
    of ``speechmodel.models.frontends``, e.g. Whisper base): it takes the
    16 kHz waveform and returns, for each of the paper's segments (the
    same ``N`` segments of 64 frames with a hop of 32 that
    ``speechmodel.features`` gives) and each of its ``L`` blocks, the mean
    of the encoder's frames inside the segment. The head mixes the blocks
    with learned softmax weights, then runs the BLSTM, the attention
    pooling over the valid segments and the DNN (``SequenceHead``).

    Training modes (``speechmodel.training``): ``frozen`` (the encoder's
    embeddings are computed once per file and cached; the head trains on
    the cache; the CPU default), ``finetune`` (with ``fine_tune_blocks >
    0`` on the embedder: its frozen lower blocks' states are cached and
    its top blocks, or adapters on them, train with the head from the
    cache, ``CachedTopBlocks``) and ``end_to_end`` (the same from
    waveforms, every epoch through the whole encoder: for GPUs).

    Inputs: ``{"waveforms": float32 (B, samples) zero-padded, "lengths":
    int32 (B,)}`` at 16 kHz. Output: float32 (B, num_classes).

    Args:
        num_classes: int.
        embedder: a built front end (``frontends.build_front_end``), with
            ``num_blocks`` and ``embedding_dim`` attributes. It is
            serialised with the model; a frozen pretrained encoder stores
            only the name of its weights, which are resolved (and their
            checksum verified) when the model is loaded.
        lstm_units, lstm_layers, attention_units, dense_units, dropout,
        input_dropout: the head's sizes (see ``SequenceHead``).
        speaker_normalization: bool. If true, the segment embeddings are
            standardised with a speaker's statistics
            (``SpeakerNormalization``, ``model.speaker_normalization``)
            before the head: trained with ``training.speaker_norm``, the
            layer holds an average training speaker's statistics, and
            ``speechmodel.inference`` can set those of one speaker from a
            set of their recordings.
        **kwargs: ``name``, ``trainable``.
    """

    def __init__(
        self,
        num_classes,
        *,
        embedder,
        lstm_units=128,
        lstm_layers=1,
        attention_units=128,
        dense_units=(256,),
        dropout=0.5,
        input_dropout=0.0,
        speaker_normalization=False,
        **kwargs,
    ):
        dense_units = list(dense_units or [])
        for attribute in ("num_blocks", "embedding_dim"):
            if not hasattr(embedder, attribute):
                raise ValueError(
                    "`embedder` must be a front end of speechmodel.models.frontends "
                    f"(with `num_blocks` and `embedding_dim`). Received: embedder={embedder!r}"
                )

        # === Layers ===
        self.embedder = embedder
        self.sequence_head = SequenceHead(
            num_classes,
            embedding_dim=int(embedder.embedding_dim),
            embedding_blocks=int(embedder.num_blocks),
            lstm_units=lstm_units,
            lstm_layers=lstm_layers,
            attention_units=attention_units,
            dense_units=dense_units,
            dropout=dropout,
            input_dropout=input_dropout,
            name="sequence_head",
        )
        self.speaker_normalization = (
            SpeakerNormalization(name="speaker_normalization") if speaker_normalization else None
        )

        # === Functional Model ===
        inputs = {
            "waveforms": keras.Input((None,), dtype="float32", name="waveforms"),
            "lengths": keras.Input((), dtype="int32", name="lengths"),
        }
        embeddings, mask = self.embedder(inputs["waveforms"], inputs["lengths"])
        outputs = self.sequence_head({"embeddings": self._normalized(embeddings), "mask": mask})
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.num_classes = num_classes
        self.lstm_units = lstm_units
        self.lstm_layers = lstm_layers
        self.attention_units = attention_units
        self.dense_units = dense_units
        self.dropout = dropout
        self.input_dropout = input_dropout

    def _normalized(self, embeddings):
        if self.speaker_normalization is None:
            return embeddings
        return self.speaker_normalization(embeddings)

    # The name the training code and the inference code share with
    # ``SpeechModel``: what turns inputs into segment embeddings.
    @property
    def segment_encoder(self):
        return self.embedder

    def attention_model(self):
        """A model sharing these weights with outputs ``{"probabilities":
        (B, num_classes), "attention": float32 (B, N)}`` (see
        ``SpeechModel.attention_model``)."""
        inputs = {
            "waveforms": keras.Input((None,), dtype="float32", name="waveforms"),
            "lengths": keras.Input((), dtype="int32", name="lengths"),
        }
        embeddings, mask = self.embedder(inputs["waveforms"], inputs["lengths"])
        outputs = self.sequence_head.with_attention()(
            {"embeddings": self._normalized(embeddings), "mask": mask}
        )
        return Graph(inputs, outputs, name=f"{self.name}_attention")

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "embedder": keras.saving.serialize_keras_object(self.embedder),
                "lstm_units": self.lstm_units,
                "lstm_layers": self.lstm_layers,
                "attention_units": self.attention_units,
                "dense_units": list(self.dense_units),
                "dropout": self.dropout,
                "input_dropout": self.input_dropout,
                "speaker_normalization": self.speaker_normalization is not None,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["embedder"] = keras.saving.deserialize_keras_object(config["embedder"])
        return cls(**config)
