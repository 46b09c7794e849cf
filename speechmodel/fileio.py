"""Atomic file writes: the one implementation every module uses.

A file is written to a temporary name in its own directory, flushed, and
renamed into place, so that a kill mid-write never leaves a half-written file
that looks complete, and an existing file (results, a user's model) is only
ever replaced by a complete new one. Every file gets the same mode (0666
minus the umask), never ``mkstemp``'s 0600.

    atomic_write_bytes(path, data)
    atomic_write_text(path, text)
    with atomic_path("model.keras") as tmp:   # for writers that want a name
        model.save(tmp)
"""

import contextlib
import os
import tempfile


def default_mode():
    """0666 minus the umask (0644 for the usual umask)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def set_default_mode(path):
    """Gives ``path`` the mode of the other files (e.g. a file written by a
    library through ``mkstemp``, 0600)."""
    os.chmod(path, default_mode())


def _fsync(path):
    """Flushes ``path`` (a file or a directory) to disk; no-op where the
    system does not support it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_directory(directory):
    """Makes the renames in ``directory`` durable (no-op where unsupported)."""
    _fsync(directory)


@contextlib.contextmanager
def atomic_path(path, *, suffix=None):
    """Yields a temporary file name beside ``path``; when the block ends
    without an exception, that file is made durable and renamed to ``path``.
    On an exception (or a kill) ``path`` is untouched and the temporary file
    is removed.

    ``suffix``: the temporary name's ending (default: ``path``'s own, so that
    writers that choose a format by extension, such as Keras's
    ``.weights.h5`` or soundfile, still see it).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    if suffix is None:
        base = os.path.basename(path)
        suffix = ".weights.h5" if base.endswith(".weights.h5") else os.path.splitext(base)[1]
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        if not os.path.exists(tmp):
            raise FileNotFoundError(f"{path}: the writer left no file at {tmp}")
        _fsync(tmp)
        os.chmod(tmp, default_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_directory(directory)


def atomic_write_bytes(path, data):
    """Writes ``data`` to ``path`` atomically (see the module docstring)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        os.fchmod(fd, default_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_directory(directory)


def atomic_write_text(path, text):
    """UTF-8; a file name that is not UTF-8 is written as its bytes."""
    atomic_write_bytes(path, text.encode("utf-8", "surrogateescape"))
