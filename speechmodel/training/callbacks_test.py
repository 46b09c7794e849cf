import numpy as np
import pytest

import keras

from speechmodel.training.callbacks import AtomicBackupAndRestore


class Stop(Exception):
    pass


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    return model


def _stop_after(epoch_to_stop):
    def on_epoch_end(epoch, logs):
        if epoch == epoch_to_stop:
            raise Stop

    return keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)


def _killed_while_saving(model, backup_cls, backup_dir, x, y):
    """Epoch 0 is backed up; the process then dies while the backup of
    epoch 1 is being written (a partial file, then the end)."""
    with pytest.raises(Stop):
        model.fit(x, y, epochs=5, verbose=0, callbacks=[backup_cls(backup_dir), _stop_after(0)])
    real = model.save_weights

    def dies_while_writing(filepath, **kwargs):
        with open(filepath, "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
        raise Stop

    model.save_weights = dies_while_writing
    with pytest.raises(Stop):
        model.fit(x, y, epochs=5, verbose=0, callbacks=[backup_cls(backup_dir)])
    model.save_weights = real


def test_a_kill_while_the_backup_is_written_leaves_the_previous_backup(tmp_path):
    x, y = np.ones((8, 3), "float32"), np.zeros((8, 2), "float32")

    # Keras' own callback writes in place: the next run cannot resume.
    model = _model()
    _killed_while_saving(model, keras.callbacks.BackupAndRestore, str(tmp_path / "keras"), x, y)
    with pytest.raises(OSError):
        _model().fit(x, y, epochs=5, verbose=0, callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path / "keras"))])

    # The atomic one keeps the complete backup of epoch 0 and resumes at 1.
    model = _model()
    _killed_while_saving(model, AtomicBackupAndRestore, str(tmp_path / "atomic"), x, y)
    epochs = []
    seen = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: epochs.append(epoch))
    resumed = _model()
    resumed.fit(x, y, epochs=3, verbose=0, callbacks=[AtomicBackupAndRestore(str(tmp_path / "atomic")), seen])
    assert epochs == [1, 2]
    assert not (tmp_path / "atomic").exists()  # removed once training ends
