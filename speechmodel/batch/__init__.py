"""Batch inference and embedding extraction over many files, resumable,
in one process or on Ray: ``python -m speechmodel.batch INPUT... --output
DIR`` (``speechmodel-batch``), or ``run_batch`` from Python.

* ``task``: ``BatchWorker``, what a worker does to a batch of files (the
  result of ``infer.py --format json`` per file, or its segment
  embeddings), and ``open_model``, the one place the model is loaded.
* ``engines``: ``run_local`` (this process) and ``run_ray`` (Ray Data over
  worker processes, local or a cluster's; a dead worker is restarted and
  its batch retried).
* ``output``: the output folder: JSON Lines shards written atomically,
  ``manifest.json``, the files already done (by path, size and
  modification time).
* ``runner``: ``run_batch``, the run from inputs to shards, with progress
  and a ``BatchSummary``.

See docs/batch.md.
"""

from speechmodel.batch.output import OutputDir, OutputError
from speechmodel.batch.runner import ENGINES, BatchSummary, EngineError, collect_files, run_batch
from speechmodel.batch.task import RUNTIMES, BatchTask, BatchWorker, open_model

__all__ = [
    "ENGINES",
    "RUNTIMES",
    "BatchSummary",
    "BatchTask",
    "BatchWorker",
    "EngineError",
    "OutputDir",
    "OutputError",
    "collect_files",
    "open_model",
    "run_batch",
]
