"""Mixed precision: one call before building a model.

``set_precision("auto")`` picks ``"mixed_float16"`` on a GPU and
``"float32"`` on a CPU: even on a CPU with native bfloat16 arithmetic (AMX /
AVX512-BF16) ``"mixed_bfloat16"`` measured about 1.5x slower per training
step than float32 with TensorFlow 2.16's CPU kernels
(``benchmarks/precision.py``, ``benchmarks/results/precision.json``); ask
for it explicitly to try it on another CPU. Under a mixed
policy layers compute in 16 bits and keep float32 weights; speechmodel's
output layers (class probabilities, attention weights, segment logits) are
float32 always, and Keras wraps the optimizer in a ``LossScaleOptimizer``
for ``"mixed_float16"`` at ``compile()``.
"""

import os

import keras

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16", "auto")


def cpu_supports_bfloat16(cpuinfo_path="/proc/cpuinfo"):
    """Whether the CPU has native bfloat16 instructions (Linux: the
    ``avx512_bf16`` / ``amx_bf16`` flags on x86, ``bf16`` on Arm)."""
    if not os.path.exists(cpuinfo_path):
        return False
    with open(cpuinfo_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.strip().lower() in ("flags", "features"):
                flags = set(value.split())
                return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    return False


def _has_gpu():
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def resolve_precision(policy="auto"):
    """The Keras dtype policy name ``set_precision(policy)`` would set."""
    if policy not in POLICIES:
        raise ValueError(f"`policy` must be one of {POLICIES}. Received: policy={policy!r}")
    if policy != "auto":
        return policy
    if _has_gpu():
        return "mixed_float16"
    return "float32"  # bfloat16 was slower on CPU: see the module docstring


def set_precision(policy="auto"):
    """Sets Keras' global dtype policy; call it before building models.

    Args:
        policy: ``"float32"``, ``"mixed_float16"``, ``"mixed_bfloat16"`` or
            ``"auto"`` (see the module docstring).

    Returns:
        The policy name set.
    """
    name = resolve_precision(policy)
    keras.mixed_precision.set_global_policy(name)
    return name


def get_precision():
    """The name of Keras' current global dtype policy."""
    return keras.mixed_precision.global_policy().name
