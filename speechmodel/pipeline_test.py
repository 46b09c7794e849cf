import numpy as np
import soundfile as sf
import tensorflow as tf

from speechmodel import features as F
from speechmodel.audio import load_audio
from speechmodel.config import FeatureConfig
from speechmodel.pipeline import FailureLog, make_dataset
from tests.paths import ravdess_files


def collect(ds):
    out = {"segments": [], "mask": [], "label": [], "index": []}
    for x, y, i in ds:
        for b in range(x["mask"].shape[0]):
            n = int(x["mask"][b].numpy().sum())
            assert x["mask"][b, :n].numpy().all() and not x["mask"][b, n:].numpy().any()
            assert not x["segments"][b, n:].numpy().any()
            out["segments"].append(x["segments"][b, :n].numpy())
            out["label"].append(int(y[b]))
            out["index"].append(int(i[b]))
    return out


def test_real_files_give_padded_batches_with_masks_and_labels():
    files = ravdess_files("Actor_03/*.wav")[:10]
    labels = np.arange(10) % 4
    ds = make_dataset(files, labels, batch_size=4, with_index=True)
    x, y, i = next(iter(ds))
    assert x["segments"].shape[0] == 4 and x["segments"].shape[2:] == (64, 64, 3)
    assert x["mask"].dtype == tf.bool and y.dtype == tf.int32
    out = collect(ds)
    assert out["index"] == list(range(10))
    assert out["label"] == list(labels)
    # The same features as the per-utterance computation, none truncated.
    for k in (0, 7):
        expected = np.asarray(F.segment_features(load_audio(files[k])))
        np.testing.assert_allclose(out["segments"][k], expected, atol=1e-4)


def test_bad_files_are_reported_and_the_rest_still_runs(tmp_path):
    files = ravdess_files("Actor_04/*.wav")[:3]
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "text.wav"
    text.write_text("not audio " * 50)
    paths = [files[0], str(tmp_path / "missing.wav"), files[1], str(empty), str(text), files[2]]
    failures = FailureLog()
    out = collect(make_dataset(paths, [0] * 6, batch_size=2, failures=failures, with_index=True))
    assert out["index"] == [0, 2, 5]
    reported = dict(failures.failures)
    assert set(reported) == {str(tmp_path / "missing.wav"), str(empty), str(text)}
    assert "not found" in reported[str(tmp_path / "missing.wav")]
    assert "empty" in reported[str(empty)]


def test_odd_formats_go_through_the_same_pipeline(tmp_path):
    y = np.random.default_rng(0).normal(0, 0.1, (44100, 2))
    paths = []
    for name, kwargs, rate in (
        ("a.flac", {"format": "FLAC"}, 16000),
        ("b.wav", {"subtype": "PCM_24"}, 44100),
        ("c.ogg", {"format": "OGG"}, 22050),
        ("d.aiff", {"format": "AIFF"}, 8000),
    ):
        path = tmp_path / name
        sf.write(path, y[: rate], rate, **kwargs)
        paths.append(str(path))
    failures = FailureLog()
    out = collect(make_dataset(paths, [0, 1, 2, 3], batch_size=3, failures=failures, with_index=True))
    assert not failures.failures and out["index"] == [0, 1, 2, 3]
    for k, path in enumerate(paths):
        expected = np.asarray(F.segment_features(load_audio(path)))
        np.testing.assert_allclose(out["segments"][k], expected, atol=1e-4)


def test_shuffle_is_seeded_and_cache_changes_nothing(tmp_path):
    files = ravdess_files("Actor_05/*.wav")[:12]
    labels = np.arange(12)

    def order(**kwargs):
        ds = make_dataset(files, labels, batch_size=5, training=True, seed=7, **kwargs)
        return [list(y.numpy()) for _, y in ds]

    first = order()
    assert first == order()
    assert sorted(sum(first, [])) == list(range(12))
    assert first != [list(range(0, 5)), list(range(5, 10)), list(range(10, 12))]
    assert order(cache="memory") == first
    ds = make_dataset(files, labels, batch_size=12, training=True, seed=7)
    epochs = [list(y.numpy()) for _ in range(3) for _, y in ds]
    assert len({tuple(e) for e in epochs}) > 1  # reshuffled every epoch
    disk = order(cache=str(tmp_path / "cache"))
    assert disk == order(cache=str(tmp_path / "cache"))  # read back from the file cache
    assert any(p.name.startswith("waveforms-") for p in (tmp_path / "cache").iterdir())


