"""The tf.data input pipeline: audio files to batches of segment sequences.

``make_dataset`` turns a list of files (and optionally labels) into batches of

    x = {"segments": float32 (B, N, frames, n_mels, 3),
         "mask": bool (B, N)}

where ``N`` is the largest segment count in the batch and ``mask[b, n]`` is
True for the real segments of utterance ``b`` (padded segments are zeros).
Elements are ``x``, ``(x, y)`` with labels, and one more trailing item, the
int64 position of the file in ``paths``, with ``with_index=True``.

Stages: file names -> parallel decode (``speechmodel.audio``) -> optional
cache of the decoded waveforms (memory or a file) -> seeded shuffle ->
optional waveform augmentation -> padded batches of waveforms -> the
features of the whole batch in one vectorised pass
(``speechmodel.features.batch_segment_features``) -> optional feature
augmentation -> prefetch. Caching waveforms rather than segments keeps the
cache small (segments overlap by half) and lets every epoch augment afresh;
the batched features cost little next to a training step.

A file that fails to load is logged with its path and reason, recorded in the
``FailureLog`` passed in, and left out; the epoch goes on.
"""

import hashlib
import os
import threading

from absl import logging
import numpy as np
import tensorflow as tf

from speechmodel import audio
from speechmodel import features as F
from speechmodel.config import FeatureConfig

AUTOTUNE = tf.data.AUTOTUNE
PREFETCH_BATCHES = 2


def finish(ds, *, prefetch=True):
    """The end of every dataset of this project: prefetching and options.

    tf.data's autotuning is turned off. With it on, the end of an iteration
    stalled for about 10 s in roughly half of the passes on the 2-core build
    machine (a whole pass of inference over RAVDESS took 20.9 s instead of
    10.9 s, and an epoch end of training waits the same), and the
    parallelism here is set explicitly anyway (``num_parallel_calls``).
    """
    if prefetch:
        ds = ds.prefetch(PREFETCH_BATCHES)
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


