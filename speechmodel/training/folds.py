"""The data of an experiment: its corpora, loaded into one manifest
(:func:`load_manifests`), the protocol's folds (:func:`make_protocol_folds`)
and the final model's split (:func:`final_fold`), the files and labels of a
fold (:func:`fold_data`) and a fold's result with its predictions
(:func:`fold_result`); and :class:`RunError`, which every step of a run
raises for an experiment that cannot start."""

import dataclasses
import os

from absl import logging
import numpy as np

from speechmodel.metrics import compute_metrics
from speechmodel.training.defaults import ConfigError
from speechmodel.errors import Error


class RunError(Error, RuntimeError):
    """An experiment that cannot start; the message says why and what to do."""


def load_manifests(config):
    """The (train) manifest, an optional cross-corpus test manifest, and
    the class names.

    Several corpora (``dataset.corpora``, or ``--dataset ravdess,nemo
    --data_dir A,B``) are loaded one by one and joined with
    ``Manifest.concat``: speakers become ``<corpus>/<speaker>``. Classes:
    with the ``loco`` protocol, the emotions that every corpus has; with any
    other protocol, the union of the corpora's emotions. ``dataset.emotions``
    (``--emotions``) restricts either; a corpus left without utterances is an
    error.
    """
    from speechmodel import datasets
    from speechmodel.training.corpora import corpus_specs

    section = config["dataset"]

    def load(name, data_dir, options):
        try:
            name = datasets.corpus_name(name)
        except ValueError as exc:
            raise RunError(str(exc)) from None
        if not data_dir:
            raise RunError(
                f"No data directory for corpus {name!r}: pass --data-dir (or set "
                f"SER_DATA_DIR).\n{_download_hint(name)}"
            )
        if not os.path.exists(data_dir):  # a folder; for csv, the CSV file itself
            raise RunError(f"Data directory {data_dir} does not exist.\n{_download_hint(name, data_dir)}")
        try:
            return datasets.load(name, data_dir, **options)
        except datasets.CorpusError as exc:
            raise RunError(f"{exc}\n{_download_hint(name, data_dir)}") from None

    try:
        specs = corpus_specs(section)
    except ConfigError as exc:
        raise RunError(str(exc)) from None
    manifests = [load(s["name"], s["data_dir"], s["options"]) for s in specs]
    if len(manifests) == 1:
        manifest = manifests[0]
    else:
        source = {}
        for spec, part in zip(specs, manifests):
            for corpus in part.corpora():
                if corpus in source:
                    raise RunError(
                        f"Corpus {corpus!r} is in both {source[corpus]} and {spec['data_dir']}: "
                        "its speakers would count twice and could be in training and test."
                    )
                source[corpus] = spec["data_dir"]
        try:
            manifest = datasets.Manifest.concat(manifests, name="+".join(m.name for m in manifests))
        except ValueError as exc:
            raise RunError(str(exc)) from None
    corpora = manifest.corpora()
    test_manifest = None
    if section.get("test_name"):
        test_manifest = load(section["test_name"], section["test_data_dir"], {})
    emotions = section.get("emotions")
    if emotions:
        if isinstance(emotions, str):
            emotions = datasets.parse_emotions(emotions)
        manifest = manifest.select(emotions=emotions)
        if test_manifest is not None:
            test_manifest = test_manifest.select(emotions=emotions)
    if config["protocol"]["name"] == "loco":
        if len(corpora) < 2:
            raise RunError(
                "The 'loco' protocol (leave one corpus out) needs several corpora, e.g. "
                "--dataset ravdess,nemo --data_dir DIR1,DIR2. Received: "
                f"{', '.join(corpora)}."
            )
        by_corpus = {c: set() for c in corpora}
        for u in manifest:
            by_corpus[u.corpus].add(u.emotion)
        shared = set.intersection(*by_corpus.values())
        if not shared:
            raise RunError(
                "The corpora share no emotion, so 'loco' has nothing to test. Received: "
                + "; ".join(f"{c}: {sorted(e)}" for c, e in by_corpus.items())
            )
        dropped = sorted(set().union(*by_corpus.values()) - shared)
        if dropped:
            logging.info("loco: keeping the emotions every corpus has; left out: %s", dropped)
        manifest = manifest.select(emotions=sorted(shared))
    if len(corpora) > 1:
        empty = sorted(set(corpora) - set(manifest.corpora()))
        if empty:
            raise RunError(
                f"No utterances left in {', '.join(empty)} after selecting emotions "
                f"{emotions or 'shared by every corpus'}; every corpus listed must take part."
            )
    if test_manifest is not None:
        common = datasets.common_emotions(manifest, test_manifest)
        manifest = manifest.select(emotions=common)
        test_manifest = test_manifest.select(emotions=common)
    if len(manifest) == 0:
        raise RunError(f"No utterances left in {section['name']} after selecting emotions {emotions}.")
    class_names = manifest.emotions()
    return manifest, test_manifest, class_names


