"""The paper's EMO-DB setting runs offline: configs/emodb.json (ImageNet
AlexNet, 227x227 min-max log-mel images, leave-one-speaker-out, two-stage
training) through train.py, pointed at the ImageNet convolution weights.

There is no EMO-DB here: the corpus is a tiny copy in EMO-DB's layout
(``wav/03a01Fa.wav``: speaker, text, emotion letter, version) made from
real RAVDESS speech, 3 speakers x 7 emotions, 1.2 s each.
"""

import json
import math
import os
import subprocess
import sys

import pytest
import soundfile as sf
from scipy.signal import resample_poly

from tests.paths import REPO, RAVDESS, WEIGHTS, require

# slow: trains the paper's EMO-DB recipe (left out by -m "not slow").
pytestmark = pytest.mark.slow

LPIPS = WEIGHTS / "alexnet_imagenet_conv" / "lpips_alex_v0.1.pt"
# EMO-DB speaker <- RAVDESS actor; EMO-DB emotion letter <- RAVDESS emotion code
# (boredom, which RAVDESS lacks, from "calm").
SPEAKERS = {"03": "01", "08": "02", "09": "03"}
LETTERS = {"N": "01", "L": "02", "F": "03", "T": "04", "W": "05", "A": "06", "E": "07"}


@pytest.fixture(scope="module")
def emodb(tmp_path_factory):
    require(RAVDESS)
    require(LPIPS)
    root = tmp_path_factory.mktemp("emodb")
    (root / "wav").mkdir()
    for speaker, actor in SPEAKERS.items():
        for letter, code in LETTERS.items():
            source = RAVDESS / f"Actor_{actor}" / f"03-01-{code}-01-01-01-{actor}.wav"
            y, sr = sf.read(source, dtype="float32")
            if sr != 16000:  # EMO-DB's rate
                g = math.gcd(16000, sr)
                y = resample_poly(y, 16000 // g, sr // g)
            y = y[int(0.8 * 16000) : int(2.0 * 16000)]  # the speech
            sf.write(root / "wav" / f"{speaker}a01{letter}a.wav", y.astype("float32"), 16000)
    assert len(list((root / "wav").glob("*.wav"))) == 21
    return root


def run(args, env=None, timeout=900):
    """train.py ARGS with only the environment variables given here set
    for the weights (none inherited)."""
    full = {k: v for k, v in os.environ.items() if k not in ("SPEECHMODEL_ALEXNET_IMAGENET", "KERAS_HOME")}
    full.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", **(env or {}))
    return subprocess.run([sys.executable, str(REPO / "train.py"), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, env=full)


def test_the_shipped_command_resolves_to_the_paper_setting(emodb):
    result = run(["--dataset", "emodb", "--data_dir", str(emodb), "--print_config"])
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads(result.stdout)
    model = config["model"]
    assert (model["backbone"], model["weights"], model["input_size"], model["preprocessing"]) == (
        "alexnet", "imagenet", 227, "imagenet")
    assert config["protocol"]["name"] == "loso"
    assert config["training"]["mode"] == "two_stage"
    assert config["features"]["normalization"] == "minmax"
    result = run(["--dataset", "emodb", "--data_dir", str(emodb), "--weights", str(LPIPS),
                  "--print_config"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["model"]["weights"] == str(LPIPS)


def test_emodb_imagenet_alexnet_runs_offline_to_its_metrics(emodb, tmp_path):
    # configs/emodb.json as shipped (weights "imagenet"), test-sized: one of
    # its leave-one-speaker-out folds (speaker 03 tested, 09 validating),
    # 1 CNN epoch and 2 head epochs. (The LOSO folds themselves: the test
    # above and speechmodel/datasets/protocols_test.py.)
    out = tmp_path / "run"
    keras_home = tmp_path / "keras"  # empty: nothing cached, nothing downloaded
    result = run(
        ["--dataset", "emodb", "--data_dir", str(emodb), "--output_dir", str(out),
         "--protocol", "holdout", "--holdout_speakers", "03", "--val_speakers", "09",
         "--segment_epochs", "1", "--epochs", "2"],
        env={"SPEECHMODEL_ALEXNET_IMAGENET": str(LPIPS), "KERAS_HOME": str(keras_home)},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == "emodb" and metrics["n"] == 7
    assert [f["test_speakers"] for f in metrics["folds"]] == [["03"]]
    assert metrics["speaker_independent"] is True
    assert sorted(metrics["class_names"]) == sorted(
        ["neutral", "boredom", "happy", "sad", "angry", "fearful", "disgust"])
    assert 0 <= metrics["uar"] <= 1 and 0 <= metrics["wa"] <= 1
    assert all(0 <= f["uar"] <= 1 for f in metrics["folds"])
    resolved = json.loads((out / "config.json").read_text())
    assert resolved["model"]["weights"] == "imagenet"
    assert resolved["model"]["input_size"] == 227
    log = (out / "train.log").read_text()
    # Which weights the fold loaded, and that fc6/fc7 stayed random.
    assert log.count(f"Backbone 'alexnet': loaded the ImageNet weights {LPIPS}") == 1, log
    assert "fc6 and fc7 (classifier_1, classifier_4) keep their random initialisation" in log
    assert not (keras_home / "models").exists()
