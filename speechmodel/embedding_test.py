import numpy as np

from speechmodel import features as F
from speechmodel.audio import load_audio
from speechmodel.config import FeatureConfig
from speechmodel.embedding import embed_files, embedding_function, takes_waveforms
from speechmodel.models.frontends import build_front_end
from speechmodel.models.segment_encoder import SegmentEncoder
from speechmodel.pipeline import FailureLog
from tests.paths import ravdess_files

TINY = dict(num_layers=2, hidden_dim=8, num_heads=2, intermediate_dim=16)


def test_each_readable_file_once_with_its_own_segments_whatever_the_batch(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEjunk")
    files = ravdess_files("Actor_12/*.wav")[:3]
    paths = [files[0], str(bad), files[1], files[2]]
    encoder = SegmentEncoder(backbone="cnn4")
    config = FeatureConfig()
    failures = FailureLog()
    out = dict(embed_files(encoder, paths, features=config, batch_size=3, failures=failures))
    assert sorted(out) == [0, 2, 3]  # positions in `paths`; the bad one is not yielded
    assert [p for p, _ in failures] == [str(bad)]
    for i in out:
        frames = 1 + len(load_audio(paths[i])) // config.hop_length
        assert out[i].shape == (int(F.num_segments(frames, config=config)), 256)
    # Padding in a batch changes nothing: one file per batch gives the same.
    embed = embedding_function(encoder, config)
    alone = dict(embed_files(encoder, paths, features=config, batch_size=1, failures=FailureLog(), embed=embed))
    for i in out:
        np.testing.assert_allclose(alone[i], out[i], atol=1e-5)
    assert list(embed_files(encoder, [], features=config, batch_size=2, failures=FailureLog())) == []


def test_a_front_end_takes_waveforms_and_gives_its_blocks():
    encoder = build_front_end("whisper_base", weights="random", **TINY)
    assert takes_waveforms(encoder) and not takes_waveforms(SegmentEncoder(backbone="cnn4"))
    files = ravdess_files("Actor_12/*.wav")[:2]
    config = FeatureConfig()
    batched = dict(embed_files(encoder, files, features=config, batch_size=2, failures=FailureLog()))
    for i, f in enumerate(files):
        w = load_audio(f)
        embeddings, mask = encoder(w[None], np.array([len(w)], "int32"))
        n = int(np.asarray(mask).sum())
        assert batched[i].shape == (n, encoder.num_blocks, encoder.embedding_dim)
        np.testing.assert_allclose(batched[i], np.asarray(embeddings)[0, :n], atol=1e-4)
