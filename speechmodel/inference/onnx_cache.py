"""Where the ONNX graphs of a ``.keras`` model are kept, built once.

``model_directory(path)`` gives the folder of ``onnx_export``'s files for
the ``.keras`` file ``path``: ``<cache>/onnx/models/<sha256 of the
file>-v<format>-ort<onnxruntime version>/`` (the head, ``model.json``),
under ``$SPEECHMODEL_CACHE`` (else ``~/.cache/speechmodel``); its embedder
is in ``<cache>/onnx/embedders/<onnx_export.embedder_key>-v<format>-ort
<version>/``, shared by the models on the same frozen encoder (and so
converted once for all of them). A file met for the first time is
converted (this imports TensorFlow; one line on stderr says so and how
long it took), and ONNX Runtime's optimised graphs are saved beside, so
that a later start optimises nothing. A changed ``.keras`` file has
another checksum, so a stale conversion is never used.

The checksum of a file is computed once: it is remembered under the
file's absolute path, size and modification time (``checksums/``), so an
unchanged file is not read again at each start. Two processes building the
same model wait for each other (a lock file); a build is written to a
temporary folder and renamed into place, so a killed build leaves nothing
half-made.
"""

import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time

from speechmodel.inference import onnx_export

_CHUNK = 1 << 20


def cache_root():
    """``$SPEECHMODEL_CACHE/onnx`` (else ``~/.cache/speechmodel/onnx``)."""
    root = os.environ.get("SPEECHMODEL_CACHE") or os.path.join("~", ".cache", "speechmodel")
    return os.path.abspath(os.path.join(os.path.expanduser(root), "onnx"))


def file_sha256(path, *, root=None):
    """The sha256 of the file ``path``, read once per (path, size, mtime):
    the result is remembered in ``<root>/checksums``."""
    root = root or cache_root()
    path = os.path.abspath(os.fspath(path))
    st = os.stat(path)
    stamp = {"path": path, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    name = hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    record = os.path.join(root, "checksums", name + ".json")
    try:
        with open(record, encoding="utf-8") as f:
            known = json.load(f)
        if {k: known.get(k) for k in stamp} == stamp and isinstance(known.get("sha256"), str):
            return known["sha256"]
    except (OSError, ValueError, AttributeError):
        pass
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    stamp["sha256"] = digest.hexdigest()
    try:
        os.makedirs(os.path.dirname(record), exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=os.path.dirname(record), suffix=".partial")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(stamp, f)
        os.replace(partial, record)
    except OSError:  # A read-only cache: the checksum stands, recomputed next time.
        pass
    return stamp["sha256"]


def _runtime_version():
    import onnxruntime

    return onnxruntime.__version__


def _suffix():
    return f"-v{onnx_export.FORMAT_VERSION}-ort{_runtime_version()}"


def directory_for(sha256, *, root=None):
    """The folder of the conversion of a ``.keras`` file of checksum
    ``sha256``."""
    return os.path.join(root or cache_root(), "models", sha256 + _suffix())


def embedder_directory(directory, meta):
    """The embedder folder of the model folder ``directory`` (whose
    ``model.json`` is ``meta``)."""
    models = os.path.dirname(os.path.abspath(directory))
    return os.path.join(os.path.dirname(models), "embedders", meta["embedder"])


def _say(message):
    print(f"speechmodel: {message}", file=sys.stderr, flush=True)


class _Lock:
    def __init__(self, path):
        self.path = path

    def __enter__(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._file = open(self.path, "a")
        fcntl.flock(self._file, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc_info):
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
        return False


def _replace_folder(work, target):
    """Renames the finished folder ``work`` to ``target`` (one already
    there, from another process, is kept)."""
    try:
        os.replace(work, target)
    except OSError:
        if not os.path.isdir(target):
            raise
        shutil.rmtree(work, ignore_errors=True)


def _build(path, directory, sha256, load_keras):
    """Converts ``path``: its head into ``directory`` and, unless another
    model already made it, its embedder (each through a temporary folder)."""
    from speechmodel.inference.onnx_backend import save_optimized

    start = time.perf_counter()
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    model = load_keras(path)
    if not onnx_export.exportable(model.classifier):
        raise onnx_export.ExportError(
            f"a {type(model.classifier).__name__} classifier has no segment embedder and "
            "sequence head; the ONNX runtime takes SpeechModel and AudioSpeechModel"
        )
    name = onnx_export.embedder_key(model) + _suffix()
    embedders = os.path.join(os.path.dirname(parent), "embedders")
    target = os.path.join(embedders, name)
    with _Lock(target + ".lock"):
        if not os.path.exists(os.path.join(target, onnx_export.EMBEDDER)):
            os.makedirs(embedders, exist_ok=True)
            work = tempfile.mkdtemp(prefix=".build-", dir=embedders)
            try:
                onnx_export.export_embedder(model, work)
                save_optimized(os.path.join(work, onnx_export.EMBEDDER))
                _replace_folder(work, target)
            except BaseException:
                shutil.rmtree(work, ignore_errors=True)
                raise
    work = tempfile.mkdtemp(prefix=".build-", dir=parent)
    try:
        onnx_export.export_head(model, work, embedder=name, source_sha256=sha256)
        save_optimized(os.path.join(work, onnx_export.HEAD))
        _replace_folder(work, directory)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    _say(
        f"converted {path} to ONNX Runtime once, in {time.perf_counter() - start:.1f} s "
        f"(cached in {directory})"
    )


def _quantize(directory):
    """Adds the int8 embedder to the embedder folder ``directory``."""
    from speechmodel.inference.onnx_backend import optimized_path, save_optimized

    start = time.perf_counter()
    target = os.path.join(directory, onnx_export.EMBEDDER_INT8)
    work = tempfile.mkdtemp(prefix=".int8-", dir=directory)
    try:
        shutil.copy(os.path.join(directory, onnx_export.EMBEDDER), work)
        built = onnx_export.quantize_embedder(work)
        save_optimized(built)
        os.replace(optimized_path(built), optimized_path(target))
        os.replace(built, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _say(f"quantised the encoder to int8 once, in {time.perf_counter() - start:.1f} s ({target})")


def model_directory(path, *, load_keras, precision="float32", root=None):
    """The folder of ``onnx_export``'s files for the ``.keras`` file
    ``path``, converted first if needed (and, for ``precision="int8"``,
    quantised).

    Args:
        path: a ``.keras`` ``EmotionRecognizer``.
        load_keras: ``path -> KerasInferenceModel``, called only to convert.
        precision: ``"float32"`` or ``"int8"``.
        root: the cache folder (``cache_root()``).
    """
    root = root or cache_root()
    sha256 = file_sha256(path, root=root)
    directory = directory_for(sha256, root=root)
    meta_path = os.path.join(directory, onnx_export.META)
    if not os.path.exists(meta_path):
        with _Lock(directory + ".lock"):
            if not os.path.exists(meta_path):
                _build(path, directory, sha256, load_keras)
    if precision == "int8":
        with open(meta_path, encoding="utf-8") as f:
            embedders = embedder_directory(directory, json.load(f))
        if not os.path.exists(os.path.join(embedders, onnx_export.EMBEDDER_INT8)):
            with _Lock(embedders + ".lock"):
                if not os.path.exists(os.path.join(embedders, onnx_export.EMBEDDER_INT8)):
                    _quantize(embedders)
    return directory
