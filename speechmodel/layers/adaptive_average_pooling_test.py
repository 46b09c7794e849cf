import numpy as np
import pytest

from speechmodel.layers.adaptive_average_pooling import AdaptiveAveragePooling
from speechmodel.layers.adaptive_average_pooling import pooling_matrix
from speechmodel.tests.test_case import TestCase


def _torch_reference(x, out_h, out_w):
    """Direct loops over torch's AdaptiveAvgPool2d windows."""
    b, h, w, c = x.shape
    y = np.zeros((b, out_h, out_w, c), "float64")
    for i in range(out_h):
        h0, h1 = (i * h) // out_h, -((-(i + 1) * h) // out_h)
        for j in range(out_w):
            w0, w1 = (j * w) // out_w, -((-(j + 1) * w) // out_w)
            y[:, i, j] = x[:, h0:h1, w0:w1].mean(axis=(1, 2))
    return y


class AdaptiveAveragePoolingTest(TestCase):
    def test_layer_basics(self):
        self.run_layer_test(
            AdaptiveAveragePooling,
            {"output_size": [6, 6]},
            np.random.rand(2, 3, 3, 4).astype("float32"),
            (2, 6, 6, 4),
            run_training_check=False,
        )

    def test_matches_torch_windows(self):
        # Down-, up- and non-integer-ratio pooling; tolerance float32 sums.
        rng = np.random.RandomState(0)
        for (h, w), out in [((13, 13), (6, 6)), ((1, 1), (6, 6)), ((3, 5), (6, 7)),
                            ((7, 7), (7, 7)), ((5, 9), (3, 4))]:
            x = rng.rand(2, h, w, 3).astype("float32")
            y = np.asarray(AdaptiveAveragePooling(list(out))(x))
            np.testing.assert_allclose(y, _torch_reference(x, *out), atol=1e-6)

    def test_pooling_matrix_rows_average(self):
        m = pooling_matrix(5, 3)
        np.testing.assert_allclose(m.sum(1), 1.0)
        self.assertEqual(m.shape, (3, 5))
        # Output 1 of 5 -> 3 covers inputs 1..3 (floor(5/3)=1, ceil(10/3)=4).
        np.testing.assert_allclose(m[1], [0, 1 / 3, 1 / 3, 1 / 3, 0], atol=1e-7)

    def test_invalid_arguments(self):
        with pytest.raises(ValueError, match="Received: output_size=0"):
            AdaptiveAveragePooling(0)
        with pytest.raises(ValueError, match="static height"):
            AdaptiveAveragePooling(2).build((None, None, 4, 3))

    def test_docstring_example(self):
        self.run_docstring_test(AdaptiveAveragePooling)
