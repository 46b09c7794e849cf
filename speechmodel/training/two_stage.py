"""Two-stage training of DCNN-BLSTMwA, as in Zhang et al. (2021).

1. Fine-tune the CNN on segment labels (every segment of an utterance takes
   the utterance's label): ``training.segment_epochs`` epochs of the
   ``SpeechModel.segment_encoder.segment_classifier``. Skipped in the
   ``"frozen"`` mode (frozen-backbone feature extraction).
2. Extract every utterance's segment embeddings once and cache them on disk
   (``speechmodel.training.embeddings``), per file, keyed by everything that
   determines them: the audio file (path, size, mtime), the feature config,
   the model config and a hash of the encoder's weights. A changed setting
   never reuses stale embeddings.
3. Train the BLSTM + attention + DNN head (``SpeechModel.sequence_head``) on
   the cached sequences; validation (training speakers only) picks the
   epoch.

The ``"frozen"`` mode of a model on a pretrained speech front end
(``AudioSpeechModel``, e.g. Whisper) is steps 2 and 3: its per-block
segment embeddings are computed once per file, whatever the fold, and the
test utterances are classified from the cache too. With
``model.speaker_normalization``, every speaker's cached embeddings are
standardised with that speaker's own statistics before step 3 (test
speakers included: a transductive figure), the model keeps an average
training speaker's statistics for single recordings, and the test
utterances are classified that way too (``per_clip_predicted``).
"""

import os
import warnings

import numpy as np

from speechmodel.layers.speaker_normalization import population_statistics
from speechmodel.layers.speaker_normalization import speaker_statistics
from speechmodel.layers.speaker_normalization import standardize
from speechmodel.training import artifacts
from speechmodel.training.embeddings import EmbeddingCache
from speechmodel.training.embeddings import cached_embeddings
from speechmodel.training.embeddings import default_cache_dir
from speechmodel.training.optimizers import make_loss
from speechmodel.training.optimizers import make_optimizer


def sequence_dataset(table, paths, labels, *, batch_size, shuffle, seed, epoch=None):
    """Padded batches ``({"embeddings", "mask"}, labels)`` from the cache.

    The shuffle order of a pass is a pure function of ``(seed, epoch)``
    (``epoch``: the ``speechmodel.pipeline.EpochCounter`` of the fit;
    without it the passes are numbered as they start).
    """
    import tensorflow as tf

    from speechmodel.pipeline import finish

    rows = [(table[p], int(y)) for p, y in zip(paths, labels) if p in table]
    ds = padded_dataset(
        [[r[0] for r in rows]], [r[1] for r in rows], batch_size=batch_size, shuffle=shuffle,
        seed=seed, epoch=epoch,
    )
    return finish(ds.map(
        lambda e, n, y: ({"embeddings": e, "mask": tf.sequence_mask(n, tf.shape(e)[1])}, y)
    ))


def padded_dataset(columns, labels, *, batch_size, shuffle, seed, epoch=None):
    """Batches ``(*padded columns, *their lengths, labels)`` of in-memory
    arrays: ``columns`` holds lists of arrays (one per example, of any
    length along the first axis), padded with zeros per batch (give the
    result to ``speechmodel.pipeline.finish`` once mapped).

    The shuffle order of a pass is a pure function of ``(seed, epoch)``
    (see ``sequence_dataset``).
    """
    import tensorflow as tf

    from speechmodel.pipeline import epoch_numbers, stateless_shuffle

    ragged = tuple(
        tf.RaggedTensor.from_row_lengths(
            np.concatenate(column), np.array([len(a) for a in column], np.int64)
        )
        for column in columns
    )
    ds = tf.data.Dataset.from_tensor_slices((*ragged, np.asarray(labels, np.int32)))
    if shuffle:
        ordered = ds
        ds = epoch_numbers(epoch).flat_map(
            lambda number: stateless_shuffle(ordered, seed=seed, number=number, salt=4, block=len(labels))
        )
    ds = ds.map(lambda *x: (*x[:-1], *[tf.shape(a)[0] for a in x[:-1]], x[-1]))
    return ds.padded_batch(batch_size)


