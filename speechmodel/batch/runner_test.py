"""Batch runs on real RAVDESS clips with the local engine: the numbers of
infer.py, a bad file among good ones, reruns, a killed run resumed, and
--embed read back by training. (Ray: engines_test.py.)"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from speechmodel.batch import run_batch
from speechmodel.cli import infer_command
from tests.paths import REPO, ravdess_files

TOLERANCE = 1e-4


def clips(n, start=0):
    return ravdess_files("Actor_0[12]/*.wav")[start : start + n]


def lines(directory):
    out = []
    for name in sorted(os.listdir(directory)):
        if name.endswith(".jsonl"):
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                out.extend(json.loads(line) for line in f)
    return out


def infer_results(paths, model, tmp_path):
    """What ``infer.py --format json`` says of ``paths``, by file."""
    target = tmp_path / "infer.json"
    status = infer_command.run(paths, model=model, default_model="default", output_format="json",
                               output=str(target))
    assert status in (0, 1)
    return {r["file"]: r for r in json.loads(target.read_text())["results"]}


def assert_same_as_infer(batch_lines, expected):
    assert sorted(r["file"] for r in batch_lines) == sorted(expected)
    for record in batch_lines:
        want = expected[record["file"]]
        if "error" in want:
            assert record["error"] == want["error"]
            continue
        assert record["label"] == want["label"]
        assert record["duration"] == want["duration"]
        got = np.array(list(record["probabilities"].values()))
        assert list(record["probabilities"]) == list(want["probabilities"])
        np.testing.assert_allclose(got, list(want["probabilities"].values()), atol=TOLERANCE)


def test_fast_model_equals_infer_with_a_bad_file_and_reruns_nothing(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    paths = clips(6) + [str(bad)]
    said = []
    summary = run_batch(paths, tmp_path / "out", model="fast", shard_size=4, batch_size=4, say=said.append)
    assert (summary.files, summary.analysed, summary.failed, summary.skipped) == (7, 6, 1, 0)
    assert summary.shards == ["results-00000.jsonl", "results-00001.jsonl"]
    got = lines(tmp_path / "out")
    assert_same_as_infer(got, infer_results(paths, "fast", tmp_path))
    assert all(r["file_size"] == os.path.getsize(r["file"]) for r in got)
    assert any("analysing: 7/7 files done" in line and "files/s" in line for line in said)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["counts"] == {"files": 7, "analysed": 6, "failed": 1}
    assert manifest["model"]["name"] == "fast" and len(manifest["model"]["sha256"]) == 64
    assert manifest["runs"][-1]["finished"] is True

    again = run_batch(paths, tmp_path / "out", model="fast", shard_size=4)
    assert (again.skipped, again.failed_before, again.analysed, again.failed, again.shards) == (7, 1, 0, 0, [])
    assert lines(tmp_path / "out") == got
    with pytest.raises(ValueError, match="another model sha256"):
        run_batch(paths, tmp_path / "out", model="default")


def test_default_model_equals_infer(tmp_path):
    paths = clips(4, start=30)
    summary = run_batch(paths, tmp_path / "out")
    assert (summary.analysed, summary.failed) == (4, 0)
    assert_same_as_infer(lines(tmp_path / "out"), infer_results(paths, None, tmp_path))


@pytest.mark.slow
def test_a_killed_run_resumes_without_repeating_a_file(tmp_path):
    paths = clips(16)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "speechmodel.batch", *paths, "--output", str(out),
               "--model", "fast", "--batch_size", "2", "--shard_size", "2"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    while not (out / "results-00000.jsonl").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = lines(out)
    assert 2 <= len(before) < len(paths)  # Killed mid-run: whole shards only.
    finished = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    assert f"{len(before)} of {len(paths)} files already done" in finished.stderr
    after = lines(out)
    assert after[: len(before)] == before
    assert sorted(r["file"] for r in after) == sorted(paths)  # Each file once.
    assert json.loads((out / "manifest.json").read_text())["counts"]["files"] == len(paths)


def test_embeddings_are_read_back_by_training(tmp_path):
    from speechmodel.config import FeatureConfig
    from speechmodel.embedding import embed_files
    from speechmodel.models import build_model
    from speechmodel.pipeline import FailureLog
    from speechmodel.training.embeddings import EmbeddingCache, cached_embeddings, default_cache_dir

    paths = clips(4, start=10)
    # Training's batch size: the same padding, the same float32 sums.
    summary = run_batch(paths, tmp_path / "emb", embed=True, batch_size=16)
    assert (summary.analysed, summary.failed) == (4, 0)
    records = lines(tmp_path / "emb")
    assert all(r["segments"] > 0 and (tmp_path / "emb" / r["embedding"]).is_file() for r in records)

    # What train.py --config configs/ravdess.json --set training.embedding_cache=DIR does.
    config = json.loads((REPO / "configs" / "ravdess.json").read_text())
    model_config = dict(config["model"])
    model = build_model(model_config.pop("name"), num_classes=8, **model_config)
    features = FeatureConfig.from_dict(config["features"])
    cache = EmbeddingCache(default_cache_dir(str(tmp_path / "emb")))
    table, _, hit = cached_embeddings(
        cache, model.segment_encoder, paths, features=features, batch_size=16, failures=FailureLog()
    )
    assert hit  # Every file found: nothing was embedded again.
    fresh = dict(embed_files(model.segment_encoder, paths, features=features, batch_size=16,
                             failures=FailureLog()))
    for i, path in enumerate(paths):
        assert table[path].shape == fresh[i].shape
        np.testing.assert_allclose(table[path], fresh[i], atol=1e-6)


def test_inputs_from_a_manifest_a_list_and_a_folder(tmp_path):
    from speechmodel.batch import collect_files

    a, b, c = clips(3, start=60)
    manifest = tmp_path / "corpus.csv"
    manifest.write_text(f"path,emotion,speaker\n{a},angry,1\n{tmp_path / 'gone.wav'},sad,1\n")
    listing = tmp_path / "more.txt"
    listing.write_text(f"{b}\n{a}\n")
    paths, failures = collect_files([c, str(tmp_path / "nothing*.wav")], list_files=[str(listing)],
                                    manifests=[str(manifest)])
    assert paths == [c, b, a]  # Each file once, absolute.
    assert [f.file for f in failures] == [str(tmp_path / "nothing*.wav"), f"{manifest}:3"]
    assert "audio file not found" in failures[1].reason
