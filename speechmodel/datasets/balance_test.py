import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight

from speechmodel.datasets.balance import class_weights, oversample


def test_oversample_to_majority_count():
    indices = np.array([10, 11, 12, 13, 14, 15, 16, 20, 21, 30])
    labels = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 2])
    out = oversample(indices, labels, seed=0)
    # Originals first, in order; then duplicates of the minority classes.
    np.testing.assert_array_equal(out[: len(indices)], indices)
    label_of = dict(zip(indices.tolist(), labels.tolist()))
    counts = np.bincount([label_of[i] for i in out.tolist()])
    np.testing.assert_array_equal(counts, [7, 7, 7])
    assert set(out[len(indices) :].tolist()) <= {20, 21, 30}
    assert out.dtype == np.int64


def test_oversample_is_deterministic_and_seeded():
    indices = np.arange(100, 130)
    labels = np.array([0] * 20 + [1] * 6 + [2] * 4)
    a = oversample(indices, labels, seed=3)
    np.testing.assert_array_equal(a, oversample(indices, labels, seed=3))
    assert not np.array_equal(a, oversample(indices, labels, seed=4))


def test_oversample_balanced_and_empty_inputs():
    indices = np.array([1, 2, 3, 4])
    np.testing.assert_array_equal(oversample(indices, [0, 1, 0, 1], seed=0), indices)
    assert oversample([], [], seed=0).size == 0


def test_oversample_validation():
    with pytest.raises(ValueError, match="one entry per index"):
        oversample([1, 2, 3], [0, 1], seed=0)
    with pytest.raises(ValueError, match="integer class indices"):
        oversample([1, 2], [0.5, 1.0], seed=0)
    with pytest.raises(ValueError, match="must be >= 0"):
        oversample([1, 2], [0, -1], seed=0)


def test_class_weights_match_sklearn():
    labels = np.array([0] * 10 + [1] * 5 + [2] * 2 + [3] * 3)
    ours = class_weights(labels, 4)
    ref = compute_class_weight("balanced", classes=np.arange(4), y=labels)
    assert list(ours) == [0, 1, 2, 3]
    np.testing.assert_allclose([ours[c] for c in range(4)], ref, rtol=1e-12)
    # The mean weight over the samples is 1.
    assert np.mean([ours[c] for c in labels]) == pytest.approx(1.0, abs=1e-12)


def test_class_weights_absent_class_and_errors():
    ours = class_weights([0, 0, 2], 3)
    assert ours[1] == 0.0
    assert ours[0] == pytest.approx(3 / (2 * 2)) and ours[2] == pytest.approx(
        3 / (2 * 1)
    )
    with pytest.raises(ValueError, match="outside"):
        class_weights([0, 3], 3)
    with pytest.raises(ValueError, match="zero labels"):
        class_weights([], 3)
    with pytest.raises(ValueError, match="n_classes=0"):
        class_weights([0], 0)
