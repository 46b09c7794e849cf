"""Speaker normalisation: how many recordings of a speaker it needs, and
how much to lean on the average speaker when there are few.

    python benchmarks/speaker_norm.py runs/pretrained/ravdess_speakernorm \\
        [--counts 1,2,5,10,20] [--repeats 5] [--priors 0,10,30,100]

For a finished cross-validated run of a speaker-normalised model
(``model.speaker_normalization``; ``benchmarks/pretrained.py --runs
ravdess_speakernorm``), each fold's saved model classifies its validation
and its test speakers' recordings again, from the cached embeddings, with
each speaker's statistics taken from only K of their recordings (drawn at
random, ``--repeats`` draws; every recording of the speaker is then
classified, the K included), as ``infer.py --same_speaker`` would with K
files. K = 0 is the model on single recordings (an average training
speaker's statistics), "all" every recording of the speaker (the run's own
figure with a prior of 0).

The statistics lean on the average speaker's (the layer's) by a prior of P
segments (``speechmodel.layers.speaker_normalization.speaker_statistics``):
P = 0 is the speaker's own statistics. P is chosen on the VALIDATION
speakers only (the best mean UAR over the K of ``--counts``); the test
figures are reported for P = 0 and for that P. Pooled UAR and WA over the
folds; the median over the draws.

Writes ``benchmarks/results/speaker_norm_<run name>.md`` and ``.json``.
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a finished run directory of a speaker-normalised model")
    parser.add_argument("--counts", default="1,2,5,10,20", help="recordings per speaker (K)")
    parser.add_argument("--repeats", type=int, default=5, help="random draws of the K recordings")
    parser.add_argument("--priors", default="0,10,30,100", help="prior weights P (segments) to choose from")
    parser.add_argument("--batch_size", type=int, default=64)
    args = parser.parse_args(argv)

    from speechmodel import inference
    from speechmodel.config import FeatureConfig
    from speechmodel.layers.speaker_normalization import speaker_statistics, standardize
    from speechmodel.metrics import compute_metrics
    from speechmodel.pipeline import FailureLog
    from speechmodel.training import artifacts
    from speechmodel.training.embeddings import EmbeddingCache, cached_embeddings, default_cache_dir
    from speechmodel.training.two_stage import head_predictions

    run = os.path.abspath(args.run)
    metrics = artifacts.read_json(os.path.join(run, "metrics.json"))
    config = artifacts.read_json(os.path.join(run, "config.json"))
    if not metrics.get("speaker_normalization"):
        raise SystemExit(f"{run}: not a run of a speaker-normalised model (model.speaker_normalization)")
    class_names = metrics["class_names"]
    index = {c: i for i, c in enumerate(class_names)}
    features = FeatureConfig.from_dict(config["features"])
    cache = EmbeddingCache(default_cache_dir(config["training"].get("embedding_cache")))
    folds = artifacts.read_json(os.path.join(run, "folds.json"))["folds"]
    with open(os.path.join(run, "manifest.csv"), newline="") as f:
        manifest = list(csv.DictReader(f))
    counts = [int(k) for k in args.counts.split(",")]
    priors = [float(p) for p in args.priors.split(",")]
    settings = [(0, 0.0)] + [(k, p) for k in [*counts, "all"] for p in priors]
    # (split, K, P) -> draw -> (truth, predicted), pooled over folds
    pooled = {
        (split, k, p): [([], []) for _ in range(1 if k in (0, "all") else args.repeats)]
        for split in ("val", "test") for k, p in settings
    }
    for fold in folds:
        fold_dir = os.path.join(run, "folds", fold["name"])
        model = inference.load_model(os.path.join(fold_dir, "model.keras"), runtime="keras").classifier
        layer = model.speaker_normalization
        population = layer.statistics()
        for split in ("val", "test"):
            speakers = set(fold[f"{split}_speakers"])
            rows = [r for r in manifest if r["speaker"] in speakers]
            table, _, _ = cached_embeddings(
                cache, model.embedder, [r["path"] for r in rows], features=features,
                batch_size=16, failures=FailureLog(),
            )
            by_speaker = {}
            for r in rows:
                if r["path"] in table:
                    by_speaker.setdefault(r["speaker"], []).append(r)
            for k, p in settings:
                for draw, (truth, predicted) in enumerate(pooled[(split, k, p)]):
                    rng = np.random.default_rng(1000 * draw + 17)
                    normalized, order = {}, []
                    for speaker, own in sorted(by_speaker.items()):
                        files = [r["path"] for r in own]
                        if k == 0:
                            mean, variance = population
                        else:
                            chosen = files if k == "all" else list(
                                rng.choice(files, size=min(k, len(files)), replace=False)
                            )
                            mean, variance = speaker_statistics(
                                [table[f] for f in chosen], prior=population, prior_segments=p
                            )
                        for r in own:
                            normalized[r["path"]] = standardize(
                                table[r["path"]], mean, variance, epsilon=layer.epsilon
                            )
                            order.append(r)
                    probabilities, kept = head_predictions(
                        model.sequence_head, normalized, [r["path"] for r in order], args.batch_size
                    )
                    truth.extend(index[order[i]["emotion"]] for i in kept)
                    predicted.extend(probabilities.argmax(-1).tolist())
        print(f"{fold['name']}: done", flush=True)

    def figures(split, k, p):
        found = [compute_metrics(t, q, class_names=class_names) for t, q in pooled[(split, k, p)]]
        return {
            "uar_median": float(np.median([f["uar"] for f in found])),
            "wa_median": float(np.median([f["wa"] for f in found])),
            "uar_min": float(min(f["uar"] for f in found)),
            "uar_max": float(max(f["uar"] for f in found)),
            "draws": len(found),
        }

    table = {(s, k, p): figures(s, k, p) for s in ("val", "test") for k, p in settings}
    chosen = max(priors, key=lambda p: (np.mean([table[("val", k, p)]["uar_median"] for k in counts]), -p))
    results = [
        {"recordings_per_speaker": k, "prior_segments": p, "split": s, **table[(s, k, p)]}
        for s in ("val", "test") for k, p in settings
    ]
    name = os.path.basename(run.rstrip(os.sep))
    lines = [
        f"Speaker normalisation with K recordings per test speaker: `{os.path.relpath(run, REPO)}` "
        f"({metrics['dataset']}, {len(folds)} folds; pooled; median of the draws). Prior P chosen on the "
        f"validation speakers among {', '.join(f'{p:g}' for p in priors)} segments: **P = {chosen:g}**.",
        "",
        f"| K recordings per speaker | test UAR % (P = 0) | test WA % (P = 0) | test UAR % (P = {chosen:g}) "
        f"| test WA % (P = {chosen:g}) | UAR range over draws (P = {chosen:g}) | validation UAR % (P = 0 / "
        f"{chosen:g}) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for k in [0, *counts, "all"]:
        label = "0 (single recordings: average speaker)" if k == 0 else (
            "all of the speaker's" if k == "all" else str(k))
        own = table[("test", k, 0.0 if k != 0 else 0.0)]
        lean = table[("test", k, chosen if k != 0 else 0.0)]
        val_own = table[("val", k, 0.0)]
        val_lean = table[("val", k, chosen if k != 0 else 0.0)]
        lines.append(
            f"| {label} | {100 * own['uar_median']:.2f} | {100 * own['wa_median']:.2f} | "
            f"{100 * lean['uar_median']:.2f} | {100 * lean['wa_median']:.2f} | "
            f"{100 * lean['uar_min']:.2f}-{100 * lean['uar_max']:.2f} | "
            f"{100 * val_own['uar_median']:.2f} / {100 * val_lean['uar_median']:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text, end="")
    out = REPO / "benchmarks" / "results" / f"speaker_norm_{name}"
    artifacts.atomic_write_text(str(out) + ".md", text)
    artifacts.atomic_write_text(str(out) + ".json", json.dumps(
        {"run": os.path.relpath(run, REPO), "chosen_prior_segments": chosen, "priors": priors,
         "command": "python benchmarks/speaker_norm.py " + " ".join(argv or sys.argv[1:]),
         "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
