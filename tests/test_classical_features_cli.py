"""train.py with a classical model on openSMILE's eGeMAPS, speaker
normalised, on real RAVDESS files and one broken file: the run finishes,
says which file it skipped, reports the transductive and the per-clip
figures, and its saved model classifies a clip with infer.py."""

import csv
import json
import os
import subprocess
import sys

import pytest

from tests.paths import RAVDESS, REPO


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Actors 1-4, neutral/happy/sad/angry, normal intensity (32 real files,
    linked), and a file of actor 4 that is not audio."""
    root = tmp_path_factory.mktemp("ravdess")
    for actor in ("01", "02", "03", "04"):
        (root / f"Actor_{actor}").mkdir()
        for f in sorted((RAVDESS / f"Actor_{actor}").glob("03-01-0[1345]-01-01-*.wav")):
            os.symlink(f, root / f"Actor_{actor}" / f.name)
    (root / "Actor_04" / "03-01-05-02-01-01-04.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio")
    return root


def test_egemaps_speaker_normalised_run(corpus, tmp_path):
    out = tmp_path / "run"
    cache = tmp_path / "cache"
    command = [sys.executable, str(REPO / "train.py"), "--dataset", "ravdess", "--data_dir", str(corpus),
               "--emotions", "neutral,happy,sad,angry", "--protocol", "kfold", "--folds", "2",
               "--model", "svm", "--features", "egemaps", "--nofinal_model",
               "--set", "training.classical.speaker_normalization=true",
               "--set", f"training.classical.cache_dir={cache}", "--output_dir", str(out)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    broken = str(corpus / "Actor_04" / "03-01-05-02-01-01-04.wav")
    assert f"Skipping {broken}: " in result.stderr
    assert "egemaps features: 33/33 files done" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 32
    block = metrics["speaker_normalization"]
    assert block["uar"] == metrics["uar"] and 0 <= block["per_clip_uar"] <= 1
    folds = [json.loads((out / "folds" / f / "result.json").read_text()) for f in ("fold1", "fold2")]
    assert [f["failed_files"][0][0] for f in folds] == [broken, broken]
    with open(out / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 32 and all(r["predicted_per_clip"] for r in rows)
    assert len(list(cache.iterdir())) == 32  # One entry per readable file.
    report = subprocess.run([sys.executable, "-m", "speechmodel.training.report", str(out)],
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    lines = report.stdout.splitlines()
    assert lines[2].startswith("| svm on egemaps features, speaker-normalised: each test speaker "
                               "with their own statistics (transductive) |")
    assert lines[3].startswith("| the same model, per clip (an average training speaker's statistics) |")
    clip = RAVDESS / "Actor_05" / "03-01-05-01-01-01-05.wav"
    model = out / "folds" / "fold1" / "model.skz"
    infer = subprocess.run([sys.executable, str(REPO / "infer.py"), "--model", str(model), str(clip),
                            "--format", "json"], capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert infer.returncode == 0, infer.stderr
    assert json.loads(infer.stdout)["results"][0]["label"] in ("neutral", "happy", "sad", "angry")
