"""Audio errors: ``AudioError`` (one ``kind`` of ``ERROR_KINDS`` each, the
file named) and what keeps a path from being read (``path_problem``)."""

import errno
import os
import re
import stat

from speechmodel.errors import Error

ERROR_KINDS = (
    "missing",
    "permission",
    "not_regular",
    "empty",
    "not_audio",
    "corrupt",
    "truncated",
    "no_samples",
    "non_finite",
)


class AudioError(Error, ValueError):
    """A file that cannot be used as audio.

    Attributes:
        path: the file, as given.
        reason: what is wrong, in words.
        kind: one of ``ERROR_KINDS``.
    """

    def __init__(self, path, reason, *, kind):
        if kind not in ERROR_KINDS:
            raise ValueError(
                f"`kind` must be one of {ERROR_KINDS}. Received: kind={kind}"
            )
        self.path = str(path)
        self.reason = reason
        self.kind = kind
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        return (_rebuild_error, (self.path, self.reason, self.kind))


def _rebuild_error(path, reason, kind):
    return AudioError(path, reason, kind=kind)


# The first bytes of the containers libsndfile (and the MP3 decoder) read.
_AUDIO_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"BW64", b"fLaC", b"OggS", b"FORM", b"ID3",
                b".snd", b"caff", b"wvpk", b"#!AMR", b"2BIT", b"NIST", b"Crea", b"MThd")


def has_audio_magic(path):
    """False when ``path``'s first bytes are no audio container libsndfile
    knows (an MPEG frame sync counts as audio); None when unreadable."""
    try:
        if isinstance(path, (str, bytes, os.PathLike)):
            with open(path, "rb") as f:
                head = f.read(12)
        else:
            return None
    except OSError:
        return None
    if head.startswith(_AUDIO_MAGIC) or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return True
    return False


def open_error(path, exc):
    """Turns a libsndfile open error into an AudioError of the right kind."""
    # soundfile says "Error opening <the path's repr>: <libsndfile's
    # message>"; the error names the file already (a service must not show
    # its own temporary paths).
    message = re.sub(r"""^Error opening (b?'(?:[^'\\]|\\.)*'|b?"(?:[^"\\]|\\.)*"): """, "", str(exc)).strip()
    if "Permission denied" in message:
        return AudioError(
            path, "permission denied: the file cannot be read", kind="permission"
        )
    if (
        "Format not recognised" in message
        or "unknown format" in message
        or "not a regular file" in message
        or has_audio_magic(path) is False
    ):
        return AudioError(
            path,
            "not an audio file (libsndfile does not recognise the format)",
            kind="not_audio",
        )
    if "No 'data' chunk" in message or "truncated" in message.lower():
        return AudioError(
            path, f"truncated audio file ({message})", kind="truncated"
        )
    return AudioError(path, f"corrupt audio file ({message})", kind="corrupt")


_NOT_REGULAR = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _blocked_directory(path):
    """The first directory on the way to ``path`` that cannot be searched."""
    parts = os.path.abspath(path).split(os.sep)
    for n in range(2, len(parts)):
        directory = os.sep.join(parts[:n]) or os.sep
        try:
            os.stat(os.path.join(directory, os.curdir))  # Needs search permission.
        except OSError:
            return directory
    return None


def path_problem(path):
    """What keeps ``path`` from being read as a file, or None.

    Says what is actually wrong: no such file, a broken symbolic link or a
    symbolic link loop (kind ``missing``), a file or a directory on its way
    that this user may not read (``permission``), a directory, a named pipe
    or a device (``not_regular``; a pipe is never opened, which would wait
    for a writer), an empty file (``empty``).

    Returns:
        AudioError or None.
    """
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        code = exc.errno
        if code == errno.ELOOP:
            return AudioError(
                path, "symbolic link loop (too many levels of symbolic links)",
                kind="missing",
            )
        if code == errno.EACCES:
            blocked = _blocked_directory(path)
            where = f" ({blocked} cannot be searched)" if blocked else ""
            return AudioError(
                path,
                f"permission denied: a directory on the way to the file cannot be read{where}",
                kind="permission",
            )
        if code == errno.ENOENT and os.path.islink(path):
            try:
                target = os.readlink(path)
            except OSError:
                target = "?"
            return AudioError(
                path,
                f"broken symbolic link (it points to {target}, which does not exist)",
                kind="missing",
            )
        if code == errno.ENOENT:
            return AudioError(path, "file not found", kind="missing")
        if code == errno.ENOTDIR:
            return AudioError(
                path, "file not found (a part of the path is a file, not a directory)",
                kind="missing",
            )
        if code == errno.ENAMETOOLONG:
            return AudioError(path, "file name too long", kind="missing")
        return AudioError(
            path, f"cannot access the file ({exc.strerror or exc})", kind="missing"
        )
    if stat.S_ISDIR(st.st_mode):
        return AudioError(path, "is a directory, not a file", kind="not_regular")
    for test, what in _NOT_REGULAR:
        if test(st.st_mode):
            return AudioError(
                path,
                f"is {what}, not a regular file: audio is read from files "
                "(save the stream to a file first)",
                kind="not_regular",
            )
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        return AudioError(
            path, "permission denied: the file cannot be read", kind="permission"
        )
    except OSError as exc:
        return AudioError(
            path, f"cannot open the file ({exc.strerror or exc})", kind="missing"
        )
    if st.st_size == 0:
        return AudioError(path, "file is empty (0 bytes)", kind="empty")
    return None


def check_exists(path):
    problem = path_problem(path)
    if problem is not None:
        raise problem
