"""train.py end to end on a small slice of the real RAVDESS files."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.paths import REPO, RAVDESS, require

# slow: runs train.py trainings end to end (left out by -m "not slow").
pytestmark = pytest.mark.slow

ACTORS = ("01", "02", "03", "04")
TINY = {
    "description": "test-sized: 4 actors, 4 emotions, 2 speaker folds",
    "dataset": {"name": "ravdess", "emotions": ["neutral", "happy", "sad", "angry"]},
    "protocol": {"name": "kfold", "k": 2, "grouping": "contiguous"},
    "model": {"name": "speechmodel", "backbone": "alexnet_gap", "lstm_units": 8,
              "attention_units": 8, "dense_units": [8], "dropout": 0.1},
    "training": {"epochs": 2, "batch_size": 8, "patience": 0, "reduce_lr_patience": 0},
}
# What must never reach a user's stderr during training.
NOISE = ("Local rendezvous", "OUT_OF_RANGE", "ran out of data", "retracing", "oneDNN",
         "`shuffle=True` was passed", "Type inference failed", "tensorflow/core")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Actors 1-4, emotions neutral/happy/sad/angry, normal intensity:
    32 real files, linked in the official layout."""
    root = tmp_path_factory.mktemp("ravdess")
    require(RAVDESS)
    for actor in ACTORS:
        (root / f"Actor_{actor}").mkdir()
        for f in sorted((RAVDESS / f"Actor_{actor}").glob("03-01-0[1345]-01-01-*.wav")):
            os.symlink(f, root / f"Actor_{actor}" / f.name)
    assert len(list(root.glob("Actor_*/*.wav"))) == 32
    return root


def train_command(corpus, out, config, *extra):
    return [sys.executable, str(REPO / "train.py"), "--config", str(config),
            "--data_dir", str(corpus), "--output_dir", str(out), *extra]


def run(cmd, timeout=900):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)


def layout(run_dir):
    # Hidden entries (the .results-* folders behind the result links, the
    # lock) are the run's machinery, not its layout.
    return sorted(
        str(p.relative_to(run_dir)) for p in Path(run_dir).rglob("*")
        if p.is_file() and "tensorboard" not in p.parts and "backup" not in p.parts
        and p.name != "train.log"
        and not any(part.startswith(".") for part in p.relative_to(run_dir).parts)
    )


