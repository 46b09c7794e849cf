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
``FailureLog`` passed in, and left out; the epoch goes on. Whatever a file
holds, it is decoded or reported: the graph decoders take only the files
they are known to decode exactly, and any error they still raise sends that
file alone to the Python decoder (``speechmodel.audio.tf_load_audio``). A
clip shorter than one analysis window (``config.win_length`` samples, 25 ms)
is reported as too short.

Training randomness is a pure function of ``(seed, epoch)``: the shuffle
order and the augmentation draws of a pass are derived from them, not from
the state of an iterator, so a training run resumed at epoch ``e`` sees the
same data in epoch ``e`` as an uninterrupted run (pass ``epoch``, an
``EpochCounter`` that ``speechmodel.training.callbacks.EpochSeed`` sets at each
epoch's start).
"""

import hashlib
import json
import os
import threading

from absl import logging
import numpy as np
import tensorflow as tf

from speechmodel import audio
from speechmodel import features as F
from speechmodel import fileio
from speechmodel.config import FeatureConfig
from speechmodel.config import too_short_reason  # noqa: F401  (kept importable here)

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

    Args:
        path: optional JSON file that keeps the record across processes: it
            is read when the log is created and rewritten (atomically) at
            each new failure, so that a resumed training run still reports
            the files an earlier attempt met (a resumed epoch need not read
            them again).
    """

    def __init__(self, path=None):
        self._lock = threading.Lock()
        self._seen = set()
        self.failures = []
        self.path = None if path is None else os.fspath(path)
        if self.path is not None and os.path.exists(self.path):
            try:
                with open(self.path, encoding="utf-8", errors="surrogateescape") as f:
                    stored = json.load(f)
                stored = [(str(file), str(reason)) for file, reason in stored]
            except (OSError, ValueError, TypeError):  # Damaged: the files are met again.
                stored = []
            for file, reason in stored:
                if file not in self._seen:
                    self._seen.add(file)
                    self.failures.append((file, reason))

    def _save(self):
        try:
            fileio.atomic_write_text(
                self.path, json.dumps([list(item) for item in self.failures], ensure_ascii=False)
            )
        except OSError as exc:  # The record in memory stands.
            logging.warning("Cannot keep the failure log in %s: %s", self.path, exc)

    def __len__(self):
        return len(self.failures)

    def __iter__(self):
        return iter(list(self.failures))

    def record(self, path, error):
        """Returns True when ``error`` is empty, else records and logs it.

        ``path`` and ``error`` may be str or bytes (file-name bytes, decoded
        as ``os.fsdecode`` does)."""
        if not audio.as_str(error):
            return np.bool_(True)
        path, error = audio.as_str(path), audio.as_str(error)
        with self._lock:
            if path not in self._seen:
                self._seen.add(path)
                reason = error[len(path) + 2 :] if error.startswith(path + ": ") else error
                self.failures.append((path, reason))
                logging.warning("Skipping %s: %s", path, reason)  # Always names the file.
                if self.path is not None:
                    self._save()
        return np.bool_(False)


def _digest(*parts):
    h = hashlib.sha256()
    for part in parts:
        h.update(str(part).encode("utf-8", "surrogateescape"))
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


class EpochCounter:
    """The epoch a training dataset serves, for ``make_dataset(epoch=...)``.

    ``set(epoch)`` (``speechmodel.training.callbacks.EpochSeed`` calls it at
    each epoch's start) decides the epoch of the next pass; ``started()``
    is the epoch the last pass read when it started (-1 before any). Create
    it outside any distribution strategy scope.
    """

    def __init__(self, epoch=0):
        self.variable = tf.Variable(int(epoch), dtype=tf.int64, trainable=False, name="epoch")
        self._started = tf.Variable(-1, dtype=tf.int64, trainable=False, name="epoch_started")

    def set(self, epoch):
        self.variable.assign(int(epoch))
        self._started.assign(-1)

    def started(self):
        return int(self._started.numpy())

    def read(self):
        """Graph: the epoch, recorded as started."""
        value = self.variable.read_value()
        with tf.control_dependencies([self._started.assign(value)]):
            return tf.identity(value)


def epoch_numbers(epoch=None, *, repeat=False):
    """A dataset of pass numbers (int64), one per pass over the data.

    With ``epoch`` (an ``EpochCounter``), the single element is its value
    when the pass starts. Without, a counter of its own gives 0, 1, 2, ...
    to successive passes (forever with ``repeat``).
    """
    if epoch is not None:
        if not isinstance(epoch, EpochCounter):
            raise TypeError(f"`epoch` must be an EpochCounter. Received: {type(epoch).__name__}")
        return tf.data.Dataset.from_tensors(0).map(lambda _: epoch.read())
    counter = tf.Variable(-1, dtype=tf.int64, trainable=False)
    passes = tf.data.Dataset.from_tensors(0)
    if repeat:
        passes = passes.repeat()
    passes = passes.map(lambda _: counter.assign_add(1))
    passes._speechmodel_counter = counter  # Alive as long as the dataset.
    return passes


def pass_seed(seed, number, salt):
    """An int64 drawn from ``(seed, pass number, salt)`` alone (stateless)."""
    number = tf.cast(number, tf.int64)
    return tf.random.stateless_uniform(
        [], seed=tf.stack([tf.constant(int(seed), tf.int64), 2 * number + salt]),
        minval=None, maxval=None, dtype=tf.int64,
    )


def stateless_shuffle(dataset, *, seed, number, salt, block):
    """``dataset``'s elements in an order drawn from ``(seed, number,
    salt)`` alone: a random permutation of each run of ``block``
    consecutive elements (``block`` >= the dataset's size: one permutation
    of all of it, what a shuffle buffer that large gives).

    Unlike ``Dataset.shuffle``, nothing depends on an iterator's history or
    on TensorFlow's global seed, so a pass numbered ``number`` is the same
    in any process. The elements must be tuples whose last component is a
    scalar tensor.
    """

    def permute(k, batch):
        n = tf.shape(batch[-1])[0]
        key = tf.bitwise.bitwise_xor(pass_seed(seed, number, salt), k)
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n), seed=tf.stack([tf.constant(int(seed), tf.int64), key])
        )
        return tf.data.Dataset.from_tensor_slices(
            tuple(tf.gather(component, order) for component in batch)
        )

    return dataset.ragged_batch(max(1, int(block))).enumerate().flat_map(permute)


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
    outputs="segments",
    epoch=None,
):
    """Builds the batched segment dataset.

    Args:
        paths: sequence of audio file paths.
        labels: optional sequence of int class indices, one per path.
        config: FeatureConfig (defaults if None).
        batch_size: utterances per batch.
        training: a training set (shuffled by default, augmentations on).
        shuffle: override the shuffling (default: ``training``).
        seed: shuffling and augmentation seed; each epoch is reshuffled
            and augmented afresh, the same for a (seed, epoch).
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
        outputs: ``"segments"`` (``x = {"segments", "mask"}``) or
            ``"waveforms"``: ``x = {"waveforms": float32 (B, samples)
            zero-padded, "lengths": int32 (B,)}``, the input of models on
            a pretrained speech front end (``features_augment`` does not
            apply then).
        epoch: optional ``EpochCounter``, read when a pass starts
            (``callbacks.EpochSeed`` sets it at each epoch's start): the
            pass's shuffle order and augmentation draws are a pure function
            of ``(seed, epoch)``. Without it, the passes are numbered 0, 1,
            2, ... as they start.

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
    if outputs not in ("segments", "waveforms"):
        raise ValueError(
            f"`outputs` must be 'segments' or 'waveforms'. Received: outputs={outputs!r}"
        )
    if shuffle is None:
        shuffle = training
    if epoch is not None and repeat:
        raise ValueError(
            "`epoch` numbers the passes of a finite dataset; it cannot be "
            "combined with `repeat=True`."
        )
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
    # File names travel as their bytes: a name that is not UTF-8 survives.
    names = tf.constant([audio.as_tf_path(p) for p in paths], tf.string, shape=[len(paths)])
    ds = tf.data.Dataset.from_tensor_slices((names, label_tensor, index, decoders))
    min_samples = config.win_length

    def record(i, error, length):
        error = audio.as_str(error)
        if not error:
            error = too_short_reason(int(length), config)
        return failures.record(paths[int(i)], error)

    def decode(path, label, i, decoder):
        waveform, error = audio.tf_load_audio(
            path,
            sample_rate=config.sample_rate,
            decoder=decoder,
            use_flac_op=use_flac_op,
        )
        length = tf.shape(waveform)[0]

        def report():
            recorded = tf.numpy_function(
                record, [i, error, length], tf.bool, stateful=True
            )
            return tf.reshape(recorded, [])

        usable = tf.logical_and(tf.equal(error, ""), length >= min_samples)
        ok = tf.cond(usable, lambda: tf.constant(True), report)
        return waveform, label, i, ok

    ds = ds.map(decode, num_parallel_calls=num_parallel_calls)
    ds = ds.filter(lambda waveform, label, i, ok: ok)
    ds = ds.map(lambda waveform, label, i, ok: (waveform, label, i))
    if cache == "memory":
        ds = ds.cache()
    elif cache:
        os.makedirs(cache, exist_ok=True)
        ds = ds.cache(cache_path(cache, paths, config, "waveforms"))
    augment = training and (waveform_augment or features_augment)
    if shuffle or augment:
        # Each pass is built from its epoch number: its order and its
        # augmentation seeds (pass key, index) depend on (seed, epoch) only.
        passes = epoch_numbers(epoch, repeat=repeat)
        decoded, buffer = ds, max(1, len(paths))

        def one_pass(number):
            elements = decoded
            if shuffle:
                elements = stateless_shuffle(elements, seed=seed, number=number, salt=0, block=buffer)
            key = pass_seed(seed, number, 1)
            return elements.map(lambda waveform, label, i: (waveform, label, i, tf.stack([key, i])))

        ds = passes.flat_map(one_pass)
    else:
        ds = ds.map(lambda waveform, label, i: (waveform, label, i, tf.zeros([2], tf.int64)))
        if repeat:
            ds = ds.repeat()
    if training and waveform_augment is not None:
        ds = ds.map(
            lambda waveform, label, i, draw: (waveform_augment(waveform, draw), label, i, draw),
            num_parallel_calls=num_parallel_calls,
        )
    ds = ds.map(lambda waveform, label, i, draw: (waveform, tf.shape(waveform)[0], label, i, draw))
    ds = ds.padded_batch(batch_size, drop_remainder=drop_remainder)

    def inputs(waveforms, lengths, draw):
        if outputs == "waveforms":
            return {"waveforms": waveforms, "lengths": tf.cast(lengths, tf.int32)}
        segments, counts = F.batch_segment_features(waveforms, lengths, config=config)
        mask = tf.sequence_mask(counts, maxlen=tf.shape(segments)[1])
        if training and features_augment is not None:
            segments = features_augment(segments, mask, draw)
        return {"segments": segments, "mask": mask}

    def assemble(waveforms, lengths, label, i, draw):
        element = (inputs(waveforms, lengths, draw),)
        if labels is not None:
            element += (label,)
        if with_index:
            element += (i,)
        return element if len(element) > 1 else element[0]

    ds = ds.map(assemble, num_parallel_calls=num_parallel_calls)
    return finish(ds, prefetch=prefetch)
