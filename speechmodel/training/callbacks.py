"""Model selection on the validation speakers, and exact resume.

A fit killed at any point and run again continues as if it had never
stopped: ``AtomicBackupAndRestore`` commits, at the end of every epoch, the
weights with the optimizer's state, every random state (the seed generators
of dropout and other layers, NumPy's and Python's generators) and the state
of the stateful callbacks (``ValidationMonitor``, the learning-rate schedule
on plateaus, ``HistoryLog``), as one consistent backup; the data of every
epoch is a pure function of (seed, epoch) (``EpochSeed`` and
``speechmodel.pipeline.EpochCounter``). A resumed run therefore gives the
same weights, predictions and figures as an uninterrupted one.
"""

import contextlib
import errno
import io
import json
import os
import random
import re
import shutil
import time
import warnings

import keras
import numpy as np

from speechmodel import keras_compat
from speechmodel.metrics import compute_metrics
from speechmodel.training import artifacts
from speechmodel.errors import Error


class ValidationMonitor(keras.callbacks.Callback):
    """Validation UAR/WA every epoch, best-weights checkpoint, early stop.

    After each epoch it predicts the validation set (training speakers only:
    the test fold is never seen here), adds ``val_uar`` and ``val_wa`` to the
    logs (so the history, TensorBoard, ReduceLROnPlateau see them), and
    ``val_accuracy`` (the same WA; ``val_categorical_accuracy`` when the
    training logs name it so) so that each validation figure has the name
    of its training counterpart (TensorBoard overlays them), saves the
    weights when ``monitor`` improves (ties broken by lower ``val_loss``) and
    stops after ``patience`` epochs without improvement. Its state lives in
    ``directory/monitor.json`` next to ``directory/best.weights.h5``, and in
    the backup of ``AtomicBackupAndRestore`` (``get_state``/``set_state``),
    so a resumed run keeps the best epoch and the patience count exactly.

    Args:
        dataset: validation tf.data.Dataset of ``(x, y)`` (fixed order).
        class_names: list of class names.
        directory: where the state and the best weights live.
        monitor: ``"val_uar"``, ``"val_wa"`` or ``"val_loss"``.
        patience: epochs without improvement before stopping (0: never).
    """

    def __init__(self, dataset, *, class_names, directory, monitor="val_uar", patience=10):
        super().__init__()
        if monitor not in ("val_uar", "val_wa", "val_loss"):
            raise ValueError(
                "`monitor` must be 'val_uar', 'val_wa' or 'val_loss'. "
                f"Received: monitor={monitor}"
            )
        self.dataset = dataset
        self.class_names = list(class_names)
        self.directory = directory
        self.monitor = monitor
        self.patience = patience
        self.state_path = os.path.join(directory, "monitor.json")
        self.weights_path = os.path.join(directory, "best.weights.h5")
        self.labels = None
        self.state = self._fresh_state()
        if os.path.exists(self.state_path):
            with open(self.state_path, encoding="utf-8") as f:
                self.state.update(json.load(f))

    @staticmethod
    def _fresh_state():
        return {"best": None, "best_loss": None, "best_epoch": None, "wait": 0, "epochs_done": 0}

    def get_state(self):
        return dict(self.state)

    def set_state(self, state):
        """The state of the last committed epoch; None: a fresh start."""
        self.state = self._fresh_state()
        if state:
            self.state.update(state)
        elif os.path.exists(self.weights_path):
            os.unlink(self.weights_path)  # From an attempt that committed nothing.

    def _labels(self):
        if self.labels is None:
            self.labels = np.concatenate([np.asarray(y) for _, y in self.dataset])
            if self.labels.ndim > 1:
                self.labels = self.labels.argmax(-1)
        return self.labels

    def evaluate(self):
        probabilities = self.model.predict(self.dataset, verbose=0)
        if isinstance(probabilities, dict):
            probabilities = probabilities["probabilities"]
        labels = self._labels()
        metrics = compute_metrics(labels, probabilities.argmax(-1), class_names=self.class_names)
        eps = 1e-7
        loss = float(-np.mean(np.log(np.clip(probabilities[np.arange(len(labels)), labels], eps, 1))))
        return metrics["uar"], metrics["wa"], loss

    def _better(self, value, loss):
        best, best_loss = self.state["best"], self.state["best_loss"]
        if best is None:
            return True
        if self.monitor == "val_loss":
            return value < best
        return value > best or (value == best and loss < best_loss)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        uar, wa, loss = self.evaluate()
        logs["val_uar"], logs["val_wa"] = uar, wa
        for name in ("accuracy", "categorical_accuracy"):
            if name in logs:
                logs.setdefault(f"val_{name}", wa)
        logs.setdefault("val_loss", loss)
        value = {"val_uar": uar, "val_wa": wa, "val_loss": logs["val_loss"]}[self.monitor]
        if self._better(value, logs["val_loss"]):
            self.state.update(best=float(value), best_loss=float(logs["val_loss"]), best_epoch=epoch + 1, wait=0)
            artifacts.save_weights_atomic(self.model, self.weights_path)
        else:
            self.state["wait"] += 1
        self.state["epochs_done"] = epoch + 1
        artifacts.write_json(self.state_path, self.state)
        if self.patience and self.state["wait"] >= self.patience:
            self.model.stop_training = True

    def restore_best(self):
        """Loads the best epoch's weights into the model (if any)."""
        if os.path.exists(self.weights_path):
            self.model.load_weights(self.weights_path)
        return self.state["best_epoch"]


class ResumableReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
    """``ReduceLROnPlateau`` whose counters are part of the backup (the
    learning rate itself is an optimizer variable, saved with the
    weights)."""

    def get_state(self):
        return {"wait": int(self.wait), "best": float(self.best), "cooldown_counter": int(self.cooldown_counter)}

    def set_state(self, state):
        self._reset()
        if state:
            self.wait = state["wait"]
            self.best = state["best"]
            self.cooldown_counter = state["cooldown_counter"]


class HistoryLog(keras.callbacks.Callback):
    """``history.csv``: one row per epoch (``epoch`` then the logs' keys in
    sorted order, as ``keras.callbacks.CSVLogger`` writes them), each row
    flushed to disk (``fsync``) as it is written, so a crash or a full disk
    never loses a row already written. Its state is the number of rows: a
    resumed fit first cuts the file back to the rows of the committed
    epochs, so no epoch appears twice."""

    def __init__(self, path):
        super().__init__()
        self.path = os.fspath(path)
        self.rows = 0

    def _read(self):
        if not os.path.exists(self.path):
            return None, []
        with open(self.path, encoding="utf-8", newline="") as f:
            lines = f.read().splitlines()
        return (lines[0] if lines else None), lines[1:]

    def get_state(self):
        return {"rows": self.rows}

    def set_state(self, state):
        header, lines = self._read()
        keep = (state or {}).get("rows", 0)
        if keep and (header is None or len(lines) < keep or not header.startswith("epoch,")):
            # The rows the backup counts are not there: a damaged backup.
            raise ValueError(f"{self.path} holds {len(lines)} rows where the backup counts {keep}")
        self.rows = keep
        if header is None or (self.rows and len(lines) == self.rows):
            return
        text = "".join(line + "\n" for line in [header, *lines[: self.rows]]) if self.rows else ""
        if text:
            artifacts.atomic_write_text(self.path, text)
        else:
            os.unlink(self.path)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        header, _ = self._read()
        keys = header.split(",")[1:] if header else sorted(logs)

        def cell(value):
            if value is None:
                return "NA"
            if isinstance(value, (np.ndarray, list, tuple)):
                return '"[' + ", ".join(str(v) for v in np.ravel(value)) + ']"'
            return str(float(value)) if isinstance(value, (float, np.floating)) else str(value)

        text = ""
        if header is None:
            text += ",".join(["epoch", *keys]) + "\n"
        text += ",".join([str(epoch), *(cell(logs.get(k)) for k in keys)]) + "\n"
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        self.rows += 1


class EpochSeed(keras.callbacks.Callback):
    """Tells the datasets which epoch they serve.

    Sets ``counter`` (a ``speechmodel.pipeline.EpochCounter``) at each
    epoch's start, so that the epoch's shuffle order and augmentation draws
    are those of (seed, epoch), also in a resumed run, and checks at its end
    that the data of the epoch was drawn for that epoch.
    """

    def __init__(self, counter):
        super().__init__()
        self.counter = counter

    def on_epoch_begin(self, epoch, logs=None):
        self.counter.set(epoch)

    def on_epoch_end(self, epoch, logs=None):
        started = self.counter.started()
        if started not in (-1, epoch):
            raise RuntimeError(
                f"internal error: the training data of epoch {epoch} was drawn "
                f"for epoch {started}; a resumed run would not reproduce it"
            )


