"""A batch run from start to end: ``run_batch``.

1. The inputs (files, folders, glob patterns, list files: ``speechmodel.
   inference.collect_inputs``; CSV manifests: ``datasets.load_csv``) become
   the files to analyse, each with its identity (absolute path, size,
   modification time). Inputs that give no file are reported (``say``) and
   counted, never analysed.
2. The output folder (``speechmodel.batch.output``) is checked, locked
   against a second run, and read: files whose line matches their identity
   are skipped; lines of files that changed are dropped.
3. The model is opened once here (``choose_model``, as ``infer.py``: checked before any work;
   its SHA-256, classes and, with ``embed``, the cache key are taken), then
   the engine (``speechmodel.batch.engines``) runs ``BatchWorker``s over the
   remaining files.
4. Results are gathered into shards of ``shard_size`` lines, each written
   atomically as soon as it is full, with ``manifest.json`` after it: a run
   killed at any moment loses at most the lines of the shard it was
   filling. Progress (files done, files/s, time left) goes to ``say``; the
   ``BatchSummary`` says what was done.
"""

import dataclasses
import hashlib
import json
import os
import time
import warnings

from speechmodel import fileio, presets
from speechmodel.batch import engines
from speechmodel.batch.output import OutputDir, identity
from speechmodel.batch.task import RUNTIMES, BatchTask, BatchWorker, limit_threads
from speechmodel.errors import Error, ParameterError

ENGINES = ("local", "ray")
EngineError = engines.EngineError


@dataclasses.dataclass
class BatchSummary:
    """What a run did.

    Attributes:
        output: the output folder.
        files: distinct files given; skipped: already done by an earlier
            run (failed_before of them with an ``error``); analysed,
            failed: this run's results (failed ones are lines with an
            ``error``); input_failures: inputs that gave no file.
        seconds: from the engine's start to the last shard (model loading
            in the workers and Ray's start included); audio_seconds: the
            audio analysed; arrivals: ``(seconds since the engine's start,
            files done)`` after each batch.
        shards: the shards this run wrote.
    """

    output: str
    files: int = 0
    skipped: int = 0
    failed_before: int = 0
    analysed: int = 0
    failed: int = 0
    input_failures: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    audio_seconds: float = 0.0
    arrivals: list = dataclasses.field(default_factory=list)
    shards: list = dataclasses.field(default_factory=list)

    @property
    def files_per_second(self):
        done = self.analysed + self.failed
        return done / self.seconds if self.seconds > 0 else None

    @property
    def real_time_factor(self):
        return self.audio_seconds / self.seconds if self.seconds > 0 else None


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def collect_files(inputs=(), *, list_files=(), manifests=()):
    """The files to analyse (``speechmodel.inference.collect_inputs``, plus
    the ``path`` column of CSV manifests, ``datasets.load_csv``) and the
    inputs that gave none (``Failure``s)."""
    from speechmodel import datasets, inference

    try:
        collected = inference.collect_inputs(list(inputs), list_files=list_files)
    except ValueError as exc:
        raise ParameterError(str(exc)) from None
    paths, failures = list(collected.paths), list(collected.failures)
    for csv_file in manifests:
        try:
            manifest = datasets.load_csv(csv_file)
        except (ValueError, OSError) as exc:
            raise ParameterError(f"{exc} Received: --manifest={csv_file}") from None
        paths.extend(u.path for u in manifest)
        failures.extend(inference.Failure(p.path, p.reason) for p in manifest.problems)
    return list(dict.fromkeys(os.path.abspath(p) for p in paths)), failures


