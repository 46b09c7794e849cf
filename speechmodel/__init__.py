"""speechmodel: speech emotion recognition with Keras 3 / TensorFlow.

    import speechmodel
    rec = speechmodel.load_model()            # the shipped model; or "fast", a path
    print(rec.classify("clip.wav").label)     # see speechmodel.api

``from speechmodel import SpeechModel`` gives the DCNN-BLSTMwA model of Zhang
et al. (2021). Submodules are imported on first use, so that
``speechmodel.audio`` or ``speechmodel.classical`` do not pay for TensorFlow.
This module defines nothing: every name is its module's (``_LAZY``).
"""

import importlib
import os

__version__ = "0.1.0"

# A library is quiet unless asked: TensorFlow's C++ log lines (oneDNN notes,
# an OUT_OF_RANGE "End of sequence" after every prediction, type-inference
# notes) say nothing a user can act on. Set before TensorFlow is imported
# (every module imports it lazily, after this package); a
# TF_CPP_MIN_LOG_LEVEL the user has set wins. The one place that sets it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

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
    "Error": "speechmodel.errors",
    "ParameterError": "speechmodel.errors",
    "compute_metrics": "speechmodel.metrics",
    "load_model": "speechmodel.api",
    "Recognizer": "speechmodel.api",
    "Classification": "speechmodel.api",
    "Failure": "speechmodel.inference",
    "ModelError": "speechmodel.inference",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'speechmodel' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
