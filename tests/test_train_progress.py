"""Issue #13, item 3: progress a person can follow. A header per fold and
stage, one line per epoch with the run's elapsed and remaining time (in
the log too), progress of the embedding extraction and no TensorFlow or
Keras noise on stderr are checked on a real train.py run in
tests/test_train_cli.py (the two-stage test); here, the line a resumed run
prints (fold, stage, epoch)."""

import json
import os

import pytest

from tests.paths import RAVDESS

ACTORS = ("01", "02", "03", "04")
TINY = {
    "dataset": {"name": "ravdess", "emotions": ["neutral", "angry"]},
    "protocol": {"name": "kfold", "k": 2, "grouping": "contiguous"},
    "model": {"name": "speechmodel", "backbone": "alexnet_gap", "lstm_units": 4,
              "attention_units": 4, "dense_units": [4], "dropout": 0.3},
    "training": {"mode": "two_stage", "segment_epochs": 1, "segment_batch_size": 16,
                 "epochs": 2, "batch_size": 8, "patience": 0, "reduce_lr_patience": 0},
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("ravdess")
    for actor in ACTORS:
        (root / f"Actor_{actor}").mkdir()
        for f in sorted((RAVDESS / f"Actor_{actor}").glob("03-01-0[15]-01-0[12]-01-*.wav")):
            os.symlink(f, root / f"Actor_{actor}" / f.name)
    return root


class Killed(BaseException):
    pass


def test_a_resumed_run_says_which_fold_stage_and_epoch_it_continues(corpus, tmp_path, monkeypatch, capsys):
    from speechmodel.training import callbacks
    from speechmodel.training.runner import run_experiment

    config = json.loads(json.dumps(TINY))
    config["dataset"]["data_dir"] = str(corpus)
    config["training"].update(segment_epochs=2, embedding_cache=str(tmp_path / "emb"), final_model=False)
    config["output_dir"] = str(tmp_path / "run")
    real = callbacks.AtomicBackupAndRestore.on_epoch_end
    calls = []

    def on_epoch_end(self, epoch, logs=None):
        real(self, epoch, logs)
        calls.append(epoch)
        if len(calls) == 5:  # fold 1: 2 + 2 epochs; fold 2: its first CNN epoch, committed
            raise Killed

    with monkeypatch.context() as m:
        m.setattr(callbacks.AtomicBackupAndRestore, "on_epoch_end", on_epoch_end)
        with pytest.raises(Killed):
            run_experiment(json.loads(json.dumps(config)))
    capsys.readouterr()
    run_experiment(json.loads(json.dumps(config)))
    lines = capsys.readouterr().out.splitlines()
    assert f"Resuming {tmp_path / 'run'}: 1 of 2 folds already finished (fold1)." in lines
    assert "fold 2/2, stage 1/2: resuming at epoch 2/2 (epochs 1-1 restored from the backup)" in lines
    assert not any(l.startswith("fold 2/2, stage 1/2 epoch 1/2") for l in lines)
    assert any(l.startswith("fold 2/2, stage 1/2 epoch 2/2: ") for l in lines)
    assert any(l.startswith("[fold 1/2 fold1]") and l.endswith("(done earlier)") for l in lines)
