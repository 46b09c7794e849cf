"""The classical models on the field's standard features: openSMILE's
eGeMAPS and ComParE against the toolkit's librosa statistics.

    python benchmarks/opensmile.py [--runs ravdess-svm-egemaps,...] [--root runs/opensmile]

A run is named ``<corpus>-<classifier>-<feature set>[-speakernorm]``:

``corpus``       ravdess (configs/ravdess.json's protocol: 6 folds of 4
                 actors) or nemo (configs/nemo.json's: leave one speaker
                 out, 9 folds).
``classifier``   a classical model (svm, rf, hgb, knn, mlp, bagging), its
                 grid ``configs/classical/<name>.json`` searched over the
                 training speakers of each fold (speaker-grouped inner
                 cross-validation).
``feature set``  statistics, egemaps or compare (``train.py --features``).
``speakernorm``  every speaker's feature vectors standardised with that
                 speaker's own mean and variance
                 (``training.classical.speaker_normalization``): the test
                 speakers' over their (unlabelled) test recordings, a
                 transductive figure; the run also classifies each clip on
                 its own (an average training speaker's statistics).

Each run is ``python train.py ... --nofinal_model`` (printed before it
starts), so an interrupted benchmark resumes where it stopped; the runs
share one feature cache (``ROOT/.feature-cache``), so each feature set is
extracted once per file. The table is made from the run directories only
(``speechmodel.training.report``): ``benchmarks/results/opensmile.md`` and
``.json``. ``--report_only`` trains nothing and makes the table of every
finished run under ``--root``.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
CORPORA = ("ravdess", "nemo")
FEATURE_SETS = ("statistics", "egemaps", "compare")
# The default: SVM and HistGradientBoosting (the best of the other five on
# RAVDESS eGeMAPS, benchmarks/results/opensmile.md), each with and without
# speaker normalisation; RAVDESS first, eGeMAPS (88 values, cheap) before
# ComParE.
DEFAULT_RUNS = ",".join(
    f"{corpus}-{model}-{features}{norm}"
    for corpus in CORPORA
    for features in ("egemaps", "compare")
    for model in ("svm", "hgb")
    for norm in ("", "-speakernorm")
)


def command(name, root, data_dirs):
    """The train.py command line of run ``name``."""
    from speechmodel.training.schema import CLASSICAL_MODELS

    parts = name.split("-")
    normalized = parts[-1] == "speakernorm"
    if normalized:
        parts = parts[:-1]
    if len(parts) != 3 or parts[0] not in CORPORA or parts[1] not in CLASSICAL_MODELS \
            or parts[2] not in FEATURE_SETS:
        raise SystemExit(
            f"benchmarks/opensmile.py: a run is <corpus>-<classifier>-<feature set>[-speakernorm] "
            f"with corpus in {CORPORA}, classifier in {CLASSICAL_MODELS}, feature set in "
            f"{FEATURE_SETS}. Received: {name!r}"
        )
    corpus, model, features = parts
    argv = [sys.executable, str(REPO / "train.py"), "--dataset", corpus, "--data_dir", data_dirs[corpus],
            "--model", model, "--features", features, "--nofinal_model",
            "--output_dir", os.path.join(root, name)]
    if normalized:
        argv += ["--set", "training.classical.speaker_normalization=true"]
    return argv


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=DEFAULT_RUNS, help="comma list of run names")
    parser.add_argument("--root", default=str(REPO / "runs" / "opensmile"))
    parser.add_argument("--ravdess", default=str(SHARED / "ravdess"))
    parser.add_argument("--nemo", default=str(SHARED / "nemo"))
    parser.add_argument("--report_only", action="store_true",
                        help="train nothing: the table of the finished runs under --root")
    parser.add_argument("--table", default="opensmile", help="benchmarks/results/<table>.md and .json")
    args = parser.parse_args(argv)
    data_dirs = {"ravdess": os.path.abspath(args.ravdess), "nemo": os.path.abspath(args.nemo)}
    names = [n for n in args.runs.split(",") if n]
    commands = [command(name, args.root, data_dirs) for name in names]  # All checked first.
    if not args.report_only:
        for name, argv in zip(names, commands):
            print(" ".join(argv[1:]).replace(str(REPO) + os.sep, ""), flush=True)
            code = subprocess.call(argv, cwd=REPO)
            if code:
                raise SystemExit(f"benchmarks/opensmile.py: run {name} failed (exit status {code})")
    from speechmodel.training import report

    if args.report_only:
        names = sorted(n for n in os.listdir(args.root) if not n.startswith("."))
    run_dirs = [os.path.join(args.root, n) for n in names]
    results = REPO / "benchmarks" / "results"
    return report.main([*run_dirs, "--markdown", str(results / f"{args.table}.md"),
                        "--json", str(results / f"{args.table}.json")])


if __name__ == "__main__":
    sys.exit(main())
