"""Opening a model file for inference, executing no code from it.

``load_model`` reads the kind from the file's content: a ``.keras``
``EmotionRecognizer`` (loaded with ``safe_mode=True``) becomes a
``KerasInferenceModel``, a classical scikit-learn archive (``.skz``, see
``speechmodel.classical.persistence``) a ``ClassicalInferenceModel``;
anything else is a ``ModelError`` that says what the file is.
``resolve_model`` is the one place a model's name becomes a file: the names
of the shipped models (``speechmodel.presets``: ``default``, ``fast``), run
directories (their ``model.keras`` or classical ``model.skz``) and paths.
``load_keras_model`` is the one checked way to the Keras
``EmotionRecognizer`` of a file. The public entry is
``speechmodel.load_model``, a ``Recognizer`` over what ``load_model`` here
returns.

The runtime of a ``.keras`` model (``runtime``): ``"onnx"`` runs the graphs
``onnx_export`` derives from the file on ONNX Runtime
(``OnnxInferenceModel``; TensorFlow is imported only the first time, to
convert, see ``onnx_cache``), ``"keras"`` the Keras model itself, and
``"auto"`` (the default, or ``$SPEECHMODEL_RUNTIME``) ONNX for a model on
a pretrained speech front end (the shipped default) when onnxruntime is
installed and the model converts, else Keras (``ONNX_AUTO_CLASSIFIERS``).
"""

import json
import os
import re
import zipfile

from speechmodel import presets
from speechmodel.errors import Error, ParameterError
from speechmodel.inference.backends import ClassicalInferenceModel, KerasInferenceModel

# The deployable model of a run directory (train.py's), in the order looked for.
RUN_MODEL_FILES = ("model.keras", "model.skz")
MODEL_EXTENSIONS = (".keras", ".skz")
# A model's config.json is a few kB (the shipped model's: 2 kB); a larger one
# is refused before it is read, so that a crafted file cannot make the
# loader parse hundreds of MB.
MAX_CONFIG_BYTES = 16 * 2**20

RUNTIMES = ("auto", "onnx", "keras")
PRECISIONS = ("float32", "int8")
# The classifiers the ONNX path converts (a segment embedder and a sequence head).
ONNX_CLASSIFIERS = ("AudioSpeechModel", "SpeechModel")
# Those "auto" runs on ONNX: the ones whose ONNX results equal Keras' to
# 1e-4 (onnx_backend_test.py). A CNN on log-mel segments (SpeechModel, the
# shipped "fast") differs by up to 2.6e-3 in probability on RAVDESS clips
# (its converted log-mel front end), so "auto" keeps Keras for it and
# runtime "onnx" runs it on ONNX when asked.
ONNX_AUTO_CLASSIFIERS = ("AudioSpeechModel",)


def resolve_runtime(runtime=None):
    """``runtime`` as given, else ``$SPEECHMODEL_RUNTIME``, else ``"auto"``.

    Raises:
        ParameterError: not one of ``RUNTIMES``.
    """
    value = runtime if runtime is not None else (os.environ.get("SPEECHMODEL_RUNTIME") or "auto")
    if value not in RUNTIMES:
        where = "" if runtime is not None else " (from $SPEECHMODEL_RUNTIME)"
        raise ParameterError(f"`runtime` must be one of {', '.join(RUNTIMES)}{where}. Received: runtime={value!r}")
    return value


