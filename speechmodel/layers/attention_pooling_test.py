import keras
import numpy as np
import pytest

from speechmodel.layers.attention_pooling import AttentionPooling
from speechmodel.tests.test_case import TestCase


def _data(seed=0):
    rng = np.random.RandomState(seed)
    x = rng.standard_normal((3, 5, 4)).astype("float32")
    mask = np.array(
        [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=bool
    )
    return x, mask


class AttentionPoolingTest(TestCase):
    def test_layer_basics(self):
        x, mask = _data()
        self.run_layer_test(
            AttentionPooling,
            {"units": 8},
            x,
            (3, 4),
            call_kwargs={"mask": mask},
            expected_num_trainable_weights=3,
        )

    def test_layer_basics_linear_scoring_with_weights(self):
        x, mask = _data()
        self.run_layer_test(
            AttentionPooling,
            {"units": None, "use_bias": False},
            x,
            [(3, 4), (3, 5)],
            call_kwargs={"mask": mask, "return_attention": True},
            expected_output_dtype=["float32", "float32"],
            expected_num_trainable_weights=1,
        )

    def test_weights_sum_to_one_over_valid_steps_and_zero_on_padding(self):
        x, mask = _data()
        _, weights = AttentionPooling(units=8)(x, mask=mask, return_attention=True)
        weights = np.asarray(weights)
        np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
        self.assertTrue(np.all(weights[~mask] == 0.0))
        self.assertTrue(np.all(weights[mask] > 0.0))

    def test_constant_scores_give_the_masked_mean(self):
        # A zero context vector scores every step 0: uniform weights over
        # the valid steps, so the pooling is the masked mean (exact).
        x, mask = _data()
        layer = AttentionPooling(units=None, kernel_initializer="zeros")
        pooled = np.asarray(layer(x, mask=mask))
        expected = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        np.testing.assert_allclose(pooled, expected, atol=1e-6)

    def test_known_scores_give_the_softmax(self):
        # units=None, context = e_0: the score of a step is its feature 0.
        x, mask = _data()
        layer = AttentionPooling(units=None)
        layer.build(x.shape)
        layer.context.assign(np.array([[1.0], [0.0], [0.0], [0.0]], "float32"))
        pooled, weights = layer(x, mask=mask, return_attention=True)
        scores = np.where(mask, x[..., 0], -np.inf)
        expected_w = np.exp(scores - scores.max(-1, keepdims=True))
        expected_w /= expected_w.sum(-1, keepdims=True)
        np.testing.assert_allclose(np.asarray(weights), expected_w, atol=1e-6)
        np.testing.assert_allclose(
            np.asarray(pooled), (expected_w[..., None] * x).sum(1), atol=1e-5
        )

    def test_padded_values_never_matter(self):
        x, mask = _data()
        layer = AttentionPooling(units=8)
        reference = np.asarray(layer(x, mask=mask))
        for fill in (0.0, 1e6, np.nan):
            noisy = x.copy()
            noisy[~mask] = fill
            np.testing.assert_array_equal(np.asarray(layer(noisy, mask=mask)), reference)
        # Extra padded steps at the end change nothing either.
        longer = np.concatenate([x, np.ones((3, 2, 4), "float32")], axis=1)
        longer_mask = np.concatenate([mask, np.zeros((3, 2), bool)], axis=1)
        np.testing.assert_allclose(
            np.asarray(layer(longer, mask=longer_mask)), reference, atol=1e-6
        )

    def test_no_valid_step_pools_to_zeros(self):
        x, _ = _data()
        mask = np.zeros((3, 5), bool)
        pooled, weights = AttentionPooling(units=4)(x, mask=mask, return_attention=True)
        self.assertTrue(np.all(np.asarray(pooled) == 0))
        self.assertTrue(np.all(np.asarray(weights) == 0))

    def test_no_mask_is_softmax_over_all_steps(self):
        x, _ = _data()
        _, weights = AttentionPooling(units=4)(x, return_attention=True)
        np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, atol=1e-6)

    def test_mixed_bfloat16_keeps_float32_weights(self):
        x, mask = _data()
        layer = AttentionPooling(units=4, dtype="mixed_bfloat16")
        pooled, weights = layer(x, mask=mask, return_attention=True)
        self.assertEqual(keras.backend.standardize_dtype(pooled.dtype), "bfloat16")
        self.assertEqual(keras.backend.standardize_dtype(weights.dtype), "float32")
        np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, atol=1e-6)

    def test_invalid_arguments(self):
        with pytest.raises(ValueError, match="Received: units=0"):
            AttentionPooling(units=0)
        with pytest.raises(ValueError, match="Received: input_shape"):
            AttentionPooling(units=2)(np.zeros((2, 3), "float32"))

    def test_docstring_example(self):
        self.run_docstring_test(AttentionPooling)
