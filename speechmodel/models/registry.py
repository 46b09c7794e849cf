"""Every model of the toolkit by one name: the tables, importable without
TensorFlow, and ``build_model`` (JSON configs).

The tables are names and strings only: the class of an entry is imported
when a model is built (``ModelClass.model_class``), so that the config
validation of ``train.py`` (``speechmodel.training.schema``) reads them in
well under a second. The pretrained speech front ends have their own table,
``speechmodel.models.frontends.FRONT_ENDS`` (adding one is its package and
one entry there).

* ``BACKBONES``: the CNNs that embed one log-mel segment image
  (``speechmodel.models.backbones.get_backbone``), with their ImageNet
  preprocessing and embedding size.
* ``MODEL_NAMES``: ``"speechmodel"`` (DCNN-BLSTMwA) and one
  ``SegmentClassifier`` baseline per backbone, named by it.
* ``MODEL_CLASSES``: the class behind each kind of model (``model_kind``)
  and the ``model.*`` config keys it takes (its constructor arguments and
  ``name``; ``registry_test.py`` checks them against the signatures).
"""

import dataclasses
import importlib

from speechmodel.errors import ParameterError
from speechmodel.models import frontends


@dataclasses.dataclass(frozen=True)
class Backbone:
    """A CNN backbone: ``preprocessing`` is its ImageNet preprocessing mode
    (``speechmodel.layers.ImageNetPreprocessing``), ``embedding_dim`` the
    size of the embedding it outputs."""

    preprocessing: str
    embedding_dim: int


BACKBONES = {
    "alexnet": Backbone("torch", 4096),
    "alexnet_gap": Backbone("torch", 256),
    "cnn4": Backbone("torch", 256),
    "resnet18": Backbone("torch", 512),
    "resnet34": Backbone("torch", 512),
    "vgg11": Backbone("torch", 512),
    "vgg11_bn": Backbone("torch", 512),
    "vgg16_bn": Backbone("torch", 512),
    "resnet50": Backbone("caffe", 2048),
    "resnet50v2": Backbone("tf", 2048),
    "vgg16": Backbone("caffe", 512),
    "mobilenetv2": Backbone("tf", 1280),
    "efficientnetb0": Backbone("scale", 1280),
}
BACKBONE_NAMES = tuple(BACKBONES)

# "speechmodel" is DCNN-BLSTMwA; every backbone name is a SegmentClassifier
# baseline on that backbone.
MODEL_NAMES = ("speechmodel",) + BACKBONE_NAMES


@dataclasses.dataclass(frozen=True)
class ModelClass:
    """The class of a kind of model, by module and name, and the ``model.*``
    config keys it takes (``name`` and its constructor's keywords)."""

    module: str
    class_name: str
    keys: tuple

    def model_class(self):
        """The class itself (imports its module, and so TensorFlow)."""
        return getattr(importlib.import_module(self.module), self.class_name)


_HEAD_KEYS = ("lstm_units", "lstm_layers", "attention_units", "dense_units", "dropout")
_CNN_KEYS = ("segment_shape", "input_size", "preprocessing", "trainable_backbone")
# The keys of a front end's embedder (``frontends.build_front_end``), not
# of the model's own constructor.
FRONT_END_OPTIONS = ("backbone", "weights", "fine_tune_blocks", "lora_rank")

MODEL_CLASSES = {
    # SpeechModel on a CNN backbone.
    "speechmodel": ModelClass(
        "speechmodel.models.speech_model", "SpeechModel",
        ("name", "backbone", "weights") + _CNN_KEYS + _HEAD_KEYS,
    ),
    # SpeechModel's head on a pretrained speech front end.
    "front_end": ModelClass(
        "speechmodel.models.audio_speech_model", "AudioSpeechModel",
        ("name",) + FRONT_END_OPTIONS + ("input_dropout", "speaker_normalization") + _HEAD_KEYS,
    ),
    # A baseline: one CNN per segment, averaged.
    "baseline": ModelClass(
        "speechmodel.models.segment_classifier", "SegmentClassifier",
        ("name", "backbone", "weights", "dropout") + _CNN_KEYS,
    ),
}


