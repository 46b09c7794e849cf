"""``SpeechModel``: DCNN-BLSTMwA (Zhang et al., 2021) as a Keras 3 model."""

import inspect

import keras

from speechmodel.models.backbones import embedding_dim as backbone_embedding_dim
from speechmodel.models.base import FunctionalModel
from speechmodel.models.base import Graph
from speechmodel.models.segment_encoder import SegmentEncoder
from speechmodel.models.sequence_head import SequenceHead

_ENCODER_ARGS = (
    "backbone", "weights", "segment_shape", "input_size", "preprocessing",
    "trainable_backbone",
)
_HEAD_ARGS = ("lstm_units", "lstm_layers", "attention_units", "dense_units", "dropout")


@keras.saving.register_keras_serializable(package="speechmodel")
class SpeechModel(FunctionalModel):
    """DCNN-BLSTMwA: pre-trained CNN segments, BLSTM, attention, DNN.

    The model of Zhang et al. (2021), "Pre-trained Deep Convolution Neural
    Network Model With Attention for Speech Emotion Recognition": each
    three-channel log-mel segment (static, delta, delta-delta; 64 frames x
    64 mel bands) of an utterance goes through a CNN (``segment_encoder``,
    padded segments skipped), the sequence of segment embeddings through a
    bidirectional LSTM, an attention pooling over the valid segments and a
    DNN with dropout (``sequence_head``), to softmax class probabilities
    (float32 even under mixed precision).

    Inputs: ``{"segments": float32 (batch, N, *segment_shape), "mask": bool
    (batch, N)}`` with ``mask[b, n]`` True for a real segment; N may vary
    from batch to batch. Padded segments never change the output.

    The paper's setting is ``backbone="alexnet"`` (its 4096-d ``fc7``)
    pre-trained on ImageNet, ``input_size=227`` and image-style inputs
    (``"minmax"`` features with ``preprocessing="imagenet"``). Keras has no
    ImageNet AlexNet: convert torchvision's (``weights="<file>.npz"``, see
    ``speechmodel.models.torchvision_weights``) or use a keras.applications
    backbone such as ``"resnet50v2"`` with ``weights="imagenet"``. The head
    sizes default to this toolkit's choices; set them from the configs.

    Two-stage training (the paper's method):

    1. fine-tune the CNN on segment labels with
       ``model.segment_encoder.segment_classifier(num_classes)`` (shares the
       CNN with this model);
    2. extract the embeddings once, ``model.segment_encoder.predict(...)``
       -> ``(batch, N, embedding_dim)``, and cache them;
    3. train ``model.sequence_head`` (inputs ``{"embeddings", "mask"}``) on
       the cached sequences, or a head built alone with
       ``SpeechModel.sequence_head_from_config(config)`` and joined with
       ``SpeechModel.from_parts(encoder, head)``.

    Frozen-backbone feature extraction is the case without step 1
    (``trainable_backbone=False``). ``model.attention_model()`` reads out
    the attention weight of every segment.

    Args:
        num_classes: int, number of emotion classes.
        backbone: the CNN, a name of
            ``speechmodel.models.registry.BACKBONE_NAMES`` (``"alexnet"``,
            ``"alexnet_gap"``, ``"resnet18"``, ``"resnet34"``, ``"vgg11"``,
            ``"resnet50"``, ``"resnet50v2"``, ``"vgg16"``, ``"mobilenetv2"``,
            ``"efficientnetb0"`` ...).
        weights: initial CNN weights: ``None`` (random), ``"imagenet"``
            (keras.applications backbones; downloaded once into the Keras
            cache) or a local file (``.weights.h5``/``.h5`` of the backbone,
            or a torchvision ``.npz``). Loading a saved model never reads
            them again.
        segment_shape: ``(frames, mel_bands, channels)`` of a segment.
        input_size: ``None`` (segments go to the CNN at their size), an
            int or ``[height, width]``: bilinear resize of each segment
            before the CNN (e.g. 227 for AlexNet, 224 for the others).
        preprocessing: ``None`` (segments as they are: use with
            ``"standard"`` features), or ``"imagenet"``: segments expected
            in ``[0, 1]`` (``"minmax"`` features) are scaled to ``[0, 255]``
            and normalised as the backbone's keras.applications
            ``preprocess_input`` (torchvision's for the torchvision-layout
            networks); or an explicit ``ImageNetPreprocessing`` mode.
        lstm_units: int, units of each LSTM direction.
        lstm_layers: int, stacked bidirectional LSTM layers.
        attention_units: int, width of the attention scoring MLP
            (``None``: a linear score).
        dense_units: list of int, hidden dense layers of the DNN.
        dropout: float, dropout rate after each hidden dense layer.
        trainable_backbone: bool; ``False`` freezes the CNN.
        **kwargs: ``name``, ``trainable``.

    Example:
    >>> model = SpeechModel(num_classes=4, backbone="alexnet_gap",
    ...                     lstm_units=16, attention_units=16, dense_units=[16])
    >>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
    ...               metrics=["accuracy"])
    >>> rng = np.random.default_rng(0)
    >>> x = {"segments": rng.random((4, 3, 64, 64, 3), dtype="float32"),
    ...      "mask": np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]], bool)}
    >>> y = np.array([0, 1, 2, 3], "int32")
    >>> history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    >>> probs = model.predict(x, verbose=0)
    >>> probs.shape, bool(np.allclose(probs.sum(-1), 1.0, atol=1e-5))
    ((4, 4), True)
    >>> out = model.attention_model().predict(x, verbose=0)
    >>> out["attention"].shape, float(out["attention"][2, 1])
    ((4, 3), 0.0)
    """

    def __init__(
        self,
        num_classes,
        *,
        backbone="alexnet",
        weights=None,
        segment_shape=(64, 64, 3),
        input_size=None,
        preprocessing=None,
        lstm_units=128,
        lstm_layers=1,
        attention_units=128,
        dense_units=(256,),
        dropout=0.5,
        trainable_backbone=True,
        **kwargs,
    ):
        segment_shape = tuple(segment_shape)
        dense_units = list(dense_units or [])

        # === Layers ===
        self.segment_encoder = SegmentEncoder(
            backbone=backbone,
            weights=weights,
            segment_shape=segment_shape,
            input_size=input_size,
            preprocessing=preprocessing,
            trainable_backbone=trainable_backbone,
            name="segment_encoder",
        )
        self.sequence_head = SequenceHead(
            num_classes,
            embedding_dim=self.segment_encoder.embedding_dim,
            lstm_units=lstm_units,
            lstm_layers=lstm_layers,
            attention_units=attention_units,
            dense_units=dense_units,
            dropout=dropout,
            name="sequence_head",
        )

        # === Functional Model ===
        inputs = {
            "segments": keras.Input((None, *segment_shape), name="segments"),
            "mask": keras.Input((None,), dtype="bool", name="mask"),
        }
        embeddings = self.segment_encoder(inputs)
        outputs = self.sequence_head({"embeddings": embeddings, "mask": inputs["mask"]})
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.num_classes = num_classes
        self.backbone = backbone
        self.weights_source = self.segment_encoder.weights_source
        self.segment_shape = segment_shape
        self.input_size = input_size
        self.preprocessing = preprocessing
        self.lstm_units = lstm_units
        self.lstm_layers = lstm_layers
        self.attention_units = attention_units
        self.dense_units = dense_units
        self.dropout = dropout
        self.trainable_backbone = trainable_backbone

    def attention_model(self):
        """A model sharing these weights with outputs ``{"probabilities":
        float32 (batch, num_classes), "attention": float32 (batch, N)}``.

        ``attention[b, n]`` is the weight of segment ``n`` in the pooling of
        utterance ``b``: the weights of an utterance sum to 1 over its valid
        segments and are exactly 0 on padding.
        """
        inputs = {
            "segments": keras.Input((None, *self.segment_shape), name="segments"),
            "mask": keras.Input((None,), dtype="bool", name="mask"),
        }
        embeddings = self.segment_encoder(inputs)
        outputs = self.sequence_head.with_attention()(
            {"embeddings": embeddings, "mask": inputs["mask"]}
        )
        return Graph(inputs, outputs, name=f"{self.name}_attention")

    @classmethod
    def sequence_head_from_config(cls, config):
        """A new ``SequenceHead`` for the model a ``SpeechModel`` config
        (e.g. from JSON) describes, without building the CNN. Unset sizes
        take the ``SpeechModel`` defaults."""
        config = dict(config)
        defaults = {
            k: p.default
            for k, p in inspect.signature(cls.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty
        }
        head_args = {k: config.get(k, defaults[k]) for k in _HEAD_ARGS}
        if "num_classes" not in config:
            raise ValueError(
                f"The config needs `num_classes`. Received: {sorted(config)}"
            )
        return SequenceHead(
            config["num_classes"],
            embedding_dim=backbone_embedding_dim(config.get("backbone", defaults["backbone"])),
            name="sequence_head",
            **head_args,
        )

    @classmethod
    def from_parts(cls, segment_encoder, sequence_head, **kwargs):
        """A ``SpeechModel`` made of (copies of the weights of) a trained
        ``SegmentEncoder`` and ``SequenceHead``.

        Args:
            segment_encoder: a ``SegmentEncoder``.
            sequence_head: a ``SequenceHead`` whose ``embedding_dim`` is the
                encoder's.
            **kwargs: ``name``, ``trainable``.
        """
        if not isinstance(segment_encoder, SegmentEncoder) or not isinstance(
            sequence_head, SequenceHead
        ):
            raise ValueError(
                "from_parts takes a SegmentEncoder and a SequenceHead. Received: "
                f"{type(segment_encoder).__name__}, {type(sequence_head).__name__}"
            )
        if sequence_head.embedding_dim != segment_encoder.embedding_dim:
            raise ValueError(
                "The head's embedding_dim must be the encoder's. Received: "
                f"embedding_dim={sequence_head.embedding_dim} for an encoder "
                f"of {segment_encoder.embedding_dim}"
            )
        encoder_config = segment_encoder.get_config()
        head_config = sequence_head.get_config()
        model = cls(
            head_config["num_classes"],
            **{k: encoder_config[k] for k in _ENCODER_ARGS if k != "weights"},
            **{k: head_config[k] for k in _HEAD_ARGS},
            **kwargs,
        )
        model.segment_encoder.set_weights(segment_encoder.get_weights())
        model.sequence_head.set_weights(sequence_head.get_weights())
        model.weights_source = model.segment_encoder.weights_source = (
            segment_encoder.weights_source
        )
        return model

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "backbone": self.backbone,
                "weights": self.weights_source,
                "segment_shape": list(self.segment_shape),
                "input_size": self.input_size,
                "preprocessing": self.preprocessing,
                "lstm_units": self.lstm_units,
                "lstm_layers": self.lstm_layers,
                "attention_units": self.attention_units,
                "dense_units": list(self.dense_units),
                "dropout": self.dropout,
                "trainable_backbone": self.trainable_backbone,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        model = super().from_config(config)  # never reloads the initial weights
        model.segment_encoder.weights_source = model.weights_source
        return model
