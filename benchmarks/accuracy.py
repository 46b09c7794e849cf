"""Accuracy benchmark: RAVDESS, 8 classes, 6 speaker folds (actors 1-4, ...,
21-24), the default model and the baselines, one command.

    python benchmarks/accuracy.py [--data-dir DIR] [--models default,svm] [--root runs/benchmark]

Each model is a normal train.py experiment (configs/ravdess.json with the
model swapped), so an interrupted benchmark resumes where it stopped. The
summary table is made from the run directories only
(speechmodel.training.report) and written to
benchmarks/results/accuracy.md and .json. No ImageNet weights can be
downloaded on the build machine: the deep models start from random weights
here, and the table says what ran.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO, ravdess_dir  # noqa: E402

MODELS = {
    # name: overrides of configs/ravdess.json
    "default": {},
    # Earlier defaults, kept to reproduce the comparison (settings are
    # compared on validation UAR only, the test folds never choose).
    "constant_lr": {"training": {"segment_schedule": "constant"}},
    "constant_lr_6": {"training": {"segment_schedule": "constant", "segment_epochs": 6}},
    "alexnet_gap": {"model": {"name": "alexnet_gap", "weights": None}},
    "svm": {"model": {"name": "svm"}},
    "rf": {"model": {"name": "rf"}},
    "hgb": {"model": {"name": "hgb"}},
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--models", default="default,svm")
    parser.add_argument("--root", default=str(REPO / "runs" / "benchmark"))
    parser.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    parser.add_argument("--table", default="accuracy",
                        help="write benchmarks/results/TABLE.md and .json (default: accuracy)")
    args = parser.parse_args()

    from speechmodel.training import report
    from speechmodel.training.config import load_config, merge
    from speechmodel.training.runner import run_experiment

    data_dir = str(ravdess_dir(args.data_dir))
    run_dirs = []
    for name in args.models.split(","):
        if name not in MODELS:
            raise SystemExit(f"unknown model {name!r}; known: {', '.join(MODELS)}")
        config = load_config(REPO / "configs" / "ravdess.json")
        override = MODELS[name]
        if "model" in override:
            config["model"] = dict(override["model"])
        config = merge(config, {k: v for k, v in override.items() if k != "model"})
        config["dataset"]["data_dir"] = data_dir
        if args.epochs:
            config["training"]["epochs"] = args.epochs
        config["output_dir"] = os.path.join(args.root, name)
        start = time.time()
        run_experiment(config)
        print(f"{name}: {time.time() - start:.0f} s", flush=True)
        run_dirs.append(config["output_dir"])
    results = REPO / "benchmarks" / "results"
    report.main([*run_dirs, "--markdown", str(results / f"{args.table}.md"), "--json", str(results / f"{args.table}.json")])


if __name__ == "__main__":
    main()
