"""Issue #13, item 3: progress a person can follow. A header per fold and
stage, one line per epoch with the run's elapsed and remaining time (in
the log too), progress of the embedding extraction, a line when a run
resumes (fold, stage, epoch), and no TensorFlow or Keras noise on
stderr."""

import json
import os
import subprocess
import sys

import pytest

from tests.paths import REPO, RAVDESS

ACTORS = ("01", "02", "03", "04")
TINY = {
    "dataset": {"name": "ravdess", "emotions": ["neutral", "angry"]},
    "protocol": {"name": "kfold", "k": 2, "grouping": "contiguous"},
    "model": {"name": "speechmodel", "backbone": "alexnet_gap", "lstm_units": 4,
              "attention_units": 4, "dense_units": [4], "dropout": 0.3},
    "training": {"mode": "two_stage", "segment_epochs": 1, "segment_batch_size": 16,
                 "epochs": 2, "batch_size": 8, "patience": 0, "reduce_lr_patience": 0},
}
NOISE = ("Local rendezvous", "OUT_OF_RANGE", "ran out of data", "retracing", "oneDNN",
         "`shuffle=True` was passed", "Type inference failed", "tensorflow/core")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("ravdess")
    for actor in ACTORS:
        (root / f"Actor_{actor}").mkdir()
        for f in sorted((RAVDESS / f"Actor_{actor}").glob("03-01-0[15]-01-0[12]-01-*.wav")):
            os.symlink(f, root / f"Actor_{actor}" / f.name)
    return root


def test_train_py_says_where_it_is_and_nothing_else(corpus, tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(dict(TINY, training=dict(TINY["training"], embedding_cache=str(tmp_path / "emb")))))
    out = tmp_path / "run"
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # train.py quiets TensorFlow itself
    result = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "--config", str(config), "--data_dir", str(corpus),
         "--output_dir", str(out), "--nofinal_model"],
        capture_output=True, text=True, timeout=900, cwd=REPO, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    for fold in ("1/2", "2/2"):
        assert f"fold {fold}, stage 1/2: CNN on segments, 1 epoch (batches of 16 segments)" in lines
        assert any(l.startswith(f"fold {fold}, stage 2/2: segment embeddings (cached in ") for l in lines)
        assert f"fold {fold}, stage 2/2: train embeddings: 4/4 files done" in "\n".join(lines)
        [stage1] = [l for l in lines if l.startswith(f"fold {fold}, stage 1/2 epoch 1/1: loss ")]
        head = [l for l in lines if l.startswith(f"fold {fold}, stage 2/2 head epoch ")]
        assert [l.split(":")[0][-3:] for l in head] == ["1/2", "2/2"]
        for line in [stage1, *head]:
            assert " | run: " in line and " elapsed" in line
        assert "val_uar " in head[0] and "uar " in head[0]
    assert lines[-1].startswith("No deployable model: the final model was skipped (--nofinal_model)")
    assert "about" in "\n".join(lines) and "left" in "\n".join(lines)
    # The log has the same lines; stderr has no noise.
    log = (out / "train.log").read_text()
    assert "fold 2/2, stage 2/2 head epoch 2/2: " in log
    noise = [l for l in result.stderr.splitlines() if any(n in l for n in NOISE)]
    assert noise == [], noise[:5]


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
