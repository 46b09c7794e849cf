import numpy as np
import pytest

import keras

from speechmodel.training.callbacks import DiskFullError, DiskSpaceGuard, HistoryLog
from speechmodel.tests.tiny_models import dense_model


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

    model = dense_model()
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: type(usage)(usage.total, usage.total, 10 * 2**20))
    with pytest.raises(DiskFullError) as info:
        model.fit(np.ones((8, 3), "float32"), np.zeros((8, 2), "float32"), epochs=2, verbose=0,
                  callbacks=[DiskSpaceGuard(tmp_path)])
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path)
    assert info.value.strerror == "10.0 MB free, saving an epoch needs at least 64.0 MB"


def test_a_fit_on_a_dataset_of_unknown_length_prints_no_keras_warning():
    import warnings

    import tensorflow as tf

    from speechmodel.training.callbacks import quiet_fit

    x, y = np.ones((8, 3), "float32"), np.zeros((8, 2), "float32")
    # Unknown cardinality: each epoch ends when the data does.
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).filter(lambda a, b: True)
    with warnings.catch_warnings(record=True) as loud:
        warnings.simplefilter("always")
        dense_model().fit(ds, epochs=2, verbose=0)
    assert any("ran out of data" in str(w.message) for w in loud)
    with warnings.catch_warnings(record=True) as quiet:
        warnings.simplefilter("always")
        with quiet_fit():
            dense_model().fit(ds, epochs=2, verbose=0)
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