def segment_dataset(utterances, *, batch_size, seed, epoch=None):
    """Utterance batches -> shuffled batches of single labelled segments.

    The shuffle of a pass is a pure function of ``(seed, epoch)`` (give the
    ``EpochCounter`` that ``utterances`` was made with).
    """
    import tensorflow as tf

    from speechmodel.pipeline import epoch_numbers, stateless_shuffle

    def flatten(x, y):
        mask = x["mask"]
        labels = tf.broadcast_to(y[:, tf.newaxis], tf.shape(mask))
        return tf.boolean_mask(x["segments"], mask), tf.boolean_mask(labels, mask)

    segments = utterances.map(flatten).unbatch()
    # Blocks of 4096 segments, each in a random order (the shuffle buffer
    # of 4096 it replaces); the utterances come shuffled already.
    ds = epoch_numbers(epoch).flat_map(
        lambda number: stateless_shuffle(segments, seed=seed, number=number, salt=3, block=4096)
    )
    from speechmodel.pipeline import finish

    return finish(ds.batch(batch_size))


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
    failures, *, waveform_augment=None, features_augment=None, progress=None, label=None,
    key=None,
):
    """Runs the stages on one fold; returns the figures for result.json.

    The augmentations apply to stage 1 (the CNN sees augmented segments);
    the cached embeddings of stage 2 are of the original audio.

    ``progress`` (a ``speechmodel.progress.Reporter``) hears a
    header per stage, the epochs of each fit and the embedding extraction;
    ``label`` starts its lines (``"fold 2/6"``), ``key`` names the fold in
    the run's plan.
    """
    from speechmodel.config import FeatureConfig
    from speechmodel.pipeline import EpochCounter, make_dataset
    from speechmodel.training.backup import AtomicBackupAndRestore
    from speechmodel.training.callbacks import DiskSpaceGuard, EpochSeed, EpochTimer, quiet_fit
    from speechmodel.progress import Reporter

    training = config["training"]
    features = FeatureConfig.from_dict(config["features"])
    progress = progress or Reporter()
    label = label or os.path.basename(fold_dir)
    key = key if key is not None else os.path.basename(fold_dir)
    two = training["mode"] == "two_stage" and training["segment_epochs"] > 0
    stage2 = f"{label}, stage 2/2" if two else label
    out = {}
    # Stage 1: fine-tune the CNN on segment labels (a backup every epoch;
    # once done, the marker file skips it).
    stage1 = os.path.join(fold_dir, "stage1.weights.h5")
    if training["mode"] == "two_stage" and training["segment_epochs"] > 0:
        with strategy.scope():
            classifier = model.segment_encoder.segment_classifier(
                len(class_names), dropout=training["segment_dropout"]
            )
            classifier.compile(
                optimizer=make_optimizer(training, learning_rate),
                loss=make_loss(training, from_logits=True),
                metrics=["accuracy"],
            )
        stage1_label = f"{label}, stage 1/2"
        if os.path.exists(stage1):
            with warnings.catch_warnings():  # Stage 1's optimizer: done with.
                warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
                classifier.load_weights(stage1)
            out["stage1_seconds_per_epoch"] = None
            progress.say(f"{stage1_label}: CNN on segments, done earlier ({stage1})")
            progress.run.finish((key, "stage1"))
        else:
            # Each epoch's data is a function of (seed, epoch), and the backup
            # (last callback) holds every other state: a resumed stage 1
            # continues exactly.
            stage1_epoch = EpochCounter()
            utterances = make_dataset(
                *data["train"], config=features, batch_size=batch_size, training=True,
                seed=seed, cache=training.get("cache") or None, failures=failures,
                waveform_augment=waveform_augment, features_augment=features_augment,
                epoch=stage1_epoch,
            )
            segments = segment_dataset(
                utterances, batch_size=training["segment_batch_size"], seed=seed, epoch=stage1_epoch
            )
            stage1_timer = EpochTimer()
            progress.say(
                f"{stage1_label}: CNN on segments, {training['segment_epochs']} epoch"
                f"{'' if training['segment_epochs'] == 1 else 's'} "
                f"(batches of {training['segment_batch_size']} segments)"
            )
            with quiet_fit():
                classifier.fit(
                    segments, epochs=training["segment_epochs"], verbose=0,
                    callbacks=[
                        EpochSeed(stage1_epoch),
                        DiskSpaceGuard(fold_dir),
                        *segment_schedule(training, learning_rate),
                        AtomicBackupAndRestore(
                            os.path.join(fold_dir, "backup", "stage1"), delete_on_end=False
                        ),
                        stage1_timer,
                        progress.fit(stage1_label, training["segment_epochs"], key=(key, "stage1")),
                    ],
                )
            # The median over the epochs this run trained (a resumed run
            # trains only the rest).
            out["stage1_seconds_per_epoch"] = stage1_timer.median()
            artifacts.save_weights_atomic(classifier, stage1)

    # Stage 2: embeddings, once per file, cached.
    cache = EmbeddingCache(default_cache_dir(training.get("embedding_cache")))
    progress.say(
        f"{stage2}: segment embeddings (cached in {cache.directory}), then the BLSTM + "
        f"attention head, {training['epochs']} epoch{'' if training['epochs'] == 1 else 's'}"
    )
    splits = ("train", "val", "test") if frozen_front_end(model, training) else ("train", "val")
    tables = cached_splits(
        lambda paths, update: cached_embeddings(
            cache, model.segment_encoder, paths, features=features, batch_size=batch_size,
            failures=failures, progress=update,
        ),
        data, splits, progress=progress, label=f"{stage2}: {{split}} embeddings",
        out=out, hit_key="{split}_embeddings_cached",
    )

    raw = dict(tables)  # Before speaker normalisation.
    normalization = getattr(model, "speaker_normalization", None)
    if normalization is not None:
        # Each speaker standardised with their own statistics (unlabelled);
        # the saved model holds an average training speaker's.
        tables, statistics = speaker_normalized(
            tables, data["speakers"], data, epsilon=normalization.epsilon
        )
        normalization.set_statistics(
            *population_statistics([v for (split, _), v in statistics.items() if split == "train"])
        )
        out["speaker_normalization"] = {
            split: len({s for (sp, s) in statistics if sp == split}) for split in tables
        }
        progress.say(
            f"{stage2}: speaker normalisation: "
            + ", ".join(f"{n} {split} speaker{'' if n == 1 else 's'}"
                        for split, n in out["speaker_normalization"].items())
            + " standardised with their own statistics"
        )

    # Stage 3: the head on cached sequences.
    head = model.sequence_head
    out["head_seconds_per_epoch"] = fit_fold(
        head, lambda: make_optimizer(training, learning_rate), sequence_dataset, tables, data,
        strategy=strategy, fold_dir=fold_dir, class_names=class_names, training=training,
        batch_size=batch_size, seed=seed, out=out,
        report=progress.fit(f"{stage2} head", training["epochs"], key=(key, "head")),
    )

    def per_clip(split):
        """What the saved model does with one recording of a speaker it
        has no other recordings of: the average speaker's statistics."""
        if normalization is None:
            return tables[split]
        mean, variance = normalization.statistics()
        return {p: standardize(a, mean, variance, epsilon=normalization.epsilon) for p, a in raw[split].items()}

    if "val" in tables:  # Per clip, as the saved model runs: for its calibration.
        out["val_predictions"] = head_predictions(head, per_clip("val"), data["val"][0], batch_size)
    if "test" in tables:
        out["test_predictions"] = head_predictions(head, tables["test"], data["test"][0], batch_size)
        if normalization is not None:
            probabilities, _ = head_predictions(head, per_clip("test"), data["test"][0], batch_size)
            out["per_clip_predicted"] = probabilities.argmax(-1).tolist()
            out["per_clip_probabilities"] = probabilities
    return out


