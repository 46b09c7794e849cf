"""speechmodel: speech emotion recognition with Keras 3 / TensorFlow.

    import speechmodel
    rec = speechmodel.load_model()            # the shipped model; or "fast", a path
    print(rec.classify("clip.wav").label)     # see speechmodel.api

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
    "Error": "speechmodel.errors",
    "ParameterError": "speechmodel.errors",
    "compute_metrics": "speechmodel.metrics",
    "Recognizer": "speechmodel.api",
    "Classification": "speechmodel.api",
    "Failure": "speechmodel.inference",
    "ModelError": "speechmodel.inference",
}


# A model's config.json is a few kB (the shipped model's: 2 kB); a larger one
# is refused before it is read, so that a crafted file cannot make the
# loader parse hundreds of MB.
MAX_CONFIG_BYTES = 16 * 2**20


def check_config_size(path, *, limit=MAX_CONFIG_BYTES):
    """Refuses a ``.keras`` archive whose ``config.json`` is over ``limit``
    bytes, from the archive's directory, before anything is read.

    Raises:
        ValueError: names the file and the sizes. (A file that is not a zip
            archive, or has no ``config.json``, passes: the loader reports
            it.)
    """
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("config.json")
    except (KeyError, OSError, zipfile.BadZipFile, ValueError):
        return
    size = max(info.file_size, info.compress_size)
    if size > limit:
        raise ValueError(
            f"{path}: its config.json is {size / 2**20:.0f} MB, over the "
            f"{limit / 2**20:.0f} MB a model's configuration can take (a real "
            "one is a few kB); refusing to load it"
        )


def load_model(model=None, **options):
    """A ready-to-use emotion model: ``speechmodel.api.Recognizer``.

    ``model``: None (the shipped ``"default"``, the Whisper-based model),
    a shipped model's name (``"fast"``), a ``.keras`` file written by
    ``train.py``, its run directory, or a classical ``.skz`` model.
    ``options``: ``runtime`` (``"auto"``: ONNX Runtime when it can, the
    default; ``"onnx"``, ``"keras"``), ``precision`` (``"float32"``, or
    ``"int8"`` on ONNX), ``batch_size``, ``window``, ``hop``, ``max_utterance``
    (see ``Recognizer``).

    ``rec.classify(...)`` and ``rec.embed(...)`` are the API; the
    Recognizer of a Keras model also behaves as the Keras
    ``EmotionRecognizer`` it holds (``rec.keras_model``): calling it and
    its attributes (``class_names``...) are the model's.
    ``load_keras_model`` returns the bare Keras model.

    Raises:
        speechmodel.ModelError (a ``ValueError``): the file is missing, not
            a model of this toolkit, fails to load, or its ``config.json``
            is over ``MAX_CONFIG_BYTES``; the message names the file.
    """
    from speechmodel.api import Recognizer

    return Recognizer.load(model, **options)


def load_keras_model(path=None):
    """Loads a ``.keras`` model of this toolkit, in Keras' safe mode.

    ``path``: a ``.keras`` file, a run directory (its ``model.keras``), or
    the name of a shipped model (``speechmodel.presets``: ``"default"``,
    the Whisper-based model, when None; ``"fast"``).

    Registers the toolkit's layers and models first (Keras finds custom
    classes only once they are imported) and never runs code from the file.
    A ``config.json`` over ``MAX_CONFIG_BYTES`` is refused before it is
    read (``ValueError``).
    """
    import keras

    import speechmodel.layers  # noqa: F401
    import speechmodel.models  # noqa: F401

    from speechmodel.presets import resolve_model

    path = resolve_model(path)
    check_config_size(path)
    return keras.saving.load_model(path, safe_mode=True)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'speechmodel' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
