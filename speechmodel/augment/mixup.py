"""Mixup (Zhang et al. 2018) on the batched ``(x, labels)`` dataset
(``apply_mixup``, ``mixup_batch``): it needs the labels, so it runs after
``make_dataset``; the labels become soft one-hot vectors."""

import numbers

import tensorflow as tf

from speechmodel.augment.seeds import stateless_seed
from speechmodel.augment.settings import probability
from speechmodel.errors import is_number


# Distinguishes mixup's per-batch seeds from the pipeline's (draw, index).
_MIXUP_SALT = -0x6D6978


def mixup_batch(x, y, *, alpha, num_classes, seed, p=1.0):
    """Mixes pairs of utterances within a batch (mixup, Zhang et al. 2018).

    Each example ``i`` is paired with ``j = perm[i]`` (a random permutation
    of the batch) and ``lambda_i ~ Beta(alpha, alpha)``: labels become
    ``lambda_i * onehot(y_i) + (1 - lambda_i) * onehot(y_j)``; segments
    where both utterances are valid become ``lambda_i * x_i + (1 -
    lambda_i) * x_j``, segments valid in only one are kept as they are, and
    the mask is the OR of the pair's masks. With ``p < 1`` an example is
    mixed with probability ``p`` and otherwise left as it is (hard one-hot).

    The labels are soft: train with ``keras.losses.CategoricalCrossentropy``
    and ``categorical_accuracy``, not their sparse versions.

    Args:
        x: ``{"segments": (B, N, frames, n_mels, C), "mask": bool (B, N)}``.
        y: int (B,) class indices in ``[0, num_classes)``.
        alpha: Beta parameter, > 0 (small: mostly light mixing).
        num_classes: number of classes.
        seed: stateless seed (int or int (2,) tensor).
        p: probability that an example is mixed.

    Returns:
        ``({"segments", "mask"}, float32 (B, num_classes))``.
    """
    if not is_number(alpha) or not float(alpha) > 0:
        raise ValueError(f"`alpha` must be a positive number. Received: alpha={alpha!r}")
    if not isinstance(num_classes, numbers.Integral) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"`num_classes` must be a positive integer. Received: num_classes={num_classes!r}")
    p = probability("mixup", p)
    if not isinstance(x, dict) or set(x) != {"segments", "mask"}:
        raise ValueError(
            "`x` must be a dict with keys 'segments' and 'mask'. "
            f"Received: x={type(x).__name__} with keys {sorted(x) if isinstance(x, dict) else None}"
        )
    segments = tf.convert_to_tensor(x["segments"])
    mask = tf.cast(tf.convert_to_tensor(x["mask"]), tf.bool)
    y = tf.convert_to_tensor(y)
    if not y.dtype.is_integer:
        raise ValueError(
            "`y` must be integer class indices (mixup makes the soft labels). "
            f"Received: y dtype={y.dtype.name}"
        )
    if y.shape.rank != 1:
        raise ValueError(f"`y` must be 1-D (batch,). Received: y shape={y.shape}")
    checks = []
    if tf.executing_eagerly():
        values = y.numpy()
        bad = values[(values < 0) | (values >= num_classes)]
        if bad.size:
            raise ValueError(
                f"Labels must lie in [0, {num_classes}) for num_classes={num_classes}. "
                f"Received: y={values.tolist()}"
            )
    else:
        checks = [
            tf.debugging.assert_non_negative(y, message="mixup: labels must be >= 0"),
            tf.debugging.assert_less(
                y, tf.cast(num_classes, y.dtype),
                message=f"mixup: labels must be < num_classes={num_classes}",
            ),
        ]
    with tf.control_dependencies(checks):
        y = tf.identity(y)
    keys = tf.random.experimental.stateless_split(stateless_seed(seed), num=4)
    b = tf.shape(y)[0]
    perm = tf.argsort(tf.random.stateless_uniform([b], keys[0]))
    g1 = tf.random.stateless_gamma([b], keys[1], alpha=float(alpha))
    g2 = tf.random.stateless_gamma([b], keys[2], alpha=float(alpha))
    total = g1 + g2
    # Both gammas can underflow to 0 for a tiny alpha: Beta is then ~{0, 1}.
    lam = tf.where(total > 0, g1 / tf.maximum(total, 1e-30), tf.cast(g1 >= g2, tf.float32))
    if p < 1.0:
        chosen = tf.random.stateless_uniform([b], keys[3]) < p
        perm = tf.where(chosen, perm, tf.range(b))
        lam = tf.where(chosen, lam, 1.0)
    onehot = tf.one_hot(y, num_classes, dtype=tf.float32)
    soft = lam[:, tf.newaxis] * onehot + (1.0 - lam[:, tf.newaxis]) * tf.gather(onehot, perm)
    other = tf.gather(segments, perm)
    other_mask = tf.gather(mask, perm)
    weight = tf.cast(lam, segments.dtype)[:, tf.newaxis, tf.newaxis, tf.newaxis, tf.newaxis]
    both = (mask & other_mask)[:, :, tf.newaxis, tf.newaxis, tf.newaxis]
    only_other = (other_mask & ~mask)[:, :, tf.newaxis, tf.newaxis, tf.newaxis]
    mixed = tf.where(
        both,
        weight * segments + (1 - weight) * other,
        tf.where(only_other, other, segments),
    )
    return {"segments": mixed, "mask": mask | other_mask}, soft


