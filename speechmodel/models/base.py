"""Base classes of speechmodel's functional models (keras-hub habit)."""

import keras
from keras import ops
from keras import tree

from speechmodel import keras_compat


class _DistributionFixes(keras_compat.FirstReplicaBuild):
    """Works around two Keras 3.15 bugs of ``fit``/``evaluate`` under a
    ``tf.distribute`` strategy (TensorFlow backend); no effect without one.

    1. Keras builds the metrics from the first batch *averaged over the
       replicas* (``strategy.reduce("MEAN")``), which fails on the bool
       segment mask (no AddN for bool) and on workers whose batches differ
       in padded length. One replica's batch has the shapes and dtypes the
       build needs: ``keras_compat.FirstReplicaBuild``, the one override
       of a private Keras method.
    2. Under a ``MultiWorkerMirroredStrategy`` Keras reduces the step logs
       with ``strategy.reduce("MEAN", v, axis=0)``, which fails on scalar
       logs ("Invalid reduction dimension 0 for input with 0 dimensions",
       tensorflow/tensorflow#72388). Logs of shape ``(1,)`` reduce to the
       same scalars.
    """

    def _multi_worker(self):
        """Keras' condition for that reduction: a MultiWorkerMirroredStrategy
        over more than one worker (each worker holds
        ``len(extended.worker_devices)`` of the replicas)."""
        import tensorflow as tf

        strategy = self.distribute_strategy
        return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
            strategy.num_replicas_in_sync > len(strategy.extended.worker_devices)
        )

    def _reducible_logs(self, logs):
        if not self._multi_worker():
            return logs
        return tree.map_structure(lambda v: ops.reshape(v, (1,)), logs)

    def train_step(self, *args, **kwargs):
        return self._reducible_logs(super().train_step(*args, **kwargs))

    def test_step(self, *args, **kwargs):
        return self._reducible_logs(super().test_step(*args, **kwargs))


@keras.saving.register_keras_serializable(package="speechmodel")
class Graph(_DistributionFixes, keras.Model):
    """A plain functional model, ``Graph(inputs, outputs, name=...)``, that
    trains under every ``speechmodel.distribute`` strategy (see
    ``_DistributionFixes``). Used for the auxiliary models (per-segment
    classifiers, attention read-outs); serialised as a functional graph."""


class FunctionalModel(_DistributionFixes, keras.Model):
    """A functional ``keras.Model`` rebuilt from its constructor arguments.

    Subclasses build their graph in ``__init__`` (sections ``# === Layers
    ===``, ``# === Functional Model ===``, ``# === Config ===``), store every
    constructor argument and return them from ``get_config()`` as
    ``config = super().get_config(); config.update({...})``. ``from_config``
    calls the constructor, so a saved ``.keras`` file is rebuilt by the
    class's own code and never by code or layers from the file.

    The functional graph itself is deliberately not part of the config (as
    in keras-hub's ``Backbone``): it is an output of the constructor.
    ``fit`` and ``evaluate`` work under every ``speechmodel.distribute``
    strategy (see ``_DistributionFixes``).
    """

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        if "weights" not in config:
            return cls(**config)
        # A saved model restores its own weights: never fetch or read the
        # initial ones again (offline, or on another machine). The config
        # keeps their name for the record, as ``weights_source``.
        model = cls(**{**config, "weights": None})
        model.weights_source = config["weights"]
        return model
