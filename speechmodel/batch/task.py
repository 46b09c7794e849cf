"""What every worker of a batch run does to its files: ``BatchWorker``.

The engines (``speechmodel.batch.engines``) hand a worker batches of files
(``{"path", "size", "mtime_ns"}`` columns) and get back one JSON line per
file (``line``): the result of ``infer.py --format json`` for that file
(``speechmodel.inference.result_dict``: ``file``, ``label``,
``confidence``, ``probabilities``, ``duration``, ... or ``error``), plus
the file's identity (``file_size``, ``file_mtime_ns``). With ``embed``,
the line says where the file's segment embeddings are (``embedding``, a
path inside the output folder, and ``segments``), and ``npy`` holds them
as the bytes of a ``.npy`` file, which the driver writes there: the
entries of the training embedding cache
(``speechmodel.training.embeddings.EmbeddingCache``), same keys, same
values.

The worker is the same in one process (``--engine local``) and in Ray's
worker processes; it loads the model once (``open_model``).
"""

import dataclasses
import io
import json
import os

import numpy as np

from speechmodel.inference.loading import RUNTIMES  # noqa: E402 (infer.py's choices)


@dataclasses.dataclass(frozen=True)
class BatchTask:
    """Everything a worker needs, small enough to send to each (no model).

    Attributes:
        model: a shipped model's name, a ``model.keras`` / ``.skz`` file or
            a run directory, as ``infer.py --model`` takes (resolved to the
            file by the driver, so every worker opens the same one).
        runtime: as ``infer.py --runtime`` (``speechmodel.inference.
            load_model``): ``"auto"``, ``"onnx"`` or ``"keras"``.
        embed: write segment embeddings instead of emotions.
        top_k, window, hop, max_utterance, batch_size: as ``infer.py``'s
            flags.
        threads: CPU threads of a worker process (TensorFlow's intra- and
            inter-op pools, OpenMP); None leaves TensorFlow's default (all
            cores).
        embedding_key: with ``embed``, the cache's model key (the driver's:
            ``EmbeddingCache.model_key`` of the model's encoder).
    """

    model: str
    runtime: str = None
    embed: bool = False
    top_k: int = 1
    window: float = 4.0
    hop: float = 2.0
    max_utterance: float = 20.0
    batch_size: int = 32
    threads: int = None
    embedding_key: str = None


def open_model(model, runtime=None):
    """How every worker loads the model: ``speechmodel.inference.load_model``
    on the ``runtime`` (the driver chooses it as ``infer.py`` does,
    ``choose_model``, with the same runtime).

    Raises:
        speechmodel.inference.ModelError: the model cannot be used.
        ValueError: an unknown runtime.
    """
    from speechmodel import inference

    if runtime is not None and runtime not in RUNTIMES:
        raise ValueError(f"`runtime` must be one of {', '.join(RUNTIMES)}. Received: runtime={runtime!r}")
    return inference.load_model(model, runtime=runtime)


def limit_threads(threads):
    """Limits this process to ``threads`` CPU threads: OpenMP's and
    TensorFlow's intra- and inter-op pools. Call before TensorFlow runs
    anything (a new worker process)."""
    if threads is None:
        return
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already initialised here: keep its pools.
        pass


def embedding_entry(key, identity):
    """Where a file's embeddings go in the output folder: the entry of
    ``EmbeddingCache(DIR)`` for the file's identity ``(absolute path,
    size, mtime_ns)``, relative to DIR."""
    from speechmodel.training.embeddings import EmbeddingCache

    return EmbeddingCache.entry(key, EmbeddingCache.identity_key(*identity))


class BatchWorker:
    """Analyses batches of files (see the module docstring).

    Args:
        task: the BatchTask.
        model: an already loaded model (the local engine's); default: the
            worker opens ``task.model`` itself.
    """

    def __init__(self, task, model=None):
        from speechmodel import inference

        self.task = task
        if model is None:
            limit_threads(task.threads)
            model = open_model(task.model, task.runtime)
        self.model = model
        self.predictor = inference.Predictor(
            model, batch_size=task.batch_size, window=task.window, hop=task.hop,
            max_utterance=task.max_utterance,
        )

    def __call__(self, batch):
        """``{"path", "size", "mtime_ns"}`` columns -> ``{"line"}`` (and
        ``"npy"`` with ``embed``), one row per file, in the same order."""
        paths = [str(p) for p in batch["path"]]
        identities = [
            (p, int(s), int(m)) if int(s) >= 0 else None
            for p, s, m in zip(paths, batch["size"], batch["mtime_ns"])
        ]
        if self.task.embed:
            return self._embed(paths, identities)
        from speechmodel.inference import result_dict

        report = self.predictor.predict(paths)
        lines = [
            _line(result_dict(r, top_k=self.task.top_k), ident)
            for r, ident in zip(report.results, identities)
        ]
        return {"line": np.array(lines, dtype=object)}

    def _embed(self, paths, identities):
        from speechmodel.audio import AudioError, read_info

        records, arrays = {}, {}
        readable = []
        for i, path in enumerate(paths):
            try:
                duration = read_info(path).duration
            except AudioError as exc:
                records[i] = {"file": path, "error": exc.reason}
                continue
            except Exception as exc:  # Named with the file; the others go on.
                records[i] = {"file": path, "error": f"cannot read the file ({type(exc).__name__}: {exc})"}
                continue
            readable.append((i, duration))

        def failed(j, reason):
            records[readable[j][0]] = {"file": paths[readable[j][0]], "error": reason}

        for j, array in self.model.embed_files(
            [paths[i] for i, _ in readable], batch_size=self.task.batch_size, on_failure=failed
        ):
            i, duration = readable[j]
            if identities[i] is None:
                records[i] = {"file": paths[i], "error": "the file changed or vanished while it was analysed"}
                continue
            buffer = io.BytesIO()
            np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
            arrays[i] = buffer.getvalue()
            records[i] = {
                "file": paths[i],
                "embedding": embedding_entry(self.task.embedding_key, identities[i]),
                "segments": int(array.shape[0]),
                "duration": round(duration, 3),
            }
        for i, path in enumerate(paths):
            records.setdefault(i, {"file": path, "error": "no result was produced for this file (internal error)"})
        return {
            "line": np.array([_line(records[i], identities[i]) for i in range(len(paths))], dtype=object),
            "npy": np.array([arrays.get(i, b"") for i in range(len(paths))], dtype=object),
        }


def _line(record, identity):
    record = dict(record)
    if identity is not None:
        record["file_size"], record["file_mtime_ns"] = identity[1], identity[2]
    return json.dumps(record, ensure_ascii=False)
