"""Pretrained front end: SpeechModel on frozen Whisper-base segment embeddings.

    python benchmarks/pretrained.py [--runs ravdess,nemo,loco] [--root runs/pretrained]

Each run is a normal train.py experiment, so an interrupted benchmark
resumes where it stopped, and the table is made from the run directories
only (``speechmodel.training.report``):

``ravdess``   configs/ravdess.json: RAVDESS, 6 folds of 4 actors.
``nemo``      configs/nemo.json: nEMO, leave one speaker out (9 folds).
``loco``      the shipped model's recipe (configs/default.json, speaker
              normalised since session 5; the figures of the recipe before
              it are in benchmarks/results/pretrained.md), leave one corpus out
              over RAVDESS and nEMO (train on one, test on the other, both
              ways), on the 6 emotions they share; no final model.
``multi``     the same recipe trained on RAVDESS and nEMO together, speaker
              folds inside each corpus (6 folds): the figures behind the
              shipped model's choice of data; no final model.
``ravdess_speakernorm``, ``nemo_speakernorm``
              the same as ``ravdess``/``nemo`` with speaker normalisation
              (``model.speaker_normalization``): every speaker's
              embeddings standardised with that speaker's own statistics;
              reported with the test speakers' own statistics (a
              transductive figure: it needs their unlabelled recordings)
              and per clip (an average training speaker's statistics);
              no final model.
``default``   configs/default.json: the shipped model (protocol ``all``:
              no test folds; copy ``model.keras`` to
              ``speechmodel/presets/default.keras``).

The embeddings are computed once per file and cached
(``speechmodel.training.embeddings``), so every run after the first that
sees a file costs only the head's training. Writes
``benchmarks/results/pretrained.md`` and ``.json``; the linear-probe
reference is ``benchmarks/whisper_probe.py``.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO  # noqa: E402

SHARED = REPO.parent / "shared" / "data"


def experiments(ravdess, nemo):
    both = [{"name": "ravdess", "data_dir": ravdess}, {"name": "nemo", "data_dir": nemo}]
    # The figures, not a deployable model: no final model.
    figures_only = {"training": {"final_model": False}}
    normalized = {"model": {"speaker_normalization": True}, **figures_only}
    return {
        "ravdess": ("ravdess.json", {"dataset": {"data_dir": ravdess}}),
        "nemo": ("nemo.json", {"dataset": {"data_dir": nemo}}),
        "ravdess_speakernorm": ("ravdess.json", {"dataset": {"data_dir": ravdess}, **normalized}),
        "nemo_speakernorm": ("nemo.json", {"dataset": {"data_dir": nemo}, **normalized}),
        "loco": ("default.json", {"dataset": {"corpora": both}, "protocol": {"name": "loco"},
                                  **figures_only}),
        "multi": ("default.json", {"dataset": {"corpora": both},
                                   "protocol": {"name": "multi", "k": 6, "val_speakers": 1},
                                   **figures_only}),
        "default": ("default.json", {"dataset": {"corpora": both}}),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="ravdess,nemo,loco")
    parser.add_argument("--root", default=str(REPO / "runs" / "pretrained"))
    parser.add_argument("--ravdess", default=str(SHARED / "ravdess"))
    parser.add_argument("--nemo", default=str(SHARED / "nemo"))
    parser.add_argument("--table", default="pretrained")
    args = parser.parse_args(argv)

    from speechmodel.training import report
    from speechmodel.training.config import load_config, merge
    from speechmodel.training.runner import run_experiment

    table = experiments(os.path.abspath(args.ravdess), os.path.abspath(args.nemo))
    run_dirs = []
    for name in args.runs.split(","):
        if name not in table:
            raise SystemExit(f"unknown run {name!r}; known: {', '.join(table)}")
        path, override = table[name]
        config = load_config(REPO / "configs" / path)
        dataset = override.get("dataset", {})
        if "corpora" in dataset:
            config["dataset"]["corpora"] = dataset["corpora"]
        else:
            config["dataset"]["data_dir"] = dataset["data_dir"]
        if "model" in override:  # model keys are the model's own, not the file's
            config["model"] = {**config["model"], **override["model"]}
        if "training" in override:
            config["training"] = merge(config["training"], override["training"])
        if "protocol" in override:
            config["protocol"] = merge(config["protocol"], override["protocol"])
        config["output_dir"] = os.path.join(args.root, name)
        start = time.time()
        run_experiment(config)
        print(f"{name}: {time.time() - start:.0f} s", flush=True)
        if name != "default":
            run_dirs.append(config["output_dir"])
    if run_dirs:
        results = REPO / "benchmarks" / "results"
        report.main([*run_dirs, "--markdown", str(results / f"{args.table}.md"),
                     "--json", str(results / f"{args.table}.json")])


if __name__ == "__main__":
    main()
