import numpy as np
import pytest

import keras

from speechmodel.training.backup import AtomicBackupAndRestore
from speechmodel.training.callbacks import EpochSeed, HistoryLog
from speechmodel.tests.tiny_models import dense_model


class Stop(Exception):
    pass


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
    model = dense_model()
    _killed_while_saving(model, keras.callbacks.BackupAndRestore, str(tmp_path / "keras"), x, y)
    with pytest.raises(OSError):
        dense_model().fit(x, y, epochs=5, verbose=0, callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path / "keras"))])

    # The atomic one keeps the complete backup of epoch 0 and resumes at 1.
    model = dense_model()
    _killed_while_saving(model, AtomicBackupAndRestore, str(tmp_path / "atomic"), x, y)
    epochs = []
    seen = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: epochs.append(epoch))
    resumed = dense_model()
    resumed.fit(x, y, epochs=3, verbose=0, callbacks=[AtomicBackupAndRestore(str(tmp_path / "atomic")), seen])
    assert epochs == [1, 2]
    assert not (tmp_path / "atomic").exists()  # removed once training ends


def _exact_setup(tmp_path, seed=3):
    """A model with dropout on a shuffled dataset whose epochs are numbered
    (EpochCounter): everything random about a fit."""
    import tensorflow as tf

    from speechmodel.pipeline import EpochCounter, epoch_numbers, stateless_shuffle

    keras.utils.clear_session(free_memory=False)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8), keras.layers.Dropout(0.5), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(24, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    counter = EpochCounter()
    base = tf.data.Dataset.from_tensor_slices((x, y))
    ds = epoch_numbers(counter).flat_map(
        lambda n: stateless_shuffle(base, seed=seed, number=n, salt=0, block=24)
    ).batch(5)
    history = HistoryLog(tmp_path / "history.csv")
    backup = AtomicBackupAndRestore(tmp_path / "backup", stateful={"history": history}, delete_on_end=False)
    return model, ds, [EpochSeed(counter), history, backup]


def _straight_fit(directory, epochs):
    """The weights and history.csv of an uninterrupted fit."""
    model, ds, callbacks = _exact_setup(directory)
    model.fit(ds, epochs=epochs, verbose=0, callbacks=callbacks)
    return [np.asarray(w) for w in model.weights], (directory / "history.csv").read_text()


def test_a_killed_fit_resumes_exactly(tmp_path):
    expected, straight = _straight_fit(tmp_path / "straight", 4)

    model, ds, callbacks = _exact_setup(tmp_path / "killed")
    # Killed after epoch 1's row is written, before its backup.
    with pytest.raises(Stop):
        model.fit(ds, epochs=4, verbose=0, callbacks=callbacks[:2] + [_stop_after(1), callbacks[2]])
    assert len((tmp_path / "killed" / "history.csv").read_text().splitlines()) == 3
    np.random.seed(12345)  # a new process: other global random states
    model, ds, callbacks = _exact_setup(tmp_path / "killed", seed=3)
    epochs = []
    seen = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: epochs.append(epoch))
    model.fit(ds, epochs=4, verbose=0, callbacks=callbacks + [seen])
    assert epochs == [1, 2, 3]
    for a, b in zip(expected, model.weights):
        np.testing.assert_array_equal(a, np.asarray(b))
    assert (tmp_path / "killed" / "history.csv").read_text() == straight


@pytest.mark.parametrize("damage", ["truncated_weights", "state_json", "random_state"])
def test_a_damaged_backup_is_set_aside_and_the_fit_starts_again(tmp_path, damage, caplog):
    import json
    import logging

    expected, straight = _straight_fit(tmp_path / "straight", 3)
    model, ds, callbacks = _exact_setup(tmp_path / "killed")
    with pytest.raises(Stop):
        model.fit(ds, epochs=3, verbose=0, callbacks=callbacks[:2] + [callbacks[2], _stop_after(1)])
    backup = tmp_path / "killed" / "backup"
    state = json.loads((backup / "state.json").read_text())
    if damage == "truncated_weights":
        path = backup / state["weights"]
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "state_json":
        (backup / "state.json").write_text('{"epoch": 2, "weights": "weights-2.wei')
    else:
        (backup / state["rng"]).write_bytes(b"PK\x03\x04 not a zip")
    np.random.seed(12345)  # a new process
    model, ds, callbacks = _exact_setup(tmp_path / "killed", seed=3)
    epochs = []
    seen = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: epochs.append(epoch))
    with caplog.at_level(logging.WARNING):
        model.fit(ds, epochs=3, verbose=0, callbacks=callbacks + [seen])
    assert epochs == [0, 1, 2]  # started again, and ended as a straight fit
    for a, b in zip(expected, model.weights):
        np.testing.assert_array_equal(a, np.asarray(b))
    assert (tmp_path / "killed" / "history.csv").read_text() == straight
    [line] = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert f"The backup in {backup} is damaged" in line and f"set aside as {backup}.damaged" in line
    assert "\n" not in line and (backup.parent / "backup.damaged" / "state.json").exists()
