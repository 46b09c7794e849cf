"""Segment embeddings of audio files, through a model's segment embedder.

One place turns files into per-file segment embeddings: the training code
(``speechmodel.training.embeddings`` caches them for the head) and the
inference code (``speechmodel.inference``, where a same-speaker call needs
the embeddings of all its files before it can classify any) both call
``embed_files``.

A segment embedder is either a pretrained front end
(``speechmodel.models.frontends``: waveforms in, ``(embeddings (B, N, L,
D), mask (B, N))`` out) or a ``SegmentEncoder`` (log-mel ``{"segments",
"mask"}`` in, ``(B, N, D)`` out).
"""

import numpy as np


def takes_waveforms(encoder):
    """Whether ``encoder`` is a pretrained front end (waveforms in) rather
    than a ``SegmentEncoder`` (log-mel segments in)."""
    return hasattr(encoder, "num_blocks")


def embedding_function(encoder, features):
    """A ``tf.function`` from a ``speechmodel.pipeline`` batch to
    ``(embeddings (B, N, ...), counts (B,))``: each file's valid segments
    are ``embeddings[b, :counts[b]]``."""
    import tensorflow as tf

    if takes_waveforms(encoder):

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, None], tf.float32),
                tf.TensorSpec([None], tf.int32),
            ]
        )
        def embed(waveforms, lengths):
            embeddings, mask = encoder(waveforms, lengths, training=False)
            return embeddings, tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)

        return lambda x: embed(x["waveforms"], x["lengths"])

    @tf.function(
        input_signature=[
            {
                "segments": tf.TensorSpec([None, None, *features.segment_shape], tf.float32),
                "mask": tf.TensorSpec([None, None], tf.bool),
            }
        ]
    )
    def embed_segments(x):
        return encoder(x, training=False), tf.reduce_sum(tf.cast(x["mask"], tf.int32), axis=1)

    return embed_segments


def lower_function(embedder):
    """A ``tf.function`` from a waveform batch to what a front end's frozen
    lower blocks give (``embedder.lower``): ``((embeddings (B, N, s, D)
    float32, states (B, T, D) float16), (counts (B,), token_lengths
    (B,)))``, for ``embed_files``."""
    import tensorflow as tf

    @tf.function(
        input_signature=[tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([None], tf.int32)]
    )
    def lower(waveforms, lengths):
        embeddings, mask, states, token_lengths = embedder.lower(waveforms, lengths)
        counts = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
        return (embeddings, tf.cast(states, tf.float16)), (counts, token_lengths)

    return lambda x: lower(x["waveforms"], x["lengths"])


def embed_files(encoder, paths, *, features, batch_size, failures, embed=None):
    """Yields ``(index, embeddings)`` for each file of ``paths`` that loads:
    its position in ``paths`` and its ``(N, ...)`` float32 segment
    embeddings (with ``embed=lower_function(encoder)``, the pair of arrays
    it gives, each cut to the file's length, in their own dtypes).

    Args:
        encoder: a segment embedder (see the module docstring).
        paths: audio files.
        features: the ``FeatureConfig`` the model was trained with.
        batch_size: files per batch.
        failures: a ``speechmodel.pipeline.FailureLog``; a file that does
            not load is recorded there and skipped (its index is never
            yielded).
        embed: an ``embedding_function(encoder, features)`` to reuse (a
            caller that embeds several times keeps one traced function).
    """
    from speechmodel.pipeline import make_dataset

    paths = list(paths)
    if not paths:
        return
    if embed is None:
        embed = embedding_function(encoder, features)
    for x, index in make_dataset(
        paths, config=features, batch_size=batch_size, with_index=True, failures=failures,
        outputs="waveforms" if takes_waveforms(encoder) else "segments",
    ):
        out, counts = embed(x)
        if isinstance(out, tuple):
            parts = [(np.asarray(o), np.asarray(c)) for o, c in zip(out, counts)]
            for b, i in enumerate(np.asarray(index)):
                yield int(i), tuple(o[b, : int(c[b])] for o, c in parts)
            continue
        out, counts = np.asarray(out, dtype=np.float32), np.asarray(counts)
        for b, i in enumerate(np.asarray(index)):
            yield int(i), out[b, : int(counts[b])]
