"""Writing results and plots: atomically (``speechmodel.fileio``), file
names that are not valid UTF-8 kept as the bytes they have on disk, and,
for plots, never over an existing file (``overwrite=False``).
"""

import contextlib
import errno
import os
import secrets

from speechmodel import fileio


def encode_text(text, encoding="utf-8"):
    """``text`` as bytes; a file name that is not valid in ``encoding`` (a
    Latin-1 name in UTF-8 text) is written as the bytes it has on disk."""
    try:
        return text.encode(encoding, "surrogateescape")
    except (UnicodeEncodeError, LookupError):
        return text.encode("utf-8", "surrogateescape")


def write_bytes(data, path, *, overwrite=True):
    """Writes ``data`` to ``path`` atomically (``speechmodel.fileio``): a
    reader never sees half a file, and the file gets the usual mode (0666
    minus the umask).

    With ``overwrite=False`` an existing ``path`` is never replaced
    (``FileExistsError``): the complete file is linked into place, which
    fails if the name is taken, even by a file created meanwhile.
    """
    path = os.fspath(path)
    if overwrite:
        fileio.atomic_write_bytes(path, data)
        return
    if os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, "File exists", path)
    directory = os.path.dirname(os.path.abspath(path))
    staged = os.path.join(directory, f".tmp-{secrets.token_hex(6)}-{os.path.basename(path)}")
    fileio.atomic_write_bytes(staged, data)  # Complete before it gets the name.
    try:
        try:
            os.link(staged, path)  # Fails if the name is taken.
        except FileExistsError:
            raise
        except OSError:  # No hard links here: exclusive create instead.
            with open(path, "xb") as out:
                out.write(data)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(staged)


def write_text(text, path):
    """Writes ``text`` (UTF-8; file names as their bytes, see
    ``encode_text``) to ``path`` atomically (see ``write_bytes``)."""
    write_bytes(encode_text(text), path)
