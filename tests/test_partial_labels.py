"""Partial labels across corpora, end to end: RAVDESS (with calm) and nEMO
(without) trained together on the frozen Whisper head, each clip's loss
over its corpus' emotions; the run reports every corpus' figures."""

import json
import os

import pytest

from tests.paths import RAVDESS, nemo_dir, require

# slow: trains a two-corpus Whisper run (left out by -m "not slow").
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    require(RAVDESS)
    ravdess = tmp_path_factory.mktemp("ravdess")
    for actor in ("01", "02", "03", "04"):
        (ravdess / f"Actor_{actor}").mkdir()
        for f in sorted((RAVDESS / f"Actor_{actor}").glob("03-01-0[125]-01-01-01-*.wav")):
            os.symlink(f, ravdess / f"Actor_{actor}" / f.name)
    nemo = tmp_path_factory.mktemp("nemo")
    (nemo / "samples").mkdir()
    source = nemo_dir()
    lines = (source / "data.tsv").read_text(encoding="utf-8").splitlines()
    kept = [lines[0]]
    for speaker in ("EB0", "IC0", "KD0", "WR0"):
        for emotion in ("neutral", "anger"):
            rows = [l for l in lines[1:] if l.startswith(f"{speaker}_{emotion}_")][:2]
            for row in rows:
                stem = row.split("\t")[0].rsplit(".", 1)[0]
                os.symlink(source / "samples" / f"{stem}.opus", nemo / "samples" / f"{stem}.opus")
            kept += rows
    (nemo / "data.tsv").write_text("\n".join(kept) + "\n", encoding="utf-8")
    out = tmp_path_factory.mktemp("run") / "run"
    config = {
        "dataset": {"name": "ravdess,nemo", "data_dir": f"{ravdess},{nemo}"},
        "protocol": {"name": "multi", "k": 2},
        "model": {"name": "speechmodel", "backbone": "whisper_base", "lstm_units": 4,
                  "attention_units": 4, "dense_units": [4]},
        "training": {"mode": "frozen", "epochs": 2, "batch_size": 4, "patience": 0,
                     "final_model": False, "partial_labels": True, "balance": "oversample"},
        "output_dir": str(out),
    }
    from speechmodel.training.runner import run_experiment

    run_experiment(config, log_to_stdout=False)
    return out


def test_a_partial_label_run_reports_each_corpus(run_dir, capsys):
    from speechmodel.training import report

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["class_names"] == ["neutral", "calm", "angry"]
    assert json.loads((run_dir / "config.json").read_text())["training"]["partial_labels"] is True
    per_corpus = metrics["per_corpus"]
    assert set(per_corpus) == {"ravdess", "nemo"}
    assert per_corpus["ravdess"]["n"] == 12 and per_corpus["nemo"]["n"] == 16
    assert sum(c["n"] for c in per_corpus.values()) == metrics["n"]
    assert report.main([str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "the same model on its nemo test clips" in out and "the same model on its ravdess test clips" in out


def test_partial_labels_refuse_class_weights():
    from speechmodel.training.config import resolve
    from speechmodel.training.defaults import ConfigError

    with pytest.raises(ConfigError, match="partial_labels"):
        resolve({"training": {"partial_labels": True, "balance": "class_weights"}})
