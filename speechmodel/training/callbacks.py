"""The callbacks of a training fit: model selection on the validation
speakers (``ValidationMonitor``), the resumable learning-rate schedule and
history (``HistoryLog``), the data's epoch (``EpochSeed`` and
``speechmodel.pipeline.EpochCounter``: the data of every epoch is a pure
function of (seed, epoch)), the disk-space guard, and ``fit_callbacks``,
which puts them in order with the backup
(``speechmodel.training.backup.AtomicBackupAndRestore``, last). A fit killed
at any point and run again continues as if it had never stopped: a resumed
run gives the same weights, predictions and figures as an uninterrupted one.
"""

import contextlib
import errno
import json
import os
import shutil
import time
import warnings

import keras
import numpy as np

from speechmodel.metrics import compute_metrics
from speechmodel.training import artifacts, backup
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
        backup.AtomicBackupAndRestore(os.path.join(fold_dir, "backup"), stateful=stateful, delete_on_end=False),
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