def run_batch(
    inputs=(),
    output=None,
    *,
    model=None,
    list_files=(),
    manifests=(),
    engine="local",
    workers=None,
    address=None,
    runtime=None,
    embed=False,
    top_k=1,
    window=4.0,
    hop=2.0,
    max_utterance=20.0,
    batch_size=32,
    shard_size=256,
    threads=None,
    say=None,
    every=5.0,
    worker_class=None,
):
    """Analyses (or embeds) files into ``output`` (see the module docstring).

    Args:
        inputs, list_files: as ``infer.py``'s; manifests: CSV manifests
            (``path, emotion, speaker``: ``datasets.load_csv``).
        output: the output folder.
        model: as ``infer.py --model`` (default: the shipped ``default``).
        engine: ``"local"`` (this process) or ``"ray"``.
        workers: Ray worker processes (default: the CPUs of the local
            machine or the cluster, divided by ``threads``).
        address: a Ray cluster to join (``ray start --head``'s address);
            default: Ray in this process.
        runtime: ``"auto"``, ``"onnx"`` or ``"keras"`` (as ``infer.py --runtime``;
            None: ``$SPEECHMODEL_RUNTIME``, else auto); ``embed`` runs Keras.
        embed: write the segment embeddings of the training cache instead
            of emotions.
        top_k, window, hop, max_utterance, batch_size: as ``infer.py``'s.
        shard_size: lines per shard.
        threads: CPU threads of each worker (default: 1 with Ray, all in
            the local engine).
        say: ``say(line)`` reports (default: nothing).
        every: seconds between progress lines.
        worker_class: what each Ray worker runs (default ``BatchWorker``).

    Returns:
        BatchSummary.

    Raises:
        ParameterError: a bad option, no input file or a model that cannot
            be used (before any work). OutputError: the output folder
            cannot be used. DirectoryLocked: another run holds it.
        EngineError: the engine failed (the shards written are kept).
    """
    from speechmodel import inference
    from speechmodel.training.artifacts import lock_directory

    say = say or (lambda line: None)
    if engine not in ENGINES:
        raise ParameterError(f"`engine` must be one of {', '.join(ENGINES)}. Received: engine={engine!r}")
    if runtime is not None and runtime not in RUNTIMES:
        raise ParameterError(f"`runtime` must be one of {', '.join(RUNTIMES)}. Received: runtime={runtime!r}")
    if embed:
        if runtime == "onnx":
            raise ParameterError(
                "--embed writes the training cache's embeddings, which the Keras model computes "
                "(training reads them as its own). Received: --runtime=onnx"
            )
        runtime = "keras"
    if engine == "local" and (workers not in (None, 1) or address):
        raise ParameterError(
            "--workers and --address are for --engine ray (the local engine is this one process). "
            f"Received: workers={workers!r}, address={address!r}"
        )
    for name, value in (("workers", workers), ("threads", threads), ("top_k", top_k),
                        ("batch_size", batch_size), ("shard_size", shard_size)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ParameterError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    if output is None:
        raise ParameterError("an output directory is needed. Received: output=None")
    paths, input_failures = collect_files(inputs, list_files=list_files, manifests=manifests)
    summary = BatchSummary(os.path.abspath(os.fspath(output)), input_failures=input_failures)
    for failure in input_failures:
        say(f"skipped {failure.file}: {failure.reason}")
    if not paths:
        raise ParameterError("no audio files to analyse: give files, directories, glob patterns, --list or --manifest")
    task_name = "embed" if embed else "predict"
    out = OutputDir(output, task=task_name)
    out.check()
    if engine == "ray" and threads is None:
        threads = 1
    if engine == "local":
        limit_threads(threads)  # Before TensorFlow starts in this process.
    from speechmodel.cli.common import choose_model

    # infer.py's choice of model (the workers open the same with open_model).
    loaded, problem = choose_model(model, presets.DEFAULT, top_k=top_k, runtime=runtime)
    if problem:
        raise ParameterError(problem)
    try:  # infer.py's checks of the options, before any work.
        inference.Predictor(loaded, batch_size=batch_size, window=window, hop=hop, max_utterance=max_utterance)
    except ValueError as exc:
        raise ParameterError(str(exc)) from None
    spec = model or presets.DEFAULT
    model_file = os.path.abspath(inference.resolve_model(spec))
    description = {
        "task": task_name,
        "model_sha256": _sha256(model_file),
        "model": {"name": spec, "path": model_file, "kind": loaded.kind,
                  "class_names": list(loaded.class_names)},
        "settings": {"top_k": top_k, "window": window, "hop": hop, "max_utterance": max_utterance},
    }
    description["model"]["sha256"] = description["model_sha256"]
    key = None
    if embed:
        encoder = getattr(getattr(loaded, "classifier", None), "segment_encoder", None)
        if encoder is None:
            raise ParameterError(
                f"--embed needs a SpeechModel (a segment embedder and a head); {spec} is a "
                f"{loaded.kind} model without one. Received: --model={spec}"
            )
        from speechmodel.training.embeddings import encoder_key

        key = encoder_key(encoder, loaded.config)
        description["settings"] = {"embedding_key": key, "features": loaded.config.to_dict()}
    task = BatchTask(
        # A shipped model by its name (each node has the package), else the file.
        model=spec if presets.is_preset(spec) else model_file,
        runtime=runtime, embed=embed, top_k=top_k, window=window, hop=hop,
        max_utterance=max_utterance, batch_size=batch_size, threads=threads, embedding_key=key,
    )

    with lock_directory(out.directory, purpose="batch run"):
        out.load()
        out.check_same_run(description)
        files = [(p, identity(p)) for p in paths]
        summary.files = len(files)
        done, todo = out.pending(files)
        summary.skipped = len(done)
        summary.failed_before = sum(1 for record in done if "error" in record)
        if summary.skipped:
            say(f"{summary.skipped} of {len(files)} files already done in {out.directory}: skipped")
        run = {"id": f"{time.time():.6f}-{os.getpid()}", "started": _now(), "engine": engine,
               "workers": None, "address": address, "threads": threads, "batch_size": batch_size,
               "files": len(files), "skipped": summary.skipped, "finished": False}
        rows = [
            {"path": p, "size": ident[1] if ident else -1, "mtime_ns": ident[2] if ident else -1}
            for p, ident in todo
        ]
        if engine == "local":
            batches = engines.run_local(BatchWorker(task, model=loaded), rows, files_per_task=batch_size)
            run["workers"] = 1
        else:
            del loaded  # The workers load their own.
            started = engines.start_ray(address=address, cpus=None if address else (workers or _cpus() // threads or 1) * threads)
            workers = workers or max(1, engines.cluster_cpus() // threads)
            run["workers"] = workers
            batches = engines.run_ray(task, rows, workers=workers, files_per_task=batch_size,
                                      worker_class=worker_class)
        _drive(out, batches, description, run, summary, total=len(rows), shard_size=shard_size,
               label="embedding" if embed else "analysing", say=say, every=every)
        if engine == "ray" and started:
            import ray

            ray.shutdown()
    return summary


def _drive(out, batches, description, run, summary, *, total, shard_size, label, say, every):
    """Gathers the engine's batches into shards (see the module docstring)."""
    from speechmodel.progress import CountProgress

    progress = CountProgress(label, total, say=say, every=every, rate=True)
    buffer = []
    start = time.monotonic()

    def flush():
        if buffer:
            summary.shards.append(out.write_shard(buffer))
            buffer.clear()
        summary.seconds = time.monotonic() - start
        run.update(analysed=summary.analysed, failed=summary.failed, seconds=round(summary.seconds, 3),
                   audio_seconds=round(summary.audio_seconds, 3))
        out.write_manifest(description, run)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Ray's deprecation notes.
            for batch in batches:
                npys = batch.get("npy")
                for k, line in enumerate(batch["line"]):
                    record = json.loads(line)
                    if npys is not None and "embedding" in record:
                        fileio.atomic_write_bytes(os.path.join(out.directory, record["embedding"]), bytes(npys[k]))
                    buffer.append(record)
                    if "error" in record:
                        summary.failed += 1
                    else:
                        summary.analysed += 1
                        summary.audio_seconds += float(record.get("duration") or 0.0)
                    if len(buffer) >= shard_size:
                        flush()
                done = summary.analysed + summary.failed
                summary.arrivals.append((time.monotonic() - start, done))
                progress.update(done)
    except BaseException as exc:
        flush()  # The finished results are kept.
        if isinstance(exc, Exception) and not isinstance(exc, Error):
            detail = " ".join(str(exc).split())[:300]
            raise EngineError(
                f"the engine stopped ({type(exc).__name__}: {detail}); {summary.analysed + summary.failed} "
                f"results were written to {out.directory}: run the same command again to finish"
            ) from exc
        raise
    run["finished"] = True
    flush()
    progress.close()


def _cpus():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
