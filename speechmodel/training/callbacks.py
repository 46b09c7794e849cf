"""Model selection on the validation speakers, resumable."""

import json
import os
import time

import keras
import numpy as np

from speechmodel.metrics import compute_metrics
from speechmodel.training import artifacts


class ValidationMonitor(keras.callbacks.Callback):
    """Validation UAR/WA every epoch, best-weights checkpoint, early stop.

    After each epoch it predicts the validation set (training speakers only:
    the test fold is never seen here), adds ``val_uar`` and ``val_wa`` to the
    logs (so CSVLogger, TensorBoard, ReduceLROnPlateau see them), saves the
    weights when ``monitor`` improves (ties broken by lower ``val_loss``) and
    stops after ``patience`` epochs without improvement. Its state lives in
    ``directory/monitor.json`` next to ``directory/best.weights.h5``, so a
    resumed run (``keras.callbacks.BackupAndRestore``) keeps the best epoch
    and the patience count.

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
        self.state = {"best": None, "best_loss": None, "best_epoch": None, "wait": 0, "epochs_done": 0}
        if os.path.exists(self.state_path):
            with open(self.state_path, encoding="utf-8") as f:
                self.state.update(json.load(f))

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


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``keras.callbacks.BackupAndRestore`` whose backup survives a kill.

    Keras writes the backup weights and the epoch counter in place, so a
    run killed while they are being written leaves a half-written HDF5 file
    that the next run cannot open ("bad object header version number").
    Here each is written to a temporary file and renamed over the old one
    (weights, then the epoch counter), so the backup on disk is
    always a complete one: the last epoch's, or at worst, for the instant
    between the two renames, the new weights with the previous epoch's
    counter (that epoch is then trained once more).
    """

    def _save_model(self):
        artifacts.save_weights_atomic(self.model, self._weights_path)
        artifacts.write_json(
            self._training_metadata_path,
            {"epoch": self._current_epoch, "batch": self._last_batch_seen},
        )


def fit_callbacks(fold_dir, val_ds, *, class_names, training):
    """The callbacks of every training fit of a fold, and the monitor.

    Resume (``BackupAndRestore`` in ``fold_dir/backup``), the CSV history
    and TensorBoard logs, and, when there are validation speakers, the
    ``ValidationMonitor`` (best weights, early stopping) and a learning-rate
    schedule on the same validation metric.
    """
    callbacks = [
        AtomicBackupAndRestore(os.path.join(fold_dir, "backup")),
        keras.callbacks.CSVLogger(os.path.join(fold_dir, "history.csv"), append=True),
        keras.callbacks.TensorBoard(os.path.join(fold_dir, "tensorboard"), write_graph=False),
    ]
    if val_ds is None:
        return callbacks, None
    monitor = ValidationMonitor(
        val_ds, class_names=class_names, directory=fold_dir,
        monitor=training["monitor"], patience=training["patience"],
    )
    callbacks.insert(1, monitor)
    if training["reduce_lr_patience"]:
        callbacks.insert(
            2,
            keras.callbacks.ReduceLROnPlateau(
                monitor=training["monitor"],
                mode="min" if training["monitor"] == "val_loss" else "max",
                factor=0.5,
                patience=training["reduce_lr_patience"],
                min_lr=training["min_learning_rate"],
            ),
        )
    return callbacks, monitor


def best_epoch_figures(monitor, training):
    """``best_epoch`` and ``val`` for result.json, after restoring the best."""
    if monitor is None:
        return {}
    return {
        "best_epoch": monitor.restore_best(),
        "val": {"uar": monitor.state["best"] if training["monitor"] == "val_uar" else None},
    }
