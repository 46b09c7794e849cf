import os

import numpy as np

from speechmodel.config import FeatureConfig
from speechmodel.models.segment_encoder import SegmentEncoder
from speechmodel.pipeline import FailureLog
from speechmodel.training.embeddings import (
    EmbeddingCache,
    cached_embeddings,
    default_cache_dir,
    weights_digest,
)
from speechmodel.training.two_stage import sequence_dataset
from tests.paths import ravdess_files


def test_model_key_changes_with_everything_that_determines_embeddings(tmp_path):
    base = dict(feature_config={"n_mels": 64}, model_config={"backbone": "cnn4"}, weights_digest="w1")
    key = EmbeddingCache.model_key(**base)
    assert key == EmbeddingCache.model_key(**base)
    assert key != EmbeddingCache.model_key(**{**base, "feature_config": {"n_mels": 40}})
    assert key != EmbeddingCache.model_key(**{**base, "model_config": {"backbone": "alexnet"}})
    assert key != EmbeddingCache.model_key(**{**base, "weights_digest": "w2"})


def test_an_edited_file_is_never_served_stale(tmp_path):
    a = tmp_path / "a.wav"
    a.write_bytes(b"x" * 10)
    cache = EmbeddingCache(tmp_path / "cache")
    cache.save("k", str(a), np.ones((2, 3), np.float32))
    np.testing.assert_array_equal(cache.load("k", str(a)), np.ones((2, 3)))
    os.utime(a, ns=(1, 1))
    assert cache.load("k", str(a)) is None
    cache.save("k", str(a), np.zeros((1, 3), np.float32))
    open(cache.path("k", str(a)), "wb").write(b"damaged")
    assert cache.load("k", str(a)) is None  # recomputed, not a crash


def test_default_place_is_documented_and_configurable(tmp_path, monkeypatch):
    monkeypatch.delenv("SPEECHMODEL_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == str(tmp_path / ".cache" / "speechmodel" / "embeddings")
    monkeypatch.setenv("SPEECHMODEL_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == str(tmp_path / "c" / "embeddings")
    assert default_cache_dir(str(tmp_path / "mine")) == str(tmp_path / "mine")


def test_embeddings_are_cached_per_file_and_reused_then_batched_with_masks(tmp_path):
    files = ravdess_files("Actor_10/*.wav")[:3]
    encoder = SegmentEncoder(backbone="cnn4")
    cache = EmbeddingCache(str(tmp_path / "cache"))
    kwargs = dict(features=FeatureConfig(), batch_size=2, failures=FailureLog())
    table, _, hit = cached_embeddings(cache, encoder, files[:2], **kwargs)
    assert not hit and len(os.listdir(tmp_path / "cache")) == 1
    # A superset computes only the new file; the others come from the cache.
    table, _, hit = cached_embeddings(cache, encoder, files, **kwargs)
    [folder] = os.listdir(tmp_path / "cache")
    assert not hit and len(os.listdir(tmp_path / "cache" / folder)) == 3
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


def test_a_bad_file_is_reported_and_the_rest_embedded(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEjunk")
    files = ravdess_files("Actor_10/*.wav")[:1] + [str(bad)]
    failures = FailureLog()
    table, _, _ = cached_embeddings(
        EmbeddingCache(tmp_path / "cache"), SegmentEncoder(backbone="cnn4"), files,
        features=FeatureConfig(), batch_size=2, failures=failures,
    )
    assert list(table) == files[:1]
    assert [p for p, _ in failures] == [str(bad)]
