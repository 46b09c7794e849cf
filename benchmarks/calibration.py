"""Saying how sure the model is: temperature scaling fitted on validation
speakers, its expected calibration error (ECE) before and after, and the
confidence at which results are right 90 % of the time.

    python benchmarks/calibration.py runs/pretrained/ravdess_speakernorm
    python benchmarks/calibration.py --preset default --data_dir ../shared/data/ravdess,../shared/data/nemo [--write]

A cross-validated run (a directory of ``train.py`` with ``folds.json``,
``manifest.csv`` and ``folds/*/model.keras``): each fold's saved model
classifies its validation and its test speakers' clips one by one, as
``infer.py`` does without ``--same_speaker`` (from the embedding cache:
the clip's segment embeddings, standardised with the average training
speaker's statistics the model holds, through its head). The temperature
is fitted on the fold's VALIDATION speakers only
(``speechmodel.calibration.fit_temperature``); the test figures (ECE
before and after, pooled over every test clip and per fold) never chose
anything. The ``--min_confidence`` threshold at which the calibrated model
is right 90 % of the time is found on the validation clips (pooled over
the folds, each with its own temperature) and its accuracy and coverage on
the test clips are reported.

A shipped model (``--preset default``): its validation speakers are those
of the run that made it (the ``all`` protocol of its training config,
``configs/<preset>.json``, recomputed: they chose its epoch and never
trained it). Its temperature and threshold are fitted on them; there is no
test set here (the figures after scaling are in-sample, so they are an
optimistic check, not an estimate). ``--write`` stores the temperature in
``speechmodel/presets/<preset>.keras`` (only the config changes: the
weights are the same).

Writes ``benchmarks/results/calibration_<name>.md`` and ``.json``.
"""

import argparse
import csv
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO  # noqa: E402

TARGET_ACCURACY = 0.9


def per_clip_probabilities(model, rows, features, cache, batch_size=32):
    """``(probabilities, truth indices, kept rows)`` of ``rows`` (manifest
    rows) classified one clip at a time by ``model`` (an
    ``inference.KerasInferenceModel``), from the embedding cache; before
    the model's own temperature, if any."""
    from speechmodel.layers.speaker_normalization import standardize
    from speechmodel.pipeline import FailureLog
    from speechmodel.training.embeddings import cached_embeddings
    from speechmodel.training.two_stage import head_predictions

    classifier = model.classifier
    names = list(model.class_names)
    rows = [r for r in rows if r["emotion"] in names]
    table, _, _ = cached_embeddings(
        cache, classifier.embedder, [r["path"] for r in rows], features=features,
        batch_size=batch_size, failures=FailureLog(),
    )
    layer = classifier.speaker_normalization
    if layer is not None:
        mean, variance = layer.statistics()
        table = {p: standardize(a, mean, variance, epsilon=layer.epsilon) for p, a in table.items()}
    probabilities, kept = head_predictions(classifier.sequence_head, table, [r["path"] for r in rows], batch_size)
    kept_rows = [rows[i] for i in kept]
    return probabilities, np.array([names.index(r["emotion"]) for r in kept_rows]), kept_rows


def threshold_figures(probabilities, truth, threshold):
    confidence = probabilities.max(axis=1)
    above = confidence >= threshold
    correct = probabilities.argmax(axis=1) == truth
    return {"coverage": float(above.mean()), "accuracy": float(correct[above].mean()) if above.any() else None}


