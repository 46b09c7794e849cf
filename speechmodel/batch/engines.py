"""Where a batch run's work is done: ``run_local`` (this process) or
``run_ray`` (Ray Data: local worker processes, or a cluster's).

Both take the files as rows ``{"path", "size", "mtime_ns"}`` and yield the
output batches of ``BatchWorker`` (``{"line"}``, and ``"npy"`` when
embedding) as they are done, in any order; the driver
(``speechmodel.batch.runner``) writes them.

Ray: ``ray.data.from_items`` over the files, ``map_batches`` through a
pool of ``workers`` actors, each a ``BatchWorker`` holding the model and
reserving ``threads`` CPUs (and limited to that many threads). An actor
that dies (a crashed or killed process, a lost node) is restarted and its
batch retried, up to ``MAX_RETRIES`` times, by Ray itself. Without
``address``, Ray starts in this process with ``workers * threads`` CPUs
and stops at the end (no service to start); with ``address`` (``ray start
--head`` on the cluster, or ``ray://...``) it joins that cluster, whose
nodes must see the files at the same paths and have the package
installed.
"""

import os

from speechmodel.errors import Error

# How often Ray restarts a dead worker and retries its batch before the
# run stops (the shards written are kept: run again to finish).
MAX_RETRIES = 3


class EngineError(Error, RuntimeError):
    """The engine could not start, or stopped before every file was
    analysed (the shards written are kept: the same command finishes the
    run)."""


def run_local(worker, rows, *, files_per_task):
    """``worker`` (a BatchWorker) over ``rows`` in this process, in order."""
    for start in range(0, len(rows), files_per_task):
        chunk = rows[start : start + files_per_task]
        yield worker({key: [row[key] for row in chunk] for key in ("path", "size", "mtime_ns")})


def _actor_class(task, worker_class):
    """The class of Ray's actors: a ``worker_class(task)`` each. The task
    travels with the class, not as constructor arguments (Ray cannot
    restart an actor whose arguments were lost from its object store)."""

    class BatchActor:
        def __init__(self):
            self.worker = worker_class(task)

        def __call__(self, batch):
            return self.worker(batch)

    return BatchActor


def start_ray(*, address=None, cpus=None):
    """Connects to the cluster at ``address``, or starts Ray in this process
    with ``cpus`` CPUs. Returns whether this call started it."""
    import logging

    import ray

    if ray.is_initialized():
        return False
    logging.getLogger("ray").setLevel(logging.ERROR)
    # Ray's own C++ log lines on this process's stderr: errors that stop
    # the run are raised, and reported, anyway.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    # The workers import the package from where this process does (a
    # source checkout need not be installed; on a cluster, at the same path
    # on every node).
    path = os.environ.get("PYTHONPATH")
    env = {
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"),
        "PYTHONPATH": here + (os.pathsep + path if path else ""),
    }
    if address is None:
        if os.environ.get("SPEECHMODEL_CACHE"):
            env["SPEECHMODEL_CACHE"] = os.environ["SPEECHMODEL_CACHE"]
        ray.init(
            # "local": a new Ray of this process's own, even when a cluster
            # started with `ray start` runs on this machine.
            address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False,
            configure_logging=False, runtime_env={"env_vars": env},
        )
    else:
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False,
                     runtime_env={"env_vars": env})
        except Exception as exc:  # Ray raises several kinds for this.
            detail = " ".join(str(exc).split())[:300]
            raise EngineError(
                f"cannot connect to the Ray cluster at {address} ({type(exc).__name__}: {detail}). "
                "Is `ray start --head` running there? With token authentication (Ray's default), "
                "set RAY_AUTH_MODE=token here, with the cluster's token in ~/.ray/auth_token "
                f"or RAY_AUTH_TOKEN. Received: --address={address}"
            ) from None
    return True


def cluster_cpus():
    import ray

    return int(ray.cluster_resources().get("CPU", 1))


def run_ray(task, rows, *, workers, files_per_task, worker_class=None):
    """``BatchWorker``s on Ray (see the module docstring); Ray must be
    started (``start_ray``). ``worker_class``: what each actor runs
    (default ``BatchWorker``)."""
    import ray.data

    from speechmodel.batch.task import BatchWorker

    import logging

    logging.getLogger("ray.data").setLevel(logging.ERROR)  # The run reports its own progress.
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # The driver reports progress.
    context.print_on_execution_start = False
    context.verbose_progress = False
    if not rows:
        return
    dataset = ray.data.from_items(
        list(rows), override_num_blocks=max(1, -(-len(rows) // files_per_task))
    )
    threads = task.threads or 1
    results = dataset.map_batches(
        _actor_class(task, worker_class or BatchWorker),
        batch_size=files_per_task,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=threads,
        max_restarts=MAX_RETRIES,
        max_task_retries=MAX_RETRIES,
    )
    yield from results.iter_batches(batch_size=None, batch_format="numpy")
