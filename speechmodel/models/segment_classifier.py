"""``SegmentClassifier``: the CNN baselines, one prediction per segment."""

import keras

from speechmodel.layers.masked_time_distributed import MaskedTimeDistributed
from speechmodel.models.base import FunctionalModel
from speechmodel.models.segment_encoder import SegmentEncoder


@keras.saving.register_keras_serializable(package="speechmodel")
class SegmentClassifier(FunctionalModel):
    """A CNN that classifies every segment; the utterance takes the mean.

    The baselines of the toolkit (seed 000's AlexNet fine-tuning, FCN+GAP,
    ResNet18, VGG11 ...): a backbone and a dense layer classify each valid
    segment (``segment_model()``), and the utterance's class probabilities
    are the softmax of the mean over its valid segments of the segment
    log-probabilities (a normalised geometric mean of the segment
    probabilities). Padded segments are never computed and never count.

    Inputs and output are those of ``SpeechModel``: ``{"segments": float32
    (batch, N, *segment_shape), "mask": bool (batch, N)}`` -> float32
    probabilities ``(batch, num_classes)``.

    Args:
        num_classes: int, number of classes.
        backbone: a name of ``speechmodel.models.registry.BACKBONE_NAMES``.
        weights: ``None``, ``"imagenet"`` or a local weights file of the
            backbone (see ``get_backbone``); not read again when a saved
            model loads.
        segment_shape: ``(frames, mel_bands, channels)`` of a segment.
        input_size: ``None``, an int or ``[height, width]``: resize of each
            segment before the backbone.
        preprocessing: ``None`` or ``"imagenet"`` (or an explicit mode), as
            for ``SpeechModel``.
        dropout: float, dropout rate before the segment classifier layer
            (0 by default: AlexNet's ``fc7`` already has dropout).
        trainable_backbone: bool; ``False`` freezes the backbone.
        **kwargs: ``name``, ``trainable``.

    Example:
    >>> model = SegmentClassifier(num_classes=3, backbone="alexnet_gap")
    >>> x = {"segments": np.random.rand(2, 4, 64, 64, 3).astype("float32"),
    ...      "mask": np.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool)}
    >>> tuple(model(x).shape), tuple(model.segment_model().output_shape)
    ((2, 3), (None, 3))
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
        dropout=0.0,
        trainable_backbone=True,
        **kwargs,
    ):
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise ValueError(
                f"`num_classes` must be a positive int. Received: num_classes={num_classes!r}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
        segment_shape = tuple(segment_shape)

        # === Layers ===
        # The segment CNN and its per-segment classifier are a
        # SegmentEncoder's (its segment_network and segment_classifier);
        # the encoder itself is not kept, so that the saved weights keep
        # their layout (files saved before load unchanged).
        encoder = SegmentEncoder(
            backbone=backbone,
            weights=weights,
            segment_shape=segment_shape,
            input_size=input_size,
            preprocessing=preprocessing,
            trainable_backbone=trainable_backbone,
        )
        self.segment_network, self.backbone_model = encoder.segment_network, encoder.backbone_model
        self.segment_logits_model = encoder.segment_classifier(num_classes, dropout=dropout)
        self.segment_distributed = MaskedTimeDistributed(
            self.segment_logits_model, name="segment_distributed"
        )
        self.log_softmax = keras.layers.Activation(
            "log_softmax", dtype="float32", name="segment_log_probabilities"
        )
        self.segment_mean = keras.layers.GlobalAveragePooling1D(
            dtype="float32", name="masked_mean"
        )
        self.softmax = keras.layers.Activation(
            "softmax", dtype="float32", name="probabilities"
        )

        # === Functional Model ===
        inputs = {
            "segments": keras.Input((None, *segment_shape), name="segments"),
            "mask": keras.Input((None,), dtype="bool", name="mask"),
        }
        mask = inputs["mask"]
        x = self.segment_distributed(inputs["segments"], mask=mask)
        x = self.log_softmax(x)
        x = self.segment_mean(x, mask=mask)
        outputs = self.softmax(x)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.num_classes = num_classes
        self.backbone = backbone
        self.weights_source = encoder.weights_source
        self.segment_shape = segment_shape
        self.input_size = input_size
        self.preprocessing = preprocessing
        self.dropout = dropout
        self.trainable_backbone = trainable_backbone

    def segment_model(self):
        """The per-segment classifier, sharing this model's weights:
        ``(batch, *segment_shape)`` -> float32 logits ``(batch,
        num_classes)``; fine-tune it on segment labels with a
        ``from_logits=True`` loss."""
        return self.segment_logits_model

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
                "dropout": self.dropout,
                "trainable_backbone": self.trainable_backbone,
            }
        )
        return config
