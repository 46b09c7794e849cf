"""The shipped models, found by name (package data).

``speechmodel.load_model("default")``, ``infer.py --model fast``: a name of
``PRESETS`` is the ``.keras`` file of that name in this folder, with its
model card (``<name>.md``) beside it. Files, not code: they load in Keras'
safe mode like any other model. A name, a path or a run directory is
resolved to its file by ``speechmodel.inference.loading.resolve_model``.

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

import difflib
import os

# The one table of the shipped models: name -> what it is.
PRESETS = {
    "default": "SpeechModel (BLSTM + attention) on frozen Whisper-base embeddings, speaker-normalised; RAVDESS + nEMO",
    "fast": "SpeechModel on CNN4 log-mel segments; RAVDESS actors 1-22",
}
# The model used when none is named.
DEFAULT = "default"
_HERE = os.path.dirname(os.path.abspath(__file__))


def is_preset(name):
    """Whether ``name`` names a shipped model (not a path)."""
    return isinstance(name, str) and name in PRESETS


def unknown_name(name):
    """What to tell a user who named ``name``, which is no shipped model:
    the closest shipped name, if one is close, and the shipped names."""
    close = difflib.get_close_matches(str(name), sorted(PRESETS), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}shipped models: {', '.join(sorted(PRESETS))}"


def preset_path(name):
    """The ``.keras`` file of a shipped model.

    Raises:
        ParameterError: not a preset name; the message lists them.
    """
    if not is_preset(name):
        from speechmodel.errors import ParameterError

        raise ParameterError(f"Unknown shipped model; {unknown_name(name)}. Received: model={name!r}")
    return os.path.join(_HERE, f"{name}.keras")


def model_card(name):
    """The path of a shipped model's model card (``<name>.md``)."""
    return os.path.join(_HERE, f"{name}.md")
