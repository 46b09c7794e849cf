"""Distribution strategies for training on several devices or machines.

Build and compile the model inside ``strategy.scope()``; ``model.fit`` then
splits each global batch over the replicas::

    strategy = get_strategy("mirrored")
    global_batch, lr = scale_batch_and_lr(16, 1e-4, strategy)
    with strategy.scope():
        model = SpeechModel(num_classes=8)
        model.compile(optimizer=keras.optimizers.Adam(lr), ...)
    model.fit(dataset.batch(global_batch), ...)

Batch size and learning rate: the dataset is batched with the *global*
batch size, ``per_replica_batch * strategy.num_replicas_in_sync``, so each
replica sees ``per_replica_batch`` utterances per step and the gradients
are averaged over the global batch. With N replicas a step thus sees N
times the data, and the learning rate is scaled linearly with N (Goyal et
al., 2017) to keep the per-example update comparable; warm it up over the
first epochs when N is large. ``scale_batch_and_lr`` does both.

- ``"default"``: no distribution, one device (TensorFlow's default
  strategy).
- ``"mirrored"``: synchronous data parallelism over all local GPUs; on a
  machine without GPUs over its logical CPU devices (one unless
  ``set_logical_cpu_devices`` split the CPU before TensorFlow started,
  which is how it is tested on CPU).
- ``"multiworker"``: synchronous data parallelism over several machines
  (``MultiWorkerMirroredStrategy``), configured by the ``TF_CONFIG``
  environment variable of every worker, e.g. ``{"cluster": {"worker":
  ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index":
  0}}``. Every worker runs the same program; worker 0 is the chief (it
  alone should write checkpoints and reports). Datasets are sharded over
  the workers automatically.
"""

import json
import os

STRATEGIES = ("default", "mirrored", "multiworker")


def set_logical_cpu_devices(count):
    """Splits the CPU into ``count`` logical devices (for ``"mirrored"``
    on a CPU-only machine). Must run before TensorFlow initialises its
    devices (before any tensor is created)."""
    import tensorflow as tf

    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"`count` must be a positive int. Received: count={count!r}")
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError as e:
        raise ValueError(
            "set_logical_cpu_devices must run before TensorFlow initialises "
            f"its devices. Received: count={count} ({e})"
        ) from e


def _read_tf_config():
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise ValueError(
            "The 'multiworker' strategy needs the TF_CONFIG environment "
            'variable, e.g. {"cluster": {"worker": ["host1:port", '
            '"host2:port"]}, "task": {"type": "worker", "index": 0}}. '
            "Received: TF_CONFIG unset"
        )
    try:
        config = json.loads(text)
        workers = config["cluster"]["worker"]
        task = config["task"]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(
            "TF_CONFIG must be JSON with cluster.worker (a list of host:port) "
            f"and task.type / task.index. Received: TF_CONFIG={text!r}"
        ) from e
    if not isinstance(workers, list) or not workers or not 0 <= index < len(
        workers
    ) + len(config["cluster"].get("chief", [])):
        raise ValueError(
            "TF_CONFIG: task.index must index cluster.worker. "
            f"Received: TF_CONFIG={text!r}"
        )
    return config


def get_strategy(name="default"):
    """Returns a ``tf.distribute.Strategy``.

    Args:
        name: ``"default"``, ``"mirrored"`` or ``"multiworker"`` (see the
            module docstring).

    Returns:
        The strategy; its ``num_replicas_in_sync`` is the number of
        replicas a global batch is split over.
    """
    if name not in STRATEGIES:
        raise ValueError(f"`name` must be one of {STRATEGIES}. Received: name={name!r}")
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices(
            "CPU"
        )
        return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])
    _read_tf_config()
    return tf.distribute.MultiWorkerMirroredStrategy()


def scale_batch_and_lr(per_replica_batch, base_lr, strategy):
    """The global batch size and the linearly scaled learning rate.

    Args:
        per_replica_batch: int, utterances per replica and step.
        base_lr: float, the learning rate tuned for one replica.
        strategy: a ``tf.distribute.Strategy`` (or an int replica count).

    Returns:
        ``(per_replica_batch * replicas, base_lr * replicas)``.
    """
    replicas = strategy if isinstance(strategy, int) else strategy.num_replicas_in_sync
    if not isinstance(per_replica_batch, int) or per_replica_batch < 1:
        raise ValueError(
            "`per_replica_batch` must be a positive int. "
            f"Received: per_replica_batch={per_replica_batch!r}"
        )
    if not base_lr > 0:
        raise ValueError(f"`base_lr` must be positive. Received: base_lr={base_lr!r}")
    return per_replica_batch * replicas, base_lr * replicas
