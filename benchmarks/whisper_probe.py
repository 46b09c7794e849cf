"""The reference the Whisper front end is measured against: a linear probe.

    python benchmarks/whisper_probe.py --dataset ravdess [--data-dir DIR]
    python benchmarks/whisper_probe.py --dataset nemo --data-dir ../shared/data/nemo

Frozen OpenAI Whisper-base encoder features, as in the issue that asked for
the front end: for each of its 6 transformer blocks, the mean and the
standard deviation over time of the block's 20 ms frames (the utterance's
valid frames only); averaged over the blocks (1024 numbers per
utterance); standardised; a logistic regression. Folds: the protocol of
``configs/<dataset>.json`` (RAVDESS: 6 folds of 4 actors; nEMO: leave one
speaker out), the same as the SpeechModel runs. The regularisation ``C`` is
chosen per fold on the validation speakers (taken from the training
speakers); the model is then refitted on the training and validation
speakers with that ``C``. UAR and WA are pooled over every test utterance
(``speechmodel.metrics``). The per-file statistics are cached in the
toolkit's embedding cache, so a rerun costs only the regressions.

Writes ``benchmarks/results/whisper_probe_<dataset>.json`` and ``.md``.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO, machine, write_json  # noqa: E402

C_GRID = (0.001, 0.01, 0.1, 1.0)


def statistics_function(converter, encoder):
    import tensorflow as tf

    @tf.function(
        input_signature=[tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([None], tf.int32)]
    )
    def stats(waveforms, lengths):
        mel, frames = converter(waveforms, lengths)
        hidden, tokens = encoder(mel, frames)  # (B, L, T, D)
        mask = tf.sequence_mask(tokens, tf.shape(hidden)[2], dtype=hidden.dtype)
        mask = mask[:, tf.newaxis, :, tf.newaxis]
        count = tf.reduce_sum(mask, axis=2)
        mean = tf.reduce_sum(hidden * mask, axis=2) / count
        var = tf.reduce_sum(tf.square(hidden - mean[:, :, tf.newaxis]) * mask, axis=2) / count
        per_block = tf.concat([mean, tf.sqrt(var)], axis=-1)  # (B, L, 2D)
        return tf.reduce_mean(per_block, axis=1)

    return stats


def utterance_features(paths, batch_size=16):
    """{path: (1024,)} for every file that loads, through the cache."""
    from speechmodel.config import FeatureConfig
    from speechmodel.models.frontends import build_front_end
    from speechmodel.pipeline import FailureLog, make_dataset
    from speechmodel.training.embeddings import (
        EmbeddingCache,
        default_cache_dir,
        encoder_config,
    )

    embedder = build_front_end("whisper_base")
    embedder.build()
    cache = EmbeddingCache(default_cache_dir())
    key = EmbeddingCache.model_key(
        feature_config={"probe": "mean+std over time, averaged over blocks"},
        model_config=encoder_config(embedder),
        weights_digest="whisper_base",
    )
    table = {p: cache.load(key, p) for p in paths}
    missing = sorted((p for p, v in table.items() if v is None), key=lambda p: Path(p).stat().st_size)
    table = {p: v for p, v in table.items() if v is not None}
    failures = FailureLog()
    if missing:
        stats = statistics_function(embedder.converter, embedder.encoder)
        for x, index in make_dataset(
            missing, config=FeatureConfig(), batch_size=batch_size, with_index=True,
            failures=failures, outputs="waveforms",
        ):
            out = np.asarray(stats(x["waveforms"], x["lengths"]), np.float32)
            for row, i in enumerate(np.asarray(index)):
                cache.save(key, missing[int(i)], out[row])
                table[missing[int(i)]] = out[row]
    for path, reason in failures:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    return table


def fit_probe(x_train, y_train, c):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))
    return model.fit(x_train, y_train)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ravdess")
    parser.add_argument("--data-dir", "--data_dir", dest="data_dir")
    parser.add_argument("--out", default=None, help="results name (default whisper_probe_<dataset>)")
    args = parser.parse_args(argv)

    import datasets
    from speechmodel.metrics import compute_metrics
    from speechmodel.training.config import load_config
    from speechmodel.training.runner import make_protocol_folds

    data_dir = args.data_dir or str(REPO.parent / "shared" / "data" / args.dataset)
    config = load_config(REPO / "configs" / f"{args.dataset}.json")
    manifest = datasets.load(args.dataset, data_dir)
    class_names = manifest.emotions()
    folds = make_protocol_folds(config, manifest, None)
    paths = [u.path for u in manifest]
    start = time.time()
    table = utterance_features(paths)
    extract_seconds = time.time() - start
    label = {u.path: class_names.index(u.emotion) for u in manifest}

    def arrays(indices):
        kept = [paths[i] for i in indices if paths[i] in table]
        return np.stack([table[p] for p in kept]), np.array([label[p] for p in kept]), kept

    y_true, y_pred, per_fold = [], [], []
    for fold in folds:
        x_tr, y_tr, _ = arrays(fold.train)
        x_va, y_va, _ = arrays(fold.val)
        x_te, y_te, _ = arrays(fold.test)
        scores = {}
        for c in C_GRID:
            pred = fit_probe(x_tr, y_tr, c).predict(x_va)
            scores[c] = compute_metrics(y_va, pred, class_names=class_names)["uar"]
        best = max(C_GRID, key=lambda c: (scores[c], -c))
        model = fit_probe(np.concatenate([x_tr, x_va]), np.concatenate([y_tr, y_va]), best)
        pred = model.predict(x_te)
        fold_uar = compute_metrics(y_te, pred, class_names=class_names)["uar"]
        per_fold.append({"fold": fold.name, "C": best, "val_uar": scores[best], "test_uar": fold_uar})
        print(f"fold {fold.name}: C={best} val UAR {100 * scores[best]:.2f} test UAR {100 * fold_uar:.2f}", flush=True)
        y_true.extend(y_te.tolist())
        y_pred.extend(pred.tolist())
    metrics = compute_metrics(np.array(y_true), np.array(y_pred), class_names=class_names)
    name = args.out or f"whisper_probe_{args.dataset}"
    result = {
        "dataset": args.dataset,
        "protocol": config["protocol"],
        "classes": class_names,
        "uar": metrics["uar"],
        "wa": metrics["wa"],
        "test_utterances": len(y_true),
        "folds": per_fold,
        "mean_val_uar": float(np.mean([f["val_uar"] for f in per_fold])),
        "features_seconds": extract_seconds,
        "machine": machine(),
        "command": "python benchmarks/whisper_probe.py " + " ".join(argv or sys.argv[1:]),
    }
    results = REPO / "benchmarks" / "results"
    write_json(results / f"{name}.json", result)
    fold_uars = [100 * f["test_uar"] for f in per_fold]
    (results / f"{name}.md").write_text(
        f"| model | UAR % | WA % | per-fold UAR % (mean +- std) | validation UAR % |\n"
        f"| --- | --- | --- | --- | --- |\n"
        f"| Whisper-base linear probe (mean+std per block, averaged; logistic regression) | "
        f"{100 * metrics['uar']:.2f} | {100 * metrics['wa']:.2f} | "
        f"{np.mean(fold_uars):.2f} +- {np.std(fold_uars):.2f} | {100 * result['mean_val_uar']:.2f} |\n"
    )
    print(f"{args.dataset}: UAR {100 * metrics['uar']:.2f} % WA {100 * metrics['wa']:.2f} % "
          f"({len(y_true)} test utterances, features {extract_seconds:.0f} s)")


if __name__ == "__main__":
    main()
