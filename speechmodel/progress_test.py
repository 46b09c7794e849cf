import numpy as np

import keras

from speechmodel.training.backup import AtomicBackupAndRestore
from speechmodel.progress import (
    CountProgress,
    EpochProgress,
    Reporter,
    RunProgress,
    format_seconds,
)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_format_seconds():
    assert format_seconds(7.2) == "7s"
    assert format_seconds(125) == "2m05s"
    assert format_seconds(3725) == "1h02m"
    assert format_seconds(-3) == "0s"


def test_time_left_is_the_planned_epochs_at_the_measured_pace_of_their_kind():
    clock = Clock()
    run = RunProgress(clock=clock)
    run.plan(("fold1", "stage1"), 4, "stage1")
    run.plan(("fold1", "head"), 10, "head")
    run.plan(("fold2", "stage1"), 4, "stage1")
    assert run.left() is None  # nothing measured yet
    run.epoch_done(("fold1", "stage1"), 10.0)
    run.epoch_done(("fold1", "stage1"), 20.0)
    # 2 + 4 stage-1 epochs left at 15 s; 10 head epochs at the overall 15 s.
    assert run.left() == 6 * 15 + 10 * 15
    run.epoch_done(("fold1", "stage1"), 15.0)
    run.epoch_done(("fold1", "stage1"), 15.0)
    run.epoch_done(("fold1", "head"), 1.0)
    run.finish(("fold1", "head"))  # early stopping: no head epoch left
    assert run.left() == 4 * 15
    run.resume(("fold2", "stage1"), 3)  # three committed by an earlier attempt
    assert run.left() == 15
    clock.now = 125
    assert run.summary() == "run: 2m05s elapsed, about 15s left"


def _data():
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    return x, (x[:, 0] > 0).astype("int32")


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_one_line_per_epoch_with_the_run_figures_and_a_resume_line(tmp_path):
    x, y = _data()
    lines = []
    reporter = Reporter(lines.append)
    _model().fit(
        x, y, batch_size=8, epochs=2, verbose=0,
        callbacks=[AtomicBackupAndRestore(tmp_path / "backup", delete_on_end=False),
                   reporter.fit("fold 1/2, stage 1/2", 2, key="a")],
    )
    assert [line.split(":")[0] for line in lines] == ["fold 1/2, stage 1/2 epoch 1/2"] * 1 + [
        "fold 1/2, stage 1/2 epoch 2/2"
    ]
    assert "loss " in lines[0] and "accuracy " in lines[0] and "run: " in lines[0]
    assert lines[-1].endswith("nearly done")

    # The same fit for 4 epochs resumes after the 2 committed ones: said once.
    lines.clear()
    reporter = Reporter(lines.append)
    _model().fit(
        x, y, batch_size=8, epochs=4, verbose=0,
        callbacks=[AtomicBackupAndRestore(tmp_path / "backup", delete_on_end=False),
                   reporter.fit("fold 1/2, stage 1/2", 4, key="a")],
    )
    assert lines[0] == "fold 1/2, stage 1/2: resuming at epoch 3/4 (epochs 1-2 restored from the backup)"
    assert [line.split(":")[0] for line in lines[1:]] == [
        "fold 1/2, stage 1/2 epoch 3/4", "fold 1/2, stage 1/2 epoch 4/4"
    ]


def test_early_stopping_is_said_and_drops_the_rest_of_the_plan():
    x, y = _data()
    lines = []
    reporter = Reporter(lines.append)
    reporter.plan("later", 5, "epoch")
    stop = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: setattr(model, "stop_training", epoch == 1)
    )
    model = _model()
    model.fit(x, y, batch_size=8, epochs=10, verbose=0,
              callbacks=[stop, reporter.fit("final model", 10, key="f")])
    assert lines[-1] == "final model: early stopping after epoch 2/10"
    fits = reporter.run.fits
    assert fits["f"]["epochs"] == fits["f"]["done"] == 2 and fits["later"]["epochs"] == 5


def test_the_bar_is_drawn_within_the_epoch_and_gives_way_to_the_line(capsys):
    x, y = _data()
    lines = []
    callback = EpochProgress("fold 1/1", 2, say=lines.append, bar=True)
    _model().fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[callback])
    out = capsys.readouterr().out
    assert "1/4" in out and out.endswith("\r\x1b[K")  # a bar of 4 batches, wiped at the end
    assert len(lines) == 2


def test_count_progress_lines_without_a_terminal():
    clock = Clock()
    lines = []
    count = CountProgress("fold 1/6: features", 100, say=lines.append, every=30, clock=clock)
    clock.now = 10
    count.update(10)
    assert lines == []  # not yet 30 s since the last line
    clock.now = 40
    count.update(40)
    assert lines == ["fold 1/6: features: 40/100 files (40s, about 1m00s left)"]
    clock.now = 100
    count.update(100)
    count.close()
    assert lines[-1] == "fold 1/6: features: 100/100 files done (1m40s)"
    silent = CountProgress("nothing", 0, say=lines.append)
    silent.close()
    assert len(lines) == 2


def test_count_progress_rate():
    clock = Clock()
    lines = []
    count = CountProgress("analysing", 100, say=lines.append, every=5, rate=True, clock=clock)
    clock.now = 8
    count.update(20)
    assert lines == ["analysing: 20/100 files (2.5 files/s, 8s, about 32s left)"]
    clock.now = 40
    count.update(100)
    count.close()
    assert lines[-1] == "analysing: 100/100 files done (2.5 files/s, 40s)"
