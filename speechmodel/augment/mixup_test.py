import numpy as np
import pytest
import tensorflow as tf

from speechmodel.augment.mixup import apply_mixup, mixup_batch


def constant_batch(counts, values):
    n = max(counts)
    segments = np.zeros((len(counts), n, 4, 5, 3), np.float32)
    mask = np.arange(n)[None, :] < np.array(counts)[:, None]
    for b, v in enumerate(values):
        segments[b][mask[b]] = v
    return {"segments": tf.constant(segments), "mask": tf.constant(mask)}, mask


def test_mixup_mixes_pairs_and_labels_follow_lambda():
    counts, values = [3, 1, 2, 3, 2, 1], [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    x, mask = constant_batch(counts, values)
    y = np.arange(6)  # distinct classes: the soft label reveals pair and lambda
    out, soft = mixup_batch(x, y, alpha=1.0, num_classes=8, seed=3)
    out, soft, new_mask = out["segments"].numpy(), soft.numpy(), out["mask"].numpy()
    assert soft.shape == (6, 8) and soft.dtype == np.float32
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-6)
    assert (soft >= 0).all() and not soft[:, 6:].any()
    mixed = 0
    for i in range(6):
        lam = soft[i, i]
        partners = [j for j in range(6) if j != i and soft[i, j] > 0]
        j = partners[0] if partners else i
        mixed += j != i
        np.testing.assert_allclose(soft[i, j], 1 - lam if j != i else 1.0, atol=1e-6)
        np.testing.assert_array_equal(new_mask[i], mask[i] | mask[j])
        for k in range(mask.shape[1]):
            seg = out[i, k]
            if mask[i, k] and mask[j, k]:
                np.testing.assert_allclose(seg, lam * values[i] + (1 - lam) * values[j], rtol=1e-5)
            elif mask[j, k]:
                np.testing.assert_array_equal(seg, values[j])
            elif mask[i, k]:
                np.testing.assert_array_equal(seg, values[i])
            else:
                np.testing.assert_array_equal(seg, 0.0)
    assert mixed >= 3


def test_mixup_lambda_follows_beta_alpha():
    x, _ = constant_batch([1] * 64, [0.0] * 64)
    y = np.zeros(64, np.int64)
    y[1::2] = 1  # every pair of different classes shows lambda

    def lambdas(alpha):
        out = []
        for s in range(8):
            _, soft = mixup_batch(x, y, alpha=alpha, num_classes=2, seed=s)
            soft = soft.numpy()
            out.extend(soft[y == 0, 0][soft[y == 0, 0] < 1])  # mixed with a class-1 partner
        return np.array(out)

    sharp = lambdas(0.2)  # U-shaped: mostly near 0 or 1
    assert np.mean((sharp < 0.1) | (sharp > 0.9)) > 0.5
    flat = lambdas(50.0)  # concentrated at 1/2
    assert abs(flat.mean() - 0.5) < 0.03 and flat.std() < 0.1
    _, soft = mixup_batch(x, y, alpha=1.0, num_classes=2, seed=0, p=0.0)
    np.testing.assert_array_equal(soft.numpy(), np.eye(2)[y])


def test_mixup_rejects_bad_labels_and_arguments():
    x, _ = constant_batch([1, 1], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"Received: y=\[0, 3\]"):
        mixup_batch(x, [0, 3], alpha=0.2, num_classes=3, seed=0)
    with pytest.raises(ValueError, match="alpha=-1"):
        mixup_batch(x, [0, 1], alpha=-1, num_classes=3, seed=0)
    with pytest.raises(ValueError, match="float32"):
        mixup_batch(x, np.array([0.0, 1.0], np.float32), alpha=0.2, num_classes=3, seed=0)
    ds = tf.data.Dataset.from_tensors((x, tf.constant([0, 5])))
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_classes=3"):
        list(apply_mixup(ds, alpha=0.2, num_classes=3))
    with pytest.raises(ValueError, match="element_spec"):
        apply_mixup(ds.map(lambda a, b: a), alpha=0.2, num_classes=3)


def test_apply_mixup_is_seeded_and_new_each_epoch():
    x, _ = constant_batch([2, 1, 2, 1], [1.0, 2.0, 3.0, 4.0])
    ds = tf.data.Dataset.from_tensors((x, tf.constant([0, 1, 2, 3]))).repeat(3)

    def labels(seed):
        return [soft.numpy() for _, soft in apply_mixup(ds, alpha=1.0, num_classes=4, seed=seed)]

    first = labels(1)
    np.testing.assert_array_equal(np.stack(first), np.stack(labels(1)))
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(np.stack(first), np.stack(labels(2)))
