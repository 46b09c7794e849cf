import json

import keras
import numpy as np

from speechmodel import features as F
from speechmodel.audio import load_audio
from speechmodel.layers.log_mel_segments import LogMelSegments
from tests.paths import ravdess_files


def test_layer_equals_the_pipeline_features_and_round_trips(tmp_path):
    waves = [load_audio(f) for f in ravdess_files("Actor_08/*.wav")[:2]]
    waves.append(waves[0][:7000])
    batch = np.zeros((3, max(map(len, waves))), np.float32)
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
    lengths = np.array([len(w) for w in waves])
    layer = LogMelSegments({"normalization": "minmax"})
    segments, mask = layer(batch, lengths)
    for i, w in enumerate(waves):
        expected = np.asarray(F.segment_features(w, config=layer.config))
        n = expected.shape[0]
        assert mask[i].numpy().sum() == n
        np.testing.assert_allclose(segments[i, :n], expected, atol=1e-4)

    config = json.loads(json.dumps(layer.get_config()))
    clone = LogMelSegments.from_config(config)
    assert clone.config == layer.config

    # Inside a model saved as .keras and loaded in safe mode.
    waveforms = keras.Input((None,), name="waveforms")
    lengths_in = keras.Input((), dtype="int32", name="lengths")
    seg, m = LogMelSegments()(waveforms, lengths_in)
    pooled = keras.layers.GlobalAveragePooling3D()(seg)
    model = keras.Model([waveforms, lengths_in], [pooled, m])
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    for a, b in zip(model([batch, lengths]), loaded([batch, lengths])):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b))
    assert loaded.output[1].dtype == "bool"
