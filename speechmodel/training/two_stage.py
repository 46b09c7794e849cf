"""Two-stage training of DCNN-BLSTMwA, as in Zhang et al. (2021).

1. Fine-tune the CNN on segment labels (every segment of an utterance takes
   the utterance's label): ``training.segment_epochs`` epochs of the
   ``SpeechModel.segment_encoder.segment_classifier``. Skipped in the
   ``"frozen"`` mode (frozen-backbone feature extraction).
2. Extract every utterance's segment embeddings once and cache them on disk
   (``EmbeddingCache``), keyed by everything that determines them: each
   audio file (path, size, mtime), the feature config, the model config and
   a hash of the CNN's weights. A changed setting never reuses stale
   embeddings.
3. Train the BLSTM + attention + DNN head (``SpeechModel.sequence_head``) on
   the cached sequences; validation (training speakers only) picks the
   epoch.
"""

import hashlib
import json
import os
import time

import numpy as np

from speechmodel.training import artifacts


class EmbeddingCache:
    """Segment embeddings of utterances, one ``.npz`` per key in a folder."""

    def __init__(self, directory):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)

    @staticmethod
    def key(paths, *, feature_config, model_config, weights_digest):
        h = hashlib.sha256()
        h.update(json.dumps(feature_config, sort_keys=True).encode())
        h.update(json.dumps(model_config, sort_keys=True, default=str).encode())
        h.update(weights_digest.encode())
        for p in paths:
            st = os.stat(p)
            h.update(f"{os.path.abspath(p)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:24]

    def path(self, key):
        return os.path.join(self.directory, f"embeddings-{key}.npz")

    def load(self, key):
        path = self.path(key)
        if not os.path.exists(path):
            return None
        with np.load(path) as data:
            return {k: data[k] for k in data.files}

    def save(self, key, **arrays):
        import io

        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        artifacts.atomic_write_bytes(self.path(key), buffer.getvalue())


def weights_digest(model):
    h = hashlib.sha256()
    for w in model.weights:
        h.update(np.ascontiguousarray(np.asarray(w, dtype=np.float32)).tobytes())
    return h.hexdigest()[:16]


def extract_embeddings(encoder, paths, *, features, batch_size, failures):
    """Embeddings of every utterance: (flat (sum N, D), lengths, kept index)."""
    from speechmodel.pipeline import make_dataset

    flat, lengths, kept = [], [], []
    for x, index in make_dataset(paths, config=features, batch_size=batch_size, with_index=True, failures=failures):
        out = np.asarray(encoder(x, training=False), dtype=np.float32)
        mask = np.asarray(x["mask"])
        for b in range(out.shape[0]):
            n = int(mask[b].sum())
            flat.append(out[b, :n])
            lengths.append(n)
        kept.extend(np.asarray(index).tolist())
    dim = encoder.output_shape[-1]
    flat = np.concatenate(flat) if flat else np.zeros((0, dim), np.float32)
    return flat, np.asarray(lengths, np.int64), np.asarray(kept, np.int64)


def cached_embeddings(cache, encoder, paths, *, features, model_config, batch_size, failures):
    """``extract_embeddings`` through the cache; returns (arrays, seconds, hit)."""
    unique = sorted(set(paths))
    key = EmbeddingCache.key(
        unique, feature_config=features.to_dict(), model_config=model_config,
        weights_digest=weights_digest(encoder),
    )
    start = time.time()
    data = cache.load(key)
    hit = data is not None
    if not hit:
        flat, lengths, kept = extract_embeddings(
            encoder, unique, features=features, batch_size=batch_size, failures=failures
        )
        data = {"flat": flat, "lengths": lengths, "kept": kept, "paths": np.asarray(unique)}
        cache.save(key, **data)
    return _by_path(data), time.time() - start, hit


def _by_path(data):
    offsets = np.concatenate([[0], np.cumsum(data["lengths"])])
    paths = data["paths"]
    return {
        str(paths[k]): data["flat"][offsets[i] : offsets[i + 1]]
        for i, k in enumerate(data["kept"])
    }


def sequence_dataset(table, paths, labels, *, batch_size, shuffle, seed):
    """Padded batches ``({"embeddings", "mask"}, labels)`` from the cache."""
    import tensorflow as tf

    rows = [(table[p], int(y)) for p, y in zip(paths, labels) if p in table]
    lengths = np.array([len(r[0]) for r in rows], np.int64)
    flat = np.concatenate([r[0] for r in rows])
    ragged = tf.RaggedTensor.from_row_lengths(flat, lengths)
    ds = tf.data.Dataset.from_tensor_slices((ragged, np.array([r[1] for r in rows], np.int32)))
    if shuffle:
        ds = ds.shuffle(len(rows), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda e, y: (e, tf.shape(e)[0], y))
    ds = ds.padded_batch(batch_size)
    ds = ds.map(
        lambda e, n, y: ({"embeddings": e, "mask": tf.sequence_mask(n, tf.shape(e)[1])}, y)
    )
    from speechmodel.pipeline import finish

    return finish(ds)


def segment_dataset(utterances, *, batch_size, seed):
    """Utterance batches -> shuffled batches of single labelled segments."""
    import tensorflow as tf

    def flatten(x, y):
        mask = x["mask"]
        labels = tf.broadcast_to(y[:, tf.newaxis], tf.shape(mask))
        return tf.boolean_mask(x["segments"], mask), tf.boolean_mask(labels, mask)

    ds = utterances.map(flatten).unbatch()
    from speechmodel.pipeline import finish

    return finish(ds.shuffle(4096, seed=seed).batch(batch_size))


def segment_schedule(training, learning_rate):
    """The stage-1 learning-rate callbacks: none for ``constant``; for
    ``cosine``, epoch ``e`` of ``E`` runs at
    ``learning_rate * (1 + cos(pi * e / E)) / 2`` (from the full rate down
    to a few per cent of it in the last epoch)."""
    if training.get("segment_schedule", "constant") == "constant":
        return []
    import math

    import keras

    epochs = training["segment_epochs"]

    def rate(epoch, _current):
        return float(learning_rate * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs)))

    return [keras.callbacks.LearningRateScheduler(rate)]


