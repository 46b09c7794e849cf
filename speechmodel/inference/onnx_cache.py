"""Where the ONNX graphs of a ``.keras`` model are kept, built once.

``model_directory(path)`` gives the folder of ``onnx_export``'s files for
the ``.keras`` file ``path``: ``<cache>/onnx/<sha256 of the file>-v<format>
-ort<onnxruntime version>/``, under ``$SPEECHMODEL_CACHE`` (else
``~/.cache/speechmodel``). A file met for the first time is converted
there (this imports TensorFlow; one line on stderr says so and how long it
took), and ONNX Runtime's optimised graphs are saved beside, so that a
later start optimises nothing. A changed ``.keras`` file has another
checksum, so a stale conversion is never used.

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


def directory_for(sha256, *, root=None):
    """The folder of the conversion of a file of checksum ``sha256``."""
    return os.path.join(
        root or cache_root(),
        f"{sha256}-v{onnx_export.FORMAT_VERSION}-ort{_runtime_version()}",
    )


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


def _build(path, directory, sha256, load_keras):
    """Converts ``path`` into ``directory`` (through a temporary folder)."""
    start = time.perf_counter()
    parent = os.path.dirname(directory)
    work = tempfile.mkdtemp(prefix=".build-", dir=parent)
    try:
        model = load_keras(path)
        onnx_export.export_onnx(model, work, source_sha256=sha256)
        from speechmodel.inference.onnx_backend import save_optimized

        for name in (onnx_export.EMBEDDER, onnx_export.HEAD):
            save_optimized(os.path.join(work, name))
        os.replace(work, directory)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    _say(
        f"converted {path} to ONNX Runtime once, in {time.perf_counter() - start:.1f} s "
        f"(cached in {directory})"
    )


def _quantize(directory):
    start = time.perf_counter()
    target = os.path.join(directory, onnx_export.EMBEDDER_INT8)
    work = tempfile.mkdtemp(prefix=".int8-", dir=directory)
    try:
        shutil.copy(os.path.join(directory, onnx_export.EMBEDDER), work)
        built = onnx_export.quantize_embedder(work)
        from speechmodel.inference.onnx_backend import optimized_path, save_optimized

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
    meta = os.path.join(directory, onnx_export.META)
    int8 = os.path.join(directory, onnx_export.EMBEDDER_INT8)
    if os.path.exists(meta) and (precision != "int8" or os.path.exists(int8)):
        return directory
    with _Lock(directory + ".lock"):
        if not os.path.exists(meta):
            _build(path, directory, sha256, load_keras)
        if precision == "int8" and not os.path.exists(int8):
            _quantize(directory)
    return directory
