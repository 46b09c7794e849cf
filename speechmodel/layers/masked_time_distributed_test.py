import keras
import numpy as np

from speechmodel.layers.masked_time_distributed import MaskedTimeDistributed
from speechmodel.tests.test_case import TestCase


def _data(seed=0):
    rng = np.random.RandomState(seed)
    x = rng.standard_normal((2, 4, 6, 6, 3)).astype("float32")
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=bool)
    return x, mask


def _cnn():
    inputs = keras.Input((6, 6, 3))
    y = keras.layers.Conv2D(4, 3)(inputs)
    y = keras.layers.BatchNormalization()(y)
    y = keras.layers.GlobalAveragePooling2D()(y)
    return keras.Model(inputs, y)


class MaskedTimeDistributedTest(TestCase):
    def test_layer_basics(self):
        x, mask = _data()
        self.run_layer_test(
            MaskedTimeDistributed,
            {"layer": keras.layers.Dense(5), "skip_masked": True},
            x.reshape(2, 4, -1),
            (2, 4, 5),
            call_kwargs={"mask": mask},
        )

    def test_valid_steps_equal_the_inner_layer_and_padding_is_zero(self):
        x, mask = _data()
        cnn = _cnn()
        for skip in (True, False):
            out = np.asarray(MaskedTimeDistributed(cnn, skip_masked=skip)(x, mask=mask))
            self.assertEqual(out.shape, (2, 4, 4))
            direct = np.asarray(cnn(x[mask]))
            np.testing.assert_allclose(out[mask], direct, atol=1e-5)
            self.assertTrue(np.all(out[~mask] == 0))

    def test_without_mask_every_step_is_computed(self):
        x, _ = _data()
        cnn = _cnn()
        out = np.asarray(MaskedTimeDistributed(cnn)(x))
        np.testing.assert_allclose(
            out.reshape(8, 4), np.asarray(cnn(x.reshape(8, 6, 6, 3))), atol=1e-5
        )

    def test_padding_never_reaches_batchnorm_statistics_in_training(self):
        x, mask = _data()
        noisy = x.copy()
        noisy[~mask] = 100.0
        cnn = _cnn()
        layer = MaskedTimeDistributed(cnn)
        out_clean = np.asarray(layer(x, mask=mask, training=True))
        out_noisy = np.asarray(layer(noisy, mask=mask, training=True))
        np.testing.assert_allclose(out_noisy, out_clean, atol=1e-5)
        # The batch statistics are those of the valid segments alone.
        bn = cnn.layers[2]
        cnn2 = _cnn()
        cnn2.set_weights([np.array(w) for w in cnn.get_weights()])
        bn2 = cnn2.layers[2]
        bn2.moving_mean.assign(np.zeros(4, "float32"))
        bn.moving_mean.assign(np.zeros(4, "float32"))
        layer(noisy, mask=mask, training=True)
        cnn2(x[mask], training=True)
        np.testing.assert_allclose(
            np.asarray(bn.moving_mean), np.asarray(bn2.moving_mean), atol=1e-5
        )

    def test_graph_mode_fit_and_saving(self):
        x, mask = _data()
        segments = keras.Input((None, 6, 6, 3), name="segments")
        seg_mask = keras.Input((None,), dtype="bool", name="mask")
        emb = MaskedTimeDistributed(_cnn())(segments, mask=seg_mask)
        pooled = keras.layers.GlobalAveragePooling1D()(emb, mask=seg_mask)
        model = keras.Model({"segments": segments, "mask": seg_mask}, pooled)
        model.compile(optimizer="sgd", loss="mse")
        inputs = {"segments": x, "mask": mask}
        history = model.fit(inputs, np.zeros((2, 4), "float32"), epochs=1, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][0]))
        self.run_model_saving_test(model, input_data=inputs)

    def test_static_shape_required(self):
        with self.assertRaisesRegex(ValueError, "Received: input_shape"):
            MaskedTimeDistributed(keras.layers.Dense(2)).build((None, None, None))
