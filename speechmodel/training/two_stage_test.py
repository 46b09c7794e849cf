import os

import numpy as np

from speechmodel.config import FeatureConfig
from speechmodel.models.segment_encoder import SegmentEncoder
from speechmodel.training.two_stage import (
    EmbeddingCache,
    cached_embeddings,
    segment_schedule,
    sequence_dataset,
    weights_digest,
)
from tests.paths import ravdess_files


def test_cache_key_changes_with_everything_that_determines_embeddings(tmp_path):
    a = tmp_path / "a.wav"
    a.write_bytes(b"x" * 10)
    base = dict(feature_config={"n_mels": 64}, model_config={"backbone": "cnn4"}, weights_digest="w1")
    key = EmbeddingCache.key([str(a)], **base)
    assert key == EmbeddingCache.key([str(a)], **base)
    assert key != EmbeddingCache.key([str(a)], **{**base, "feature_config": {"n_mels": 40}})
    assert key != EmbeddingCache.key([str(a)], **{**base, "model_config": {"backbone": "alexnet"}})
    assert key != EmbeddingCache.key([str(a)], **{**base, "weights_digest": "w2"})
    os.utime(a, ns=(1, 1))
    assert key != EmbeddingCache.key([str(a)], **base)  # the file changed


def test_embeddings_are_cached_and_reused_then_batched_with_masks(tmp_path):
    files = ravdess_files("Actor_10/*.wav")[:3]
    encoder = SegmentEncoder(backbone="cnn4")
    cache = EmbeddingCache(str(tmp_path / "cache"))
    kwargs = dict(features=FeatureConfig(), model_config={"backbone": "cnn4"}, batch_size=2, failures=None)
    table, _, hit = cached_embeddings(cache, encoder, files, **kwargs)
    assert not hit and len(os.listdir(tmp_path / "cache")) == 1
    again, _, hit = cached_embeddings(cache, encoder, files, **kwargs)
    assert hit
    for f in files:
        np.testing.assert_array_equal(table[f], again[f])
        assert table[f].shape[1] == 256
    # New weights: a new entry, never the stale one.
    kernel = encoder.trainable_weights[0]
    kernel.assign(kernel * 2)
    before = weights_digest(encoder)
    _, _, hit = cached_embeddings(cache, encoder, files, **kwargs)
    assert not hit and weights_digest(encoder) == before
    assert len(os.listdir(tmp_path / "cache")) == 2

    x, y = next(iter(sequence_dataset(table, files, [0, 1, 2], batch_size=3, shuffle=False, seed=0)))
    lengths = [len(table[f]) for f in files]
    assert list(x["mask"].numpy().sum(1)) == lengths
    assert list(y.numpy()) == [0, 1, 2]
    np.testing.assert_allclose(x["embeddings"][0, : lengths[0]], table[files[0]])


def test_segment_schedule_constant_and_cosine():
    import keras

    assert segment_schedule({"segment_epochs": 4}, 1e-3) == []
    assert segment_schedule({"segment_epochs": 4, "segment_schedule": "constant"}, 1e-3) == []
    [callback] = segment_schedule({"segment_epochs": 4, "segment_schedule": "cosine"}, 1e-3)
    rates = [callback.schedule(e, None) for e in range(4)]
    np.testing.assert_allclose(rates, [1e-3, 0.85355e-3, 0.5e-3, 0.14645e-3], rtol=1e-4)
    # The callback really drives the optimiser during fit.
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    seen = []
    probe = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(float(model.optimizer.learning_rate))
    )
    model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=4, verbose=0, callbacks=[callback, probe])
    np.testing.assert_allclose(seen, rates, rtol=1e-5)
