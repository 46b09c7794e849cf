"""The toolkit's exceptions have one root, as librosa's have ``LibrosaError``.

    try:
        speechmodel.load_model("model.keras").classify("clip.wav")
    except speechmodel.Error as e:      # anything the toolkit raises on purpose
        print(e)

Every typed exception (``AudioError``, ``ConfigError``, ``ModelError``,
``CorpusError``, ``DownloadError``, ...) derives from ``Error``, and also
from the built-in class it derived from before (``ValueError``,
``RuntimeError``, ``OSError``), so existing ``except ValueError`` code keeps
working. ``ParameterError`` is the one for a bad argument value, and
``is_number`` the test a numeric argument passes first.
"""

import numbers


class Error(Exception):
    """Root of every exception the toolkit raises on purpose."""


class ParameterError(Error, ValueError):
    """An argument has a value the function cannot use. The message quotes
    it: ``Received: name=value``."""


def is_number(value):
    """A real number (int, float, a NumPy scalar), not a bool: what a
    parameter that takes a number accepts before its range is checked."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
