"""--mode finetune end to end (issue #21): Whisper-base's top blocks (or
LoRA adapters on them) and the head train from the cached lower-block
states; the fold's saved model, from waveforms, holds the tuned blocks and
does in infer.py what the run reported."""

import csv
import io
import json
import zipfile

import h5py
import numpy as np
import pytest

from tests.paths import small_ravdess

# slow: two trainings (left out by -m "not slow").
pytestmark = pytest.mark.slow

CLASSES = ["neutral", "angry"]


def _run(root, out, model_extra, cache):
    config = {
        "dataset": {"name": "ravdess", "emotions": CLASSES, "data_dir": str(root)},
        "protocol": {"name": "holdout", "holdout_speakers": ["01", "02"]},
        "model": {"name": "speechmodel", "backbone": "whisper_base", "lstm_units": 4,
                  "attention_units": 4, "dense_units": [4], **model_extra},
        "training": {"mode": "finetune", "epochs": 2, "batch_size": 4, "patience": 0,
                     "final_model": False, "warmup_steps": 2, "embedding_cache": str(cache)},
        "output_dir": str(out),
    }
    from speechmodel.training.runner import run_experiment

    run_experiment(config, log_to_stdout=False)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Runs on 16 real files (4 actors, neutral and angry; actors 1 and 2
    test): the top block tuned, and rank-4 adapters on the top 2 blocks."""
    root = small_ravdess(tmp_path_factory.mktemp("ravdess"))
    cache = tmp_path_factory.mktemp("cache")
    base = tmp_path_factory.mktemp("runs")
    return {
        "K=1": _run(root, base / "k1", {"fine_tune_blocks": 1}, cache),
        "LoRA": _run(root, base / "lora", {"fine_tune_blocks": 2, "lora_rank": 4}, cache),
        "cache": cache,
    }


def _saved_arrays(path):
    with zipfile.ZipFile(path) as archive:
        data = archive.read("model.weights.h5")
    found = {}
    with h5py.File(io.BytesIO(data), "r") as f:
        f.visititems(lambda name, obj: found.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return found


@pytest.mark.parametrize("variant", ["K=1", "LoRA"])
def test_the_saved_model_does_in_infer_what_the_run_reported(runs, variant):
    from speechmodel import inference
    from speechmodel.models.whisper import whisper_weights

    run_dir = runs[variant]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0 <= metrics["uar"] <= 1
    rows = {}
    with open(run_dir / "predictions.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            rows[row["file"]] = row
    assert len(rows) == 8
    pretrained, _ = whisper_weights.load_whisper_weights("whisper_base", return_source=True)
    for fold_dir in sorted((run_dir / "folds").iterdir()):
        fold = fold_dir.name
        result = json.loads((fold_dir / "result.json").read_text())
        assert result["mode"] == "finetune" and result["seconds_per_epoch"] > 0
        path = fold_dir / "model.keras"
        # The frozen weights by checksum, the tuned ones inside: small.
        saved = _saved_arrays(path)
        names = {k.rsplit("/", 1)[-1] for k in saved}
        assert "whisper_weights_sha256" in names and "block_0_qkv_kernel" not in names
        if variant == "LoRA":
            assert {n for n in names if n.startswith("block_")} == {
                f"block_{i}_{p}_lora_{ab}" for i in (4, 5) for p in ("qkv", "out", "fc1", "fc2")
                for ab in "ab"}
        else:
            assert "block_5_fc2_kernel" in names and "block_4_fc2_kernel" not in names
        assert path.stat().st_size < 40e6
        model = inference.load_model(path)
        encoder = model.classifier.embedder.encoder
        if variant == "K=1":  # trained away from the pretrained block
            tuned = encoder._vars["block_5_fc2_kernel"].numpy()
            assert np.abs(tuned - pretrained["block_5_fc2_kernel"]).max() > 0
        np.testing.assert_array_equal(
            encoder._vars["block_0_fc2_kernel"].numpy(), pretrained["block_0_fc2_kernel"]
        )
        mine = {p: r for p, r in rows.items() if r["fold"] == fold}
        predicted = inference.Predictor(model).predict(sorted(mine))
        again = inference.Predictor(inference.load_model(path)).predict(sorted(mine))
        for p, q in zip(predicted.results, again.results):
            np.testing.assert_array_equal(p.probabilities, q.probabilities)
        for p in predicted.results:
            expected = [float(mine[p.file][f"p_{c}"]) for c in CLASSES]
            # The run classified from float16 cached states, infer.py from
            # the waveform through the whole encoder in float32.
            np.testing.assert_allclose(p.probabilities, expected, atol=2e-3)


def test_the_variants_share_the_cached_states(runs):
    # K=1 caches the states entering block 5; the LoRA run (top 2 blocks)
    # those entering block 4: two keys, each with its embeddings and states.
    keys = [d for d in runs["cache"].iterdir() if d.is_dir()]
    assert len(keys) == 4
    assert sorted(len(list(d.glob("*.npy"))) for d in keys) == [16] * 4
    states = [np.load(f) for d in keys for f in d.glob("*.npy") if np.load(f).ndim == 2]
    assert states and all(s.dtype == np.float16 and s.shape[1] == 512 for s in states)
