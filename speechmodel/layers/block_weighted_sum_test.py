import keras
import numpy as np
import pytest

from speechmodel.layers.block_weighted_sum import BlockWeightedSum


def test_starts_as_the_mean_of_normalised_blocks():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 3, 8)).astype("float32") * np.array([1, 10, 100], "float32")[:, None]
    out = np.asarray(BlockWeightedSum(3)(x))
    norm = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(out, norm.mean(axis=2), rtol=1e-4, atol=1e-5)


def test_learned_weights_select_a_block():
    layer = BlockWeightedSum(3, normalize=False)
    x = np.stack([np.full((1, 4), v, "float32") for v in (1.0, 2.0, 3.0)], axis=1)
    layer(x)
    layer.logits.assign([0.0, 50.0, 0.0])
    np.testing.assert_allclose(np.asarray(layer(x)), np.full((1, 4), 2.0), atol=1e-5)


def test_zero_padding_stays_zero():
    out = np.asarray(BlockWeightedSum(2)(np.zeros((1, 3, 2, 4), "float32")))
    assert np.all(out == 0)


def test_wrong_block_count_and_bad_args():
    with pytest.raises(ValueError, match="Received: input_shape"):
        BlockWeightedSum(4)(np.zeros((1, 3, 8), "float32"))
    with pytest.raises(ValueError, match="Received: num_blocks=0"):
        BlockWeightedSum(0)


def test_serialises(tmp_path):
    inputs = keras.Input((None, 3, 4))
    model = keras.Model(inputs, BlockWeightedSum(3, name="mix")(inputs))
    model.get_layer("mix").logits.assign([0.5, -1.0, 2.0])
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(1).normal(size=(2, 5, 3, 4)).astype("float32")
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)


def test_docstring():
    from speechmodel.tests.test_case import TestCase

    class Doc(TestCase):
        def runTest(self):
            self.run_docstring_test(BlockWeightedSum)

    Doc().runTest()
