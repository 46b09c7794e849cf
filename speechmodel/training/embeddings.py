"""Segment embeddings of audio files, computed once per file and cached.

The two-stage recipe (a CNN fine-tuned on segments) and the frozen
pretrained front ends (Whisper) both train the BLSTM + attention + DNN head
on segment embeddings that do not change during that training. They are
computed once per audio file and kept in an ``EmbeddingCache``: one
``.npy`` file per audio file, in a folder per *model key*, a hash of
everything that determines them (the feature config, the model config and
a digest of the encoder's weights). An entry is found again by the file's
absolute path, size and modification time, so an edited file, another
setting or other weights never reuse a stale embedding, and a file shared
by several folds or runs is embedded once.

Where the cache lives (``default_cache_dir``): ``training.embedding_cache``
of the experiment config if set, else ``$SPEECHMODEL_CACHE/embeddings``,
else ``~/.cache/speechmodel/embeddings``.
"""

import hashlib
import io
import json
import os
import time

import numpy as np

from speechmodel.embedding import embed_files
from speechmodel.embedding import lower_function
from speechmodel.training import artifacts


def default_cache_dir(configured=None):
    """The embedding cache folder (see the module docstring)."""
    if configured:
        return os.path.abspath(os.path.expanduser(os.fspath(configured)))
    root = os.environ.get("SPEECHMODEL_CACHE") or os.path.join("~", ".cache", "speechmodel")
    return os.path.abspath(os.path.join(os.path.expanduser(root), "embeddings"))


def _sha(text, n):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


class EmbeddingCache:
    """One ``.npy`` array of segment embeddings per (model key, audio file).

    Args:
        directory: the cache folder (created when needed).
    """

    def __init__(self, directory):
        self.directory = os.fspath(directory)

    @staticmethod
    def model_key(*, feature_config, model_config, weights_digest):
        """The hash of what determines the embeddings besides the file."""
        return _sha(
            json.dumps(
                {"features": feature_config, "model": model_config, "weights": weights_digest},
                sort_keys=True,
                default=str,
            ),
            20,
        )

    @staticmethod
    def file_key(path):
        """The file's identity: absolute path, size, modification time."""
        st = os.stat(path)
        return EmbeddingCache.identity_key(os.path.abspath(path), st.st_size, st.st_mtime_ns)

    @staticmethod
    def identity_key(path, size, mtime_ns):
        """``file_key`` of a file whose identity was taken earlier."""
        return f"{path}|{size}|{mtime_ns}"

    @staticmethod
    def entry(model_key, file_key):
        """An entry's path inside the cache folder, for a ``file_key``
        (``speechmodel.batch`` writes entries from the identities it took)."""
        return os.path.join(model_key, _sha(file_key, 32) + ".npy")

    def path(self, model_key, path):
        return os.path.join(self.directory, self.entry(model_key, self.file_key(path)))

    def load(self, model_key, path):
        """The cached array of ``path``, or None (missing or unreadable)."""
        try:
            entry = self.path(model_key, path)
        except OSError:
            return None
        if not os.path.exists(entry):
            return None
        try:
            return np.load(entry, allow_pickle=False)
        except (OSError, ValueError):  # a damaged entry is recomputed
            return None

    def save(self, model_key, path, array):
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        artifacts.atomic_write_bytes(self.path(model_key, path), buffer.getvalue())


def weights_digest(model, variables=None):
    """A short hash of a model's weights (any change gives another), or of
    ``variables``."""
    h = hashlib.sha256()
    for w in model.weights if variables is None else variables:
        h.update(np.ascontiguousarray(np.asarray(w, dtype=np.float32)).tobytes())
    return h.hexdigest()[:16]


def encoder_config(encoder):
    """The encoder's config, less what does not change its outputs."""
    config = dict(encoder.get_config())
    for key in ("name", "trainable", "dtype"):
        config.pop(key, None)
    return config


def encoder_key(encoder, features):
    """The cache's model key of ``encoder`` with the ``FeatureConfig``
    ``features``: where its embeddings are kept (``EmbeddingCache``)."""
    return EmbeddingCache.model_key(
        feature_config=features.to_dict(), model_config=encoder_config(encoder),
        weights_digest=weights_digest(encoder),
    )


def cached_embeddings(cache, encoder, paths, *, features, batch_size, failures, progress=None):
    """The embeddings of ``paths`` through ``cache``, computing the missing.

    Returns:
        ``(table, seconds, hit)``: ``{path: (N, ...) float32}`` for every
        file that loaded, the seconds spent, and whether every file was
        already cached.
    """
    key = encoder_key(encoder, features)
    table, seconds, hit = _through_cache(
        cache, [key], paths,
        lambda missing: embed_files(
            encoder, missing, features=features, batch_size=batch_size, failures=failures
        ),
        progress,
    )
    return {p: arrays[0] for p, arrays in table.items()}, seconds, hit


def lower_key(embedder, features):
    """The cache keys of a front end's frozen lower blocks (``embedder.lower``):
    ``(segment embeddings, states)``. They hold the features, the encoder's
    sizes, the count of lower blocks (``num_blocks - fine_tune_blocks``)
    and the sha256 of the frozen weights (the tuned blocks and adapters,
    which training changes, do not enter)."""
    config = encoder_config(embedder)
    for key in ("fine_tune_blocks", "lora_rank"):
        config.pop(key, None)
    config["lower_blocks"] = embedder.encoder.first_tuned_block
    digest = weights_digest(embedder, embedder.non_trainable_weights)
    return tuple(
        EmbeddingCache.model_key(
            feature_config=features.to_dict(), model_config=dict(config, cached=part),
            weights_digest=digest,
        )
        for part in ("lower", "states")
    )


def cached_lower_states(cache, embedder, paths, *, features, batch_size, failures, progress=None):
    """What a front end's frozen lower blocks give for ``paths``
    (``embedder.lower``), through ``cache``, computing the missing.

    Returns:
        ``(table, seconds, hit)``: ``{path: (embeddings (N, s, D) float32,
        states (T, D) float16)}`` for every file that loaded, the seconds
        spent, and whether every file was already cached.
    """
    return _through_cache(
        cache, lower_key(embedder, features), paths,
        lambda missing: embed_files(
            embedder, missing, features=features, batch_size=batch_size, failures=failures,
            embed=lower_function(embedder),
        ),
        progress,
    )


def _through_cache(cache, keys, paths, compute, progress):
    """``({path: tuple of arrays, one per key}, seconds, hit)``: the cached
    arrays of ``paths``, the missing computed by ``compute(missing)``
    (yielding ``(index in missing, array or tuple of arrays)``) and saved."""
    start = time.time()
    table, missing = {}, []
    for p in dict.fromkeys(paths):
        arrays = tuple(cache.load(key, p) for key in keys)
        if any(a is None for a in arrays):
            missing.append(p)
        else:
            table[p] = arrays
    if missing:
        missing.sort(key=lambda p: _size(p))
        for i, arrays in compute(missing):
            arrays = arrays if isinstance(arrays, tuple) else (arrays,)
            for key, array in zip(keys, arrays):
                cache.save(key, missing[i], array)
            table[missing[i]] = arrays
            if progress is not None:
                progress(len(table))
    return table, time.time() - start, not missing


def _size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
