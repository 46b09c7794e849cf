"""``OnnxInferenceModel``: a saved model on ONNX Runtime, without TensorFlow.

It runs the graphs ``onnx_export`` derives from a ``.keras``
``EmotionRecognizer`` (found or built by ``onnx_cache``): the embedder
(waveforms -> segment embeddings, the audio front end inside), the speaker
normalisation in NumPy (``speechmodel.speaker_statistics.standardize``, as
``KerasInferenceModel.predict_embeddings``), and the head (embeddings ->
probabilities and attention weights). It offers what
``KerasInferenceModel`` offers to ``Predictor``, streams and the service
(``predict_files``, ``predict_waveforms``, ``embed_files``,
``predict_embeddings``, ``embed_waveforms``), with the same numbers (to
1e-4 in float32; ``onnx_backend_test.py``).

Files are decoded by ``speechmodel.audio.load_audio`` on a few threads
while the model runs (the same samples and failure reasons as
``speechmodel.pipeline``, one batch ahead).
"""

import concurrent.futures
import json
import os

import numpy as np

from speechmodel.config import FeatureConfig, too_short_reason
from speechmodel.inference.backends import InferenceModel
from speechmodel.inference.onnx_export import EMBEDDER, EMBEDDER_INT8, HEAD, META, STATISTICS
from speechmodel.speaker_statistics import SpeakerStatistics, standardize

PRECISIONS = ("float32", "int8")
# Threads decoding audio while the model runs.
DECODE_THREADS = 2


def optimized_path(path):
    """Where ONNX Runtime's optimised copy of ``path`` is kept."""
    root, ext = os.path.splitext(path)
    return f"{root}.optimized{ext}"


def make_session(path):
    """An ``onnxruntime.InferenceSession`` on the CPU, from the optimised
    copy of ``path`` when there is one (written once, see
    ``save_optimized``), so that nothing is optimised again at start."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.inter_op_num_threads = 1
    optimized = optimized_path(path)
    if os.path.exists(optimized):
        path = optimized
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def save_optimized(path):
    """Writes ONNX Runtime's optimised graph of ``path`` beside it
    (``optimized_path``): the optimisations that do not depend on the CPU
    (``ORT_ENABLE_EXTENDED``); the CPU-specific layouts are made when a
    session opens it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    target = optimized_path(path)
    partial = target + ".partial"
    options.optimized_model_filepath = partial
    ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    os.replace(partial, target)
    return target


def _decode(path, sample_rate, min_samples, config):
    """(waveform, None) or (None, reason), never raises (as the pipeline's
    decoding: the file is named by the caller)."""
    from speechmodel.audio import AudioError, load_audio

    try:
        waveform = load_audio(path, sample_rate=sample_rate)
    except AudioError as exc:
        return None, exc.reason
    except Exception as exc:  # Unexpected: still named, never fatal.
        return None, f"unexpected error {type(exc).__name__}: {exc}"
    if len(waveform) < min_samples:
        return None, too_short_reason(len(waveform), config)
    return waveform, None


def pad(waveforms):
    """A list of 1-D arrays -> zero-padded (B, S) float32 and int32 lengths."""
    lengths = np.array([len(w) for w in waveforms], np.int32)
    batch = np.zeros((len(waveforms), max(1, int(lengths.max()))), np.float32)
    for b, w in enumerate(waveforms):
        batch[b, : len(w)] = w
    return batch, lengths