class DiskFullError(Error, OSError):
    """Not enough free space to save an epoch's state."""

    def __init__(self, directory, free, needed):
        super().__init__(
            errno.ENOSPC,
            f"{_human(free)} free, saving an epoch needs at least {_human(needed)}",
            directory,
        )


def _human(n):
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024


class DiskSpaceGuard(keras.callbacks.Callback):
    """Stops training with ``DiskFullError`` before an epoch's files are
    written to a disk that cannot hold them.

    Checked when training starts and at the start and the end of every
    epoch, before any other callback writes (it goes first in the list):
    an HDF5 or event-file write that runs out of space can leave a
    half-written file or crash the process; this stops cleanly instead,
    with every committed epoch kept.

    Args:
        directory: where the epoch's files are written.
        reserve: bytes that must be free; default: three copies of the
            weights and of the optimizer's two slots per trainable weight,
            plus 64 MB.
    """

    def __init__(self, directory, reserve=None):
        super().__init__()
        self.directory = os.fspath(directory)
        self.reserve = reserve

    def needed(self):
        if self.reserve is not None:
            return int(self.reserve)
        if self.model is None:
            return 64 * 2**20
        total = sum(int(np.prod(w.shape)) for w in self.model.weights)
        trainable = sum(int(np.prod(w.shape)) for w in self.model.trainable_weights)
        return 3 * 4 * (total + 2 * trainable) + 64 * 2**20

    def check(self):
        directory = self.directory
        while not os.path.isdir(directory):
            directory = os.path.dirname(directory) or "."
        free = shutil.disk_usage(directory).free
        needed = self.needed()
        if free < needed:
            raise DiskFullError(self.directory, free, needed)

    def on_train_begin(self, logs=None):
        self.check()

    def on_epoch_begin(self, epoch, logs=None):
        self.check()

    def on_epoch_end(self, epoch, logs=None):
        self.check()


class EpochTimer(keras.callbacks.Callback):
    """Records the wall seconds of every epoch."""

    def __init__(self):
        super().__init__()
        self.times = []
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)

    def median(self):
        return float(np.median(self.times)) if self.times else None