def cross_validated(run, batch_size):
    from speechmodel import inference
    from speechmodel.calibration import calibration_figures, confidence_threshold, fit_temperature
    from speechmodel.calibration import scale_probabilities
    from speechmodel.config import FeatureConfig
    from speechmodel.training import artifacts
    from speechmodel.training.embeddings import EmbeddingCache, default_cache_dir

    config = artifacts.read_json(os.path.join(run, "config.json"))
    folds = artifacts.read_json(os.path.join(run, "folds.json"))["folds"]
    with open(os.path.join(run, "manifest.csv"), newline="", encoding="utf-8", errors="surrogateescape") as f:
        manifest = list(csv.DictReader(f))
    features = FeatureConfig.from_dict(config["features"])
    cache = EmbeddingCache(default_cache_dir(config["training"].get("embedding_cache")))
    per_fold, pooled = [], {"val": ([], [], []), "test": ([], [], [])}
    for fold in folds:
        model = inference.load_model(os.path.join(run, "folds", fold["name"], "model.keras"))
        split_data = {}
        for split in ("val", "test"):
            rows = [manifest[i] for i in fold[split]]
            split_data[split] = per_clip_probabilities(model, rows, features, cache, batch_size)[:2]
        temperature = fit_temperature(*split_data["val"])
        entry = {"fold": fold["name"], "temperature": temperature,
                 "test_speakers": fold["test_speakers"], "val_speakers": fold["val_speakers"]}
        for split, (p, y) in split_data.items():
            entry[split] = calibration_figures(p, y, temperature)
            pooled[split][0].append(p)
            pooled[split][1].append(scale_probabilities(p, temperature))
            pooled[split][2].append(y)
        per_fold.append(entry)
        print(f"{fold['name']}: T = {temperature:.3f}, test ECE {100 * entry['test']['ece_before']:.2f} % -> "
              f"{100 * entry['test']['ece_after']:.2f} %", flush=True)
    out = {"run": os.path.relpath(run, REPO), "folds": per_fold}
    for split, (raw, scaled, truth) in pooled.items():
        raw, scaled, truth = np.concatenate(raw), np.concatenate(scaled), np.concatenate(truth)
        figures = calibration_figures(raw, truth, 1.0)
        after = calibration_figures(scaled, truth, 1.0)
        out[split] = {"n": figures["n"], "ece_before": figures["ece_before"], "ece_after": after["ece_before"],
                      "nll_before": figures["nll_before"], "nll_after": after["nll_before"],
                      "accuracy": float((raw.argmax(1) == truth).mean())}
        pooled[split] = (raw, scaled, truth)
    for key, column in (("threshold", 1), ("threshold_uncalibrated", 0)):
        threshold, coverage, accuracy = confidence_threshold(
            pooled["val"][column], pooled["val"][2], accuracy=TARGET_ACCURACY
        )
        out[key] = {"target_accuracy": TARGET_ACCURACY, "min_confidence": threshold,
                    "val_coverage": coverage, "val_accuracy": accuracy,
                    "test": None if threshold is None else threshold_figures(
                        pooled["test"][column], pooled["test"][2], threshold)}
    return out


def preset(name, data_dirs, batch_size, write):
    from speechmodel import inference, presets
    from speechmodel.calibration import calibration_figures, confidence_threshold, fit_temperature
    from speechmodel.calibration import scale_probabilities
    from speechmodel.training.config import load_config
    from speechmodel.training.embeddings import EmbeddingCache, default_cache_dir
    from speechmodel.training.folds import load_manifests, make_protocol_folds

    config = load_config(str(REPO / "configs" / f"{name}.json"))
    corpora = config["dataset"]["corpora"]
    if len(data_dirs) != len(corpora):
        raise SystemExit(f"--data_dir: give {len(corpora)} directories, for {', '.join(c['name'] for c in corpora)}")
    for corpus, directory in zip(corpora, data_dirs):
        corpus["data_dir"] = os.path.abspath(directory)
    manifest, test_manifest, _ = load_manifests(config)
    [fold] = make_protocol_folds(config, manifest, test_manifest)
    path = presets.preset_path(name)
    model = inference.load_model(path)
    rows = [{"path": manifest[i].path, "emotion": manifest[i].emotion, "speaker": manifest[i].speaker}
            for i in fold.val]
    cache = EmbeddingCache(default_cache_dir(None))
    probabilities, truth, kept = per_clip_probabilities(model, rows, model.config, cache, batch_size)
    if model.temperature is not None:
        print(f"{path} holds a temperature already ({model.temperature:.4f}); fitting again from its "
              "probabilities before it", flush=True)
    temperature = fit_temperature(probabilities, truth)
    figures = calibration_figures(probabilities, truth, temperature)
    scaled = scale_probabilities(probabilities, temperature)
    threshold, coverage, accuracy = confidence_threshold(scaled, truth, accuracy=TARGET_ACCURACY)
    before = confidence_threshold(probabilities, truth, accuracy=TARGET_ACCURACY)
    out = {
        "preset": name, "model": os.path.relpath(path, REPO), "val_speakers": list(fold.val_speakers),
        "temperature": temperature, "val": {**figures, "accuracy": float((probabilities.argmax(1) == truth).mean())},
        "threshold": {"target_accuracy": TARGET_ACCURACY, "min_confidence": threshold,
                      "val_coverage": coverage, "val_accuracy": accuracy,
                      "uncalibrated_min_confidence": before[0], "uncalibrated_val_coverage": before[1]},
        "written": False,
    }
    if write:
        write_temperature(path, temperature)
        check = inference.load_model(path)
        assert abs(check.temperature - temperature) < 1e-12
        out["written"] = True
    return out


