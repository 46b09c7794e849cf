import os

import pytest

from speechmodel.batch.output import identity
from speechmodel.batch.task import embedding_entry, open_model
from speechmodel.training.embeddings import EmbeddingCache


def test_embedding_entry_is_the_training_cache_entry(tmp_path):
    audio = tmp_path / "clip.wav"
    audio.write_bytes(b"RIFF")
    cache = EmbeddingCache(tmp_path / "cache")
    key = "0123456789abcdef0123"
    assert cache.path(key, str(audio)) == os.path.join(cache.directory, embedding_entry(key, identity(audio)))


def test_unknown_runtime_is_refused():
    with pytest.raises(ValueError, match="Received: runtime='tflite'"):
        open_model("fast", "tflite")
