"""Packages whose names are imported when first asked for (PEP 562), so
that importing the package costs nothing (no TensorFlow for a name table).

    # speechmodel/models/__init__.py
    _LAZY = {"SpeechModel": "speechmodel.models.speech_model", ...}
    __getattr__, __dir__ = lazy_names(__name__, _LAZY)
"""

import importlib
import sys


def lazy_names(package, table):
    """The ``__getattr__`` and ``__dir__`` of ``package``: a name of
    ``table`` (name -> module) is that module's attribute, imported on
    first use; any other name is an ``AttributeError``."""

    def __getattr__(name):
        if name in table:
            return getattr(importlib.import_module(table[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__