def write_temperature(path, temperature):
    """Stores ``temperature`` in the saved ``EmotionRecognizer`` at
    ``path`` (the same classifier and weights, a new config)."""
    from speechmodel.fileio import atomic_path
    from speechmodel.inference.loading import load_keras_model
    from speechmodel.models.recognizer import EmotionRecognizer

    recognizer = load_keras_model(path)
    calibrated = EmotionRecognizer(
        recognizer.classifier, feature_config=recognizer.feature_config,
        class_names=recognizer.class_names, temperature=temperature,
    )
    with atomic_path(path) as tmp:
        calibrated.save(tmp)


def markdown(out, command):
    pct = lambda x: "" if x is None else f"{100 * x:.2f}"  # noqa: E731
    if "folds" in out:
        lines = [
            f"Calibration of `{out['run']}`: per clip, temperature fitted on each fold's validation speakers "
            f"(`{command}`).",
            "",
            "| fold | temperature | test ECE % before | test ECE % after | test NLL before | test NLL after | "
            "validation ECE % before | validation ECE % after |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for f in out["folds"]:
            lines.append(f"| {f['fold']} | {f['temperature']:.3f} | {pct(f['test']['ece_before'])} | "
                         f"{pct(f['test']['ece_after'])} | {f['test']['nll_before']:.4f} | "
                         f"{f['test']['nll_after']:.4f} | {pct(f['val']['ece_before'])} | {pct(f['val']['ece_after'])} |")
        t = out["test"]
        lines.append(f"| pooled ({t['n']} test clips) | | **{pct(t['ece_before'])}** | **{pct(t['ece_after'])}** | "
                     f"{t['nll_before']:.4f} | {t['nll_after']:.4f} | {pct(out['val']['ece_before'])} | "
                     f"{pct(out['val']['ece_after'])} |")
        lines.append("")
        for key, what in (("threshold", "with each fold's temperature"), ("threshold_uncalibrated", "without it")):
            th = out[key]
            lines.append(
                f"Right {100 * th['target_accuracy']:.0f} % of the time on the validation speakers ({what}, "
                f"pooled): `--min_confidence {th['min_confidence']:.3f}` (coverage {pct(th['val_coverage'])} %); on "
                f"the test speakers it keeps {pct((th['test'] or {}).get('coverage'))} % of the clips, right "
                f"{pct((th['test'] or {}).get('accuracy'))} % of the time (test accuracy of all clips "
                f"{pct(t['accuracy'])} %).")
    else:
        th = out["threshold"]
        lines = [
            f"Calibration of the shipped `{out['preset']}` model on its {out['val']['n']} validation clips "
            f"(speakers {', '.join(out['val_speakers'])}; `{command}`). In-sample: fitted and measured on the same clips.",
            "",
            "| temperature | ECE % before | ECE % after | NLL before | NLL after | accuracy % |",
            "| --- | --- | --- | --- | --- | --- |",
            f"| {out['temperature']:.3f} | {pct(out['val']['ece_before'])} | {pct(out['val']['ece_after'])} | "
            f"{out['val']['nll_before']:.4f} | {out['val']['nll_after']:.4f} | {pct(out['val']['accuracy'])} |",
            "",
            f"Right {100 * th['target_accuracy']:.0f} % of the time on these clips with the temperature: "
            f"`--min_confidence {th['min_confidence']:.3f}` (coverage {pct(th['val_coverage'])} %, accuracy "
            f"{pct(th['val_accuracy'])} %). Without the temperature it would be {th['uncalibrated_min_confidence']:.3f}. "
            f"Temperature stored in `{out['model']}`: {'yes' if out['written'] else 'no'}.",
        ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", help="a finished cross-validated run directory")
    parser.add_argument("--preset", help="a shipped model (its configs/<name>.json names its validation speakers)")
    parser.add_argument("--data_dir", help="--preset: the corpora's directories, comma-separated, in the config's order")
    parser.add_argument("--write", action="store_true", help="--preset: store the temperature in the shipped model")
    parser.add_argument("--batch_size", type=int, default=32)
    args = parser.parse_args(argv)
    if bool(args.run) == bool(args.preset):
        parser.error("give a run directory or --preset NAME")
    command = "python benchmarks/calibration.py " + " ".join(argv if argv is not None else sys.argv[1:])
    from speechmodel.training import artifacts

    if args.run:
        out = cross_validated(os.path.abspath(args.run), args.batch_size)
        name = os.path.basename(os.path.abspath(args.run).rstrip(os.sep))
    else:
        if not args.data_dir:
            parser.error("--preset needs --data_dir")
        out = preset(args.preset, args.data_dir.split(","), args.batch_size, args.write)
        name = args.preset
    out["command"] = command
    text = markdown(out, command)
    print(text, end="")
    target = REPO / "benchmarks" / "results" / f"calibration_{name}"
    artifacts.atomic_write_text(str(target) + ".md", text)
    artifacts.atomic_write_text(str(target) + ".json", json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
