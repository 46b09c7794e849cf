"""Issue #13, item 4: after cross-validation, the deployable model trained
on every speaker (RUN_DIR/model.keras, named by metrics.json and the
report), resumable like a fold, never trained twice; --init_from
fine-tunes a saved model on a new label set."""

import json
import os
import random

import numpy as np
import pytest

from tests.paths import small_ravdess

# slow: trains, kills and resumes a run with its final model (left out by -m "not slow").
pytestmark = pytest.mark.slow

ACTORS = ("01", "02", "03", "04")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """16 real files: 4 actors, neutral and angry, two sentences."""
    return small_ravdess(tmp_path_factory.mktemp("ravdess"), ACTORS)


def config(corpus, out, **training):
    return {
        "dataset": {"name": "ravdess", "emotions": ["neutral", "angry"], "data_dir": str(corpus)},
        "protocol": {"name": "kfold", "k": 2, "grouping": "contiguous"},
        "model": {"name": "speechmodel", "backbone": "alexnet_gap", "lstm_units": 4,
                  "attention_units": 4, "dense_units": [4], "dropout": 0.3},
        "training": {"epochs": 2, "batch_size": 8, "patience": 0, "reduce_lr_patience": 1,
                     "cache": "memory", **training},
        "output_dir": str(out),
    }


class Killed(BaseException):
    """A kill: nothing on the way catches it."""


def run(cfg):
    import keras
    import tensorflow as tf

    from speechmodel.training.runner import run_experiment

    keras.utils.clear_session(free_memory=False)
    seed = random.SystemRandom().randrange(2**31)  # what a new process would have
    random.seed(seed)
    np.random.seed(seed % 2**32)
    tf.random.set_seed(seed)
    return run_experiment(json.loads(json.dumps(cfg)), log_to_stdout=False)


