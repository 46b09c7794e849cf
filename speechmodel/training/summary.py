"""What a run reports: the line of each finished fold (:func:`fold_line`)
and the run's results (:func:`summarise`): ``metrics.json`` (pooled over
every test utterance, per fold, the final model), ``predictions.csv``,
``confusion.png`` and the deployable model, committed together."""

import os

import numpy as np

from speechmodel.metrics import compute_metrics
from speechmodel.training import artifacts


def fold_line(number, total, fold, result, results, state):
    if result.get("test") is None:
        return f"[fold {number}/{total} {fold.name}] trained on every speaker ({state})"
    uars = [r["test"]["uar"] for r in results if r.get("test")]
    was = [r["test"]["wa"] for r in results if r.get("test")]
    return (
        f"[fold {number}/{total} {fold.name}] test speakers {','.join(fold.test_speakers)}: "
        f"UAR {100 * result['test']['uar']:.2f} %  WA {100 * result['test']['wa']:.2f} %  "
        f"| running mean UAR {100 * np.mean(uars):.2f} %  WA {100 * np.mean(was):.2f} % ({state})"
        + _skipped(result)
    )


def _skipped(result):
    """``; N files skipped ...`` when some of the fold's files could not be
    used (each named in its warning and in result.json), else ``""``."""
    # failed_files names every file the fold skipped (training, validation
    # and test); a classical fold's test count is apart.
    n = len(result.get("failed_files") or []) or int((result.get("test") or {}).get("failed_files") or 0)
    if not n:
        return ""
    return f"; {n} file{'s' if n != 1 else ''} skipped (named above and in the fold's result.json)"


def headline(config, metrics, run_dir):
    """The run's result line, saying what kind of figure it is: speaker
    independent per clip, speaker-adapted (transductive), or neither (a
    random split; a model fine-tuned from one that may have heard the
    test speakers)."""
    kind = []
    adapted = metrics.get("speaker_normalization")
    if adapted:
        kind.append(
            "speaker-adapted, transductive: each test speaker standardised with their own "
            f"recordings; per clip UAR {100 * adapted['per_clip_uar']:.2f} %  "
            f"WA {100 * adapted['per_clip_wa']:.2f} %"
        )
    if not metrics.get("speaker_independent", True):
        kind.append("NOT speaker independent: a random split mixes speakers")
    init_from = config["training"].get("init_from")
    if init_from:
        kind.append(
            f"fine-tuned from {init_from}: speaker independent only if that model never "
            "heard these test speakers (the shipped default was trained on RAVDESS and nEMO)"
        )
    line = (
        f"{config['dataset']['name']} {config['model']['name']} {config['protocol']['name']}: "
        f"UAR {100 * metrics['uar']:.2f} %  WA {100 * metrics['wa']:.2f} %  "
        f"(pooled over {metrics['n']} test utterances; per-fold UAR "
        f"{100 * metrics['fold_uar_mean']:.2f} +- {100 * metrics['fold_uar_std']:.2f}) -> {run_dir}"
    )
    return line + "".join(f"\n  ({k})" for k in kind)


