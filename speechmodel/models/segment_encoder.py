"""``SegmentEncoder``: padded segment sequences -> one embedding per segment."""

import os

import keras

from speechmodel.layers.imagenet_preprocessing import MODES
from speechmodel.layers.imagenet_preprocessing import ImageNetPreprocessing
from speechmodel.layers.masked_time_distributed import MaskedTimeDistributed
from speechmodel.models.registry import BACKBONES
from speechmodel.models.backbones import get_backbone
from speechmodel.models.base import FunctionalModel
from speechmodel.models.base import Graph

PREPROCESSINGS = (None, "imagenet") + MODES


def resolve_image_shape(segment_shape, input_size):
    """The image shape the backbone sees: ``segment_shape`` resized to
    ``input_size`` (an int for a square, ``[height, width]``, or ``None``)."""
    segment_shape = tuple(segment_shape)
    if len(segment_shape) != 3 or not all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in segment_shape
    ):
        raise ValueError(
            "`segment_shape` must be three positive ints (frames, mel bands, "
            f"channels). Received: segment_shape={segment_shape!r}"
        )
    if input_size is None:
        return segment_shape
    size = [input_size, input_size] if isinstance(input_size, int) else list(input_size)
    if len(size) != 2 or not all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in size
    ):
        raise ValueError(
            "`input_size` must be None, a positive int or [height, width]. "
            f"Received: input_size={input_size!r}"
        )
    return (size[0], size[1], segment_shape[2])


def resolve_preprocessing(preprocessing, backbone):
    """The ImageNetPreprocessing mode (or None) of a ``preprocessing`` value."""
    if preprocessing not in PREPROCESSINGS:
        raise ValueError(
            f"`preprocessing` must be one of {PREPROCESSINGS}. "
            f"Received: preprocessing={preprocessing!r}"
        )
    if preprocessing == "imagenet":
        return BACKBONES[backbone].preprocessing
    return preprocessing


def build_segment_network(
    backbone, *, weights, segment_shape, input_size, preprocessing, trainable_backbone,
    name="segment_network",
):
    """One segment ``(batch, *segment_shape)`` -> resize -> ImageNet
    preprocessing -> backbone -> ``(batch, embedding_dim)``.

    Returns ``(segment_network, backbone_model)``.
    """
    image_shape = resolve_image_shape(segment_shape, input_size)
    mode = resolve_preprocessing(preprocessing, backbone)
    backbone_model = get_backbone(
        backbone, weights=weights, input_shape=image_shape, trainable=trainable_backbone
    )
    segment = keras.Input(shape=tuple(segment_shape), name="segment")
    x = segment
    if tuple(image_shape) != tuple(segment_shape):
        x = keras.layers.Resizing(
            image_shape[0], image_shape[1], interpolation="bilinear", name="resize"
        )(x)
    if mode is not None:
        x = ImageNetPreprocessing(mode, name="imagenet_preprocessing")(x)
    x = backbone_model(x)
    return keras.Model(segment, x, name=name), backbone_model


def _check_weights(weights):
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise ValueError(
            "`weights` must be None, 'imagenet' or a file path. "
            f"Received: weights={weights!r}"
        )
    return os.fspath(weights) if weights is not None else None


@keras.saving.register_keras_serializable(package="speechmodel")
class SegmentEncoder(FunctionalModel):
    """A CNN applied to every valid segment of a padded sequence.

    Inputs ``{"segments": float32 (batch, N, *segment_shape), "mask": bool
    (batch, N)}``; output ``(batch, N, embedding_dim)``, zeros at padded
    segments. Each valid segment goes through ``segment_network`` (optional
    resize to ``input_size``, optional ImageNet preprocessing, the
    backbone); padded segments are never computed (see
    ``speechmodel.layers.MaskedTimeDistributed``).

    This is step (2) of the two-stage training of Zhang et al.: the
    embeddings ``encoder.predict(batches)`` can be cached once and a
    ``SequenceHead`` trained on them. Step (1), fine-tuning the CNN on
    segment labels, uses ``segment_classifier(num_classes)``, which shares
    the CNN's weights with this encoder.

    Args:
        backbone: a name of ``speechmodel.models.registry.BACKBONE_NAMES``.
        weights: ``None``, ``"imagenet"`` or a weights file of the backbone
            (see ``get_backbone``). ``from_config`` (and so loading a saved
            model) never loads these: the saved weights replace them.
        segment_shape: ``(frames, mel_bands, channels)`` of a segment.
        input_size: ``None`` (no resize), an int, or ``[height, width]``:
            bilinear resize of each segment before the backbone.
        preprocessing: ``None``: segments go to the backbone as they are
            (for ``"standard"``-normalised features and random init);
            ``"imagenet"``: the backbone's own ImageNet input normalisation
            (``speechmodel.models.registry.BACKBONES``) applied to segments expected in
            ``[0, 1]`` (``"minmax"`` features), scaled to ``[0, 255]``;
            or an explicit mode of ``ImageNetPreprocessing``.
        trainable_backbone: bool; ``False`` freezes the CNN (its batch norm
            runs in inference mode).
        **kwargs: ``name``, ``trainable``.
    """

    def __init__(
        self,
        *,
        backbone="alexnet",
        weights=None,
        segment_shape=(64, 64, 3),
        input_size=None,
        preprocessing=None,
        trainable_backbone=True,
        **kwargs,
    ):
        weights = _check_weights(weights)
        segment_shape = tuple(segment_shape)

        # === Layers ===
        self.segment_network, self.backbone_model = build_segment_network(
            backbone,
            weights=weights,
            segment_shape=segment_shape,
            input_size=input_size,
            preprocessing=preprocessing,
            trainable_backbone=trainable_backbone,
        )
        self.segment_distributed = MaskedTimeDistributed(
            self.segment_network, name="segment_distributed"
        )

        # === Functional Model ===
        inputs = {
            "segments": keras.Input((None, *segment_shape), name="segments"),
            "mask": keras.Input((None,), dtype="bool", name="mask"),
        }
        embeddings = self.segment_distributed(inputs["segments"], mask=inputs["mask"])
        super().__init__(inputs=inputs, outputs=embeddings, **kwargs)

        # === Config ===
        self.backbone = backbone
        self.weights_source = weights
        self.segment_shape = segment_shape
        self.input_size = input_size
        self.preprocessing = preprocessing
        self.trainable_backbone = trainable_backbone

    @property
    def embedding_dim(self):
        """Size of one segment embedding."""
        return int(self.segment_network.output_shape[-1])

    def segment_classifier(self, num_classes, *, dropout=0.0, name="segment_classifier"):
        """A new per-segment classifier sharing this encoder's CNN.

        ``(batch, *segment_shape)`` -> ``segment_network`` -> dropout ->
        dense -> float32 logits ``(batch, num_classes)`` (train it with
        ``from_logits=True``). Fitting it fine-tunes the CNN of this
        encoder (and of the ``SpeechModel`` holding it). Each call makes a
        new dense layer: call once and keep the model.
        """
        segment = keras.Input(self.segment_shape, name="segment")
        x = self.segment_network(segment)
        if dropout:
            x = keras.layers.Dropout(dropout, name="segment_dropout")(x)
        logits = keras.layers.Dense(num_classes, dtype="float32", name="segment_logits")(x)
        return Graph(segment, logits, name=name)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "backbone": self.backbone,
                "weights": self.weights_source,
                "segment_shape": list(self.segment_shape),
                "input_size": self.input_size,
                "preprocessing": self.preprocessing,
                "trainable_backbone": self.trainable_backbone,
            }
        )
        return config