def _download_hint(name, data_dir=None):
    try:
        from speechmodel.datasets import download

        if name in download.corpora():
            return download.hint(name, to=data_dir)
    except Exception:  # The hint is a courtesy; never mask the real error.
        pass
    return f"See `python -m speechmodel.datasets.download --list` for how to get {name!r}."


def make_protocol_folds(config, manifest, test_manifest):
    from speechmodel import datasets

    section = dict(config["protocol"])
    if section.get("folds"):
        folds = datasets.read_folds(section["folds"])
        check_batch_size(config, folds)
        return folds
    name = section["name"]
    kwargs = {
        "seed": section["seed"],
        "val_speakers": section.get("val_speakers"),
        "random_split": bool(section.get("random_split")),
    }
    # Options of one protocol only: a config written for k-fold can be run
    # with --protocol all or holdout without editing it.
    if name in ("kfold", "multi"):
        kwargs.update(k=section.get("k"), grouping=section.get("grouping"))
    if name == "holdout":
        kwargs["holdout_speakers"] = section.get("holdout_speakers")
    if name == "cross":
        kwargs["test_manifest"] = test_manifest
    try:
        folds = datasets.make_folds(manifest, name, **kwargs)
    except ValueError as exc:
        raise RunError(f"Cannot make the {name!r} folds: {exc}") from None
    check_batch_size(config, folds)
    return folds


# A batch larger than every training set is simply the whole set (a small
# corpus with the recipe's batch of 16 trains so); past this many
# utterances it cannot be meant, and would exhaust memory before
# TensorFlow could say so (10^11: std::bad_alloc, "Fatal Python error").
BATCH_LIMIT = 4096


def check_batch_size(config, folds):
    """Refuses a batch larger than every fold's training set and than
    ``BATCH_LIMIT``.

    Raises:
        RunError: names the key, the limits and the value.
    """
    batch = config["training"]["batch_size"]
    largest = max((len(fold.train) for fold in folds), default=0)
    if largest and batch > max(largest, BATCH_LIMIT):
        raise RunError(
            f"training.batch_size (--batch_size) is larger than every training set of these folds (at most "
            f"{largest} utterances) and than {BATCH_LIMIT}: it can never be filled, and a batch this large "
            f"would exhaust memory. Received: batch_size={batch}"
        )


def final_fold(config, manifest, folds):
    """The split of the final model (every speaker; validation speakers
    among them, as the "all" protocol chooses them), or None: one-fold
    protocols (their fold's model is the deployable one) and
    ``training.final_model`` false."""
    if len(folds) < 2 or not config["training"].get("final_model", True):
        return None
    from speechmodel import datasets

    section = config["protocol"]
    try:
        [fold] = datasets.make_folds(
            manifest, "all", seed=section["seed"], val_speakers=section.get("val_speakers"),
            random_split=bool(section.get("random_split")),
        )
    except ValueError as exc:
        raise RunError(f"Cannot choose the final model's validation speakers: {exc}") from None
    return dataclasses.replace(fold, name="final")


# Below these, the validation set that chooses the epoch (and the learning
# rate's schedule) is too small to choose well: its UAR can be 1.0 by luck.
MIN_VAL_SPEAKERS = 2
MIN_VAL_CLIPS_PER_CLASS = 5


def small_validation(fold, num_classes):
    """A warning (str) when ``fold``'s validation speakers are too few to
    choose the epoch with, else None (also for a fold without validation)."""
    if not fold.val:
        return None
    speakers, clips = len(fold.val_speakers), len(fold.val)
    if speakers >= MIN_VAL_SPEAKERS and clips >= MIN_VAL_CLIPS_PER_CLASS * num_classes:
        return None
    return (
        f"{fold.name}: the epoch is chosen on {speakers} validation speaker"
        f"{'' if speakers == 1 else 's'} ({clips} clips for {num_classes} emotions): too few to "
        "choose it well (its validation UAR can reach 1.0 by chance), so this fold's figures "
        "say little about new speakers. Record more speakers, or give more of them to "
        "validation (--set protocol.val_speakers=N)."
    )


