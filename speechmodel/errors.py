"""The toolkit's exceptions have one root, as librosa's have ``LibrosaError``.

    try:
        speechmodel.load_model("model.keras").classify("clip.wav")
    except speechmodel.Error as e:      # anything the toolkit raises on purpose
        print(e)

Every typed exception (``AudioError``, ``ConfigError``, ``ModelError``,
``CorpusError``, ``DownloadError``, ...) derives from ``Error``, and also
from the built-in class it derived from before (``ValueError``,
``RuntimeError``, ``OSError``), so existing ``except ValueError`` code keeps
working. ``ParameterError`` is the one for a bad argument value.
"""


class Error(Exception):
    """Root of every exception the toolkit raises on purpose."""


class ParameterError(Error, ValueError):
    """An argument has a value the function cannot use. The message quotes
    it: ``Received: name=value``."""
