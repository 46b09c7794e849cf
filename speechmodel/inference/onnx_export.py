"""A saved ``EmotionRecognizer`` as ONNX graphs, for ``onnx_backend``.

A loaded ``KerasInferenceModel`` is converted (tf2onnx, from the same
TensorFlow functions the Keras path runs) in two parts:

* ``export_embedder``: ``embedder.onnx``, ``{"waveforms": float32 (B, S),
  "lengths": int32 (B,)}`` -> ``{"embeddings": (B, N, ...), "counts":
  int32 (B,)}``: the audio front end (Whisper's log-mel, or the log-mel
  segments of ``speechmodel.features``) and the segment embedder, before
  any speaker normalisation. Models on the same frozen encoder (the shipped
  default and every model trained on frozen Whisper-base) share it:
  ``embedder_key`` names it by the embedder's config and weights.
* ``export_head``: ``head.onnx``, ``{"embeddings", "mask": bool (B, N)}``
  -> ``{"probabilities": (B, C), "attention": (B, N)}``, the sequence
  head; ``model.json`` (the class names, the feature config, the sizes,
  the embedder's key) and, for a speaker-normalised model,
  ``statistics.npz`` (the average speaker's ``mean`` and ``variance``).

``quantize_embedder(directory)`` adds ``embedder.int8.onnx``: the encoder's
matrix multiplications with int8 weights (ONNX Runtime's dynamic
quantisation; the front end stays float32).

The ``.keras`` file stays the one source of truth: these files are derived
from it (``onnx_cache`` keys them by its checksum) and never trained.
Converting imports TensorFlow; quantising does not.
"""

import json
import os

import numpy as np

from speechmodel.errors import Error

FORMAT_VERSION = 1
OPSET = 17
EMBEDDER = "embedder.onnx"
EMBEDDER_INT8 = "embedder.int8.onnx"
HEAD = "head.onnx"
META = "model.json"
STATISTICS = "statistics.npz"


class ExportError(Error, RuntimeError):
    """A model this exporter cannot convert (names the reason)."""


def exportable(classifier):
    """Whether ``classifier`` has the two parts the ONNX path runs: a
    segment embedder (``segment_encoder``) and a ``sequence_head``
    (``SpeechModel``, ``AudioSpeechModel``)."""
    return hasattr(classifier, "segment_encoder") and hasattr(classifier, "sequence_head")


def _complex_abs(ctx, node, name, args):
    """tf2onnx's ComplexAbs, for an input whose leading (real, imaginary)
    axis it has not inferred: the RFFT it converts returns it first."""
    from tf2onnx.onnx_opset.signal import ComplexAbsOp

    shape = ctx.get_shape(node.input[0])
    if shape is not None and len(shape) and shape[0] == -1:
        ctx.set_shape(node.input[0], [2, *shape[1:]])
    ComplexAbsOp.any_version(OPSET, ctx, node)


def _convert(function, path):
    import logging

    import tf2onnx

    # tf2onnx logs the optimisations it skips (its einsum rewriter does not
    # take Keras' "..." equations) as tracebacks; a failed conversion still
    # raises.
    logger = logging.getLogger("tf2onnx")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        tf2onnx.convert.from_function(
            function,
            input_signature=function.input_signature,
            opset=OPSET,
            output_path=path,
            custom_op_handlers={"ComplexAbs": (_complex_abs, [])},
        )
    finally:
        logger.setLevel(level)


def _embedder_function(model):
    import tensorflow as tf

    from speechmodel import features as F
    from speechmodel.embedding import takes_waveforms

    encoder = model.classifier.segment_encoder
    config = model.config
    signature = [
        tf.TensorSpec([None, None], tf.float32, name="waveforms"),
        tf.TensorSpec([None], tf.int32, name="lengths"),
    ]
    if takes_waveforms(encoder):

        @tf.function(input_signature=signature)
        def embed(waveforms, lengths):
            embeddings, mask = encoder(waveforms, lengths, training=False)
            counts = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
            return {"embeddings": tf.identity(embeddings), "counts": counts}

        return embed

    @tf.function(input_signature=signature)
    def embed_segments(waveforms, lengths):
        segments, counts = F.batch_segment_features(waveforms, lengths, config=config)
        mask = tf.sequence_mask(counts, maxlen=tf.shape(segments)[1])
        embeddings = encoder({"segments": segments, "mask": mask}, training=False)
        return {"embeddings": tf.identity(embeddings), "counts": tf.cast(counts, tf.int32)}

    return embed_segments


