"""The shipped models, found by name (package data).

``speechmodel.load_model("default")``, ``infer.py --model fast``: a name of
``PRESETS`` is the ``.keras`` file of that name in this folder, with its
model card (``<name>.md``) beside it. Files, not code: they load in Keras'
safe mode like any other model.

=========  =================================================================
name       model
=========  =================================================================
default    SpeechModel's head on frozen Whisper-base segment embeddings,
           speaker-normalised (``infer.py --same_speaker``), trained on
           RAVDESS (English) and nEMO (Polish); 8 emotions. The Whisper
           weights are resolved by name and checksum at load time
           (installed packages, else the Keras cache).
fast       SpeechModel on CNN4 (a small CNN on log-mel segments), trained on
           RAVDESS actors 1-22 only; many times faster, far less accurate.
=========  =================================================================
"""

import os

PRESETS = {
    "default": "SpeechModel (BLSTM + attention) on frozen Whisper-base embeddings, speaker-normalised; RAVDESS + nEMO",
    "fast": "SpeechModel on CNN4 log-mel segments; RAVDESS actors 1-22",
}
DEFAULT = "default"
_HERE = os.path.dirname(os.path.abspath(__file__))


def is_preset(name):
    """Whether ``name`` names a shipped model (not a path)."""
    return isinstance(name, str) and name in PRESETS


def preset_path(name):
    """The ``.keras`` file of a shipped model.

    Raises:
        ValueError: not a preset name; the message lists them.
    """
    if not is_preset(name):
        raise ValueError(f"Unknown model name; shipped: {sorted(PRESETS)}. Received: model={name!r}")
    return os.path.join(_HERE, f"{name}.keras")


def model_card(name):
    """The path of a shipped model's model card (``<name>.md``)."""
    return os.path.join(_HERE, f"{name}.md")


def resolve_model(spec=None):
    """The model file a user means: ``None``/``""`` -> the default preset; a
    preset name -> its shipped file; a run directory -> its ``model.keras``;
    a path -> itself.

    Raises:
        ValueError: a name that is neither a preset nor an existing path
            (the message lists the presets).
    """
    if spec in (None, ""):
        return preset_path(DEFAULT)
    spec = os.fspath(spec)
    if is_preset(spec) and not os.path.exists(spec):
        return preset_path(spec)
    if os.path.isdir(spec) and os.path.isfile(os.path.join(spec, "model.keras")):
        return os.path.join(spec, "model.keras")
    if os.path.exists(spec) or os.sep in spec or "/" in spec or spec.endswith((".keras", ".skz")):
        return spec
    raise ValueError(
        f"No model file or shipped model named {spec!r}; shipped: {', '.join(sorted(PRESETS))} "
        f"(or pass a .keras / .skz file or a run directory). Received: model={spec!r}"
    )