def summarise(config, folds, results, class_names, run_dir, seconds, *, final=None):
    artifacts.discard_staged(run_dir)  # Of an interrupted attempt.
    rows = [row for r in results for row in r.get("predictions", [])]
    per_fold = [
        {
            "fold": r["fold"],
            "train_speakers": r["train_speakers"],
            "val_speakers": r["val_speakers"],
            "test_speakers": r["test_speakers"],
            "counts": r["counts"],
            "uar": r["test"]["uar"] if r.get("test") else None,
            "wa": r["test"]["wa"] if r.get("test") else None,
            "val_uar": r.get("val", {}).get("uar"),
            "best_epoch": r.get("best_epoch"),
            "seconds": r["seconds"],
            **({"calibration": r["calibration"]} if r.get("calibration") else {}),
        }
        for r in results
    ]
    metrics = {
        "dataset": config["dataset"]["name"],
        "model": config["model"]["name"],
        "protocol": config["protocol"],
        "speaker_independent": all(f.speaker_independent for f in folds),
        "class_names": class_names,
        "uar": None,
        "wa": None,
        "folds": per_fold,
        "seconds": seconds,
        "definitions": {
            "uar": "unweighted average recall: mean over classes of per-class recall, "
            "pooled over every test utterance of every fold",
            "wa": "weighted accuracy: correct / total test utterances, pooled",
            "fold_uar_mean": "mean of the per-fold UARs (std is the population std)",
        },
    }
    if rows:
        index = {c: i for i, c in enumerate(class_names)}
        y_true = [index[r["true"]] for r in rows]
        y_pred = [index[r["predicted"]] for r in rows]
        pooled = compute_metrics(y_true, y_pred, class_names=class_names)
        if all("predicted_per_clip" in r for r in rows):
            single = compute_metrics(
                y_true, [index[r["predicted_per_clip"]] for r in rows], class_names=class_names
            )
            metrics["speaker_normalization"] = {
                "uar": pooled["uar"], "wa": pooled["wa"],
                "per_clip_uar": single["uar"], "per_clip_wa": single["wa"],
                "definition": "uar/wa: each test speaker's embeddings (a classical model's feature "
                "vectors) standardised with that "
                "speaker's own statistics, over their (unlabelled) test recordings: a "
                "speaker-adapted, transductive figure. per_clip_uar/per_clip_wa: the same model "
                "on single recordings (an average training speaker's statistics), as "
                "infer.py runs it without --same_speaker.",
            }
        corpora = sorted({r.get("corpus") for r in rows} - {None})
        if len(corpora) > 1:
            metrics["per_corpus"] = per_corpus(rows, class_names, corpora)
        calibration = pooled_calibration(results, class_names)
        if calibration is not None:
            metrics["calibration"] = calibration
        fold_uars = [f["uar"] for f in per_fold if f["uar"] is not None]
        fold_was = [f["wa"] for f in per_fold if f["wa"] is not None]
        metrics.update(
            uar=pooled["uar"],
            wa=pooled["wa"],
            per_class_recall=pooled["per_class_recall"],
            confusion=pooled["confusion"],
            support=pooled["support"],
            n=pooled["n"],
            fold_uar_mean=float(np.mean(fold_uars)),
            fold_uar_std=float(np.std(fold_uars)),
            fold_wa_mean=float(np.mean(fold_was)),
            fold_wa_std=float(np.std(fold_was)),
        )
        artifacts.write_predictions(artifacts.staged(run_dir, "predictions.csv"), rows, class_names)
        artifacts.plot_confusion(
            artifacts.staged(run_dir, "confusion.png"), pooled["confusion"], class_names,
            title=f"{config['dataset']['name']} {config['model']['name']}: "
            f"UAR {100 * pooled['uar']:.1f} %, WA {100 * pooled['wa']:.1f} %",
        )
    # The deployable model: the fold's of a one-fold protocol ("all",
    # "holdout"), else the final model (trained on every speaker).
    source_dir = None
    if len(folds) == 1:
        source_dir = os.path.join(run_dir, "folds", folds[0].name)
    elif final is not None:
        source_dir = os.path.join(run_dir, "final")
        metrics["final_model"] = {
            "path": None,
            "train_speakers": final["train_speakers"],
            "val_speakers": final["val_speakers"],
            "counts": final["counts"],
            "val_uar": final.get("val", {}).get("uar"),
            "best_epoch": final.get("best_epoch"),
            "seconds": final["seconds"],
        }
    if source_dir is not None:
        for name in ("model.keras", "model.skz"):
            source = os.path.join(source_dir, name)
            if os.path.exists(source):
                if final is not None:
                    metrics["final_model"]["path"] = name
                with open(source, "rb") as f:
                    artifacts.atomic_write_bytes(artifacts.staged(run_dir, name), f.read())
    artifacts.write_json(artifacts.staged(run_dir, "metrics.json"), metrics)
    # metrics.json, predictions.csv, confusion.png (and the model) together.
    artifacts.commit_results(run_dir)
    return metrics


def pooled_calibration(results, class_names):
    """The expected calibration error over every test utterance, before and
    after each fold's temperature (fitted on its validation speakers), or
    None when a fold has none. Per clip: a speaker-normalised model's
    probabilities from single recordings (``probabilities_per_clip``)."""
    from speechmodel.calibration import calibration_figures, scale_probabilities

    tested = [r for r in results if r.get("test")]
    if not tested or not all((r.get("calibration") or {}).get("test") for r in tested):
        return None
    index = {c: i for i, c in enumerate(class_names)}
    before, after, truth = [], [], []
    for r in tested:
        for row in r["predictions"]:
            p = np.asarray(row.get("probabilities_per_clip", row["probabilities"]), np.float64)[None]
            before.append(p[0])
            after.append(scale_probabilities(p, r["calibration"]["temperature"])[0])
            truth.append(index[row["true"]])
    figures = calibration_figures(np.stack(before), truth, 1.0)
    scaled = calibration_figures(np.stack(after), truth, 1.0)
    return {
        "n": figures["n"],
        "ece_before": figures["ece_before"], "ece_after": scaled["ece_before"],
        "nll_before": figures["nll_before"], "nll_after": scaled["nll_before"],
        "temperatures": [r["calibration"]["temperature"] for r in tested],
        "definition": "expected calibration error (15 equal-width confidence bins) over every test "
        "utterance, pooled, before and after temperature scaling with each fold's temperature, "
        "fitted on that fold's validation speakers (never its test speakers); per clip (as the "
        "saved model classifies single recordings). The saved models hold their temperature "
        "only with training.calibrate (stored).",
        "stored": all(r["calibration"].get("stored") for r in tested),
    }


def per_corpus(rows, class_names, corpora):
    """``{corpus: {"uar", "wa", "n"[, "per_clip_uar", "per_clip_wa"]}}``:
    the pooled test predictions of each corpus of a run over several (UAR
    over the classes that corpus has in its test clips)."""
    index = {c: i for i, c in enumerate(class_names)}
    out = {}
    for corpus in corpora:
        own = [r for r in rows if r.get("corpus") == corpus]
        truth = [index[r["true"]] for r in own]
        figures = compute_metrics(truth, [index[r["predicted"]] for r in own], class_names=class_names)
        entry = {"uar": figures["uar"], "wa": figures["wa"], "n": figures["n"]}
        if all("predicted_per_clip" in r for r in own):
            single = compute_metrics(truth, [index[r["predicted_per_clip"]] for r in own], class_names=class_names)
            entry.update(per_clip_uar=single["uar"], per_clip_wa=single["wa"])
        out[corpus] = entry
    return out
