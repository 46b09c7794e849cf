"""Issue #12 in training: the six files in a training set; a run killed at
several points (and stopped by a full disk) and resumed gives exactly the
numbers of an uninterrupted run, in both modes and both stages; results
appear together or not at all; one run at a time per directory.

A kill is simulated in-process by an exception that nothing catches
(``Killed``), raised at chosen points; the process state that a real kill
would lose (global random generators, Keras' session) is scrambled before
each resume, so only what is on disk carries over.
"""

import json
import os
import random
import shutil
import stat

import numpy as np
import pytest

from tests import reliability_files as rf
from tests.paths import RAVDESS, require

# slow: kills trainings and resumes them (left out by -m "not slow").
pytestmark = pytest.mark.slow

ACTORS = ("01", "02", "03", "04")
# Six generated files among actor 02's and 03's (training speakers), as
# strong-intensity "angry" takes: their names say RAVDESS, their content is
# one of the six cases.
SIX_NAMES = {
    "fmt20": "Actor_02/03-01-05-02-01-01-02.wav",
    "list_first": "Actor_02/03-01-05-02-02-01-02.wav",
    "odd_chunk": "Actor_02/03-01-05-02-01-02-02.wav",
    "stray_bytes": "Actor_03/03-01-05-02-01-01-03.wav",
    "trailing_chunk": "Actor_03/03-01-05-02-02-01-03.wav",
    "corrupt_flac": "Actor_03/03-01-05-02-01-02-03.wav",
}


