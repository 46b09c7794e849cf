import numpy as np

from speechmodel.training.two_stage import segment_schedule


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


def test_speaker_normalized_standardises_each_speaker_with_their_own_statistics():
    from speechmodel.training.two_stage import speaker_normalized

    rng = np.random.default_rng(0)
    tables = {"train": {}, "test": {}}
    data = {"train": ([], []), "test": ([], [])}
    speakers = {"train": [], "test": []}
    for split, who, offset in (("train", "a", 0.0), ("train", "b", 50.0), ("test", "c", -20.0)):
        for k in range(3):
            path = f"/{split}/{who}{k}.wav"
            tables[split][path] = (rng.normal(size=(4 + k, 2, 3)) * 3 + offset).astype("float32")
            data[split][0].append(path)
            speakers[split].append(who)
    # Oversampling repeats a path: its speaker's statistics count it once.
    data["train"][0].append("/train/a0.wav")
    speakers["train"].append("a")
    out, statistics = speaker_normalized(tables, speakers, data)
    assert sorted(statistics) == [("test", "c"), ("train", "a"), ("train", "b")]
    for split, who in statistics:
        stacked = np.concatenate([out[split][p] for p in tables[split] if f"/{who}" in p])
        np.testing.assert_allclose(stacked.mean(0), 0.0, atol=1e-5)
        np.testing.assert_allclose(stacked.std(0), 1.0, atol=1e-3)
    assert set(out["train"]) == set(tables["train"]) and set(out["test"]) == set(tables["test"])
