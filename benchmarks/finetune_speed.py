"""Seconds per epoch of --mode finetune on all 1440 RAVDESS files.

    python benchmarks/finetune_speed.py [--data-dir DIR] [--variants k1,k2,lora] [--epochs 3]

For each variant (k1, k2: Whisper-base's top 1 or 2 blocks tuned; lora:
rank-8 adapters on the top 2 blocks) with the model and training settings
of configs/ravdess.json: the lower blocks' states of every file are
computed once into the embedding cache (timed; found there on a rerun),
then ``--epochs`` training epochs of the top blocks and the head
(``CachedTopBlocks``, the finetune mode's training model, with its
optimizer and frame masking) run over all 1440 files, without validation.
Medians over the epochs. Each finished variant is written at once to
benchmarks/results/finetune_speed.json (or --output), and a rerun skips it.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from benchmarks.common import REPO, machine, ravdess_dir, write_json  # noqa: E402

VARIANTS = {
    "k1": {"fine_tune_blocks": 1},
    "k2": {"fine_tune_blocks": 2},
    "lora": {"fine_tune_blocks": 2, "lora_rank": 8},
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--config", default=str(REPO / "configs" / "ravdess.json"))
    parser.add_argument("--variants", default="k1,k2,lora")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "finetune_speed.json"))
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from speechmodel import datasets
    from speechmodel.config import FeatureConfig
    from speechmodel.models.cached_top_blocks import CachedTopBlocks
    from speechmodel.models.registry import build_model
    from speechmodel.pipeline import FailureLog
    from speechmodel.training.callbacks import EpochTimer
    from speechmodel.training.config import load_config
    from speechmodel.training.defaults import DEFAULTS
    from speechmodel.training.embeddings import EmbeddingCache, cached_lower_states, default_cache_dir
    from speechmodel.training.fine_tune import state_dataset
    from speechmodel.training.optimizers import make_loss, make_optimizer

    results = {}
    if os.path.exists(args.output):
        with open(args.output, encoding="utf-8") as f:
            results = json.load(f).get("variants", {})
    config = load_config(args.config)
    training = dict(DEFAULTS["training"], **config["training"])
    manifest = datasets.load("ravdess", str(ravdess_dir(args.data_dir)))
    classes = manifest.emotions()
    labels = manifest.label_indices(classes)
    paths = [manifest[i].path for i in range(len(manifest))]
    features = FeatureConfig.from_dict(config["features"])
    batch = training["batch_size"]
    cache = EmbeddingCache(default_cache_dir(training.get("embedding_cache")))
    for variant in args.variants.split(","):
        if variant in results:
            print(f"{variant}: done earlier, {results[variant]['seconds_per_epoch']:.1f} s/epoch")
            continue
        model_config = dict(config["model"], **VARIANTS[variant])
        name = model_config.pop("name")
        keras.utils.set_random_seed(0)
        model = build_model(name, num_classes=len(classes), feature_config=features.to_dict(),
                            **model_config)
        failures = FailureLog()
        table, extract, hit = cached_lower_states(
            cache, model.embedder, paths, features=features, batch_size=batch, failures=failures
        )
        for path, reason in failures:
            print(f"skipped {path}: {reason}", file=sys.stderr)
        trainer = CachedTopBlocks(model, frame_mask=training["frame_mask"], seed=0)
        trainer.compile(optimizer=make_optimizer(training, training["learning_rate"], model=model),
                        loss=make_loss(training))
        timer = EpochTimer()
        start = time.perf_counter()
        trainer.fit(state_dataset(table, paths, labels, batch_size=batch, shuffle=True, seed=0),
                    epochs=args.epochs, callbacks=[timer], verbose=0)
        results[variant] = {
            "model": model_config,
            "files": len(table),
            "tokens": int(sum(len(v[1]) for v in table.values())),
            "extract_seconds": None if hit else extract,
            "seconds_per_epoch": timer.median(),
            "epochs": timer.times,
            "fit_seconds": time.perf_counter() - start,
            "trainable_parameters": int(sum(int(tf.size(w)) for w in trainer.trainable_weights)),
        }
        print(f"{variant}: {len(table)} files, states {'cached' if hit else f'extracted in {extract:.0f} s'}, "
              f"{timer.median():.1f} s/epoch (median of {args.epochs}: "
              f"{', '.join(f'{t:.1f}' for t in timer.times)})", flush=True)
        write_json(args.output, {"variants": results, "batch_size": batch,
                                 "threads": tf.config.threading.get_intra_op_parallelism_threads(),
                                 "machine": machine()})


if __name__ == "__main__":
    main()
