import numpy as np
import pytest

import keras

from speechmodel.training.callbacks import (
    AtomicBackupAndRestore,
    DiskFullError,
    DiskSpaceGuard,
    EpochSeed,
    HistoryLog,
)


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


def test_history_rows_are_on_disk_as_soon_as_written_and_cut_back_on_resume(tmp_path):
    log = HistoryLog(tmp_path / "history.csv")
    log.on_epoch_end(0, {"loss": 0.5, "accuracy": 0.25})
    log.on_epoch_end(1, {"loss": 0.4, "accuracy": 0.5})
    assert (tmp_path / "history.csv").read_text() == "epoch,accuracy,loss\n0,0.25,0.5\n1,0.5,0.4\n"
    resumed = HistoryLog(tmp_path / "history.csv")
    resumed.set_state({"rows": 1})
    assert (tmp_path / "history.csv").read_text() == "epoch,accuracy,loss\n0,0.25,0.5\n"
    resumed.set_state(None)  # a fresh start: no rows of an uncommitted attempt
    assert not (tmp_path / "history.csv").exists()


def test_a_disk_without_room_for_an_epoch_stops_training_cleanly(tmp_path, monkeypatch):
    import errno
    import shutil

    model = _model()
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: type(usage)(usage.total, usage.total, 10 * 2**20))
    with pytest.raises(DiskFullError) as info:
        model.fit(np.ones((8, 3), "float32"), np.zeros((8, 2), "float32"), epochs=2, verbose=0,
                  callbacks=[DiskSpaceGuard(tmp_path)])
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path)
    assert info.value.strerror == "10.0 MB free, saving an epoch needs at least 64.0 MB"


def _nested_random_model():
    inner = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dropout(0.1, name="inner_a"), keras.layers.Dropout(0.2, name="inner_b")],
        name="inner",
    )
    x = keras.Input((4,))
    h = inner(keras.layers.Dropout(0.3, name="first")(x))
    return keras.Model(x, keras.layers.Dropout(0.4, name="last")(h))


def test_random_state_round_trip_and_backups_of_earlier_versions():
    from speechmodel.training.callbacks import random_state, seed_states, set_random_state

    model = _nested_random_model()
    inner = model.get_layer("inner")
    layers = [model.get_layer("first"), inner.get_layer("inner_a"), inner.get_layer("inner_b"),
              model.get_layer("last")]
    # Every seed generator, in the order of model.variables.
    assert [id(v) for v in seed_states(model)] == [id(layer.seed_generator.state) for layer in layers]
    for n, layer in enumerate(layers):
        layer.seed_generator.state.assign(np.array([n, 10 + n], "uint32"))
    arrays, extra = random_state(model)
    assert extra["seed_order"] == "variables"
    for layer in layers:
        layer.seed_generator.state.assign(np.zeros(2, "uint32"))
    set_random_state(model, arrays, extra)
    for n, layer in enumerate(layers):
        np.testing.assert_array_equal(np.asarray(layer.seed_generator.state.value), [n, 10 + n])

    # A backup of an earlier version (no seed_order) holds the states in
    # Keras' _flatten_layers order: first, inner_b, inner_a, last.
    legacy = {"seed_0": [0, 10], "seed_1": [2, 12], "seed_2": [1, 11], "seed_3": [3, 13],
              "numpy_keys": arrays["numpy_keys"]}
    legacy = {k: np.asarray(v, "uint32") for k, v in legacy.items()}
    old_extra = {k: v for k, v in extra.items() if k != "seed_order"}
    for layer in layers:
        layer.seed_generator.state.assign(np.zeros(2, "uint32"))
    set_random_state(model, legacy, old_extra)
    for n, layer in enumerate(layers):
        np.testing.assert_array_equal(np.asarray(layer.seed_generator.state.value), [n, 10 + n])

    with pytest.raises(ValueError, match="holds 1 random generator states, the model has 4"):
        set_random_state(model, {"seed_0": legacy["seed_0"], "numpy_keys": legacy["numpy_keys"]}, extra)


def test_a_fit_on_a_dataset_of_unknown_length_prints_no_keras_warning():
    import warnings

    import tensorflow as tf

    from speechmodel.training.callbacks import quiet_fit

    x, y = np.ones((8, 3), "float32"), np.zeros((8, 2), "float32")
    # Unknown cardinality: each epoch ends when the data does.
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).filter(lambda a, b: True)
    with warnings.catch_warnings(record=True) as loud:
        warnings.simplefilter("always")
        _model().fit(ds, epochs=2, verbose=0)
    assert any("ran out of data" in str(w.message) for w in loud)
    with warnings.catch_warnings(record=True) as quiet:
        warnings.simplefilter("always")
        with quiet_fit():
            _model().fit(ds, epochs=2, verbose=0)
            warnings.warn("a real problem")
    assert [str(w.message) for w in quiet] == ["a real problem"]


def test_validation_figures_share_the_training_names(tmp_path):
    import tensorflow as tf

    from speechmodel.training.callbacks import ValidationMonitor

    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    val = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    monitor = ValidationMonitor(val, class_names=["a", "b"], directory=str(tmp_path))
    history = model.fit(x, y, epochs=1, verbose=0, callbacks=[monitor])
    logs = {k: v[0] for k, v in history.history.items()}
    assert logs["val_accuracy"] == logs["val_wa"]
    assert {"accuracy", "loss", "val_loss", "val_uar"} <= set(logs)


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


def test_a_fresh_start_drops_any_history_file_and_a_short_one_is_damage(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("N\n")  # A bogus header alone, no row.
    log = HistoryLog(path)
    log.set_state(None)
    assert not path.exists()
    log.on_epoch_end(0, {"loss": 0.5})
    assert path.read_text() == "epoch,loss\n0,0.5\n"
    with pytest.raises(ValueError, match="holds 1 rows where the backup counts 2"):
        HistoryLog(path).set_state({"rows": 2})