def test_end_to_end_artifacts_and_speaker_independence(corpus, tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    out = tmp_path / "run"
    # The final model trained after the folds: tests/test_final_model.py.
    result = run(train_command(corpus, out, config, "--nofinal_model"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[fold 1/2 fold1]" in result.stdout and "running mean UAR" in result.stdout
    for name in ("config.json", "metrics.json", "predictions.csv", "confusion.png",
                 "folds.json", "manifest.csv", "train.log"):
        assert (out / name).is_file(), name
    for fold in ("fold1", "fold2"):
        for name in ("history.csv", "curves.png", "model.keras", "result.json", "best.weights.h5"):
            assert (out / "folds" / fold / name).is_file(), (fold, name)
        assert any((out / "folds" / fold / "tensorboard").rglob("events.out.tfevents*"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["uar"] <= 1 and 0 <= metrics["wa"] <= 1
    assert metrics["n"] == 32 and len(metrics["folds"]) == 2
    assert set(metrics["per_class_recall"]) == {"neutral", "happy", "sad", "angry"}
    assert metrics["speaker_independent"] is True
    resolved = json.loads((out / "config.json").read_text())
    assert resolved["training"]["epochs"] == 2 and resolved["dataset"]["data_dir"] == str(corpus)

    # No test speaker in training or validation, in the folds and in the
    # predictions (every test utterance predicted once, by its own fold).
    folds = json.loads((out / "folds.json").read_text())["folds"]
    with open(out / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 32 and len({r["file"] for r in rows}) == 32
    for fold in folds:
        test = set(fold["test_speakers"])
        assert not test & set(fold["train_speakers"]) and not test & set(fold["val_speakers"])
        assert {r["speaker"] for r in rows if r["fold"] == fold["name"]} == test
    for r in rows:
        probabilities = [float(r[f"p_{c}"]) for c in ("neutral", "happy", "sad", "angry")]
        assert abs(sum(probabilities) - 1) < 1e-3

    # The fold model is a deployable recognizer: loads in safe mode.
    import keras

    from speechmodel.models import registry

    registry.import_classes()  # Keras knows the classes of a file once imported, as infer.py does

    model = keras.saving.load_model(out / "folds" / "fold1" / "model.keras", safe_mode=True)
    assert model.class_names == ["neutral", "happy", "sad", "angry"]

    # The results table is made from the run directory alone.
    table_md, table_json = tmp_path / "table.md", tmp_path / "table.json"
    report = run([sys.executable, "-m", "speechmodel.training.report", str(out),
                  "--markdown", str(table_md), "--json", str(table_json)])
    assert report.returncode == 0, report.stderr[-3000:]
    [row] = json.loads(table_json.read_text())
    assert row["uar"] == metrics["uar"] and row["wa"] == metrics["wa"] and row["folds"] == 2
    val = [f["val_uar"] for f in metrics["folds"]]
    assert None not in val and row["val_uar_mean"] == pytest.approx(sum(val) / 2)
    header, _, line, *notes = table_md.read_text().splitlines()
    assert all(n.startswith("| calibration: ") for n in notes), notes  # its ECE row
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[0].startswith("speechmodel (alexnet_gap, end_to_end, 2 epochs)")
    assert cells[4] == f"{100 * metrics['uar']:.2f}" and cells[5] == f"{100 * metrics['wa']:.2f}"
    assert cells[7] == f"{100 * row['val_uar_mean']:.2f}" and "validation UAR" in header
    missing = run([sys.executable, "-m", "speechmodel.training.report", str(tmp_path / "nothing")])
    assert missing.returncode == 2 and "no metrics.json" in missing.stderr
    # An unfinished run among finished ones is skipped with a warning.
    both = run([sys.executable, "-m", "speechmodel.training.report", str(tmp_path / "nothing"), str(out)])
    assert both.returncode == 0 and "skipping" in both.stderr and "no metrics.json" in both.stderr
    # Header, rule, the finished run (and its calibration row).
    assert [l.split("|")[1].strip()[:12] for l in both.stdout.splitlines()[2:]] == [
        cells[0][:12], "calibration:"]

    # A rerun of the same command finds every fold done.
    again = run(train_command(corpus, out, config, "--nofinal_model"))
    assert again.returncode == 0 and again.stdout.count("done earlier") == 2
    assert f"Resuming {out}: 2 of 2 folds already finished (fold1, fold2)." in again.stdout.splitlines()


def test_killed_run_resumes_to_the_same_layout(corpus, tmp_path):
    config = tmp_path / "tiny.json"
    slow = json.loads(json.dumps(TINY))
    slow["protocol"] = {"name": "holdout", "holdout_speakers": ["01"], "val_speakers": ["04"]}
    slow["training"]["epochs"] = 3
    config.write_text(json.dumps(slow))
    out = tmp_path / "run"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    command = train_command(corpus, out, config)
    proc = subprocess.Popen(command, cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = out / "folds" / "holdout" / "history.csv"
    deadline = time.time() + 600
    while time.time() < deadline:  # a real SIGKILL after the first epoch
        if history.exists() and len(history.read_text().splitlines()) >= 2:
            break
        if proc.poll() is not None:
            pytest.fail("the run ended before it could be killed")
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "metrics.json").exists()
    assert not (out / "folds" / "holdout" / "result.json").exists()

    resumed = run(command)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    epochs = [int(float(row["epoch"])) for row in csv.DictReader(history.open())]
    assert sorted(set(epochs)) == [0, 1, 2] and len(epochs) <= 3 + 1  # continued, not restarted
    assert (out / "metrics.json").exists()
    # One fold: its model is the run's deployable model.keras.
    assert layout(out) == sorted(
        ["config.json", "metrics.json", "predictions.csv", "confusion.png", "folds.json", "manifest.csv",
         "model.keras"]
        + [f"{f}/{n}" for f in ("folds/holdout",) for n in
           ("history.csv", "curves.png", "model.keras", "result.json", "best.weights.h5", "monitor.json")]
    )


def test_missing_data_dir_says_how_to_get_the_corpus(tmp_path):
    result = run([sys.executable, str(REPO / "train.py"), "--dataset", "ravdess",
                  "--data_dir", str(tmp_path / "nowhere"), "--output_dir", str(tmp_path / "run")])
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert "python -m speechmodel.datasets.download ravdess" in result.stderr


def test_two_stage_mode_and_a_classical_model_write_the_same_artifacts(corpus, tmp_path):
    config = tmp_path / "tiny.json"
    two_stage = json.loads(json.dumps(TINY))
    two_stage["training"].update(mode="two_stage", segment_epochs=1, embedding_cache=str(tmp_path / "emb"))
    config.write_text(json.dumps(two_stage))
    out = tmp_path / "two_stage"
    # As a user runs it: train.py quiets TensorFlow itself.
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    result = subprocess.run(train_command(corpus, out, config, "--nofinal_model"), capture_output=True,
                            text=True, timeout=900, cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    # Progress a person can follow (issue #13): a header per fold and stage,
    # one line per epoch with the run's elapsed and remaining time, the
    # embedding extraction's progress; the same lines in train.log; no
    # TensorFlow or Keras noise on stderr.
    lines = result.stdout.splitlines()
    for f in ("1/2", "2/2"):
        assert any(l.startswith(f"fold {f}, stage 1/2: CNN on segments, 1 epoch (batches of ") for l in lines), lines
        assert any(l.startswith(f"fold {f}, stage 2/2: segment embeddings (cached in ") for l in lines)
        assert any(l.startswith(f"fold {f}, stage 2/2: train embeddings: ") and " files done" in l for l in lines)
        [stage1] = [l for l in lines if l.startswith(f"fold {f}, stage 1/2 epoch 1/1: loss ")]
        head = [l for l in lines if l.startswith(f"fold {f}, stage 2/2 head epoch ")]
        assert [l.split(":")[0][-3:] for l in head] == ["1/2", "2/2"]
        for line in [stage1, *head]:
            assert " | run: " in line and " elapsed" in line
        assert "val_uar " in head[0] and "uar " in head[0]
    assert lines[-1].startswith("No deployable model: the final model was skipped (--nofinal_model)")
    assert "fold 2/2, stage 2/2 head epoch 2/2: " in (out / "train.log").read_text()
    noise = [l for l in result.stderr.splitlines() if any(n in l for n in NOISE)]
    assert noise == [], noise[:5]
    fold = json.loads((out / "folds" / "fold1" / "result.json").read_text())
    assert fold["mode"] == "two_stage" and fold["head_seconds_per_epoch"] > 0
    assert (out / "folds" / "fold1" / "stage1.weights.h5").is_file()
    # One entry per file and fine-tuned CNN: each fold embeds its training
    # and validation files (2 folds, one CNN each).
    folders = sorted((tmp_path / "emb").iterdir())
    assert len(folders) == 2 and not (out / "final").exists()
    assert all(len(list(f.glob("*.npy"))) > 0 for f in folders)

    svm = tmp_path / "svm"
    result = run(train_command(corpus, svm, config, "--model", "svm", "--protocol", "holdout",
                               "--holdout_speakers", "01,02"))
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((svm / "metrics.json").read_text())
    assert metrics["model"] == "svm" and metrics["n"] == 16
    assert metrics["folds"][0]["test_speakers"] == ["01", "02"]
    for name in ("predictions.csv", "confusion.png", "model.skz", "folds/holdout/result.json"):
        assert (svm / name).is_file(), name


def test_help_and_flag_spellings(tmp_path):
    for flag in ("-h", "--help"):
        result = run([sys.executable, str(REPO / "train.py"), flag])
        assert result.returncode == 0 and "--data_dir" in result.stdout and "(default:" in result.stdout
    # --data-dir and --data_dir are the same flag; a typo is one line, exit 2.
    result = run([sys.executable, str(REPO / "train.py"), "--dataset", "ravdess",
                  "--data-dir", str(tmp_path / "nowhere"), "--output-dir", str(tmp_path / "run")])
    assert result.returncode == 2 and "does not exist" in result.stderr
    result = run([sys.executable, str(REPO / "train.py"), "--epochz", "3"])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[0].startswith("train.py: error: Unknown command line flag 'epochz'")
