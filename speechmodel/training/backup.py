"""Exact resume of a fit: ``AtomicBackupAndRestore`` commits, at the end of
every epoch, the weights with the optimizer's state, every random state
(``speechmodel.training.random_states``) and the state of the stateful
callbacks, as one consistent backup that a kill at any moment leaves whole.
"""

import io
import json
import os
import re
import shutil

import keras
import numpy as np

from speechmodel import keras_compat
from speechmodel.training import artifacts
from speechmodel.training.random_states import random_state, set_random_state


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
