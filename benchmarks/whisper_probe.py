"""The reference the Whisper front end is measured against: a linear probe.

    python benchmarks/whisper_probe.py --dataset ravdess [--data-dir DIR]
    python benchmarks/whisper_probe.py --dataset nemo --data-dir ../shared/data/nemo
    python benchmarks/whisper_probe.py --dataset ravdess --blocks concat --pca 256
    python benchmarks/whisper_probe.py --dataset ravdess --blocks concat --pca 256 --speaker-norm
    python benchmarks/whisper_probe.py --dataset ravdess --blocks concat --pca 256 --classifier svm
    python benchmarks/whisper_probe.py --dataset ravdess --blocks concat --pca 256 \
        --average-with runs/pretrained/ravdess

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

Variants: ``--blocks concat`` keeps the 6 blocks' statistics side by side
(6 x 1024 numbers) instead of averaging them; ``--pca N`` reduces the
standardised features to N principal components (fitted on the training
speakers only) before the regression; ``--speaker-norm`` standardises each
speaker's features with that speaker's own mean and standard deviation over
all of their utterances, labels unused. Speaker normalisation is
transductive: at test time it needs a set of (unlabelled) recordings of each
test speaker (RAVDESS: 60 per actor), which a single-clip user does not
have; its rows are labelled as such. ``--classifier svm`` replaces the
logistic regression with an RBF support-vector machine (its ``C`` chosen
the same way). ``--average-with RUN`` averages, with equal weights fixed
in advance, the probe's probabilities with those a SpeechModel run wrote
in its ``predictions.csv`` on the same folds (an ensemble of the two).
No test label, and no test speaker's
recording in training or validation, is used by any variant.

Writes ``benchmarks/results/whisper_probe_<dataset>.json`` and ``.md``.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO, machine, write_json  # noqa: E402

C_GRID = (0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
SVM_C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0)


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
        return tf.concat([mean, tf.sqrt(var)], axis=-1)  # (B, L, 2D)

    return stats


def utterance_features(paths, batch_size=16):
    """{path: (6, 1024)} (per block: mean and std over time) for every file
    that loads, through the cache."""
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
        feature_config={"probe": "mean+std over time per block"},
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


def fit_probe(x_train, y_train, c, *, pca=0, classifier="logistic"):
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    steps = [StandardScaler()]
    if pca:
        steps += [PCA(pca, random_state=0), StandardScaler()]
    if classifier == "svm":
        last = SVC(C=c, gamma="scale", probability=True, random_state=0)
    else:
        last = LogisticRegression(C=c, max_iter=3000)
    model = make_pipeline(*steps, last)
    return model.fit(x_train, y_train)


def speaker_normalise(x, speakers):
    """Each speaker's rows standardised with that speaker's own mean and
    standard deviation (no labels used)."""
    x = np.array(x, dtype=np.float64)
    speakers = np.asarray(speakers)
    for speaker in np.unique(speakers):
        rows = speakers == speaker
        x[rows] = (x[rows] - x[rows].mean(0)) / (x[rows].std(0) + 1e-6)
    return x


def run_probabilities(run_dir, class_names):
    """{file: probabilities in ``class_names`` order} from a run's
    ``predictions.csv``."""
    import csv

    path = Path(run_dir) / "predictions.csv"
    if not path.exists():
        raise SystemExit(f"--average-with: no predictions.csv in {run_dir}. Received: {run_dir!r}")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    missing = [c for c in class_names if f"p_{c}" not in rows[0]]
    if missing:
        raise SystemExit(f"--average-with: {path} has no probability of {missing}")
    return {r["file"]: np.array([float(r[f"p_{c}"]) for c in class_names]) for r in rows}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ravdess")
    parser.add_argument("--data-dir", "--data_dir", dest="data_dir")
    parser.add_argument("--blocks", choices=("average", "concat"), default="average",
                        help="average the 6 blocks' statistics (the issue's reference) or keep them side by side")
    parser.add_argument("--pca", type=int, default=0, help="principal components before the regression (0: none)")
    parser.add_argument("--speaker-norm", "--speaker_norm", dest="speaker_norm", action="store_true",
                        help="standardise each speaker's features with their own statistics (transductive)")
    parser.add_argument("--classifier", choices=("logistic", "svm"), default="logistic",
                        help="logistic regression (the reference) or an RBF support-vector machine")
    parser.add_argument("--average-with", "--average_with", dest="average_with", default=None,
                        help="a run directory on the same folds: average its predictions.csv "
                             "probabilities with the probe's (equal weights)")
    parser.add_argument("--out", default=None, help="results name (default whisper_probe_<dataset>[_variant])")
    args = parser.parse_args(argv)

    from speechmodel import datasets
    from speechmodel.metrics import compute_metrics
    from speechmodel.training.config import load_config
    from speechmodel.training.folds import make_protocol_folds

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
    kept = [u for u in manifest if u.path in table]
    stats = np.stack([table[u.path] for u in kept])  # (n, 6, 1024)
    x_all = stats.mean(axis=1) if args.blocks == "average" else stats.reshape(len(kept), -1)
    if args.speaker_norm:
        x_all = speaker_normalise(x_all, [str(u.speaker) for u in kept])
    row = {u.path: i for i, u in enumerate(kept)}

    def arrays(indices):
        rows = [row[paths[i]] for i in indices if paths[i] in row]
        return x_all[rows], np.array([label[kept[r].path] for r in rows]), rows

    other = run_probabilities(args.average_with, class_names) if args.average_with else None
    grid = SVM_C_GRID if args.classifier == "svm" else C_GRID
    y_true, y_pred, per_fold = [], [], []
    for fold in folds:
        x_tr, y_tr, _ = arrays(fold.train)
        x_va, y_va, _ = arrays(fold.val)
        x_te, y_te, test_rows = arrays(fold.test)
        scores = {}
        for c in grid:
            pred = fit_probe(x_tr, y_tr, c, pca=args.pca, classifier=args.classifier).predict(x_va)
            scores[c] = compute_metrics(y_va, pred, class_names=class_names)["uar"]
        best = max(grid, key=lambda c: (scores[c], -c))
        model = fit_probe(np.concatenate([x_tr, x_va]), np.concatenate([y_tr, y_va]), best,
                          pca=args.pca, classifier=args.classifier)
        if other is None:
            pred = model.predict(x_te)
        else:
            probabilities = np.zeros((len(test_rows), len(class_names)))
            probabilities[:, model.classes_] = model.predict_proba(x_te)
            theirs = np.stack([other[kept[r].path] for r in test_rows])
            pred = (0.5 * probabilities + 0.5 * theirs).argmax(axis=1)
        fold_uar = compute_metrics(y_te, pred, class_names=class_names)["uar"]
        per_fold.append({"fold": fold.name, "C": best, "val_uar": scores[best], "test_uar": fold_uar})
        print(f"fold {fold.name}: C={best} val UAR {100 * scores[best]:.2f} test UAR {100 * fold_uar:.2f}", flush=True)
        y_true.extend(y_te.tolist())
        y_pred.extend(pred.tolist())
    metrics = compute_metrics(np.array(y_true), np.array(y_pred), class_names=class_names)
    variant = "" if args.blocks == "average" else "_concat"
    variant += f"_pca{args.pca}" if args.pca else ""
    variant += "_speakernorm" if args.speaker_norm else ""
    variant += "_svm" if args.classifier == "svm" else ""
    variant += f"_with_{Path(args.average_with).name}" if args.average_with else ""
    name = args.out or f"whisper_probe_{args.dataset}{variant}"
    description = (
        "Whisper-base linear probe (mean+std per block, "
        + ("averaged" if args.blocks == "average" else "6 blocks side by side")
        + (f"; PCA {args.pca}" if args.pca else "")
        + ("; RBF SVM" if args.classifier == "svm" else "; logistic regression")
        + ("; speaker-normalised, transductive" if args.speaker_norm else "")
        + ")"
        + (f", probabilities averaged with {args.average_with}" if args.average_with else "")
    )
    result = {
        "model": description,
        "blocks": args.blocks,
        "pca": args.pca,
        "speaker_norm": args.speaker_norm,
        "classifier": args.classifier,
        "average_with": args.average_with,
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
        f"| {description} | "
        f"{100 * metrics['uar']:.2f} | {100 * metrics['wa']:.2f} | "
        f"{np.mean(fold_uars):.2f} +- {np.std(fold_uars):.2f} | {100 * result['mean_val_uar']:.2f} |\n"
    )
    print(f"{args.dataset}: UAR {100 * metrics['uar']:.2f} % WA {100 * metrics['wa']:.2f} % "
          f"({len(y_true)} test utterances, features {extract_seconds:.0f} s)")


if __name__ == "__main__":
    main()
