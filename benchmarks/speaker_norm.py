"""Speaker normalisation: how many recordings of a speaker it needs.

    python benchmarks/speaker_norm.py runs/pretrained/ravdess_speakernorm [--counts 1,2,5,10,20] [--repeats 5]

For a finished cross-validated run of a speaker-normalised model
(``model.speaker_normalization``; ``benchmarks/pretrained.py --runs
ravdess_speakernorm``), each fold's saved model classifies its test
speakers' recordings again, from the cached embeddings, with each test
speaker's statistics taken from only K of their recordings (drawn at
random, ``--repeats`` draws; every recording of the speaker is then
classified, the K included), as ``infer.py --same_speaker`` would with K
files. K = 0 is the model on single recordings (an average training
speaker's statistics), "all" every recording of the speaker (the run's own
figure). Pooled UAR and WA over the folds; the median over the draws.

Writes ``benchmarks/results/speaker_norm_<run name>.md`` and ``.json``.
"""

import argparse
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
    parser.add_argument("--batch_size", type=int, default=16)
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
    counts = [int(k) for k in args.counts.split(",")]
    settings = [0, *counts, "all"]
    # setting -> draw -> (truth, predicted) pooled over folds
    pooled = {s: [([], []) for _ in range(1 if s in (0, "all") else args.repeats)] for s in settings}
    for fold in metrics["folds"]:
        fold_dir = os.path.join(run, "folds", fold["fold"])
        rows = artifacts.read_json(os.path.join(fold_dir, "result.json"))["predictions"]
        loaded = inference.load_model(os.path.join(fold_dir, "model.keras"))
        model = loaded.classifier
        layer = model.speaker_normalization
        population = layer.statistics()
        paths = [r["file"] for r in rows]
        table, _, _ = cached_embeddings(
            cache, model.embedder, paths, features=features, batch_size=args.batch_size,
            failures=FailureLog(),
        )
        by_speaker = {}
        for r in rows:
            by_speaker.setdefault(r["speaker"], []).append(r)
        for setting in settings:
            for draw, (truth, predicted) in enumerate(pooled[setting]):
                rng = np.random.default_rng(1000 * draw + 17)
                normalized, order = {}, []
                for speaker, own in sorted(by_speaker.items()):
                    files = [r["file"] for r in own]
                    if setting == 0:
                        mean, variance = population
                    else:
                        chosen = files if setting == "all" else list(
                            rng.choice(files, size=min(setting, len(files)), replace=False)
                        )
                        mean, variance = speaker_statistics([table[f] for f in chosen])
                    for r in own:
                        normalized[r["file"]] = standardize(
                            table[r["file"]], mean, variance, epsilon=layer.epsilon
                        )
                        order.append(r)
                probabilities, kept = head_predictions(
                    model.sequence_head, normalized, [r["file"] for r in order], args.batch_size
                )
                truth.extend(index[order[k]["true"]] for k in kept)
                predicted.extend(probabilities.argmax(-1).tolist())
        print(f"{fold['fold']}: done", flush=True)
    results = []
    for setting in settings:
        figures = [compute_metrics(t, p, class_names=class_names) for t, p in pooled[setting]]
        results.append({
            "recordings_per_speaker": setting,
            "draws": len(figures),
            "uar_median": float(np.median([f["uar"] for f in figures])),
            "wa_median": float(np.median([f["wa"] for f in figures])),
            "uar_min": float(min(f["uar"] for f in figures)),
            "uar_max": float(max(f["uar"] for f in figures)),
        })
    name = os.path.basename(run.rstrip(os.sep))
    lines = [
        f"Speaker normalisation with K recordings per test speaker: `{os.path.relpath(run, REPO)}` "
        f"({metrics['dataset']}, {len(metrics['folds'])} folds; pooled; median of the draws)",
        "",
        "| K recordings per speaker | UAR % | WA % | UAR range over draws | draws |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results:
        k = r["recordings_per_speaker"]
        label = "0 (single recordings: average speaker)" if k == 0 else (
            "all of the speaker's" if k == "all" else str(k))
        lines.append(
            f"| {label} | {100 * r['uar_median']:.2f} | {100 * r['wa_median']:.2f} | "
            f"{100 * r['uar_min']:.2f}-{100 * r['uar_max']:.2f} | {r['draws']} |"
        )
    text = "\n".join(lines) + "\n"
    print(text, end="")
    out = REPO / "benchmarks" / "results" / f"speaker_norm_{name}"
    artifacts.atomic_write_text(str(out) + ".md", text)
    artifacts.atomic_write_text(str(out) + ".json", json.dumps(
        {"run": os.path.relpath(run, REPO), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