def fit_fold(model, optimizer, dataset, tables, data, *, strategy, fold_dir, class_names, training,
             batch_size, seed, out, report):
    """Trains ``model`` on cached tables: compiled with ``optimizer()``,
    the fold's loss and metrics, fitted on ``dataset(tables["train"], ...)``
    (``sequence_dataset`` or alike) with the fold's callbacks
    (``fit_callbacks``: early stopping and the checkpoint on the validation
    speakers, resumable backups) and ``report`` (a ``Reporter.fit``); the
    best epoch's figures go into ``out``. Returns the median seconds per
    epoch."""
    from speechmodel.pipeline import EpochCounter
    from speechmodel.training.callbacks import EpochTimer, best_epoch_figures, fit_callbacks, quiet_fit
    from speechmodel.training.uar_metric import SparseAccuracy, UnweightedAverageRecall

    epoch = EpochCounter()
    train_ds = dataset(
        tables["train"], *data["train"], batch_size=batch_size, shuffle=True, seed=seed, epoch=epoch
    )
    val_ds = None
    if "val" in tables:
        val_ds = dataset(tables["val"], *data["val"], batch_size=batch_size, shuffle=False, seed=seed)
    with strategy.scope():
        model.compile(
            optimizer=optimizer(),
            loss=make_loss(training, label_sets=data.get("label_sets")),
            metrics=[SparseAccuracy(len(class_names)), UnweightedAverageRecall(len(class_names))],
        )
    if not model.built:  # Built before the backup restores into it.
        model(next(iter(train_ds))[0])
    callbacks, monitor = fit_callbacks(
        fold_dir, val_ds, class_names=class_names, training=training, epoch=epoch
    )
    timer = EpochTimer()
    with quiet_fit():
        model.fit(
            train_ds, epochs=training["epochs"], callbacks=[*callbacks, timer, report],
            class_weight=data["class_weight"], verbose=0,
        )
    out.update(best_epoch_figures(monitor, training))
    return timer.median()


