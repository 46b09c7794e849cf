"""``build_model``: every model of the toolkit by one name (JSON configs)."""

import inspect

from speechmodel.models import frontends
from speechmodel.models.audio_speech_model import AudioSpeechModel
from speechmodel.models.backbones import BACKBONE_NAMES
from speechmodel.models.segment_classifier import SegmentClassifier
from speechmodel.models.speech_model import SpeechModel

# "speechmodel" is DCNN-BLSTMwA; every backbone name is a SegmentClassifier
# baseline on that backbone.
MODEL_NAMES = ("speechmodel",) + BACKBONE_NAMES


def _accepted(cls):
    params = inspect.signature(cls.__init__).parameters
    return sorted(
        k for k, p in params.items()
        if k != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ) + ["name"]


def _build_audio_model(num_classes, weights, feature_config, kwargs):
    """``speechmodel`` on a pretrained front end (``AudioSpeechModel``)."""
    backbone = kwargs.pop("backbone")
    embedder_args = {
        "fine_tune_blocks": int(kwargs.pop("fine_tune_blocks", 0) or 0),
        "lora_rank": int(kwargs.pop("lora_rank", 0) or 0),
    }
    head_args = ("lstm_units", "lstm_layers", "attention_units", "dense_units", "dropout",
                 "input_dropout", "speaker_normalization", "name")
    unknown = sorted(set(kwargs) - set(head_args))
    if unknown:
        raise ValueError(
            f"Unknown argument(s) {unknown} for model 'speechmodel' on the front end "
            f"{backbone!r}; accepted: {sorted(head_args + ('backbone', 'weights', 'fine_tune_blocks', 'lora_rank'))}. "
            f"Received: {sorted(kwargs)}"
        )
    embedder = frontends.build_front_end(
        backbone, feature_config=feature_config, weights=weights, **embedder_args
    )
    return AudioSpeechModel(num_classes, embedder=embedder, **kwargs)


def build_model(name="speechmodel", *, num_classes, weights=None, feature_config=None, **kwargs):
    """Builds a model from JSON-friendly values.

    Args:
        name: ``"speechmodel"`` (DCNN-BLSTMwA, ``SpeechModel``; pick its CNN
            with ``backbone=``), or a baseline ``SegmentClassifier`` named by
            its backbone: ``"alexnet"``, ``"alexnet_gap"``, ``"resnet18"``,
            ``"resnet34"``, ``"resnet50"``, ``"vgg11"``, ``"vgg16"`` ... (see
            ``MODEL_NAMES``).
        num_classes: int, number of classes.
        weights: initial backbone weights (``None``, ``"imagenet"``, a file);
            for a pretrained front end (``backbone="whisper_base"``),
            ``None`` means its pretrained weights.
        feature_config: dict of ``FeatureConfig`` fields the model is fed
            with: the segment shape (and a front end's segment grid) are
            derived from it unless given.
        **kwargs: further constructor arguments of the class (ints,
            floats, strings, lists: JSON values).

    Returns:
        An uncompiled ``SpeechModel`` or ``SegmentClassifier``.

    Raises:
        ValueError: unknown name or argument; the message lists the
            accepted ones.
    """
    if name not in MODEL_NAMES:
        raise ValueError(f"Unknown model; known: {list(MODEL_NAMES)}. Received: name={name!r}")
    if name == "speechmodel" and frontends.is_front_end(kwargs.get("backbone")):
        return _build_audio_model(num_classes, weights, feature_config, dict(kwargs))
    if feature_config is not None and "segment_shape" not in kwargs:
        from speechmodel.config import FeatureConfig

        kwargs["segment_shape"] = list(FeatureConfig.from_dict(feature_config).segment_shape)
    if name == "speechmodel":
        cls = SpeechModel
    else:
        cls = SegmentClassifier
        if "backbone" in kwargs and kwargs["backbone"] != name:
            raise ValueError(
                f"Model {name!r} is the baseline on backbone {name!r}. "
                f"Received: backbone={kwargs['backbone']!r}"
            )
        kwargs["backbone"] = name
    accepted = _accepted(cls)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(
            f"Unknown argument(s) {unknown} for model {name!r} ({cls.__name__}); "
            f"accepted: {[a for a in accepted if a not in ('num_classes', 'weights')]}. "
            f"Received: {sorted(kwargs)}"
        )
    return cls(num_classes, weights=weights, **kwargs)