def seed_states(model):
    """The state variables of every ``keras.random.SeedGenerator`` of the
    model's layers (dropout masks and any other layer randomness), in a
    fixed order: ``model.variables`` without ``model.weights``, which is
    exactly the seed states (Keras' documented difference)."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def random_state(model):
    """The model's seed-generator states and the global NumPy and Python
    generators: ``(arrays for an .npz, JSON-able dict)``."""
    arrays = {
        f"seed_{n}": np.asarray(keras.ops.convert_to_numpy(v.value))
        for n, v in enumerate(seed_states(model))
    }
    name, keys, position, has_gauss, cached = np.random.get_state()
    arrays["numpy_keys"] = keys
    version, internal, gauss = random.getstate()
    extra = {
        "numpy": [name, int(position), int(has_gauss), float(cached)],
        "python": [version, list(internal), gauss],
        "seed_order": "variables",
    }
    return arrays, extra


def set_random_state(model, arrays, extra):
    """Restores what ``random_state`` returned (also from a backup of an
    earlier version, whose seed states are in another order)."""
    if extra.get("seed_order") == "variables":
        states = seed_states(model)
    else:
        states = keras_compat.legacy_seed_states(model)
    stored = sorted((k for k in arrays if k.startswith("seed_")), key=lambda k: int(k[5:]))
    if len(stored) != len(states):
        raise ValueError(
            f"The backup holds {len(stored)} random generator states, the model has "
            f"{len(states)}: it was saved from another model."
        )
    for state, key in zip(states, stored):
        state.assign(arrays[key])
    name, position, has_gauss, cached = extra["numpy"]
    np.random.set_state((name, arrays["numpy_keys"], position, has_gauss, cached))
    version, internal, gauss = extra["python"]
    random.setstate((version, tuple(internal), gauss))


class AtomicBackupAndRestore(keras.callbacks.Callback):
    """Resume a fit exactly: one consistent backup per epoch, any kill safe.

    At the end of every epoch (it must be the last callback of the list, so
    that the others have updated their state), it saves:

    * ``weights-<E>.weights.h5``: the model's weights and the optimizer's
      variables (step count, learning rate, moments);
    * ``rng-<E>.npz``: every random state (``random_state``);
    * ``state.json``, written last, by a rename: the epoch count ``E``, the
      names of those two files, whether training stopped early, and the
      state of every ``stateful`` object (``get_state()``).

    ``state.json`` is the commit: a kill at any moment leaves either the
    previous epoch's complete backup or the new one, never a mix (files of
    an uncommitted epoch are ignored and removed). When the fit starts
    again, everything is restored (``set_state()``) and the fit continues
    at epoch ``E``; with no backup, the ``stateful`` objects get
    ``set_state(None)`` (a fresh start: e.g. ``HistoryLog`` drops rows of
    an attempt that committed no epoch). A fit that stopped early stays
    stopped.

    Args:
        backup_dir: the backup folder (other files in it are left alone).
        stateful: ``{name: object}`` with ``get_state`` / ``set_state``.
        delete_on_end: remove the backup when the fit ends (Keras'
            behaviour). The training runner keeps it (``False``) until the
            fold's results are committed, so a kill in between resumes
            instead of training again.
    """

    STATE = "state.json"

    def __init__(self, backup_dir, *, stateful=None, delete_on_end=True):
        super().__init__()
        self.backup_dir = os.fspath(backup_dir)
        self.stateful = dict(stateful or {})
        self.delete_on_end = delete_on_end

    @property
    def state_path(self):
        return os.path.join(self.backup_dir, self.STATE)

    def read_state(self):
        try:
            with open(self.state_path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def _load_weights(self, path):
        self._build_optimizer()
        self.model.load_weights(path)

    def _build_optimizer(self):
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)

    def on_train_begin(self, logs=None):
        if not self.model.built:
            raise ValueError(
                "AtomicBackupAndRestore needs a built model: call it on a batch "
                f"before fit(). Received: an unbuilt {type(self.model).__name__}"
            )
        # What the model holds before a restore is tried: a damaged backup
        # (a truncated weights file, a state.json or random-state file that
        # cannot be read) leaves the fit exactly as a fresh start.
        self._build_optimizer()
        before = self._snapshot()
        try:
            restored = self._restore()
        except Exception as exc:  # Whatever the damage: set aside, never fatal.
            self._revert(before)
            self._set_aside(exc)
            restored = False
        if not restored:
            for obj in self.stateful.values():
                obj.set_state(None)

    def _restore(self):
        """Restores the backup; False when there is none."""
        state = self.read_state()
        if state is None:
            legacy = os.path.join(self.backup_dir, "latest.weights.h5")
            metadata = os.path.join(self.backup_dir, "training_metadata.json")
            if os.path.exists(legacy) and os.path.exists(metadata):
                # A backup of an earlier version: weights and epoch only.
                with open(metadata, encoding="utf-8") as f:
                    epoch = int(json.load(f)["epoch"])
                self._load_weights(legacy)
                keras_compat.set_initial_epoch(self.model, epoch)
                return True
            return False
        if not isinstance(state, dict):
            raise ValueError(f"{self.STATE} holds no backup state")
        epoch = int(state["epoch"])
        with np.load(os.path.join(self.backup_dir, state["rng"]), allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        callbacks = state["callbacks"]
        self._load_weights(os.path.join(self.backup_dir, state["weights"]))
        set_random_state(self.model, arrays, state["random"])
        for name, obj in self.stateful.items():
            obj.set_state(callbacks.get(name))
        epochs = self.params.get("epochs", epoch) if self.params else epoch
        keras_compat.set_initial_epoch(self.model, max(epoch, epochs) if state.get("stopped") else epoch)
        if state.get("stopped"):
            self.model.stop_training = True
        return True

    def _snapshot(self):
        variables = list(self.model.weights)
        if self.model.optimizer is not None:
            variables += list(self.model.optimizer.variables)
        values = [np.array(keras.ops.convert_to_numpy(v.value)) for v in variables]
        return variables, values, random_state(self.model)

    def _revert(self, snapshot):
        variables, values, (arrays, extra) = snapshot
        for variable, value in zip(variables, values):
            variable.assign(value)
        set_random_state(self.model, arrays, extra)
        keras_compat.set_initial_epoch(self.model, None)
        self.model.stop_training = False

    def _set_aside(self, exc):
        """Renames the damaged backup folder (kept for inspection) and says
        so in one line; the fit then starts from its first epoch."""
        from absl import logging

        target = artifacts.set_aside(self.backup_dir)
        os.makedirs(self.backup_dir)  # Others keep their files there (the failure log).
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        logging.warning(
            "The backup in %s is damaged (%s: %s); set aside as %s. This training starts again "
            "from its first epoch.", self.backup_dir, type(exc).__name__, reason[:200], target
        )

    def on_epoch_end(self, epoch, logs=None):
        version = epoch + 1
        weights, rng = f"weights-{version}.weights.h5", f"rng-{version}.npz"
        os.makedirs(self.backup_dir, exist_ok=True)
        artifacts.save_weights_atomic(self.model, os.path.join(self.backup_dir, weights))
        arrays, extra = random_state(self.model)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        artifacts.atomic_write_bytes(os.path.join(self.backup_dir, rng), buffer.getvalue())
        artifacts.write_json(
            self.state_path,
            {
                "epoch": version,
                "weights": weights,
                "rng": rng,
                "stopped": bool(self.model.stop_training),
                "random": extra,
                "callbacks": {name: obj.get_state() for name, obj in self.stateful.items()},
            },
        )
        self._remove_other_versions(version)

    def _remove_other_versions(self, keep):
        pattern = re.compile(r"(weights|rng)-(\d+)\.(weights\.h5|npz)$|latest\.weights\.h5$|training_metadata\.json$")
        for name in os.listdir(self.backup_dir):
            match = pattern.match(name)
            if match and not (match.group(2) and int(match.group(2)) == keep):
                try:
                    os.unlink(os.path.join(self.backup_dir, name))
                except OSError:
                    pass

    def on_train_end(self, logs=None):
        keras_compat.set_initial_epoch(self.model, None)  # Not carried over to a later fit.
        if self.delete_on_end and os.path.isdir(self.backup_dir):
            shutil.rmtree(self.backup_dir)


# Keras' lines that every epoch of a tf.data fit prints and nobody can act
# on: the data end is how an epoch of unknown length ends; ``shuffle`` is
# the dataset's own (a function of seed and epoch).
_FIT_NOISE = (
    r"Your input ran out of data",
    r"`shuffle=True` was passed, but will be ignored",
)


@contextlib.contextmanager
def quiet_fit():
    """A ``fit`` without Keras' per-epoch warnings that mean nothing here
    (``Your input ran out of data``: an epoch of a dataset of unknown length
    ends so). Other warnings pass."""
    with warnings.catch_warnings():
        for message in _FIT_NOISE:
            warnings.filterwarnings("ignore", message=message, category=UserWarning)
        yield


def fit_callbacks(fold_dir, val_ds, *, class_names, training, epoch=None):
    """The callbacks of every training fit of a fold, and the monitor.

    In order: ``EpochSeed`` (with ``epoch``, the training data's
    ``EpochCounter``), ``DiskSpaceGuard``, the ``ValidationMonitor`` (best
    weights, early stopping) and a learning-rate schedule on the same
    validation metric when there are validation speakers, ``HistoryLog``
    (``history.csv``), TensorBoard, and last the backup
    (``AtomicBackupAndRestore`` in ``fold_dir/backup``, kept until the
    fold is committed) holding the state of the others.
    """
    stateful = {}
    callbacks = []
    if epoch is not None:
        callbacks.append(EpochSeed(epoch))
    callbacks.append(DiskSpaceGuard(fold_dir))
    monitor = None
    if val_ds is not None:
        monitor = ValidationMonitor(
            val_ds, class_names=class_names, directory=fold_dir,
            monitor=training["monitor"], patience=training["patience"],
        )
        callbacks.append(monitor)
        stateful["monitor"] = monitor
        if training["reduce_lr_patience"]:
            reduce_lr = ResumableReduceLROnPlateau(
                monitor=training["monitor"],
                mode="min" if training["monitor"] == "val_loss" else "max",
                factor=0.5,
                patience=training["reduce_lr_patience"],
                min_lr=training["min_learning_rate"],
            )
            callbacks.append(reduce_lr)
            stateful["reduce_lr"] = reduce_lr
    history = HistoryLog(os.path.join(fold_dir, "history.csv"))
    stateful["history"] = history
    callbacks += [
        history,
        keras.callbacks.TensorBoard(os.path.join(fold_dir, "tensorboard"), write_graph=False),
        AtomicBackupAndRestore(os.path.join(fold_dir, "backup"), stateful=stateful, delete_on_end=False),
    ]
    return callbacks, monitor


def best_epoch_figures(monitor, training):
    """``best_epoch`` and ``val`` for result.json, after restoring the best."""
    if monitor is None:
        return {}
    return {
        "best_epoch": monitor.restore_best(),
        "val": {"uar": monitor.state["best"] if training["monitor"] == "val_uar" else None},
    }