def fold_data(manifest, test_manifest, fold, class_names, config):
    from speechmodel.datasets import balance

    labels = manifest.label_indices(class_names)
    train = np.asarray(fold.train, dtype=np.int64)
    corpora = manifest.corpora()
    corpus_index = np.array([corpora.index(u.corpus) for u in manifest], np.int64)
    if config["training"]["balance"] == "oversample":
        # Several corpora: every (corpus, emotion) as often as the largest.
        cells = labels[train] + len(class_names) * corpus_index[train]
        train = np.asarray(
            balance.oversample(train, cells, seed=config["training"]["seed"]), dtype=np.int64
        )
    train_labels = labels[train]
    label_sets = None
    if config["training"].get("partial_labels"):
        # Each clip's loss covers the emotions of its corpus only.
        from speechmodel.training.optimizers import encode_partial_labels

        has = {corpus: set() for corpus in corpora}
        for u in manifest:
            has[u.corpus].add(u.emotion)
        label_sets = [[int(c in has[corpus]) for c in class_names] for corpus in corpora]
        train_labels = encode_partial_labels(train_labels, corpus_index[train], len(class_names))
    paths = [u.path for u in manifest]
    test_labels = test_manifest.label_indices(class_names) if len(fold.test) else np.zeros(0, np.int64)
    return {
        "train": ([paths[i] for i in train], train_labels),
        "label_sets": label_sets,
        "val": ([paths[i] for i in fold.val], labels[list(fold.val)]),
        "test": ([test_manifest[i].path for i in fold.test], test_labels[list(fold.test)]),
        "test_utterances": [test_manifest[i] for i in fold.test],
        "speakers": {
            "train": [manifest[int(i)].speaker for i in train],
            "val": [manifest[int(i)].speaker for i in fold.val],
            "test": [test_manifest[i].speaker for i in fold.test],
        },
        "class_weight": (
            balance.class_weights(labels[list(fold.train)], len(class_names))
            if config["training"]["balance"] == "class_weights"
            else None
        ),
    }


def fold_result(fold, data, class_names, test_probabilities, test_rows_index, extra):
    result = {
        "fold": fold.name,
        "train_speakers": list(fold.train_speakers),
        "val_speakers": list(fold.val_speakers),
        "test_speakers": list(fold.test_speakers),
        "counts": {
            "train": len(fold.train),
            "train_after_balance": len(data["train"][0]),
            "val": len(fold.val),
            "test": len(fold.test),
        },
        "test": None,
        "predictions": [],
    }
    extra = dict(extra)
    per_clip = extra.pop("per_clip_predicted", None)
    per_clip_probabilities = extra.pop("per_clip_probabilities", None)
    result.update(extra)
    if len(fold.test):
        utterances = data["test_utterances"]
        truth = data["test"][1]
        kept = np.asarray(test_rows_index, dtype=np.int64)
        predicted = test_probabilities.argmax(-1)
        result["test"] = compute_metrics(truth[kept], predicted, class_names=class_names)
        result["test"]["failed_files"] = int(len(truth) - len(kept))
        if per_clip is not None:
            result["test_per_clip"] = compute_metrics(truth[kept], per_clip, class_names=class_names)
        calibration = result.get("calibration")
        if calibration and len(kept):
            from speechmodel.calibration import calibration_figures

            # Per clip, as the saved model runs (its temperature is for that).
            clip = test_probabilities if per_clip_probabilities is None else per_clip_probabilities
            calibration["test"] = calibration_figures(clip, truth[kept], calibration["temperature"])
        for row, k in enumerate(kept):
            u = utterances[k]
            result["predictions"].append(
                {
                    "file": u.path,
                    "corpus": u.corpus,
                    "speaker": u.speaker,
                    "fold": fold.name,
                    "true": class_names[truth[k]],
                    "predicted": class_names[predicted[row]],
                    **({} if per_clip is None else {"predicted_per_clip": class_names[per_clip[row]]}),
                    "probabilities": [float(p) for p in test_probabilities[row]],
                    **({} if per_clip_probabilities is None else
                       {"probabilities_per_clip": [float(p) for p in per_clip_probabilities[row]]}),
                }
            )
    return result
