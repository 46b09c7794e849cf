"""int8 against float32 on ONNX Runtime: the accuracy change on the folds
of a cross-validated run, with its saved fold models.

    python benchmarks/onnx_int8.py /work/runs/ravdess_speakernorm [--same_speaker]

Each fold's ``model.keras`` classifies its TEST speakers' recordings on
ONNX Runtime twice, float32 and int8 (``--precision int8``: the encoder's
matrix multiplications with int8 weights), per clip (an average training
speaker's statistics, for a speaker-normalised model) and, with
``--same_speaker`` and a speaker-normalised model, as ``infer.py
--same_speaker`` with all of each test speaker's recordings. The predictions are pooled over the folds (UAR
and WA as ``speechmodel.metrics``); nothing is chosen on them. The
float32 per-clip predictions are also compared with the run's own
(``predictions.csv``, ``predicted_per_clip`` when present): the share that
agree.

The int8 runtime may become the default only if its UAR is within 0.5
points of float32 (issue 22). Writes
``benchmarks/results/onnx_int8_<run name>.json`` and ``.md``.
"""

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO, machine, write_json  # noqa: E402

PRECISIONS = ("float32", "int8")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a cross-validated run directory (folds.json, manifest.csv, folds/*/model.keras)")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--same_speaker", action="store_true", help="also each test speaker's recordings as one same-speaker call")
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)

    from speechmodel import inference
    from speechmodel.metrics import compute_metrics

    run = os.path.abspath(args.run)
    name = os.path.basename(run.rstrip(os.sep))
    output = args.output or str(REPO / "benchmarks" / "results" / f"onnx_int8_{name}.json")
    folds = json.loads(Path(run, "folds.json").read_text())["folds"]
    with open(os.path.join(run, "manifest.csv"), newline="") as f:
        manifest = list(csv.DictReader(f))
    own = {}
    predictions = os.path.join(run, "predictions.csv")
    if os.path.exists(predictions):
        with open(predictions, newline="") as f:
            for row in csv.DictReader(f):
                own[row["file"]] = row.get("predicted_per_clip") or row.get("predicted")
    pooled = {}  # (precision, mode) -> (truth, predicted)
    per_fold = []
    class_names = None
    seconds = {p: 0.0 for p in PRECISIONS}
    for fold in folds:
        path = os.path.join(run, "folds", fold["name"], "model.keras")
        if not os.path.exists(path):
            path = os.path.join(run, fold["name"], "model.keras")
        speakers = set(fold["test_speakers"])
        entry = {"fold": fold["name"], "test_speakers": sorted(speakers)}
        for precision in PRECISIONS:
            model = inference.load_model(path, runtime="onnx", precision=precision)
            class_names = list(model.class_names)
            rows = [r for r in manifest if r["speaker"] in speakers and r["emotion"] in class_names]
            modes = {"per clip": [rows]}
            if args.same_speaker and model.speaker_normalization is not None:
                modes["same speaker"] = [[r for r in rows if r["speaker"] == s] for s in sorted(speakers)]
            for mode, groups in modes.items():
                truth, predicted = pooled.setdefault((precision, mode), ([], []))
                fold_truth, fold_predicted = [], []
                start = time.perf_counter()
                for group in groups:
                    predictor = inference.Predictor(
                        model, batch_size=args.batch_size, same_speaker=mode == "same speaker"
                    )
                    report = predictor.predict([r["path"] for r in group])
                    for r, result in zip(group, report.results):
                        if getattr(result, "label", None) is None:
                            raise SystemExit(f"{r['path']}: {getattr(result, 'reason', 'no result')}")
                        fold_truth.append(class_names.index(r["emotion"]))
                        fold_predicted.append(class_names.index(result.label))
                        if precision == "float32" and mode == "per clip" and r["path"] in own:
                            entry.setdefault("agree_with_run", []).append(result.label == own[r["path"]])
                seconds[precision] += time.perf_counter() - start
                truth.extend(fold_truth)
                predicted.extend(fold_predicted)
                entry[f"{precision} {mode} uar"] = compute_metrics(
                    fold_truth, fold_predicted, class_names=class_names
                )["uar"]
        if "agree_with_run" in entry:
            agree = entry.pop("agree_with_run")
            entry["float32 per clip agrees with the run's predictions"] = sum(agree) / len(agree)
        per_fold.append(entry)
        print(json.dumps(entry), flush=True)

    results = {}
    for (precision, mode), (truth, predicted) in pooled.items():
        m = compute_metrics(truth, predicted, class_names=class_names)
        results.setdefault(mode, {})[precision] = {"uar": m["uar"], "wa": m["wa"], "n": len(truth)}
    for mode, entry in results.items():
        entry["int8_minus_float32_uar_points"] = 100 * (entry["int8"]["uar"] - entry["float32"]["uar"])
    payload = {
        "run": run,
        "class_names": class_names,
        "results": results,
        "folds": per_fold,
        "seconds": seconds,
        "machine": machine(),
        "command": "python benchmarks/onnx_int8.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    write_json(output, payload)
    lines = [
        f"# ONNX Runtime int8 against float32 (`{payload['command']}`)",
        "",
        f"Test speakers of every fold of `{name}`, pooled ({len(folds)} folds).",
        "",
        "| mode | float32 UAR | int8 UAR | change (points) | float32 WA | int8 WA |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for mode, entry in results.items():
        lines.append(
            f"| {mode} | {100 * entry['float32']['uar']:.2f} | {100 * entry['int8']['uar']:.2f} | "
            f"{entry['int8_minus_float32_uar_points']:+.2f} | {100 * entry['float32']['wa']:.2f} | "
            f"{100 * entry['int8']['wa']:.2f} |"
        )
    lines.append("")
    Path(output).with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
