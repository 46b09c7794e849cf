"""Command-line overrides of a config: ``--set KEY=VALUE`` read
(:func:`parse_override`) and applied (:func:`set_key`, which refuses a key
no config has and names the closest one), ``--augment`` read
(:func:`parse_augment`), and every key a config can set
(:func:`known_keys`)."""

import copy
import json

from speechmodel.training.defaults import DEFAULTS, ConfigError, closest
from speechmodel.training.schema import (
    ALL_MODEL_KEYS,
    AUGMENTATIONS,
    CLASSICAL_SETTINGS,
    FREE_SECTIONS,
)


def parse_override(text):
    """``"training.segment_epochs=4"`` -> ``("training.segment_epochs", 4)``.

    The value is read as JSON (``4``, ``0.5``, ``true``, ``null``,
    ``[256, 128]``, ``{"p": 0.5}``, ``"text"``); anything that is not JSON is
    the plain string (``--set training.optimizer=adamw``).
    """
    key, sep, raw = str(text).partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(
            "--set takes KEY=VALUE with a dotted key, e.g. --set training.segment_epochs=4. "
            f"Received: --set {text!r}"
        )
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


def parse_augment(value, configured):
    """``--augment noise,specaugment`` -> those sections of the configured
    ``training.augment`` (or ``{}`` each); ``none`` -> ``{}``."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    if names in ([], ["none"]):
        return {}
    unknown = sorted(set(names) - set(AUGMENTATIONS))
    if unknown:
        raise ConfigError(
            f"--augment takes none or a comma list of {', '.join(AUGMENTATIONS)}"
            f"{closest(unknown[0], AUGMENTATIONS)}. Received: augment={value}"
        )
    return {name: dict((configured or {}).get(name) or {}) for name in names}


def known_keys():
    """Every dotted key a config can set (the model keys of every model)."""
    keys = []

    def walk(section, path):
        for key, value in section.items():
            dotted = f"{path}{key}"
            if isinstance(value, dict) and value and dotted not in FREE_SECTIONS:
                walk(value, dotted + ".")
            else:
                keys.append(dotted)

    walk(DEFAULTS, "")
    keys += [f"model.{k}" for k in ALL_MODEL_KEYS if f"model.{k}" not in keys]
    keys += [f"training.augment.{a}" for a in AUGMENTATIONS]
    keys += [f"training.classical.{k}" for k in CLASSICAL_SETTINGS]
    keys += ["dataset.corpora", "dataset.options"]
    return sorted(set(keys))


def set_key(config, key, value):
    """Sets the dotted ``key`` of ``config`` (a dict, changed in place;
    missing sections are created).

    Raises:
        ConfigError: a key that no config has; the message names the
            closest valid key.
    """
    parts = key.split(".")
    if not all(p.strip() for p in parts):
        raise ConfigError(f"Empty part in the dotted key `{key}`. Received: {key}={value!r}")
    _check_settable(key, value)
    target = config
    for i, part in enumerate(parts[:-1]):
        here = ".".join(parts[: i + 1])
        if target.get(part) is None:
            target[part] = {}
        if not isinstance(target[part], dict):
            raise ConfigError(
                f"`{here}` is a value, not a section, so `{key}` cannot be set. "
                f"Received: {key}={value!r}"
            )
        target = target[part]
    target[parts[-1]] = copy.deepcopy(value)
    return config


def _check_settable(key, value):
    known = known_keys()
    if key in known or any(k.startswith(key + ".") for k in known):
        return
    parts = key.split(".")
    # Inside the free sections: the first level is checked here, what is
    # below by the section's own validation.
    for section, names in (("training.augment", AUGMENTATIONS),
                           ("training.classical", CLASSICAL_SETTINGS),
                           ("dataset.options", None)):
        depth = section.count(".") + 1
        if key.startswith(section + ".") and len(parts) > depth:
            if names is None or parts[depth] in names:
                return
            candidates = [f"{section}.{n}" for n in names]
            raise ConfigError(
                f"Unknown config key `{key}`{closest('.'.join(parts[:depth + 1]), candidates)}; "
                f"known keys of {section}: {list(names)}. Received: {key}={value!r}"
            )
    raise ConfigError(
        f"Unknown config key `{key}`{closest(key, known)}. "
        f"`--print_config` shows every key. Received: {key}={value!r}"
    )


def _default_at(path):
    """The DEFAULTS section at ``"training."`` (``""``: the top), or None."""
    section = DEFAULTS
    for part in [p for p in path.split(".") if p]:
        section = section.get(part) if isinstance(section, dict) else None
        if not isinstance(section, dict):
            return None
    return section
