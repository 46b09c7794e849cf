"""Stateless seeds: the one form every augmentation draws its randomness from."""

import numbers

import tensorflow as tf


def stateless_seed(seed):
    """An int, a pair, or a (2,) tensor -> an int64 (2,) stateless seed."""
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return tf.constant([int(seed), 0], tf.int64)
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    if seed.shape.rank is not None and seed.shape.as_list() not in ([2], [None]):
        raise ValueError(f"A seed is an int or a (2,) tensor. Received: seed shape={seed.shape}")
    return tf.reshape(seed, [2])