def cached_splits(compute, data, splits, *, progress, label, out, hit_key):
    """``{split: table}`` of ``compute(paths, update)`` (a cached-embedding
    function returning ``(table, seconds, hit)``) for each of ``splits``
    that has files, with a progress count per split (``label`` and
    ``hit_key`` formatted with ``split``). Records in ``out`` whether each
    split was cached (``hit_key``) and the seconds in all
    (``extract_seconds``)."""
    tables, seconds = {}, 0.0
    for split in splits:
        paths = data[split][0]
        if not paths:
            continue
        count = progress.count(label.format(split=split), len(set(paths)))
        tables[split], spent, hit = compute(paths, count.update)
        count.update(len(tables[split]))
        count.close()
        seconds += spent
        out[hit_key.format(split=split)] = hit
    out["extract_seconds"] = seconds
    return tables


def speaker_normalized(tables, speakers, data, *, epsilon=1e-5):
    """Every split's embeddings standardised per speaker.

    Args:
        tables: ``{split: {path: (N, ...) array}}``.
        speakers: ``{split: [speaker of each path of data[split][0]]}``.
        data: ``{split: (paths, labels)}``.
        epsilon: added to the variance (``SpeakerNormalization``'s).

    Returns:
        ``(tables, statistics)``: the standardised tables, and ``{(split,
        speaker): (mean, variance)}`` (over each file once, whatever the
        oversampling).
    """
    out, statistics = {}, {}
    for split, table in tables.items():
        groups = {}
        for path, speaker in zip(data[split][0], speakers[split]):
            if path in table:
                groups.setdefault(speaker, {})[path] = table[path]
        out[split] = {}
        for speaker, files in groups.items():
            mean, variance = speaker_statistics(list(files.values()))
            statistics[(split, speaker)] = (mean, variance)
            for path, array in files.items():
                out[split][path] = standardize(array, mean, variance, epsilon=epsilon)
    return out, statistics


def frozen_front_end(model, training):
    """A model on a pretrained front end, trained on cached embeddings."""
    return training["mode"] == "frozen" and hasattr(model, "embedder")


def head_predictions(head, table, paths, batch_size):
    """``(probabilities (n, C), kept positions in paths)`` of the head on
    cached embeddings; files missing from ``table`` (failed) are left out."""
    kept = [i for i, p in enumerate(paths) if p in table]
    if not kept:
        return np.zeros((0, head.output_shape[-1])), []
    ds = sequence_dataset(
        table, [paths[i] for i in kept], np.zeros(len(kept), np.int32),
        batch_size=batch_size, shuffle=False, seed=0,
    )
    chunks = [np.asarray(head(x, training=False), np.float64) for x, _ in ds]
    return np.concatenate(chunks), kept
