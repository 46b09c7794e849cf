"""Safe extraction of a zip or tar archive (``extract``): every member name
is checked before anything is written; pooch's ``Unzip``/``Untar`` unpack."""

from __future__ import annotations

import os
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path

import pooch

from .errors import CorruptArchiveError, DownloadError, UnsafeArchiveError
from .report import human_size, pooch_quiet


def _safe_parts(member: str, archive: Path, dest: Path) -> list[str]:
    name = member.replace("\\", "/")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    unsafe = name.startswith("/") or bool(re.match(r"[A-Za-z]:", name)) or ".." in parts
    if not unsafe and parts:
        target = dest.resolve().joinpath(*parts)
        unsafe = os.path.commonpath([str(target), str(dest.resolve())]) != str(dest.resolve())
    if unsafe:
        raise UnsafeArchiveError(
            f"Refusing to extract {archive}: member {member!r} would be written outside the target "
            f"directory (absolute path or '..' component: a 'zip slip' path traversal). Nothing was "
            f"extracted."
        )
    return parts


def _short(name: str) -> str:
    return repr(name) if len(name) <= 80 else repr(name[:77]) + "..."


def _check_names(members: list[tuple[str, list[str], bool]], archive: Path, dest: Path) -> None:
    """Refuses, before anything is written, member names that cannot be
    extracted as given: a name too long for the file system (a component
    over NAME_MAX bytes, or a whole path over PATH_MAX), a name that is
    both a file and a folder (``a`` and ``a/b``), a file given twice or one
    that exists in ``dest`` already (never overwritten).

    ``members``: ``(name, parts, is_dir)`` as ``_safe_parts`` split them.
    """
    try:
        name_max = os.pathconf(dest, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        name_max = 255
    try:
        path_max = os.pathconf(dest, "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):
        path_max = 4096
    files: dict[tuple[str, ...], str] = {}
    folders: dict[tuple[str, ...], str] = {}
    for name, parts, is_dir in members:
        for part in parts:
            if len(os.fsencode(part)) > name_max:
                raise UnsafeArchiveError(
                    f"Refusing to extract {archive}: member {_short(name)} has a name of "
                    f"{len(os.fsencode(part))} bytes, longer than this file system allows "
                    f"({name_max}). Nothing was extracted."
                )
        if len(os.fsencode(str(dest.joinpath(*parts)))) >= path_max:
            raise UnsafeArchiveError(
                f"Refusing to extract {archive}: member {_short(name)} would make a path longer "
                f"than this file system allows ({path_max} bytes). Nothing was extracted."
            )
        for n in range(1, len(parts)):
            folders.setdefault(tuple(parts[:n]), name)
        if parts and not is_dir:
            if tuple(parts) in files or dest.joinpath(*parts).exists():
                raise CorruptArchiveError(
                    f"{archive} contains {name!r} twice (or it clashes with another downloaded "
                    f"file); refusing to overwrite it."
                )
            files[tuple(parts)] = name
        elif parts:
            folders.setdefault(tuple(parts), name)
    for key, name in files.items():
        if key in folders:
            raise UnsafeArchiveError(
                f"Refusing to extract {archive}: {'/'.join(key)!r} is both a file ({name!r}) and "
                f"a folder ({folders[key]!r}) in the archive. Nothing was extracted."
            )


def _check_space(dest: Path, needed: int, archive: Path) -> None:
    free = shutil.disk_usage(dest).free
    if needed > free:
        raise DownloadError(
            f"Not enough free disk space to extract {archive}: it needs {human_size(needed)}, "
            f"{dest} has {human_size(free)} free."
        )


class _Untar(pooch.Untar):
    """pooch's Untar with tarfile's ``data`` filter, which pooch passes only
    on Python >= 3.12 (it normalises modes and drops owners)."""

    def _extract_file(self, fname, extract_dir):
        with tarfile.open(fname, "r") as tar_file:
            tar_file.extractall(path=extract_dir, filter="data")


def _zip_plan(archive: Path, dest: Path) -> tuple[list, int]:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
    plan = []
    for info in infos:
        parts = _safe_parts(info.filename, archive, dest)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UnsafeArchiveError(
                f"Refusing to extract {archive}: member {info.filename!r} is a symbolic link. "
                f"Nothing was extracted."
            )
        plan.append((info.filename, parts, info.is_dir()))
    return plan, sum(i.file_size for i in infos)


def _tar_plan(archive: Path, dest: Path) -> tuple[list, int]:
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
    plan = []
    for m in members:
        plan.append((m.name, _safe_parts(m.name, archive, dest), m.isdir()))
        if m.issym() or m.islnk():
            raise UnsafeArchiveError(f"Refusing to extract {archive}: member {m.name!r} is a link. Nothing was extracted.")
        if not (m.isfile() or m.isdir()):
            raise UnsafeArchiveError(
                f"Refusing to extract {archive}: member {m.name!r} is a device or special file. "
                f"Nothing was extracted."
            )
    return plan, sum(m.size for m in members)


def _is_zip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) in (b"PK\x03\x04", b"PK\x05\x06")


def is_archive(path: str | os.PathLike) -> bool:
    """True if ``path`` is a zip or tar (optionally gz/bz2/xz) archive, judged by content."""
    if _is_zip(Path(path)):
        return True
    try:
        return tarfile.is_tarfile(path)
    except (OSError, tarfile.TarError):
        return False


def extract(archive: str | os.PathLike, dest: str | os.PathLike) -> int:
    """Extracts a zip or tar archive into ``dest``, refusing unsafe members.

    Every member name is checked before anything is written: absolute paths,
    ``..`` components, links and special files are refused ("zip slip"), and
    existing files are never overwritten. pooch's ``Unzip``/``Untar`` then
    unpack the archive (zip members are CRC-checked).

    Args:
        archive: the archive file (type detected from its content).
        dest: the directory to extract into (created if needed).

    Returns:
        The number of regular files extracted.

    Raises:
        UnsafeArchiveError: an unsafe member, a name too long for the file
            system, a name that is both a file and a folder (nothing
            extracted).
        CorruptArchiveError: unreadable archive, CRC error, duplicate member.
        DownloadError: not enough disk space, or a file cannot be written.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    zipped = _is_zip(archive)
    if not zipped and not is_archive(archive):
        raise CorruptArchiveError(f"{archive} is neither a zip nor a tar archive.")
    kind = "zip" if zipped else "tar"
    try:
        plan, needed = (_zip_plan if zipped else _tar_plan)(archive, dest)
        _check_names(plan, archive, dest)
        _check_space(dest, needed, archive)
        unpack = (pooch.Unzip if zipped else _Untar)(extract_dir=str(dest.absolute()))
        with pooch_quiet():
            unpack(str(archive.absolute()), "download", None)
    except getattr(tarfile, "FilterError", ()) as e:
        raise UnsafeArchiveError(f"Refusing to extract {archive}: {e}") from None
    except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, NotImplementedError) as e:
        raise CorruptArchiveError(f"{archive} is not a valid {kind} archive: {e}") from None
    except OSError as e:
        raise DownloadError(f"Cannot extract {e.filename or 'a member'} from {archive}: {e.strerror or e}.") from None
    return sum(1 for _, parts, is_dir in plan if parts and not is_dir)
