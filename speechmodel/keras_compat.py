"""The project's only use of private Keras names.

Keras 3 has no public API for a few things the toolkit needs; each of them
is used here, through one function or class, and nowhere else:

* ``model._initial_epoch``: the epoch a fit starts at when a callback
  decides it (``set_initial_epoch``; resume from a backup). ``fit``
  reads it after ``on_train_begin``, as for Keras' own
  ``BackupAndRestore``; the ``initial_epoch`` argument is fixed before.
* ``Model._maybe_symbolic_build`` and ``model._distribute_strategy``: the
  hook where ``fit``/``evaluate`` build the metrics under a
  ``tf.distribute`` strategy (``FirstReplicaBuild``).
* ``keras.src.backend.config.keras_home()`` / ``_KERAS_DIR``: the folder
  of Keras' download cache, ``$KERAS_HOME`` as read when Keras was
  imported (``keras_home``, ``use_keras_home``).
* ``Layer._flatten_layers`` / ``Layer._seed_generators``: the order in
  which backups of earlier versions stored the seed-generator states
  (``legacy_seed_states``; new backups use the public ``variables``).

They were verified on the Keras versions ``VERIFIED_KERAS`` describes.
Importing this module with another Keras, or one that lacks a name above,
warns (``KerasVersionWarning``) and ``keras_compat_test.py`` fails, naming
what to re-verify; a function whose private name is gone raises
``KerasCompatError`` instead of silently doing nothing.
"""

import contextlib
import inspect
import re
import warnings

import keras
from keras import tree

from speechmodel.errors import Error, ParameterError

# Verified: 3.15.1. Accepted without a warning: 3.15.1 <= version < 3.16.0.
VERIFIED_KERAS = ("3.15.1", "3.16.0")


class KerasCompatError(Error, RuntimeError):
    """A private Keras name the toolkit relies on is gone or has changed."""


class KerasVersionWarning(UserWarning):
    """Keras is outside the versions ``keras_compat`` was verified on."""


def _release(version):
    """``"3.15.1"`` -> ``(3, 15, 1)`` (a pre-release counts as its release)."""
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", str(version))
    if match is None:
        raise ParameterError(f"Not a version number. Received: version={version!r}")
    return tuple(int(part or 0) for part in match.groups())


def is_verified(version=None):
    """Whether ``version`` (default: the installed Keras) is in
    ``VERIFIED_KERAS`` (from the first, inclusive, to the second,
    exclusive)."""
    low, high = (_release(v) for v in VERIFIED_KERAS)
    return low <= _release(version or keras.__version__) < high


def _signature(function):
    return list(inspect.signature(function).parameters)


def missing_private_names():
    """The private names above that this Keras lacks or has changed
    (``[]``: all there, with the signatures used here)."""
    missing = []
    hook = getattr(keras.Model, "_maybe_symbolic_build", None)
    if hook is None or _signature(hook) != ["self", "iterator", "data_batch"]:
        missing.append("keras.Model._maybe_symbolic_build(self, iterator, data_batch)")
    flatten = getattr(keras.layers.Layer, "_flatten_layers", None)
    if flatten is None or _signature(flatten)[:3] != ["self", "include_self", "recursive"]:
        missing.append("keras.layers.Layer._flatten_layers(self, include_self, recursive)")
    try:
        from keras.src.backend import config
    except ImportError:
        missing.append("keras.src.backend.config")
    else:
        for name in ("keras_home", "_KERAS_DIR"):
            if not hasattr(config, name):
                missing.append(f"keras.src.backend.config.{name}")
    return missing


def check_keras_version():
    """Warns (``KerasVersionWarning``) when Keras is not a verified version
    or lacks a private name used here; returns whether all is verified."""
    missing = missing_private_names()
    problems = []
    if not is_verified():
        low, high = VERIFIED_KERAS
        problems.append(
            f"speechmodel.keras_compat was verified on Keras >={low},<{high}. "
            f"Received: keras.__version__={keras.__version__}"
        )
    if missing:
        problems.append(f"This Keras lacks or changed: {', '.join(missing)}")
    if problems:
        warnings.warn(
            " ".join(problems) + ". Resume, distributed training or the weights "
            "cache may misbehave; run speechmodel/keras_compat_test.py.",
            KerasVersionWarning,
            stacklevel=2,
        )
    return not problems


