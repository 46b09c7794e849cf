"""Which files to analyse: command-line inputs (files, directories walked
recursively for audio, glob patterns, list files of one path per line)
resolved to ``Inputs``: the files, each once, in the order given, and a
``Failure`` for every input that gave none (a missing path, a pattern that
matches nothing, a directory without audio or that cannot be read).
"""

import dataclasses
import glob
import os

from speechmodel.audio import AUDIO_EXTENSIONS, path_problem  # the one list of audio endings
from speechmodel.inference.results import Failure


@dataclasses.dataclass
class Inputs:
    """The files to analyse and the inputs that gave none."""

    paths: list
    failures: list


def _has_magic(text):
    return any(c in text for c in "*?[")


def _is_audio_name(path, extensions):
    return path.lower().endswith(tuple(e.lower() for e in extensions))


def _walk(directory, extensions, unreadable=None):
    """The audio files under ``directory``; the folders that cannot be read
    are appended to ``unreadable`` as ``(folder, reason)``."""
    found = []

    def onerror(exc):
        if unreadable is not None:
            reason = exc.strerror or str(exc)
            if isinstance(exc, PermissionError):
                reason = "permission denied"
            unreadable.append((exc.filename or directory, reason))

    for root, dirs, files in os.walk(directory, onerror=onerror):
        dirs.sort()
        for name in sorted(files):
            if _is_audio_name(name, extensions):
                found.append(os.path.join(root, name))
    return found


def read_list_file(path):
    """The entries of a list file: one path per line; blank lines and lines
    starting with ``#`` are skipped; a relative path is relative to the
    list file's directory.

    Raises:
        ValueError: the list file cannot be read (names it and why).
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise ValueError(f"list file not found. Received: --list={path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"cannot read the list file ({exc}). Received: --list={path}"
        ) from None
    base = os.path.dirname(path)
    entries = []
    for line in lines:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        entry = os.path.expanduser(entry)
        entries.append(entry if os.path.isabs(entry) else os.path.join(base, entry))
    return entries


def collect_inputs(inputs=(), *, list_files=(), extensions=AUDIO_EXTENSIONS):
    """Resolves command-line inputs to the files to analyse.

    Args:
        inputs: paths, directories and glob patterns. A directory is
            walked recursively for files with one of ``extensions`` (case
            insensitive). A file given explicitly (or matched by a pattern)
            is analysed whatever its extension, so a non-audio file is
            reported rather than ignored. A pattern (``*``, ``?``, ``[``,
            and ``**`` for any depth) is expanded when no file has that
            exact name.
        list_files: files listing one input per line (see
            ``read_list_file``).
        extensions: the audio extensions looked for in directories.

    Returns:
        Inputs ``(paths, failures)``: the files in the order given, each
        once; failures for missing paths, patterns matching nothing and
        directories holding no audio.

    Raises:
        ValueError: a list file cannot be read.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if isinstance(list_files, (str, os.PathLike)):
        list_files = [list_files]
    entries = [os.fspath(i) for i in inputs]
    for list_file in list_files:
        entries.extend(read_list_file(list_file))
    paths, failures, seen = [], [], set()

    def add(path):
        key = os.path.normcase(os.path.abspath(path))
        if key not in seen:
            seen.add(key)
            paths.append(path)

    def add_directory(directory):
        unreadable = []
        found = _walk(directory, extensions, unreadable)
        for folder, reason in unreadable:  # Never skipped without a word.
            failures.append(
                Failure(folder, f"cannot read this directory ({reason}): its files were not searched")
            )
        if not found and not unreadable:
            failures.append(
                Failure(
                    directory,
                    "no audio files in this directory (looked for "
                    f"{', '.join(extensions)}, recursively)",
                )
            )
        for path in found:
            add(path)

    for entry in entries:
        if os.path.isdir(entry):
            add_directory(entry)
        elif os.path.lexists(entry):
            add(entry)
        elif _has_magic(entry):
            matches = sorted(glob.glob(os.path.expanduser(entry), recursive=True))
            if not matches:
                failures.append(Failure(entry, "no file matches this pattern"))
            for match in matches:
                if os.path.isdir(match):
                    add_directory(match)
                else:
                    add(match)
        else:
            problem = path_problem(entry)  # Not found, or why not.
            failures.append(Failure(entry, problem.reason if problem else "file not found"))
    return Inputs(paths, failures)