class FailureLog:
    """Thread-safe record of the files a pipeline could not use.

    ``failures`` is a list of ``(path, reason)`` in the order met, each file
    once (a cached or repeated dataset meets a file again).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._seen = set()
        self.failures = []

    def __len__(self):
        return len(self.failures)

    def __iter__(self):
        return iter(list(self.failures))

    def record(self, path, error):
        """Returns True when ``error`` is empty, else records and logs it."""
        if not audio._as_str(error):
            return np.bool_(True)
        path, error = audio._as_str(path), audio._as_str(error)
        with self._lock:
            if path not in self._seen:
                self._seen.add(path)
                reason = error[len(path) + 2 :] if error.startswith(path + ": ") else error
                self.failures.append((path, reason))
                logging.warning("Skipping %s", error)
        return np.bool_(False)


def _digest(*parts):
    h = hashlib.sha256()
    for part in parts:
        h.update(str(part).encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def cache_path(cache_dir, paths, config, stage):
    """A cache file name keyed by the files, their sizes and mtimes, and
    the config, so that a change never reuses stale features."""
    stats = []
    for p in paths:
        try:
            st = os.stat(p)
            stats.append(f"{os.path.abspath(p)}|{st.st_size}|{st.st_mtime_ns}")
        except OSError:
            stats.append(f"{os.path.abspath(p)}|missing")
    key = _digest(stage, config.to_json(), *stats)
    return os.path.join(cache_dir, f"{stage}-{key}")


def make_dataset(
    paths,
    labels=None,
    *,
    config=None,
    batch_size=16,
    training=False,
    shuffle=None,
    seed=0,
    cache=None,
    num_parallel_calls=None,
    waveform_augment=None,
    features_augment=None,
    failures=None,
    with_index=False,
    drop_remainder=False,
    repeat=False,
    prefetch=True,
):
    """Builds the batched segment dataset.

    Args:
        paths: sequence of audio file paths.
        labels: optional sequence of int class indices, one per path.
        config: FeatureConfig (defaults if None).
        batch_size: utterances per batch.
        training: a training set (shuffled by default, augmentations on).
        shuffle: override the shuffling (default: ``training``).
        seed: shuffling seed; each epoch is reshuffled, the same for a seed.
        cache: None, ``"memory"``, or a directory for a file cache keyed by
            the files and the config.
        num_parallel_calls: parallel decode/feature calls; default: the
            number of CPUs (AUTOTUNE oversubscribes small machines: on 2
            cores it measured 15 % slower, benchmarks/features.py).
        waveform_augment: ``fn(waveform, seeds) -> waveform`` in TF ops,
            applied per utterance when ``training``; ``seeds`` is an int64
            (2,) stateless seed, new every epoch.
        features_augment: ``fn(segments, mask, seeds) -> segments`` applied
            per batch when ``training`` (e.g. SpecAugment masks, mixup);
            ``seeds`` is (B, 2).
        failures: a FailureLog that collects the files that failed to load.
        with_index: append each element's position in ``paths``.
        drop_remainder: drop the last incomplete batch.
        repeat: repeat forever.
        prefetch: prefetch batches.

    Returns:
        tf.data.Dataset.
    """
    config = FeatureConfig.from_dict(config or FeatureConfig())
    paths = [os.fspath(p) for p in paths]
    if labels is not None:
        labels = np.asarray(labels, dtype=np.int32).reshape(-1)
        if labels.shape[0] != len(paths):
            raise ValueError(
                "`labels` must have one entry per path. "
                f"Received: {labels.shape[0]} labels for {len(paths)} paths"
            )
    if batch_size <= 0:
        raise ValueError(f"`batch_size` must be positive. Received: {batch_size}")
    if shuffle is None:
        shuffle = training
    if num_parallel_calls is None:
        num_parallel_calls = os.cpu_count() or AUTOTUNE
    failures = failures if failures is not None else FailureLog()
    index = np.arange(len(paths), dtype=np.int64)
    label_tensor = labels if labels is not None else np.zeros(len(paths), np.int32)
    decoders = np.array(
        [
            audio.GRAPH_DECODERS.index(
                audio.graph_decoder(p, sample_rate=config.sample_rate)
            )
            for p in paths
        ],
        dtype=np.int32,
    )
    use_flac_op = bool(np.isin(decoders, [2, 3]).any())
    ds = tf.data.Dataset.from_tensor_slices(
        (tf.constant(paths, tf.string), label_tensor, index, decoders)
    )

    def decode(path, label, i, decoder):
        waveform, error = audio.tf_load_audio(
            path,
            sample_rate=config.sample_rate,
            decoder=decoder,
            use_flac_op=use_flac_op,
        )
        def report():
            recorded = tf.numpy_function(
                failures.record, [path, error], tf.bool, stateful=True
            )
            return tf.reshape(recorded, [])

        ok = tf.cond(tf.equal(error, ""), lambda: tf.constant(True), report)
        return waveform, label, i, ok

    ds = ds.map(decode, num_parallel_calls=num_parallel_calls)
    ds = ds.filter(lambda waveform, label, i, ok: ok)
    ds = ds.map(lambda waveform, label, i, ok: (waveform, label, i))
    if cache == "memory":
        ds = ds.cache()
    elif cache:
        os.makedirs(cache, exist_ok=True)
        ds = ds.cache(cache_path(cache, paths, config, "waveforms"))
    if shuffle:
        ds = ds.shuffle(max(1, len(paths)), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    augment = training and (waveform_augment or features_augment)
    if augment:
        # One fresh random number per element and epoch, reproducible for a
        # seed: the stateless augmentations draw from (number, index).
        ds = tf.data.Dataset.zip(
            (ds, tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True))
        )
        ds = ds.map(
            lambda element, draw: (*element, tf.stack([draw, element[2]])),
            num_parallel_calls=num_parallel_calls,
        )
    else:
        ds = ds.map(lambda waveform, label, i: (waveform, label, i, tf.zeros([2], tf.int64)))
    if training and waveform_augment is not None:
        ds = ds.map(
            lambda waveform, label, i, draw: (waveform_augment(waveform, draw), label, i, draw),
            num_parallel_calls=num_parallel_calls,
        )
    ds = ds.map(lambda waveform, label, i, draw: (waveform, tf.shape(waveform)[0], label, i, draw))
    ds = ds.padded_batch(batch_size, drop_remainder=drop_remainder)

    def assemble(waveforms, lengths, label, i, draw):
        segments, counts = F.batch_segment_features(waveforms, lengths, config=config)
        mask = tf.sequence_mask(counts, maxlen=tf.shape(segments)[1])
        if training and features_augment is not None:
            segments = features_augment(segments, mask, draw)
        element = ({"segments": segments, "mask": mask},)
        if labels is not None:
            element += (label,)
        if with_index:
            element += (i,)
        return element if len(element) > 1 else element[0]

    ds = ds.map(assemble, num_parallel_calls=num_parallel_calls)
    return finish(ds, prefetch=prefetch)
