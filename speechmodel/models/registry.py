"""``build_model``: every model of the toolkit by one name (JSON configs)."""

import inspect

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


def build_model(name="speechmodel", *, num_classes, weights=None, **kwargs):
    """Builds a model from JSON-friendly values.

    Args:
        name: ``"speechmodel"`` (DCNN-BLSTMwA, ``SpeechModel``; pick its CNN
            with ``backbone=``), or a baseline ``SegmentClassifier`` named by
            its backbone: ``"alexnet"``, ``"alexnet_gap"``, ``"resnet18"``,
            ``"resnet34"``, ``"resnet50"``, ``"vgg11"``, ``"vgg16"`` ... (see
            ``MODEL_NAMES``).
        num_classes: int, number of classes.
        weights: initial backbone weights (``None``, ``"imagenet"``, a file).
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