def train(
    model, config, data, class_names, fold_dir, seed, strategy, batch_size, learning_rate,
    failures, *, waveform_augment=None, features_augment=None,
):
    """Runs the stages on one fold; returns the figures for result.json.

    The augmentations apply to stage 1 (the CNN sees augmented segments);
    the cached embeddings of stage 2 are of the original audio.
    """
    import keras

    from speechmodel.config import FeatureConfig
    from speechmodel.pipeline import make_dataset
    from speechmodel.training.callbacks import (
        AtomicBackupAndRestore,
        EpochTimer,
        best_epoch_figures,
        fit_callbacks,
    )

    training = config["training"]
    features = FeatureConfig.from_dict(config["features"])
    out = {}
    # Stage 1: fine-tune the CNN on segment labels (a backup every epoch;
    # once done, the marker file skips it).
    stage1 = os.path.join(fold_dir, "stage1.weights.h5")
    if training["mode"] == "two_stage" and training["segment_epochs"] > 0:
        with strategy.scope():
            classifier = model.segment_encoder.segment_classifier(len(class_names), dropout=0.3)
            classifier.compile(
                optimizer=keras.optimizers.Adam(learning_rate),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"],
            )
        if os.path.exists(stage1):
            classifier.load_weights(stage1)
            out["stage1_seconds_per_epoch"] = None
        else:
            utterances = make_dataset(
                *data["train"], config=features, batch_size=batch_size, training=True,
                seed=seed, cache=training.get("cache") or None, failures=failures,
                waveform_augment=waveform_augment, features_augment=features_augment,
            )
            segments = segment_dataset(utterances, batch_size=training["segment_batch_size"], seed=seed)
            stage1_timer = EpochTimer()
            classifier.fit(
                segments, epochs=training["segment_epochs"], verbose=2,
                callbacks=[
                    AtomicBackupAndRestore(os.path.join(fold_dir, "backup", "stage1")),
                    *segment_schedule(training, learning_rate),
                    stage1_timer,
                ],
            )
            # The median over the epochs this run trained (a resumed run
            # trains only the rest).
            out["stage1_seconds_per_epoch"] = stage1_timer.median()
            artifacts.save_weights_atomic(classifier, stage1)

    # Stage 2: embeddings, once, cached.
    cache_dir = training.get("embedding_cache") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(fold_dir))), ".cache", "embeddings"
    )
    cache = EmbeddingCache(cache_dir)
    model_config = dict(config["model"])
    tables, extract_seconds = {}, 0.0
    for split in ("train", "val"):
        paths = data[split][0]
        if not paths:
            continue
        tables[split], seconds, hit = cached_embeddings(
            cache, model.segment_encoder, paths, features=features, model_config=model_config,
            batch_size=batch_size, failures=failures,
        )
        extract_seconds += seconds
        out[f"{split}_embeddings_cached"] = hit
    out["extract_seconds"] = extract_seconds

    # Stage 3: the head on cached sequences.
    head = model.sequence_head
    train_ds = sequence_dataset(tables["train"], *data["train"], batch_size=batch_size, shuffle=True, seed=seed)
    val_ds = None
    if "val" in tables:
        val_ds = sequence_dataset(tables["val"], *data["val"], batch_size=batch_size, shuffle=False, seed=seed)
    callbacks, monitor = fit_callbacks(fold_dir, val_ds, class_names=class_names, training=training)
    with strategy.scope():
        head.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(),
            metrics=["accuracy"],
        )
    timer = EpochTimer()
    head.fit(train_ds, epochs=training["epochs"], callbacks=[*callbacks, timer], class_weight=data["class_weight"], verbose=2)
    out["head_seconds_per_epoch"] = timer.median()
    out.update(best_epoch_figures(monitor, training))
    return out
