"""Results tables, made from run directories only.

    python -m speechmodel.training.report runs/ravdess-*/ [--markdown FILE]

Each row comes from a run's ``metrics.json`` (and its ``config.json``):
nothing is typed in by hand, so a table can always be traced to the runs
that produced it. A directory that holds no finished run (no
``metrics.json``: unfinished, failed, or not a run) is skipped with a
warning on stderr; the table of the others is still printed. The last
column names the run's deployable model (``model.keras``: the final model
of a cross-validated run, trained on every speaker; the fold's model of a
one-fold protocol), if it has one.
"""

import argparse
import os
import sys

from speechmodel.training import artifacts
from speechmodel.training.schema import CLASSICAL_MODELS


def load_run(run_dir):
    metrics_path = os.path.join(run_dir, "metrics.json")
    if not os.path.exists(metrics_path):
        raise FileNotFoundError(f"{run_dir}: no metrics.json (the run has not finished)")
    metrics = artifacts.read_json(metrics_path)
    config = artifacts.read_json(os.path.join(run_dir, "config.json"))
    return metrics, config


def row(run_dir):
    metrics, config = load_run(run_dir)
    model = config["model"]
    label = model["name"]
    if label == "speechmodel":
        training = config["training"]
        epochs = (
            f"{training['segment_epochs']} CNN"
            + ("" if training.get("segment_schedule", "constant") == "constant" else f" ({training['segment_schedule']} lr)")
            + f" + {training['epochs']} head epochs"
            if training["mode"] == "two_stage"
            else f"{training['epochs']} epochs"
        )
        label += f" ({model.get('backbone', 'alexnet')}, {training['mode']}, {epochs})"
    elif label in CLASSICAL_MODELS:
        from speechmodel.classical.features import feature_config

        features = (config["training"].get("classical") or {}).get("features")
        label += f" on {feature_config(features).feature_set} features"
    normalized = metrics.get("speaker_normalization")
    if normalized:
        label += ", speaker-normalised: each test speaker with their own statistics (transductive)"
    return {
        "run": run_dir,
        "model": label,
        "dataset": metrics["dataset"],
        "protocol": config["protocol"]["name"],
        "folds": len(metrics["folds"]),
        "speaker_independent": metrics["speaker_independent"],
        "uar": metrics["uar"],
        "wa": metrics["wa"],
        "fold_uar_mean": metrics.get("fold_uar_mean"),
        "fold_uar_std": metrics.get("fold_uar_std"),
        "fold_uar_min": min((f["uar"] for f in metrics["folds"] if f["uar"] is not None), default=None),
        "fold_uar_max": max((f["uar"] for f in metrics["folds"] if f["uar"] is not None), default=None),
        # Validation speakers only: the figure settings are chosen on.
        "val_uar_mean": _mean([f.get("val_uar") for f in metrics["folds"]]),
        "seconds": sum(f["seconds"] for f in metrics["folds"]),
        "n": metrics.get("n"),
        "deployable_model": deployable_model(run_dir, metrics),
        # A speaker-normalised model on single recordings (an average
        # training speaker's statistics).
        "per_clip_uar": (normalized or {}).get("per_clip_uar"),
        "per_clip_wa": (normalized or {}).get("per_clip_wa"),
        # Expected calibration error, pooled, before and after each fold's
        # temperature (fitted on its validation speakers).
        "ece_before": (metrics.get("calibration") or {}).get("ece_before"),
        "ece_after": (metrics.get("calibration") or {}).get("ece_after"),
        # A run over several corpora: the figures of each.
        "per_corpus": metrics.get("per_corpus"),
    }