def model_kind(name, backbone=None):
    """``"front_end"`` (``speechmodel`` on a pretrained speech encoder),
    ``"speechmodel"`` (on a CNN) or ``"baseline"``, for a name of
    ``MODEL_NAMES``."""
    if name == "speechmodel":
        return "front_end" if frontends.is_front_end(backbone) else "speechmodel"
    return "baseline"


def _check_arguments(kwargs, accepted, what):
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ParameterError(
            f"Unknown argument(s) {unknown} for {what}; accepted: {sorted(accepted)}. Received: {sorted(kwargs)}"
        )


def build_model(name="speechmodel", *, num_classes, weights=None, feature_config=None, **kwargs):
    """Builds a model from JSON-friendly values.

    Args:
        name: ``"speechmodel"`` (DCNN-BLSTMwA, ``SpeechModel``; pick its CNN
            or pretrained front end with ``backbone=``), or a baseline
            ``SegmentClassifier`` named by its backbone: ``"alexnet"``,
            ``"alexnet_gap"``, ``"resnet18"``, ``"resnet34"``,
            ``"resnet50"``, ``"vgg11"``, ``"vgg16"`` ... (see
            ``MODEL_NAMES``).
        num_classes: int, number of classes.
        weights: initial backbone weights (``None``, ``"imagenet"``, a file);
            for a pretrained front end (``backbone="whisper_base"``),
            ``None`` means its pretrained weights.
        feature_config: dict of ``FeatureConfig`` fields the model is fed
            with: the segment shape (and a front end's segment grid) are
            derived from it unless given.
        **kwargs: the other keys of ``MODEL_CLASSES[kind].keys`` (ints,
            floats, strings, lists: JSON values).

    Returns:
        An uncompiled ``SpeechModel``, ``AudioSpeechModel`` or
        ``SegmentClassifier``.

    Raises:
        ParameterError (a ``ValueError``): unknown name or argument; the
            message lists the accepted ones.
    """
    if name not in MODEL_NAMES:
        raise ParameterError(f"Unknown model; known: {list(MODEL_NAMES)}. Received: name={name!r}")
    kind = model_kind(name, kwargs.get("backbone"))
    entry = MODEL_CLASSES[kind]
    accepted = [k for k in entry.keys if k != "weights"]
    if kind == "front_end":
        backbone = kwargs.pop("backbone")
        _check_arguments(kwargs, [k for k in accepted if k != "backbone"],
                         f"model 'speechmodel' on the front end {backbone!r}")
        embedder = frontends.build_front_end(
            backbone, feature_config=feature_config, weights=weights,
            fine_tune_blocks=int(kwargs.pop("fine_tune_blocks", 0) or 0),
            lora_rank=int(kwargs.pop("lora_rank", 0) or 0),
        )
        return entry.model_class()(num_classes, embedder=embedder, **kwargs)
    if kind == "baseline":
        if "backbone" in kwargs and kwargs["backbone"] != name:
            raise ParameterError(
                f"Model {name!r} is the baseline on backbone {name!r}. Received: backbone={kwargs['backbone']!r}"
            )
        kwargs["backbone"] = name
    _check_arguments(kwargs, accepted, f"model {name!r} ({entry.class_name})")
    if feature_config is not None and "segment_shape" not in kwargs:
        from speechmodel.config import FeatureConfig

        kwargs["segment_shape"] = list(FeatureConfig.from_dict(feature_config).segment_shape)
    return entry.model_class()(num_classes, weights=weights, **kwargs)


def import_classes():
    """Imports every module of ``speechmodel.layers`` and
    ``speechmodel.models``: Keras finds a registered class
    (``speechmodel>Name``) of a saved file only once its module is
    imported. Called before a ``.keras`` file is loaded."""
    import pkgutil

    for package in ("speechmodel.layers", "speechmodel.models"):
        path = importlib.import_module(package).__path__
        for info in pkgutil.walk_packages(path, package + "."):
            if not info.name.endswith(("_test", ".conftest")):
                importlib.import_module(info.name)
