"""speechmodel: speech emotion recognition with Keras 3 / TensorFlow.

``from speechmodel import SpeechModel`` gives the DCNN-BLSTMwA model of Zhang
et al. (2021). Submodules are imported on first use, so that
``speechmodel.audio`` or ``speechmodel.classical`` do not pay for TensorFlow.
"""

import importlib

__version__ = "0.1.0"

_LAZY = {
    "SpeechModel": "speechmodel.models.speech_model",
    "SegmentClassifier": "speechmodel.models.segment_classifier",
    "build_model": "speechmodel.models.registry",
    "EmotionRecognizer": "speechmodel.models.recognizer",
    "SegmentEncoder": "speechmodel.models.segment_encoder",
    "SequenceHead": "speechmodel.models.sequence_head",
    "MODEL_NAMES": "speechmodel.models.registry",
    "get_backbone": "speechmodel.models.backbones",
    "get_strategy": "speechmodel.distribute",
    "set_precision": "speechmodel.precision",
    "make_dataset": "speechmodel.pipeline",
    "ClassicalModel": "speechmodel.classical",
    "FeatureConfig": "speechmodel.config",
    "load_audio": "speechmodel.audio",
    "AudioError": "speechmodel.audio",
    "compute_metrics": "speechmodel.metrics",
}


def load_model(path):
    """Loads a ``.keras`` model of this toolkit, in Keras' safe mode.

    Registers the toolkit's layers and models first (Keras finds custom
    classes only once they are imported) and never runs code from the file.
    """
    import keras

    import speechmodel.layers  # noqa: F401
    import speechmodel.models  # noqa: F401

    return keras.saving.load_model(path, safe_mode=True)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'speechmodel' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
