import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from speechmodel import distribute
from speechmodel.tests.test_case import TestCase

REPO = Path(__file__).resolve().parents[1]

# One training run under a strategy: a small SpeechModel fitted for two
# epochs on seeded random batches, then its per-segment classifier for one;
# writes the losses and a digest of the weights.
WORKER = textwrap.dedent(
    """
    import json, os, sys
    strategy_name, out_path = sys.argv[1], sys.argv[2]
    from speechmodel import distribute
    if strategy_name == "mirrored":
        distribute.set_logical_cpu_devices(2)
    import keras
    import numpy as np
    import tensorflow as tf
    from speechmodel.models import SpeechModel

    keras.utils.set_random_seed(0)
    strategy = distribute.get_strategy(strategy_name)
    global_batch, lr = distribute.scale_batch_and_lr(2, 0.01, strategy)
    rng = np.random.RandomState(0)
    n = 2 * global_batch
    mask = np.ones((n, 3), bool)
    mask[::2, 2] = False
    x = {"segments": rng.rand(n, 3, 64, 64, 3).astype("float32"), "mask": mask}
    y = rng.randint(0, 3, n).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(global_batch)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    ds = ds.with_options(options)
    with strategy.scope():
        model = SpeechModel(num_classes=3, backbone="alexnet_gap", lstm_units=8,
                            attention_units=8, dense_units=[8], dropout=0.0)
        model.compile(optimizer=keras.optimizers.SGD(lr),
                      loss="sparse_categorical_crossentropy")
    history = model.fit(ds, epochs=2, verbose=0)
    # The per-segment classifier of two-stage training (a plain graph).
    with strategy.scope():
        classifier = model.segment_encoder.segment_classifier(3)
        classifier.compile(optimizer=keras.optimizers.SGD(lr),
                           loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    segments = tf.data.Dataset.from_tensor_slices(
        (x["segments"][mask], np.repeat(y, mask.sum(1)))
    ).batch(global_batch).with_options(options)
    segment_history = classifier.fit(segments, epochs=1, verbose=0)
    digest = float(sum(np.abs(np.asarray(w, "float64")).sum() for w in model.weights))
    with open(out_path, "w") as f:
        json.dump({"replicas": strategy.num_replicas_in_sync,
                   "loss": history.history["loss"] + segment_history.history["loss"],
                   "digest": digest}, f)
    """
)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


class DistributeTest(TestCase):
    def _script(self):
        path = os.path.join(self.get_temp_dir(), "worker.py")
        with open(path, "w") as f:
            f.write(WORKER)
        return path

    def test_mirrored_over_two_logical_cpus(self):
        out = os.path.join(self.get_temp_dir(), "mirrored.json")
        result = subprocess.run(
            [sys.executable, self._script(), "mirrored", out],
            env=_env(), capture_output=True, text=True, timeout=300,
        )
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        report = json.load(open(out))
        self.assertEqual(report["replicas"], 2)
        self.assertTrue(np.all(np.isfinite(report["loss"])), report)

    def test_multiworker_over_two_processes(self):
        script = self._script()
        tmp = self.get_temp_dir()
        ports = [_free_port(), _free_port()]
        cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
        procs, outs = [], []
        for index in range(2):
            out = os.path.join(tmp, f"worker{index}.json")
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            outs.append(out)
            procs.append(subprocess.Popen(
                [sys.executable, script, "multiworker", out],
                env=_env(TF_CONFIG=tf_config),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            ))
        errors = []
        try:
            for proc in procs:
                _, stderr = proc.communicate(timeout=300)
                errors.append(stderr[-3000:])
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        for proc, err in zip(procs, errors):
            self.assertEqual(proc.returncode, 0, err)
        reports = [json.load(open(out)) for out in outs]
        for report in reports:
            self.assertEqual(report["replicas"], 2)
            self.assertTrue(np.all(np.isfinite(report["loss"])), report)
        # Synchronous training: the same losses and weights on both workers.
        np.testing.assert_allclose(reports[0]["loss"], reports[1]["loss"], rtol=1e-6)
        np.testing.assert_allclose(reports[0]["digest"], reports[1]["digest"], rtol=1e-6)

    def test_scale_batch_and_lr(self):
        self.assertEqual(distribute.scale_batch_and_lr(16, 1e-4, 4), (64, 4e-4))
        strategy = distribute.get_strategy("default")
        self.assertEqual(strategy.num_replicas_in_sync, 1)
        self.assertEqual(distribute.scale_batch_and_lr(8, 0.1, strategy), (8, 0.1))
        with pytest.raises(ValueError, match="Received: per_replica_batch=0"):
            distribute.scale_batch_and_lr(0, 0.1, 2)
        with pytest.raises(ValueError, match="Received: base_lr=0"):
            distribute.scale_batch_and_lr(4, 0, 2)

    def test_invalid_arguments(self):
        with pytest.raises(ValueError, match="Received: name='tpu'"):
            distribute.get_strategy("tpu")
        monkeypatch = pytest.MonkeyPatch()
        self.addCleanup(monkeypatch.undo)
        monkeypatch.delenv("TF_CONFIG", raising=False)
        with pytest.raises(ValueError, match="TF_CONFIG unset"):
            distribute.get_strategy("multiworker")
        monkeypatch.setenv("TF_CONFIG", "{not json")
        with pytest.raises(ValueError, match="Received: TF_CONFIG="):
            distribute.get_strategy("multiworker")
        with pytest.raises(ValueError, match="Received: count=0"):
            distribute.set_logical_cpu_devices(0)
