"""Deployment exports of an ``EmotionRecognizer``: SavedModel and TFLite.

    python -m speechmodel.export model.keras --saved-model exported/ [--tflite model.tflite]

The SavedModel's ``serving_default`` signature takes raw waveforms at the
model's sample rate (16 kHz for the shipped model):

    waveforms  float32 (batch, samples), each row zero-padded at the end
    lengths    int32 (batch,), the valid samples of each row

and returns

    probabilities  float32 (batch, classes)
    class_names    string (classes,), the class of each probability column

The features are computed inside the graph (the same vectorised log-mel
segments as ``speechmodel.features.batch_segment_features``, so the outputs
are those of the Keras model). ``assets.extra/class_names.txt`` (one name a
line) and ``assets.extra/feature_config.json`` sit beside it for tools that
read files rather than outputs.

The TFLite file has the same signature. The BLSTM's TensorFlow tensor-list
ops have no TFLite builtin counterpart, so the converter first tries
builtins only and, if that fails, adds ``SELECT_TF_OPS`` (the returned info
and the command say which): such a model runs with the full ``tensorflow``
package's interpreter (its Flex delegate), not with the bare
``tflite-runtime``.

Loading the ``.keras`` file executes no code from it (``safe_mode=True``).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

from speechmodel import fileio
from speechmodel.errors import Error
from speechmodel.inference import KerasInferenceModel, ModelError, load_model


class ExportError(Error, ValueError):
    """An export that cannot be made; says why."""


def _recognizer(model):
    """An EmotionRecognizer from a recognizer, a loaded model or a path."""
    from speechmodel.models.recognizer import EmotionRecognizer

    if isinstance(model, EmotionRecognizer):
        return model
    if isinstance(model, KerasInferenceModel):
        return model.recognizer
    if isinstance(model, (str, os.PathLike)):
        loaded = load_model(model, runtime="keras")
        if not isinstance(loaded, KerasInferenceModel):
            raise ExportError(
                f"{os.fspath(model)}: only Keras models (model.keras) export to "
                f"SavedModel/TFLite. Received: a {loaded.kind} model"
            )
        return loaded.recognizer
    raise ExportError(
        "Expected an EmotionRecognizer or the path of a model.keras. "
        f"Received: {type(model).__name__}"
    )


def serving_function(recognizer):
    """The serving computation: ``(waveforms, lengths) -> {"probabilities",
    "class_names"}``, a ``tf.function`` with a fixed input signature."""
    import tensorflow as tf

    from speechmodel import features as F

    config = recognizer.features
    classifier = recognizer.classifier
    n_classes = int(recognizer.outputs[0].shape[-1])
    class_names = list(recognizer.class_names) or [f"class_{i}" for i in range(n_classes)]

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.float32, name="waveforms"),
            tf.TensorSpec([None], tf.int32, name="lengths"),
        ]
    )
    def serve(waveforms, lengths):
        lengths = tf.maximum(lengths, 1)
        segments, counts = F.batch_segment_features(waveforms, lengths, config=config)
        mask = tf.sequence_mask(counts, maxlen=tf.shape(segments)[1])
        probabilities = classifier({"segments": segments, "mask": mask}, training=False)
        if isinstance(probabilities, dict):
            probabilities = probabilities["probabilities"]
        return {
            "probabilities": tf.cast(probabilities, tf.float32),
            "class_names": tf.constant(class_names, tf.string),
        }

    return serve, class_names


def _replace_directory(source, target, overwrite, staging):
    """Renames the complete directory ``source`` to ``target``. An existing
    ``target`` (``overwrite``) is first renamed into ``staging`` (the
    caller removes it), so that a kill leaves the old export or the new
    one beside ``staging``, never a half-deleted one. (A directory has no
    atomic replace: ``speechmodel.fileio`` is for files.)"""
    if os.path.lexists(target):
        if not overwrite:
            raise ExportError(
                f"{target} already exists; pass overwrite=True (--overwrite) "
                "to replace it"
            )
        os.replace(target, os.path.join(staging, "previous"))
    os.replace(source, target)
    fileio.fsync_directory(os.path.dirname(target))


def export_saved_model(model, directory, *, overwrite=False):
    """Writes a TensorFlow SavedModel with a raw-waveform serving signature.

    Args:
        model: an EmotionRecognizer, or the path of a model.keras.
        directory: the SavedModel directory to create. It is written beside
            under a temporary name and renamed into place when complete.
        overwrite: replace an existing ``directory``.

    Returns:
        dict: ``path``, ``class_names``, ``sample_rate``, ``signature``.

    Raises:
        ExportError / ModelError: the model cannot be exported, or the
            directory exists and ``overwrite`` is False.
    """
    import keras

    recognizer = _recognizer(model)
    directory = os.path.abspath(os.fspath(directory))
    if os.path.lexists(directory) and not overwrite:
        raise ExportError(f"{directory} already exists; pass overwrite=True (--overwrite) to replace it")
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    serve, class_names = serving_function(recognizer)
    staging = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        target = os.path.join(staging, "saved_model")
        archive = keras.export.ExportArchive()
        archive.track(recognizer.classifier)
        archive.add_endpoint("serve", serve)
        archive.write_out(target, verbose=False)
        extra = os.path.join(target, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        with open(os.path.join(extra, "class_names.txt"), "w", encoding="utf-8") as f:
            f.write("".join(f"{c}\n" for c in class_names))
        with open(os.path.join(extra, "feature_config.json"), "w", encoding="utf-8") as f:
            json.dump(recognizer.features.to_dict(), f, indent=2)
        _replace_directory(target, directory, overwrite, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {
        "path": directory,
        "class_names": class_names,
        "sample_rate": recognizer.features.sample_rate,
        "signature": "serving_default",
    }


def export_tflite(model, path, *, saved_model_dir=None, overwrite=False):
    """Converts the serving signature to a TFLite flatbuffer.

    Args:
        model: an EmotionRecognizer, or the path of a model.keras (ignored
            when ``saved_model_dir`` is given).
        path: the ``.tflite`` file to write (atomically).
        saved_model_dir: an existing export of ``export_saved_model`` to
            convert; by default one is made in a temporary directory.
        overwrite: replace an existing file.

    Returns:
        dict: ``path``, ``bytes``, ``ops`` (``"builtins"`` or
        ``"builtins+select_tf_ops"``), ``class_names``.
    """
    import tensorflow as tf

    path = os.path.abspath(os.fspath(path))
    if os.path.lexists(path) and not overwrite:
        raise ExportError(f"{path} already exists; pass overwrite=True (--overwrite) to replace it")
    staging = None
    try:
        if saved_model_dir is None:
            staging = tempfile.mkdtemp(prefix=".export-tflite-")
            saved_model_dir = os.path.join(staging, "saved_model")
            info = export_saved_model(model, saved_model_dir)
            class_names = info["class_names"]
        else:
            class_names_file = os.path.join(saved_model_dir, "assets.extra", "class_names.txt")
            try:
                with open(class_names_file, encoding="utf-8") as f:
                    class_names = f.read().splitlines()
            except OSError:
                raise ExportError(
                    f"{saved_model_dir} is not an export of export_saved_model "
                    f"(no {class_names_file})"
                ) from None
        attempts = [
            ("builtins", [tf.lite.OpsSet.TFLITE_BUILTINS]),
            (
                "builtins+select_tf_ops",
                [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS],
            ),
        ]
        errors = []
        for ops, supported in attempts:
            converter = tf.lite.TFLiteConverter.from_saved_model(
                saved_model_dir, signature_keys=["serving_default"]
            )
            converter.target_spec.supported_ops = supported
            try:
                # The MLIR converter prints its diagnostics to the process's
                # stderr; a failed attempt is summarised below instead.
                with _captured_stderr():
                    flatbuffer = converter.convert()
                break
            except Exception as exc:  # The converter raises ConverterError and others.
                first = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
                errors.append(f"{ops}: {type(exc).__name__}: {first[:300]}")
        else:
            raise ExportError("TFLite conversion failed: " + "; ".join(errors))
        fileio.atomic_write_bytes(path, flatbuffer)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return {"path": path, "bytes": len(flatbuffer), "ops": ops, "class_names": class_names}


class _captured_stderr:
    """Sends file descriptor 2 to a temporary file for the duration."""

    def __enter__(self):
        sys.stderr.flush()
        self._saved = os.dup(2)
        self._file = tempfile.TemporaryFile()
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc_info):
        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.close()
        return False


def main(argv=None):
    """``python -m speechmodel.export``; returns the exit status (0 done,
    2 usage error or a model that cannot be exported)."""
    parser = argparse.ArgumentParser(
        prog="python -m speechmodel.export",
        description=(
            "Export a model.keras written by train.py as a TensorFlow SavedModel "
            "(serving signature: float32 16 kHz waveforms + int32 lengths -> "
            "probabilities + class_names) and optionally a TFLite file."
        ),
    )
    parser.add_argument("model", help="the model.keras to export")
    parser.add_argument("--saved-model", "--saved_model", dest="saved_model", help="SavedModel directory to write")
    parser.add_argument("--tflite", help="TFLite file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    args = parser.parse_args(argv)
    if not args.saved_model and not args.tflite:
        parser.error("give --saved-model DIR and/or --tflite FILE")
    try:
        recognizer = _recognizer(args.model)
        saved_model_dir = None
        if args.saved_model:
            info = export_saved_model(recognizer, args.saved_model, overwrite=args.overwrite)
            saved_model_dir = info["path"]
            print(
                f"SavedModel: {info['path']} (signature serving_default: waveforms "
                f"float32 [batch, samples] at {info['sample_rate']} Hz, lengths int32 "
                f"[batch] -> probabilities [batch, {len(info['class_names'])}], class_names)"
            )
        if args.tflite:
            info = export_tflite(
                recognizer, args.tflite, saved_model_dir=saved_model_dir, overwrite=args.overwrite
            )
            note = (
                " (needs the TensorFlow Flex delegate: run it with the full "
                "tensorflow package, not tflite-runtime)"
                if info["ops"] != "builtins"
                else ""
            )
            print(f"TFLite: {info['path']} ({info['bytes']} bytes, ops: {info['ops']}){note}")
    except (ExportError, ModelError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
