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