def deployable_model(run_dir, metrics=None):
    """The run's deployable model file (``model.keras`` or ``model.skz``),
    or None."""
    names = ["model.keras", "model.skz"]
    final = (metrics or {}).get("final_model") or {}
    if final.get("path"):
        names.insert(0, final["path"])
    for name in names:
        path = os.path.join(run_dir, name)
        if os.path.exists(path):
            return path
    return None


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def markdown(rows):
    def pct(x):
        return "" if x is None else f"{100 * x:.2f}"

    lines = [
        "| model | dataset | protocol | folds | UAR % | WA % | per-fold UAR % (mean +- std, min-max) "
        "| validation UAR % (mean of folds) | train+test time | n | deployable model |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        spread = (
            f"{pct(r['fold_uar_mean'])} +- {pct(r['fold_uar_std'])} ({pct(r['fold_uar_min'])}-{pct(r['fold_uar_max'])})"
            if r["fold_uar_mean"] is not None
            else ""
        )
        flag = "" if r["speaker_independent"] else " (NOT speaker independent)"
        lines.append(
            f"| {r['model']} | {r['dataset']} | {r['protocol']}{flag} | {r['folds']} | {pct(r['uar'])} | "
            f"{pct(r['wa'])} | {spread} | {pct(r.get('val_uar_mean'))} | {r['seconds'] / 60:.1f} min | "
            f"{'' if r['n'] is None else r['n']} | {r.get('deployable_model') or ''} |"
        )
        if r.get("per_clip_uar") is not None:
            lines.append(
                f"| the same model, per clip (an average training speaker's statistics) | "
                f"{r['dataset']} | {r['protocol']}{flag} | {r['folds']} | {pct(r['per_clip_uar'])} | "
                f"{pct(r['per_clip_wa'])} | | | | {'' if r['n'] is None else r['n']} | |"
            )
        for corpus, c in sorted((r.get("per_corpus") or {}).items()):
            per_clip = "" if c.get("per_clip_uar") is None else (
                f" (per clip {pct(c['per_clip_uar'])} / {pct(c['per_clip_wa'])})")
            lines.append(
                f"| the same model on its {corpus} test clips{per_clip} | {corpus} | "
                f"{r['protocol']}{flag} | {r['folds']} | {pct(c['uar'])} | {pct(c['wa'])} | | | | {c['n']} | |"
            )
        if r.get("ece_before") is not None:
            lines.append(
                f"| calibration: expected calibration error {pct(r['ece_before'])} % before, "
                f"{pct(r['ece_after'])} % after temperature scaling (fitted per fold on validation "
                f"speakers) | {r['dataset']} | {r['protocol']}{flag} | {r['folds']} | | | | | | "
                f"{'' if r['n'] is None else r['n']} | |"
            )
    return "\n".join(lines) + "\n"


def by_corpus(run_dir):
    """Rows ``{"corpus", "uar", "wa", "per_clip_uar", "per_clip_wa", "n"}``
    of a run over several corpora: its pooled predictions (``predictions.csv``)
    split by the corpus of each file (the run's ``manifest.csv``)."""
    import csv

    from speechmodel.metrics import compute_metrics

    metrics, _ = load_run(run_dir)
    classes = metrics["class_names"]
    index = {c: i for i, c in enumerate(classes)}

    def read(name):
        with open(os.path.join(run_dir, name), newline="", encoding="utf-8", errors="surrogateescape") as f:
            return list(csv.DictReader(f))

    corpus_of = {r["path"]: r["corpus"] for r in read("manifest.csv")}
    corpora = {}
    for r in read("predictions.csv"):
        corpora.setdefault(corpus_of.get(r["file"], "?"), []).append(r)
    out = []
    for corpus, own in sorted(corpora.items()):
        truth = [index[r["true"]] for r in own]
        row = {"corpus": corpus, "n": len(own), "per_clip_uar": None, "per_clip_wa": None}
        figures = compute_metrics(truth, [index[r["predicted"]] for r in own], class_names=classes)
        row.update(uar=figures["uar"], wa=figures["wa"])
        if own and all(r.get("predicted_per_clip") for r in own):
            single = compute_metrics(truth, [index[r["predicted_per_clip"]] for r in own], class_names=classes)
            row.update(per_clip_uar=single["uar"], per_clip_wa=single["wa"])
        out.append(row)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description="Results table from run directories.")
    parser.add_argument("runs", nargs="+", help="run directories (holding metrics.json)")
    parser.add_argument("--by_corpus", action="store_true",
                        help="also the figures of each corpus of a run over several corpora")
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument("--json", help="also write the rows as JSON to this file")
    args = parser.parse_args(argv)
    rows = []
    for run_dir in args.runs:
        try:
            rows.append(row(run_dir))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # An unfinished or failed run: said, and left out of the table.
            reason = exc if isinstance(exc, FileNotFoundError) else f"{run_dir}: unreadable results ({exc!r})"
            print(f"report: skipping {reason}", file=sys.stderr)
    if not rows:
        print("report: no finished run among the directories given", file=sys.stderr)
        return 2
    table = markdown(rows)
    if args.by_corpus:
        lines = ["", "| run | corpus | UAR % | WA % | per clip UAR % | per clip WA % | n |",
                 "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in rows:
            for c in by_corpus(r["run"]):
                pct = lambda x: "" if x is None else f"{100 * x:.2f}"  # noqa: E731
                lines.append(f"| {r['run']} | {c['corpus']} | {pct(c['uar'])} | {pct(c['wa'])} | "
                             f"{pct(c['per_clip_uar'])} | {pct(c['per_clip_wa'])} | {c['n']} |")
        table += "\n".join(lines) + "\n"
    print(table, end="")
    if args.markdown:
        artifacts.atomic_write_text(args.markdown, table)
    if args.json:
        artifacts.write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
