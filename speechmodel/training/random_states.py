"""Every random state of a fit, saved and restored: the seed generators of
the model's layers (dropout and other layer randomness) and NumPy's and
Python's global generators. ``AtomicBackupAndRestore``
(``speechmodel.training.backup``) keeps them with each epoch's backup.
"""

import random

import keras
import numpy as np

from speechmodel import keras_compat


def seed_states(model):
    """The state variables of every ``keras.random.SeedGenerator`` of the
    model's layers (dropout masks and any other layer randomness), in a
    fixed order: ``model.variables`` without ``model.weights``, which is
    exactly the seed states (Keras' documented difference)."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def random_state(model):
    """The model's seed-generator states and the global NumPy and Python
    generators: ``(arrays for an .npz, JSON-able dict)``."""
    arrays = {
        f"seed_{n}": np.asarray(keras.ops.convert_to_numpy(v.value))
        for n, v in enumerate(seed_states(model))
    }
    name, keys, position, has_gauss, cached = np.random.get_state()
    arrays["numpy_keys"] = keys
    version, internal, gauss = random.getstate()
    extra = {
        "numpy": [name, int(position), int(has_gauss), float(cached)],
        "python": [version, list(internal), gauss],
        "seed_order": "variables",
    }
    return arrays, extra


def set_random_state(model, arrays, extra):
    """Restores what ``random_state`` returned (also from a backup of an
    earlier version, whose seed states are in another order)."""
    if extra.get("seed_order") == "variables":
        states = seed_states(model)
    else:
        states = keras_compat.legacy_seed_states(model)
    stored = sorted((k for k in arrays if k.startswith("seed_")), key=lambda k: int(k[5:]))
    if len(stored) != len(states):
        raise ValueError(
            f"The backup holds {len(stored)} random generator states, the model has "
            f"{len(states)}: it was saved from another model."
        )
    for state, key in zip(states, stored):
        state.assign(arrays[key])
    name, position, has_gauss, cached = extra["numpy"]
    np.random.set_state((name, arrays["numpy_keys"], position, has_gauss, cached))
    version, internal, gauss = extra["python"]
    random.setstate((version, tuple(internal), gauss))