def tensorboard_tags(directory, run):
    import tensorflow as tf

    tags = set()
    for path in (directory / "tensorboard" / run).glob("events.out.tfevents*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            tags.update(value.tag for value in event.summary.value)
    return tags


def weights(path):
    import keras

    from speechmodel.inference.loading import load_keras_model

    return [keras.ops.convert_to_numpy(w.value) for w in load_keras_model(str(path)).weights]


def test_the_final_model_is_trained_on_every_speaker_resumes_and_only_once(
    corpus, tmp_path, monkeypatch
):
    from speechmodel.training import backup, report, runner

    # Killed in the final model's second epoch (after its history row,
    # before its backup): the cross-validated results stand, no final model
    # yet. (That a killed fit resumes to the uninterrupted numbers is
    # tests/test_reliability_train.py's; the final model is the same fit.)
    out = tmp_path / "run"
    real = backup.AtomicBackupAndRestore.on_epoch_end
    calls = []

    def on_epoch_end(self, epoch, logs=None):
        calls.append(self.backup_dir)
        if len(calls) == 6:  # 2 folds x 2 epochs, then the final model's
            assert os.sep + "final" + os.sep in self.backup_dir
            raise Killed
        real(self, epoch, logs)

    with monkeypatch.context() as m:
        m.setattr(backup.AtomicBackupAndRestore, "on_epoch_end", on_epoch_end)
        with pytest.raises(Killed):
            run(config(corpus, out))
    cross_validated = json.loads((out / "metrics.json").read_text())
    assert "final_model" not in cross_validated and not (out / "model.keras").exists()
    # Resumed: it continues at the final model's second epoch.
    resumed_at = []

    def record(self, epoch, logs=None):
        resumed_at.append(epoch)
        real(self, epoch, logs)

    with monkeypatch.context() as m:
        m.setattr(backup.AtomicBackupAndRestore, "on_epoch_end", record)
        metrics = run(config(corpus, out))
    assert resumed_at == [1]  # epoch 2 only (0-based 1): epoch 1 came from the backup
    final = metrics["final_model"]
    assert final["path"] == "model.keras"
    # Every speaker trains it; its validation speakers are training
    # speakers of the protocol (none is tested: there is no test).
    assert sorted(final["train_speakers"] + final["val_speakers"]) == list(ACTORS)
    assert final["val_speakers"] and not set(final["val_speakers"]) & set(final["train_speakers"])
    assert final["counts"]["test"] == 0 and final["best_epoch"] in (1, 2)
    folds = json.loads((out / "folds.json").read_text())["folds"]
    for fold in folds:
        assert not set(fold["val_speakers"]) & set(fold["test_speakers"])
    # RUN_DIR/model.keras is the final model, loadable as any deployable one.
    assert (out / "model.keras").read_bytes() == (out / "final" / "model.keras").read_bytes()
    for name in ("result.json", "history.csv", "curves.png", "best.weights.h5"):
        assert (out / "final" / name).is_file(), name
    assert len((out / "final" / "history.csv").read_text().splitlines()) == 3  # header + 2 epochs
    assert report.row(str(out))["deployable_model"] == str(out / "model.keras")
    assert weights(out / "model.keras")
    # TensorBoard: training and validation figures share their names.
    assert {"epoch_loss", "epoch_accuracy", "epoch_uar"} <= tensorboard_tags(out / "final", "train")
    assert {"epoch_loss", "epoch_accuracy", "epoch_uar"} <= tensorboard_tags(out / "final", "validation")

    # A rerun of the finished run trains nothing, the final model included.
    def no_training(*args, **kwargs):
        raise AssertionError("a finished run trains nothing again")

    with monkeypatch.context() as m:
        m.setattr(runner, "run_deep_fold", no_training)
        again = run(config(corpus, out))
    assert again["final_model"]["path"] == "model.keras"
    assert (out / "model.keras").is_file()


def test_no_final_model_for_one_fold_protocols_or_when_skipped(corpus):
    from speechmodel.training import folds as F
    from speechmodel.training.config import resolve

    cfg = resolve(config(corpus, "unused"))
    manifest, test_manifest, _ = F.load_manifests(cfg)
    folds = F.make_protocol_folds(cfg, manifest, test_manifest)
    final = F.final_fold(cfg, manifest, folds)
    assert final.name == "final" and not final.test and final.val
    assert set(final.train_speakers) | set(final.val_speakers) == set(ACTORS)
    cfg["training"]["final_model"] = False
    assert F.final_fold(cfg, manifest, folds) is None
    cfg["training"]["final_model"] = True
    assert F.final_fold(cfg, manifest, folds[:1]) is None


def test_a_classical_run_ends_with_its_final_model(corpus, tmp_path):
    out = tmp_path / "svm"
    cfg = config(corpus, out)
    cfg["model"] = {"name": "svm"}
    cfg["training"] = {"classical": {"n_jobs": 1}}
    metrics = run(cfg)
    assert metrics["final_model"]["path"] == "model.skz"
    assert (out / "model.skz").read_bytes() == (out / "final" / "model.skz").read_bytes()
    from speechmodel.classical import persistence

    model = persistence.load_model(str(out / "model.skz"))
    assert list(model.class_names) == ["neutral", "angry"]
    # Its progress: the features, each grid candidate, the choice.
    log = (out / "train.log").read_text()
    assert "fold 1/2: statistics features: 16/16 files done (" in log
    assert "fold 2/2: grid search 1/3 candidates: C=1.0, gamma=scale -> inner UAR " in log
    assert "final model: grid search 3/3 candidates: " in log and "final model: chose C=" in log


def test_init_from_fine_tunes_the_shipped_model_on_a_new_label_set(corpus, tmp_path):
    out = tmp_path / "fine-tuned"
    cfg = config(corpus, out, init_from="fast", epochs=1)
    cfg["protocol"] = {"name": "holdout", "holdout_speakers": ["01"], "val_speakers": ["04"]}
    metrics = run(cfg)
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"] == {"name": "speechmodel", "backbone": "cnn4"}
    assert saved["training"]["init_from"] == "fast"
    from speechmodel.inference.loading import load_keras_model

    model = load_keras_model(str(out / "model.keras"))
    assert model.class_names == ["neutral", "angry"] and model.output_shape[-1] == 2
    assert 0 <= metrics["uar"] <= 1
    log = (out / "train.log").read_text()
    assert "Fine-tuning " in log and "fast.keras on a new label set: neutral, angry" in log
