"""Seconds per epoch: end-to-end SpeechModel vs the two-stage head.

    python benchmarks/two_stage.py [--data-dir DIR] [--limit N] [--config configs/ravdess.json]

On the training actors of RAVDESS fold 1 (actors 5-24 minus the validation
actors), with the model of the config: (a) end-to-end training, the CNN and
the BLSTM head together on segment sequences; (b) the second stage of the
two-stage mode, the BLSTM + attention + DNN head alone on cached segment
embeddings (extracted once, timed separately). Medians over the epochs.
Writes benchmarks/results/two_stage.json (or --output).
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from benchmarks.common import REPO, machine, ravdess_dir, write_json  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--config", default=str(REPO / "configs" / "ravdess.json"))
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training files")
    parser.add_argument("--e2e-epochs", type=int, default=2)
    parser.add_argument("--head-epochs", type=int, default=5)
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "two_stage.json"))
    args = parser.parse_args()

    import keras

    from speechmodel import datasets
    from speechmodel.config import FeatureConfig
    from speechmodel.models.registry import build_model
    from speechmodel.pipeline import make_dataset
    from speechmodel.training.callbacks import EpochTimer
    from speechmodel.training.config import load_config
    from speechmodel.embedding import embed_files
    from speechmodel.pipeline import FailureLog
    from speechmodel.training.two_stage import sequence_dataset

    config = load_config(args.config)
    manifest = datasets.load("ravdess", str(ravdess_dir(args.data_dir)))
    fold = datasets.make_folds(manifest, "kfold")[0]
    classes = manifest.emotions()
    labels = manifest.label_indices(classes)
    train = list(fold.train)[: args.limit]
    paths = [manifest[i].path for i in train]
    y = labels[train]
    features = FeatureConfig.from_dict(config["features"])
    batch = config["training"]["batch_size"]
    model_config = dict(config["model"])
    name = model_config.pop("name")

    keras.utils.set_random_seed(0)
    model = build_model(name, num_classes=len(classes), **model_config)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    data = make_dataset(paths, y, config=features, batch_size=batch, training=True, cache="memory")
    for _ in data:  # fill the cache: both measurements start from decoded audio
        pass
    e2e = EpochTimer()
    model.fit(data, epochs=args.e2e_epochs, callbacks=[e2e], verbose=0)

    start = time.perf_counter()
    failures = FailureLog()
    table = {
        paths[i]: array
        for i, array in embed_files(
            model.segment_encoder, paths, features=features, batch_size=batch, failures=failures
        )
    }
    extract = time.perf_counter() - start
    for path, reason in failures:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    head = model.sequence_head
    head.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    head_timer = EpochTimer()
    head.fit(sequence_dataset(table, paths, y, batch_size=batch, shuffle=True, seed=0),
             epochs=args.head_epochs, callbacks=[head_timer], verbose=0)
    result = {
        "files": len(paths),
        "model": config["model"],
        "end_to_end_seconds_per_epoch": e2e.median(),
        "end_to_end_epochs": e2e.times,
        "extract_embeddings_seconds": extract,
        "head_seconds_per_epoch": head_timer.median(),
        "head_epochs": head_timer.times,
        "speedup_per_epoch": e2e.median() / head_timer.median(),
        "machine": machine(),
    }
    print(f"{len(paths)} training files, model {config['model']}")
    print(f"end-to-end    : {result['end_to_end_seconds_per_epoch']:7.1f} s/epoch (median of {args.e2e_epochs})")
    print(f"embeddings    : {extract:7.1f} s once")
    print(f"two-stage head: {result['head_seconds_per_epoch']:7.2f} s/epoch (median of {args.head_epochs})")
    print(f"speedup       : {result['speedup_per_epoch']:7.1f}x per epoch")
    write_json(args.output, result)


if __name__ == "__main__":
    main()