class ModelError(Error, ValueError):
    """A model file that cannot be used: names the file and the problem."""

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def _zip_names(path):
    try:
        with zipfile.ZipFile(path) as zf:
            return set(zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelError(path, f"corrupt model archive ({exc})") from None


def resolve_model(spec=None):
    """The model file a user means.

    ``None``/``""`` -> the shipped default (``speechmodel.presets.DEFAULT``);
    a shipped model's name (``default``, ``fast``; a path of that name wins)
    -> its file; a run directory -> its ``model.keras``, else its classical
    ``model.skz``; an existing file -> itself.

    Raises:
        ModelError: a directory holding no model; a name that is neither a
            file nor a shipped model (the message suggests the closest
            shipped name and lists them); a path that does not exist.
    """
    if spec is None or spec == "":
        return presets.preset_path(presets.DEFAULT)
    spec = os.fspath(spec)
    if presets.is_preset(spec) and not os.path.exists(spec):
        return presets.preset_path(spec)
    if os.path.isdir(spec):
        for name in RUN_MODEL_FILES:
            if os.path.isfile(os.path.join(spec, name)):
                return os.path.join(spec, name)
        raise ModelError(
            spec,
            f"is a directory without a model ({' or '.join(RUN_MODEL_FILES)}, what train.py writes in a "
            "run directory); pass a model file or a run directory (a SavedModel export is for "
            "TensorFlow Serving)",
        )
    if os.path.exists(spec):
        return spec
    if os.sep in spec or "/" in spec or spec.endswith(MODEL_EXTENSIONS):
        raise ModelError(spec, "model file not found")
    raise ModelError(spec, f"no such model file, and no shipped model of that name; {presets.unknown_name(spec)}")


def check_config_size(path, *, limit=MAX_CONFIG_BYTES):
    """Refuses a ``.keras`` archive whose ``config.json`` is over ``limit``
    bytes, from the archive's directory, before anything is read.

    Raises:
        ModelError: names the file and the sizes. (A file that is not a zip
            archive, or has no ``config.json``, passes: the loader reports
            it.)
    """
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("config.json")
    except (KeyError, OSError, zipfile.BadZipFile, ValueError):
        return
    size = max(info.file_size, info.compress_size)
    if size > limit:
        raise ModelError(
            path,
            f"its config.json is {size / 2**20:.0f} MB, over the {limit / 2**20:.0f} MB a model's "
            "configuration can take (a real one is a few kB); refusing to load it",
        )


def load_model(path=None, *, runtime=None, precision="float32"):
    """Loads a model for inference, executing no code from the file.

    Args:
        path: a ``.keras`` file holding an ``EmotionRecognizer`` (what
            ``train.py`` writes as ``model.keras``), a classical model
            archive (``model.skz``), a run directory holding either, the
            name of a shipped model (``speechmodel.presets``: ``"default"``,
            ``"fast"``), or None (the default); see ``resolve_model``. The
            kind is read from the content.
        runtime: for a ``.keras`` model: ``"auto"``, ``"onnx"`` or
            ``"keras"`` (see the module docstring); None:
            ``$SPEECHMODEL_RUNTIME``, else ``"auto"``.
        precision: ``"float32"``, or ``"int8"`` (ONNX only: the encoder's
            matrix multiplications with int8 weights).

    Returns:
        OnnxInferenceModel, KerasInferenceModel or ClassicalInferenceModel.

    Raises:
        ModelError: missing, empty, not a model archive (a truncated
            download, a random file), a Keras model of another kind, or a
            model that fails to load; the message says which.
    """
    runtime = resolve_runtime(runtime)
    if precision not in PRECISIONS:
        raise ParameterError(f"`precision` must be one of {', '.join(PRECISIONS)}. Received: precision={precision!r}")
    if precision != "float32" and runtime == "keras":
        raise ParameterError(
            f"precision {precision} is for the ONNX runtime. Received: precision={precision!r}, runtime='keras'"
        )
    path = resolve_model(path)
    if os.path.getsize(path) == 0:
        raise ModelError(path, "model file is empty (0 bytes)")
    if not zipfile.is_zipfile(path):
        raise ModelError(
            path,
            "not a model of this project: expected a .keras archive written "
            "by train.py (or a classical .skz model); this file is not a zip "
            "archive (a truncated download or another kind of file?)",
        )
    names = _zip_names(path)
    if {"meta.json", "model.skops"} <= names:
        return _load_classical(path)
    if "config.json" in names:
        config = _keras_config(path)
        if runtime != "keras":
            model = _load_onnx(path, config, runtime, precision)
            if model is not None:
                return model
        return _load_keras(path)
    raise ModelError(
        path,
        "not a model of this project: a zip archive without a Keras "
        f"config.json or a classical meta.json. Received entries: {sorted(names)[:6]}",
    )


def _load_classical(path):
    try:
        from speechmodel.classical import persistence
    except ImportError as exc:  # skops missing.
        raise ModelError(path, f"classical models need skops ({exc})") from None
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = persistence.load_model(path)
    except ValueError as exc:
        reason = str(exc)
        prefix = f"{path}: "
        raise ModelError(path, reason[len(prefix):] if reason.startswith(prefix) else reason) from None
    except Exception as exc:
        raise ModelError(
            path, f"cannot load the classical model ({type(exc).__name__}: {exc})"
        ) from None
    return ClassicalInferenceModel(model, path)


def foreign_object(config, where="config"):
    """Why a Keras config names something that loading could run (a
    function or class outside Keras and speechmodel's registered classes,
    or a Python lambda), or None. Said before Keras sees the file: Keras'
    own refusal in safe mode is a generic "could not be deserialized".
    Needs no Keras (the ONNX path never imports it): speechmodel's classes
    are registered as ``speechmodel>Name``, and Keras itself resolves only
    registered names when it loads the file."""
    if isinstance(config, list):
        for n, item in enumerate(config):
            found = foreign_object(item, f"{where}[{n}]")
            if found:
                return found
        return None
    if not isinstance(config, dict):
        return None
    name, module = config.get("class_name"), config.get("module")
    if isinstance(name, str):
        shown = f"{module}.{name}" if module else name
        if name == "__lambda__":
            return (f"refused: it holds a Python lambda (at {where}), code that loading would run; "
                    "save models without Lambda layers")
        registered = config.get("registered_name")
        keras_module = isinstance(module, str) and (module == "keras" or module.startswith("keras."))
        own = (isinstance(module, str) and module.startswith("speechmodel.") and isinstance(registered, str)
               and registered.startswith("speechmodel>"))
        internal = module is None and name.startswith("__") and name.endswith("__")
        if module is not None and not (keras_module or own) or module is None and not internal and registered:
            return (f"refused: it names {shown} (at {where}), which is neither a Keras class nor one of "
                    "speechmodel's registered classes; loading it could run that code")
    for key, value in config.items():
        found = foreign_object(value, f"{where}.{key}")
        if found:
            return found
    return None


def _keras_config(path):
    """The checked ``config.json`` of an ``EmotionRecognizer`` archive."""
    check_config_size(path)  # Before config.json is read.
    try:
        with zipfile.ZipFile(path) as zf:
            config = json.loads(zf.read("config.json").decode("utf-8"))
    except (zipfile.BadZipFile, OSError, KeyError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(path, f"corrupt .keras archive ({exc})") from None
    class_name = config.get("class_name") if isinstance(config, dict) else None
    if class_name != "EmotionRecognizer":
        raise ModelError(
            path,
            f"a Keras model of another kind ({class_name}), not a speechmodel "
            "EmotionRecognizer; infer.py takes the model.keras that train.py "
            "writes (it holds the audio front end and the class names)",
        )
    refused = foreign_object(config)
    if refused:
        raise ModelError(path, refused)
    return config


def _load_onnx(path, config, runtime, precision):
    """An ``OnnxInferenceModel`` of the ``.keras`` file ``path`` (converted
    once, ``onnx_cache``); None for ``runtime="auto"`` when onnxruntime is
    missing, the classifier is not one the ONNX path converts, or the
    conversion fails (said on stderr: Keras then runs it)."""
    import sys

    classifier = (config.get("config") or {}).get("classifier") or {}
    kind = classifier.get("class_name") if isinstance(classifier, dict) else None
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        if runtime == "auto":
            return None
        raise ModelError(path, f"the ONNX runtime needs onnxruntime ({exc})") from None
    if runtime == "auto" and kind not in ONNX_AUTO_CLASSIFIERS:
        return None
    if kind not in ONNX_CLASSIFIERS:
        raise ModelError(
            path,
            f"the ONNX runtime takes {' and '.join(ONNX_CLASSIFIERS)} classifiers, not {kind}; "
            "use runtime keras",
        )
    from speechmodel.inference import onnx_cache
    from speechmodel.inference.onnx_backend import OnnxInferenceModel

    try:
        directory = onnx_cache.model_directory(path, load_keras=_load_keras, precision=precision)
        return OnnxInferenceModel(directory, path, precision=precision)
    except ModelError:
        raise
    except Exception as exc:  # A converter or runtime failure.
        message = " ".join(str(exc).split())[:300]
        if runtime == "auto":
            print(
                f"speechmodel: {path}: the ONNX conversion failed ({type(exc).__name__}: "
                f"{message}); running the Keras model",
                file=sys.stderr,
            )
            return None
        raise ModelError(path, f"the ONNX conversion failed ({type(exc).__name__}: {message})") from None


def _load_keras(path):
    return KerasInferenceModel(load_keras_model(path), path)


def load_keras_model(path=None):
    """The Keras ``EmotionRecognizer`` of a model file (a name, a run
    directory or a path, as ``resolve_model``), for training and export:
    checked as ``load_model`` checks it and loaded in Keras' safe mode,
    uncompiled. Inference goes through ``load_model``.

    Raises:
        ModelError: as ``load_model``.
    """
    path = resolve_model(path)
    _keras_config(path)
    import warnings

    import keras

    from speechmodel.models import registry
    from speechmodel.models.recognizer import EmotionRecognizer

    registry.import_classes()

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file.
        message = " ".join(str(exc).split())
        # Keras wraps a layer's own refusal ("A total of 1 objects could not
        # be loaded. Example error message for object <...>: WHY List of
        # objects ..."): WHY is the reason.
        match = re.search(r"Example error message for object <[^>]*>:\s*(.*?)\s*List of objects", message)
        if match:
            message = match.group(1)
        if len(message) > 300:
            message = message[:300] + "..."
        raise ModelError(
            path, f"cannot load the model ({type(exc).__name__}: {message})"
        ) from None
    if not isinstance(model, EmotionRecognizer):
        raise ModelError(
            path,
            f"loads as {type(model).__name__}, not a speechmodel EmotionRecognizer",
        )
    return model