def test_augmentations_apply_only_in_training():
    files = ravdess_files("Actor_06/*.wav")[:4]
    calls = []

    def waveform_augment(waveform, seeds):
        return waveform * 0.0

    def features_augment(segments, mask, seeds):
        calls.append(True)
        return segments + 1.0

    train = make_dataset(
        files, [0] * 4, batch_size=4, training=True,
        waveform_augment=waveform_augment, features_augment=features_augment,
    )
    x, _ = next(iter(train))
    # Silence (augmented) -> normalised zeros, then +1 from the feature step.
    valid = x["segments"].numpy()[x["mask"].numpy()]
    np.testing.assert_allclose(valid, 1.0)
    evaluation = make_dataset(
        files, [0] * 4, batch_size=4, training=False,
        waveform_augment=waveform_augment, features_augment=features_augment,
    )
    x, _ = next(iter(evaluation))
    assert np.abs(x["segments"].numpy()[x["mask"].numpy()]).max() > 1.5


def test_failure_log_records_each_file_once():
    log = FailureLog()
    assert log.record(b"a.wav", b"") is not None and len(log) == 0
    assert not log.record(b"a.wav", b"a.wav: broken")
    assert not log.record(b"a.wav", b"a.wav: broken")
    assert log.failures == [("a.wav", "broken")]


def test_failure_log_file_survives_a_restart(tmp_path):
    import os
    import stat

    from speechmodel import fileio

    path = tmp_path / "run" / "failures.json"
    log = FailureLog(path)
    name = os.fsdecode(b"caf\xe9.wav")  # a file name that is not UTF-8
    assert not log.record(name, f"{name}: broken")
    assert not log.record(b"b.wav", b"b.wav: empty")
    assert stat.S_IMODE(os.stat(path).st_mode) == fileio.default_mode()
    assert os.listdir(path.parent) == ["failures.json"]  # no temporary file left
    assert FailureLog(path).failures == [(name, "broken"), ("b.wav", "empty")]


def test_custom_feature_config_flows_through():
    files = ravdess_files("Actor_07/*.wav")[:2]
    config = FeatureConfig(n_mels=40, segment_frames=32, segment_hop=16)
    x = next(iter(make_dataset(files, config=config, batch_size=2)))
    assert x["segments"].shape[2:] == (32, 40, 3)


def test_every_dataset_runs_without_tf_data_autotuning():
    # With autotuning on, the end of a pass stalled ~10 s in about half of
    # the passes on the build machine (benchmarks/infer.py): it stays off.
    from speechmodel.training.two_stage import segment_dataset, sequence_dataset

    files = ravdess_files("Actor_05/*.wav")[:4]
    for training in (False, True):
        ds = make_dataset(files, np.zeros(4, np.int32), batch_size=2, training=training)
        assert ds.options().autotune.enabled is False
        assert segment_dataset(ds, batch_size=8, seed=0).options().autotune.enabled is False
    table = {f: np.ones((3, 5), np.float32) for f in files}
    sequences = sequence_dataset(table, files, [0, 1, 0, 1], batch_size=2, shuffle=True, seed=0)
    assert sequences.options().autotune.enabled is False
    assert sum(int(y.shape[0]) for _, y in sequences) == 4


def test_a_skipped_file_is_always_named(caplog):
    import logging

    from speechmodel.pipeline import FailureLog

    log = FailureLog()
    with caplog.at_level(logging.WARNING):
        log.record("/corpus/one.wav", "too short to analyse: 1 sample (0.0001 s) at 16000 Hz")
        log.record("/corpus/two.wav", "/corpus/two.wav: not an audio file")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["Skipping /corpus/one.wav: too short to analyse: 1 sample (0.0001 s) at 16000 Hz",
                     "Skipping /corpus/two.wav: not an audio file"]
    assert log.failures == [("/corpus/one.wav", "too short to analyse: 1 sample (0.0001 s) at 16000 Hz"),
                            ("/corpus/two.wav", "not an audio file")]