def apply_mixup(dataset, *, alpha, num_classes, seed=0, p=1.0, epoch=None):
    """Maps :func:`mixup_batch` over a batched ``(x, labels)`` dataset.

    Each batch gets a fresh stateless seed per epoch, reproducible for
    ``seed`` (like ``make_dataset``'s augmentations). Apply it to the
    training set only, and compile the model with
    ``keras.losses.CategoricalCrossentropy`` on the soft labels.

    Args:
        dataset: elements ``({"segments", "mask"}, int labels (B,))``, e.g.
            ``make_dataset(paths, labels, training=True)``.
        alpha, num_classes, p: as :func:`mixup_batch`.
        seed: int.
        epoch: optional ``speechmodel.pipeline.EpochCounter`` (the one
            given to ``make_dataset``): the seed of batch ``b`` of a pass is
            then a pure function of ``(seed, epoch, b)``, so a resumed run
            mixes the same pairs as an uninterrupted one.

    Returns:
        tf.data.Dataset of ``({"segments", "mask"}, float32 (B, num_classes))``.
    """
    spec = dataset.element_spec
    if (
        not isinstance(spec, tuple)
        or len(spec) != 2
        or not isinstance(spec[0], dict)
        or set(spec[0]) != {"segments", "mask"}
    ):
        raise ValueError(
            "apply_mixup needs a batched dataset of (x, labels) with x = "
            "{'segments', 'mask'} (make_dataset with labels, without "
            f"with_index). Received: element_spec={spec}"
        )
    # Validate the scalar arguments now rather than inside the map.
    if not is_number(alpha) or not float(alpha) > 0:
        raise ValueError(f"`alpha` must be a positive number. Received: alpha={alpha!r}")
    if not isinstance(num_classes, numbers.Integral) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"`num_classes` must be a positive integer. Received: num_classes={num_classes!r}")
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        raise ValueError(f"`seed` must be an integer. Received: seed={seed!r}")
    p = probability("mixup", p)
    if epoch is not None:
        from speechmodel import pipeline

        def one_pass(number):
            key = pipeline.pass_seed(seed, number, _MIXUP_SALT)
            return dataset.enumerate().map(
                lambda b, element: (element, tf.bitwise.bitwise_xor(key, b))
            )

        ds = pipeline.epoch_numbers(epoch).flat_map(one_pass)
    else:
        draws = tf.data.Dataset.random(seed=int(seed), rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((dataset, draws))

    def mix(element, draw):
        x, y = element
        return mixup_batch(
            x, y, alpha=alpha, num_classes=num_classes, p=p,
            seed=tf.stack([draw, tf.constant(_MIXUP_SALT, tf.int64)]),
        )

    return ds.map(mix, num_parallel_calls=tf.data.AUTOTUNE)