# === Resume: the epoch a fit starts at ===


def set_initial_epoch(model, epoch):
    """Makes the fit that is starting (``on_train_begin``) begin at
    ``epoch``; ``None`` gives ``fit(initial_epoch=...)`` back its say
    (reset it at ``on_train_end`` so that it does not carry over)."""
    if not hasattr(model, "_initial_epoch"):
        raise KerasCompatError(
            "This Keras's models have no `_initial_epoch`: a resumed fit would "
            f"restart at epoch 0. Received: keras.__version__={keras.__version__}"
        )
    model._initial_epoch = None if epoch is None else int(epoch)


# === Distributed training: building the metrics ===


class FirstReplicaBuild:
    """Mixin for a ``keras.Model`` (TensorFlow backend): under a
    ``tf.distribute`` strategy, ``fit`` and ``evaluate`` build the metrics
    and losses from the first replica's batch.

    Keras 3.15 builds them from the first batch *averaged over the
    replicas* (``strategy.reduce("MEAN")``), which fails on a bool input
    (no AddN for bool: the segment mask) and on workers whose batches differ
    in padded length. One replica's batch has the shapes and dtypes the
    build needs. No effect without a strategy.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = getattr(self, "_distribute_strategy", None)
        if strategy is None or iterator is None:
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        import tensorflow as tf

        def first_local(x):
            if isinstance(x, tf.distribute.DistributedValues):
                return strategy.experimental_local_results(x)[0]
            return x

        for _, _, it in iterator:
            data_batch = tree.map_structure(first_local, next(it))
            break
        return super()._maybe_symbolic_build(iterator=None, data_batch=data_batch)


# === Keras' download cache ===


def keras_home():
    """Keras' home folder: ``$KERAS_HOME`` as set when Keras was imported,
    else ``~/.keras`` (``/tmp/.keras`` if the home folder is not writable).
    ``keras.utils.get_file`` and ``keras.applications`` cache in it."""
    try:
        from keras.src.backend import config

        return config.keras_home()
    except (ImportError, AttributeError) as exc:
        raise KerasCompatError(
            "keras.src.backend.config.keras_home() is gone: cannot tell where "
            f"Keras caches downloads. Received: keras.__version__={keras.__version__} "
            f"({exc})"
        ) from None


@contextlib.contextmanager
def use_keras_home(path):
    """Points Keras' home folder (its download cache) at ``path`` within the
    block, for this process (tests: an empty cache)."""
    from keras.src.backend import config

    if not hasattr(config, "_KERAS_DIR"):
        raise KerasCompatError(
            "keras.src.backend.config._KERAS_DIR is gone. "
            f"Received: keras.__version__={keras.__version__}"
        )
    saved = config._KERAS_DIR
    config._KERAS_DIR = str(path)
    try:
        yield
    finally:
        config._KERAS_DIR = saved


# === Backups of earlier versions: the order of the seed generators ===


def legacy_seed_states(model):
    """The state variables of the model's ``SeedGenerator``s in the order
    backups of earlier versions stored them (those without ``seed_order``,
    see ``speechmodel.training.random_states.random_state``): layers as
    ``model._flatten_layers()`` lists them, each layer's generators in
    order."""
    if not hasattr(model, "_flatten_layers"):
        raise KerasCompatError(
            "This Keras has no Layer._flatten_layers: a backup of an earlier "
            "version cannot be resumed exactly; delete it to start the fit "
            f"again. Received: keras.__version__={keras.__version__}"
        )
    states = []
    for layer in model._flatten_layers(include_self=True, recursive=True):
        states.extend(g.state for g in getattr(layer, "_seed_generators", None) or [])
    return states


check_keras_version()