class OnnxInferenceModel(InferenceModel):
    """A model converted by ``onnx_export``, run by ONNX Runtime.

    Args:
        directory: the model's folder in the cache (``onnx_cache``: its
            head and ``model.json``; the embedder's folder is beside).
        path: the ``.keras`` file it was derived from (reported).
        precision: ``"float32"`` or ``"int8"`` (the encoder's matrix
            multiplications with int8 weights: ``embedder.int8.onnx``).
    """

    kind = "onnx"

    def __init__(self, directory, path=None, *, precision="float32"):
        if precision not in PRECISIONS:
            raise ValueError(f"`precision` must be one of {PRECISIONS}. Received: precision={precision!r}")
        with open(os.path.join(directory, META), encoding="utf-8") as f:
            meta = json.load(f)
        self.directory = os.fspath(directory)
        self.path = None if path is None else str(path)
        self.precision = precision
        self.meta = meta
        self.config = FeatureConfig.from_dict(meta["feature_config"])
        self.sample_rate = self.config.sample_rate
        self.class_names = list(meta["class_names"])
        self.takes_waveforms = bool(meta["takes_waveforms"])
        self._has_attention = bool(meta["has_attention"])
        self._speaker = None
        if meta.get("speaker_normalization"):
            with np.load(os.path.join(directory, STATISTICS), allow_pickle=False) as stored:
                self._speaker = SpeakerStatistics(
                    stored["mean"], stored["variance"],
                    epsilon=meta["speaker_normalization"]["epsilon"],
                )
        from speechmodel.inference.onnx_cache import embedder_directory

        embedder = EMBEDDER_INT8 if precision == "int8" else EMBEDDER
        self._embedder = make_session(os.path.join(embedder_directory(directory, meta), embedder))
        self._head = make_session(os.path.join(directory, HEAD))

    @property
    def has_attention(self):
        return self._has_attention

    @property
    def speaker_normalization(self):
        """The average speaker a speaker-normalised model standardises a
        clip with (``SpeakerStatistics``: ``statistics()``, ``epsilon``),
        or None."""
        return self._speaker

    def describe(self):
        out = super().describe()
        out["runtime"] = f"onnxruntime {self._runtime_version()}, {self.precision}"
        return out

    @staticmethod
    def _runtime_version():
        import onnxruntime

        return onnxruntime.__version__

    # --- The graphs ----------------------------------------------------

    def embed_waveforms(self, waveforms, lengths):
        """(B, S) zero-padded float32 waveforms and (B,) lengths ->
        ``(embeddings (B, N, ...), counts (B,))`` before any speaker
        normalisation: each row's valid segments are
        ``embeddings[b, :counts[b]]``."""
        embeddings, counts = self._embedder.run(
            ["embeddings", "counts"],
            {
                "waveforms": np.ascontiguousarray(waveforms, np.float32),
                "lengths": np.asarray(lengths, np.int32),
            },
        )
        return embeddings, counts

    def _normalized(self, embeddings, statistics):
        if self._speaker is None:
            if statistics is not None:
                raise ValueError(
                    "speaker statistics need a model trained with speaker normalisation. "
                    f"Received: statistics for {self.path or 'a model without it'}"
                )
            return embeddings
        mean, variance = self._speaker.statistics() if statistics is None else statistics
        return standardize(embeddings, mean, variance, epsilon=self._speaker.epsilon)

    def _classify(self, embeddings, counts, statistics=None):
        """Padded (B, N, ...) embeddings -> (probabilities, attention)."""
        mask = np.arange(embeddings.shape[1])[np.newaxis, :] < np.asarray(counts)[:, np.newaxis]
        probs, weights = self._head.run(
            ["probabilities", "attention"],
            {"embeddings": self._normalized(embeddings, statistics), "mask": mask},
        )
        return probs, weights

    # --- What Predictor calls --------------------------------------------

    def _batches(self, paths, batch_size, on_failure):
        """Yields ``(indices, waveforms)`` of the files that load, in order,
        ``batch_size`` at a time; the next batch decodes meanwhile."""
        rate, config = self.sample_rate, self.config
        with concurrent.futures.ThreadPoolExecutor(DECODE_THREADS) as pool:

            def submit(start):
                return [
                    pool.submit(_decode, p, rate, config.win_length, config)
                    for p in paths[start : start + batch_size]
                ]

            pending = submit(0)
            for start in range(0, len(paths), batch_size):
                futures = pending
                pending = submit(start + batch_size)
                indices, waveforms = [], []
                for offset, future in enumerate(futures):
                    waveform, reason = future.result()
                    if waveform is None:
                        on_failure(start + offset, reason)
                    else:
                        indices.append(start + offset)
                        waveforms.append(waveform)
                if indices:
                    yield indices, waveforms

    def predict_files(self, paths, *, batch_size, attention, on_failure):
        """Yields ``(index, probabilities, attention or None, n_segments)``
        for each file of ``paths`` that loads; ``on_failure(index,
        reason)`` for the others."""
        for indices, waveforms in self._batches(list(paths), batch_size, on_failure):
            probs, weights, counts = self._predict(*pad(waveforms))
            for row, i in enumerate(indices):
                n = int(counts[row])
                yield i, probs[row], (weights[row, :n] if attention else None), n

    def _predict(self, waveforms, lengths, statistics=None):
        embeddings, counts = self.embed_waveforms(waveforms, lengths)
        probs, weights = self._classify(embeddings, counts, statistics)
        return probs, weights, counts

    def predict_waveforms(self, waveforms, lengths, *, attention, statistics=None):
        """(B, S) zero-padded waveforms -> (probabilities (B, C), attention
        list of (n_b,) arrays or None). ``statistics``: one speaker's, for
        a speaker-normalised model."""
        probs, weights, counts = self._predict(waveforms, lengths, statistics)
        if not attention:
            return probs, None
        return probs, [weights[b, : counts[b]] for b in range(len(probs))]

    def embed_files(self, paths, *, batch_size, on_failure):
        """Yields ``(index, embeddings)``: the ``(N, ...)`` segment
        embeddings of each file of ``paths`` that loads, before any speaker
        normalisation; ``on_failure(index, reason)`` for the others."""
        for indices, waveforms in self._batches(list(paths), batch_size, on_failure):
            embeddings, counts = self.embed_waveforms(*pad(waveforms))
            for row, i in enumerate(indices):
                yield i, embeddings[row, : int(counts[row])]

    def predict_embeddings(self, sequences, *, batch_size, attention, statistics=None):
        """Yields ``(index, probabilities, attention or None, n_segments)``
        for each ``(N, ...)`` array of ``sequences`` (``embed_files``'s),
        standardised with ``statistics`` (one speaker's) or the model's
        average speaker, through the head."""
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            counts = np.array([len(sequences[i]) for i in rows], np.int32)
            batch = np.zeros((len(rows), int(counts.max()), *sequences[rows[0]].shape[1:]), np.float32)
            for b, i in enumerate(rows):
                batch[b, : counts[b]] = sequences[i]
            probs, weights = self._classify(batch, counts, statistics)
            for b, i in enumerate(rows):
                yield i, probs[b], (weights[b, : counts[b]] if attention else None), int(counts[b])

    def segment_times(self, n_segments, duration):
        """(start, end) seconds of the ``n_segments`` segments of an
        utterance of ``duration`` seconds."""
        from speechmodel.inference.backends import segment_times

        return segment_times(self.config, n_segments, duration)