def base_config(corpus, out, **training):
    return {
        "dataset": {"name": "ravdess", "emotions": ["neutral", "angry"], "data_dir": str(corpus)},
        "protocol": {"name": "holdout", "holdout_speakers": ["01"], "val_speakers": ["04"]},
        "model": {"name": "speechmodel", "backbone": "alexnet_gap", "lstm_units": 4,
                  "attention_units": 4, "dense_units": [4], "dropout": 0.3},
        "training": {"epochs": 2, "batch_size": 8, "patience": 0, "reduce_lr_patience": 1,
                     "cache": "memory", **training},
        "output_dir": str(out),
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """16 real files (4 actors, neutral and angry, two sentences) and the
    six generated ones."""
    root = tmp_path_factory.mktemp("ravdess")
    require(RAVDESS)
    for actor in ACTORS:
        (root / f"Actor_{actor}").mkdir()
        for f in sorted((RAVDESS / f"Actor_{actor}").glob("03-01-0[15]-01-0[12]-01-*.wav")):
            os.symlink(f, root / f"Actor_{actor}" / f.name)
    rf.write_six(root, SIX_NAMES)
    assert len(list(root.glob("Actor_*/*.wav"))) == 22
    return root


class Killed(BaseException):
    """A kill: not an Exception, so no handler on the way catches it."""


def fresh_process():
    """What a new process would start from: no Keras session, unrelated
    global random states."""
    import keras
    import tensorflow as tf

    keras.utils.clear_session(free_memory=False)
    seed = random.SystemRandom().randrange(2**31)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    tf.random.set_seed(seed)


def run(config):
    from speechmodel.training.runner import run_experiment

    fresh_process()
    return run_experiment(json.loads(json.dumps(config)), log_to_stdout=False)


def kill_at_backup(monkeypatch, call, *, before_commit):
    """Kills at the ``call``-th epoch commit of the backup callback, before
    it (the epoch's history row and monitor state are written, the backup
    is not) or right after it."""
    from speechmodel.training import backup

    real = backup.AtomicBackupAndRestore.on_epoch_end
    calls = []

    def on_epoch_end(self, epoch, logs=None):
        calls.append(epoch)
        if len(calls) == call and before_commit:
            raise Killed
        real(self, epoch, logs)
        if len(calls) == call:
            raise Killed

    monkeypatch.setattr(backup.AtomicBackupAndRestore, "on_epoch_end", on_epoch_end)


def kill_at_switch(monkeypatch, directory):
    """Kills when the results of ``directory`` are about to become visible
    (everything staged, the one rename not done)."""
    from speechmodel.training import artifacts

    real = artifacts._replace_with_link
    target = os.path.join(str(directory), artifacts.RESULTS_LINK)

    def switch(source, link):
        if link == target:
            raise Killed
        real(source, link)

    monkeypatch.setattr(artifacts, "_replace_with_link", switch)


def outcome(run_dir):
    """Everything a resume must reproduce (not the timings)."""
    run_dir = str(run_dir)
    fold = json.load(open(os.path.join(run_dir, "folds", "holdout", "result.json")))
    for key in ("seconds", "fit_seconds", "seconds_per_epoch", "stage1_seconds_per_epoch",
                "head_seconds_per_epoch", "extract_seconds", "train_embeddings_cached",
                "val_embeddings_cached"):
        fold.pop(key, None)
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    metrics.pop("seconds")
    for f in metrics["folds"]:
        f.pop("seconds")
    return {
        "fold": fold,
        "metrics": metrics,
        "predictions": open(os.path.join(run_dir, "predictions.csv")).read(),
        "history": open(os.path.join(run_dir, "folds", "holdout", "history.csv")).read(),
    }


def visible(run_dir, *names):
    present = [os.path.exists(os.path.join(str(run_dir), n)) for n in names]
    assert len(set(present)) == 1, dict(zip(names, present))  # all or none
    return present[0]


def test_end_to_end_killed_and_resumed_gives_the_uninterrupted_numbers(corpus, tmp_path, monkeypatch):
    from speechmodel.training import callbacks
    from speechmodel.training.folds import RunError

    # Augmentation on the waveform, the segments and the batch (mixup):
    # each must be the same in an epoch run again.
    augment = {"noise": {}, "specaugment": {}, "mixup": {}}
    reference = tmp_path / "reference"
    run(base_config(corpus, reference, augment=augment))
    expected = outcome(reference)
    fold = expected["fold"]
    # The six generated files were in training: five used, the FLAC reported.
    assert fold["counts"]["train"] == 14 and len(fold["failed_files"]) == 1
    [[path, reason]] = fold["failed_files"]
    assert path.endswith(SIX_NAMES["corrupt_flac"]) and reason.startswith("corrupt audio file")
    assert len(expected["history"].splitlines()) == 3  # header + 2 epochs

    out = tmp_path / "resumed"
    config = base_config(corpus, out, augment=augment)
    # 1. Killed after epoch 1's history row, before its backup.
    with monkeypatch.context() as m:
        kill_at_backup(m, 2, before_commit=True)
        with pytest.raises(Killed):
            run(config)
    history = out / "folds" / "holdout" / "history.csv"
    assert len(history.read_text().splitlines()) == 3
    # 2. The disk is full when epoch 1 (run again) ends: one clear line,
    # the committed row kept.
    real_usage = shutil.disk_usage
    checks = []

    def usage(path):
        checks.append(path)
        total, used, free = real_usage(path)
        return type(real_usage(path))(total, used, free if len(checks) < 3 else 1024)

    with monkeypatch.context() as m:
        m.setattr(callbacks.shutil, "disk_usage", usage)
        with pytest.raises(RunError) as info:
            run(config)
    message = str(info.value)
    assert message.startswith(f"No space left on device while writing {out / 'folds' / 'holdout'}")
    assert "run the same command again to resume" in message and "\n" not in message
    assert history.read_text().splitlines() == expected["history"].splitlines()[:2]
    # 3. Killed as the run's files are published (the fold's are): none of
    # them visible. (The fold's files are published the same way.)
    with monkeypatch.context() as m:
        kill_at_switch(m, out)
        with pytest.raises(Killed):
            run(config)
    assert visible(out / "folds" / "holdout", "result.json", "model.keras", "curves.png")
    assert not visible(out, "metrics.json", "predictions.csv", "confusion.png", "model.keras")
    # 4. Resumed to the end: the numbers of the uninterrupted run.
    run(config)
    assert visible(out, "metrics.json", "predictions.csv", "confusion.png", "model.keras")
    assert outcome(out) == expected
    # Every file of the run directory has the same mode.
    modes = {
        p.name: stat.S_IMODE(p.stat().st_mode)
        for p in out.iterdir()
        if p.is_file() and not p.name.startswith(".")
    }
    assert set(modes.values()) == {0o666 & ~_umask()}, modes


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_two_stage_killed_in_each_stage_gives_the_uninterrupted_numbers(corpus, tmp_path, monkeypatch):
    training = {"mode": "two_stage", "segment_epochs": 2, "segment_batch_size": 16,
                "augment": {"noise": {}, "specaugment": {}}}
    reference = tmp_path / "reference"
    run(base_config(corpus, reference, embedding_cache=str(tmp_path / "emb-reference"), **training))
    expected = outcome(reference)

    out = tmp_path / "resumed"
    config = base_config(corpus, out, embedding_cache=str(tmp_path / "emb-resumed"), **training)
    # Stage 1 killed right after its first epoch's backup.
    with monkeypatch.context() as m:
        kill_at_backup(m, 1, before_commit=False)
        with pytest.raises(Killed):
            run(config)
    assert not (out / "folds" / "holdout" / "stage1.weights.h5").exists()
    # Stage 1 resumes at its epoch 1 and ends; the head (stage 3) is killed
    # after its epoch 1's history row, before its backup.
    with monkeypatch.context() as m:
        kill_at_backup(m, 3, before_commit=True)
        with pytest.raises(Killed):
            run(config)
    assert (out / "folds" / "holdout" / "stage1.weights.h5").exists()
    # The run said where it resumed (issue #13: fold, stage and epoch).
    log = (out / "train.log").read_text()
    assert "fold 1/1 (holdout), stage 1/2: resuming at epoch 2/2 (epochs 1-1 restored from the backup)" in log, log
    run(config)
    assert outcome(out) == expected


def test_a_second_run_into_the_same_directory_is_told_who_holds_it(corpus, tmp_path):
    from speechmodel.training import artifacts
    from speechmodel.training.folds import RunError
    from speechmodel.training.runner import run_experiment

    out = tmp_path / "run"
    out.mkdir()
    with artifacts.lock_directory(out, purpose="train.py run"):
        with pytest.raises(RunError) as info:
            run_experiment(base_config(corpus, out), log_to_stdout=False)
    assert str(info.value).startswith(f"{out} is in use by another train.py run (process {os.getpid()} on ")
    assert sorted(p.name for p in out.iterdir()) == []  # nothing written


def test_a_finished_fold_with_damaged_files_is_trained_again_whole(corpus, tmp_path, caplog):
    import logging

    out = tmp_path / "run"
    config = base_config(corpus, out, epochs=1)
    config["training"]["final_model"] = False
    run(config)
    expected = outcome(out)
    fold = out / "folds" / "holdout"
    (fold / "history.csv").write_text("N\n")  # Damaged: a bogus header alone.
    with caplog.at_level(logging.WARNING):
        run(config)
    [line] = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert line.startswith("fold 1/1 (holdout): history.csv is damaged (its header does not start with 'epoch')")
    assert f"set aside as {fold}.damaged" in line and "trained again (every file rebuilt)" in line
    assert (out / "folds" / "holdout.damaged" / "history.csv").read_text() == "N\n"
    assert outcome(out) == expected  # Rebuilt whole: the same history, the same numbers.
