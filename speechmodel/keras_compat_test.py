"""Every private Keras name of ``keras_compat``, checked by what Keras does
with it: a new Keras fails here, with the name to re-verify, rather than
silently in a resumed or distributed fit."""

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

from speechmodel import keras_compat

REPO = Path(__file__).resolve().parents[1]


def test_keras_is_a_verified_version():
    low, high = keras_compat.VERIFIED_KERAS
    assert keras_compat.is_verified(), (
        f"Keras {keras.__version__} is outside the versions keras_compat was verified "
        f"on (>={low},<{high}): check every test of this file passes, read each "
        "private name's use in speechmodel/keras_compat.py against the new Keras "
        "source, then widen VERIFIED_KERAS."
    )
    assert keras_compat.missing_private_names() == []


def test_version_range():
    assert keras_compat.is_verified("3.15.1")
    assert keras_compat.is_verified("3.15.4")
    assert not keras_compat.is_verified("3.15.0")
    assert not keras_compat.is_verified("3.16.0")
    assert not keras_compat.is_verified("4.0.0")
    assert keras_compat.is_verified("3.15.2rc1")
    assert not keras_compat.is_verified("3.16.0.dev2026")
    with pytest.raises(ValueError, match="Received: version='nightly'"):
        keras_compat.is_verified("nightly")


def test_another_keras_warns_once_with_the_version(monkeypatch):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert keras_compat.check_keras_version()
    assert caught == []
    monkeypatch.setattr(keras, "__version__", "3.16.0")
    with pytest.warns(keras_compat.KerasVersionWarning, match=r"Received: keras.__version__=3.16.0"):
        assert not keras_compat.check_keras_version()


def _tiny_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_set_initial_epoch_is_where_fit_starts():
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 2), "float32")
    model = _tiny_model()
    epochs = []

    class Resume(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            keras_compat.set_initial_epoch(self.model, 2)

        def on_epoch_begin(self, epoch, logs=None):
            epochs.append(epoch)

        def on_train_end(self, logs=None):
            keras_compat.set_initial_epoch(self.model, None)

    history = model.fit(x, y, epochs=4, verbose=0, callbacks=[Resume()])
    assert epochs == [2, 3]
    assert history.epoch == [2, 3]
    # Reset: the next fit starts where its own argument says.
    epochs.clear()
    model.fit(x, y, epochs=2, verbose=0,
              callbacks=[keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, l: epochs.append(e))])
    assert epochs == [0, 1]


def test_set_initial_epoch_refuses_a_model_without_it():
    class NotAKerasModel:
        pass

    with pytest.raises(keras_compat.KerasCompatError, match="restart at epoch 0"):
        keras_compat.set_initial_epoch(NotAKerasModel(), 3)


def test_first_replica_build_is_the_hook_fit_calls_under_a_strategy():
    import tensorflow as tf

    calls = []

    class Spy(keras_compat.FirstReplicaBuild, keras.Model):
        def _maybe_symbolic_build(self, iterator=None, data_batch=None):
            calls.append(iterator is not None)
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        inputs = keras.Input((3,))
        model = Spy(inputs, keras.layers.Dense(2)(inputs))
        model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    ds = tf.data.Dataset.from_tensor_slices(
        (np.ones((4, 3), "float32"), np.zeros((4, 2), "float32"))
    ).batch(2)
    history = model.fit(ds, epochs=1, verbose=0)
    model.evaluate(ds, verbose=0)
    # fit and evaluate pass their iterator: the batch the metrics are built from.
    assert calls[:2] == [True, True], calls
    assert np.isfinite(history.history["mae"][0])


# Two replicas (logical CPUs, set before TensorFlow starts: a process of its
# own): a bool input makes Keras' averaged build batch fail (no AddN for
# bool); FirstReplicaBuild builds from the first replica's batch.
TWO_REPLICAS = textwrap.dedent(
    """
    import json, sys
    from speechmodel import distribute
    distribute.set_logical_cpu_devices(2)
    import keras, numpy as np, tensorflow as tf
    from speechmodel import keras_compat

    class Model(keras_compat.FirstReplicaBuild, keras.Model):
        pass

    strategy = tf.distribute.MirroredStrategy()
    with strategy.scope():
        x = keras.Input((3,))
        mask = keras.Input((3,), dtype="bool")
        y = keras.layers.Dense(2)(keras.ops.where(mask, x, 0.0))
        model = Model([x, mask], y)
        model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    data = (np.ones((8, 3), "float32"), np.arange(24).reshape(8, 3) % 2 == 0)
    ds = tf.data.Dataset.from_tensor_slices((data, np.zeros((8, 2), "float32"))).batch(4)
    history = model.fit(ds, epochs=1, verbose=0)
    json.dump({"replicas": strategy.num_replicas_in_sync,
               "loss": history.history["loss"]}, open(sys.argv[1], "w"))
    """
)


def test_first_replica_build_trains_a_bool_input_over_two_replicas(tmp_path):
    script, out = tmp_path / "two_replicas.py", tmp_path / "out.json"
    script.write_text(TWO_REPLICAS)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    result = subprocess.run([sys.executable, str(script), str(out)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["replicas"] == 2
    assert np.all(np.isfinite(report["loss"]))


def test_keras_home_is_where_keras_caches_downloads(tmp_path):
    source = tmp_path / "source.txt"
    source.write_text("cached\n")
    home = tmp_path / "home"
    home.mkdir()  # Keras falls back to /tmp/.keras for a folder it cannot write
    before = keras_compat.keras_home()
    with keras_compat.use_keras_home(home):
        assert keras_compat.keras_home() == str(home)
        path = keras.utils.get_file("x.txt", origin=source.as_uri())
        assert path == str(home / "datasets" / "x.txt")
        assert Path(path).read_text() == "cached\n"
    assert keras_compat.keras_home() == before


def _nested_random_model():
    inner = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dropout(0.1, name="inner_a"),
         keras.layers.Dense(4, name="inner_dense"), keras.layers.Dropout(0.2, name="inner_b")],
        name="inner",
    )
    x = keras.Input((4,))
    h = inner(keras.layers.Dropout(0.3, name="first")(x))
    h = keras.layers.GaussianNoise(0.1, name="noise")(h)
    return keras.Model(x, keras.layers.Dropout(0.4, name="last")(h))


def test_legacy_seed_states_keep_the_order_of_earlier_backups():
    model = _nested_random_model()
    layers = {"first": model.get_layer("first"), "noise": model.get_layer("noise"),
              "last": model.get_layer("last"),
              "inner_a": model.get_layer("inner").get_layer("inner_a"),
              "inner_b": model.get_layer("inner").get_layer("inner_b")}
    owner = {id(layer.seed_generator.state): name for name, layer in layers.items()}
    # The order backups of earlier versions hold (Keras 3.15's
    # _flatten_layers lists a nested model's layers last to first).
    assert [owner[id(v)] for v in keras_compat.legacy_seed_states(model)] == [
        "first", "inner_b", "inner_a", "noise", "last"
    ]