def _head_function(model):
    import tensorflow as tf

    head = model.classifier.sequence_head.with_attention()
    shape = [None, None, *head.input["embeddings"].shape[2:]]

    @tf.function(
        input_signature=[
            tf.TensorSpec(shape, tf.float32, name="embeddings"),
            tf.TensorSpec([None, None], tf.bool, name="mask"),
        ]
    )
    def run(embeddings, mask):
        out = head({"embeddings": embeddings, "mask": mask}, training=False)
        return {"probabilities": out["probabilities"], "attention": out["attention"]}

    return run, [int(d) for d in shape[2:]]


def embedder_key(model):
    """A name for ``model``'s embedder: the sha256 of its config, the
    feature config and its weights (two models with the same key convert to
    the same ``embedder.onnx``)."""
    import hashlib

    import keras

    encoder = model.classifier.segment_encoder
    digest = hashlib.sha256()
    config = keras.saving.serialize_keras_object(encoder)
    config = {k: v for k, v in config.items() if k not in ("name", "build_config")}
    digest.update(json.dumps(config, sort_keys=True, default=str).encode("utf-8"))
    digest.update(model.config.to_json().encode("utf-8"))
    for i, weight in enumerate(encoder.weights):
        value = np.ascontiguousarray(np.asarray(weight.numpy()))
        digest.update(f"{i}:{value.dtype}:{value.shape}".encode("utf-8"))
        digest.update(value.tobytes())
    return digest.hexdigest()


def _check(model):
    if not exportable(model.classifier):
        raise ExportError(
            f"a {type(model.classifier).__name__} classifier has no segment embedder and "
            "sequence head; the ONNX runtime takes SpeechModel and AudioSpeechModel"
        )


def export_embedder(model, directory):
    """Writes ``embedder.onnx`` of ``model`` (a ``KerasInferenceModel``
    whose classifier is ``exportable``) into ``directory``."""
    _check(model)
    os.makedirs(directory, exist_ok=True)
    _convert(_embedder_function(model), os.path.join(directory, EMBEDDER))
    return directory


def export_head(model, directory, *, embedder, source_sha256=None):
    """Writes ``head.onnx``, ``model.json`` and (speaker-normalised models)
    ``statistics.npz`` of ``model`` into ``directory``.

    Args:
        model: a ``KerasInferenceModel`` whose classifier is
            ``exportable``.
        directory: where to write (created).
        embedder: the name of the folder of its ``embedder.onnx``
            (``onnx_cache`` keeps them side by side), recorded.
        source_sha256: the ``.keras`` file's checksum, recorded.

    Raises:
        ExportError: the classifier has no segment embedder and sequence
            head (a baseline CNN classifier).
    """
    import onnxruntime
    import tf2onnx

    _check(model)
    os.makedirs(directory, exist_ok=True)
    head, embedding_shape = _head_function(model)
    _convert(head, os.path.join(directory, HEAD))
    layer = model.speaker_normalization
    if layer is not None:
        mean, variance = layer.statistics()
        np.savez(
            os.path.join(directory, STATISTICS),
            mean=np.asarray(mean, np.float32),
            variance=np.asarray(variance, np.float32),
        )
    meta = {
        "format_version": FORMAT_VERSION,
        "source_sha256": source_sha256,
        "embedder": embedder,
        "class_names": list(model.class_names),
        "feature_config": model.config.to_dict(),
        "takes_waveforms": bool(model.takes_waveforms),
        "has_attention": bool(model.has_attention),
        "embedding_shape": embedding_shape,
        "speaker_normalization": None if layer is None else {"epsilon": float(layer.epsilon)},
        "classifier": type(model.classifier).__name__,
        "converter": f"tf2onnx {tf2onnx.__version__}, opset {OPSET}",
        "onnxruntime": onnxruntime.__version__,
    }
    with open(os.path.join(directory, META), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
    return directory


def _encoder_matmuls(path):
    """The MatMul nodes of the segment embedder's encoder (not the audio
    front end's DFT and filterbank products)."""
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    return [
        node.name
        for node in graph.node
        if node.op_type == "MatMul" and "encoder" in node.name and "converter" not in node.name
    ]


def quantize_embedder(directory):
    """Writes ``embedder.int8.onnx`` beside ``embedder.onnx``: the encoder's
    MatMul weights as int8 (per output channel, 7 bits of range),
    activations quantised per batch at run time
    (``onnxruntime.quantization.quantize_dynamic``). Returns its path."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = os.path.join(directory, EMBEDDER)
    target = os.path.join(directory, EMBEDDER_INT8)
    nodes = _encoder_matmuls(source)
    if not nodes:
        raise ExportError(f"{source}: no encoder matrix multiplication to quantise")
    quantize_dynamic(
        source,
        target,
        op_types_to_quantize=["MatMul"],
        nodes_to_quantize=nodes,
        per_channel=True,
        # 7-bit weights: AVX2's u8 x s8 products (no VNNI) saturate with 8.
        reduce_range=True,
        weight_type=QuantType.QInt8,
    )
    return target
