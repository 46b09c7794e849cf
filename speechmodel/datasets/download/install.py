"""Installing a corpus (``download``): its files fetched, checked, extracted
into a staging directory beside DIR and renamed to DIR only once the
layout has been checked."""

from __future__ import annotations

import contextlib
import datetime
import glob
import json
import os
import secrets
import shutil
import urllib.parse
from pathlib import Path

from speechmodel import fileio
from speechmodel.errors import ParameterError

from . import archives
from .errors import CorruptArchiveError, DownloadError, LayoutError, ManualDownloadRequired
from .report import say
from .status import RECORD_NAME, check, hint, load_sources, matches, resolve
from .transfer import check_hex, fetch

try:  # POSIX advisory lock; without it concurrent runs are simply not guarded.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


@contextlib.contextmanager
def _lock(path: Path):
    """Holds an exclusive advisory lock on ``path``; removes the file when done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DownloadError(
                    f"Another download into the same directory is running (lock {path}); wait for it to finish."
                ) from None
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                path.unlink()  # while still holding the lock
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _find_root(staging: Path, pattern: str, max_depth: int = 3) -> Path | None:
    """The shallowest directory under ``staging`` where ``pattern`` matches."""
    level = [staging]
    for _ in range(max_depth + 1):
        for d in level:
            if matches(d, pattern):
                return d
        level = sorted(c for d in level for c in d.iterdir() if c.is_dir() and not c.is_symlink())
        if not level:
            break
    return None


def _filename_from_url(url: str) -> str:
    name = os.path.basename(urllib.parse.unquote(urllib.parse.urlsplit(url).path))
    return name if name and name not in (".", "..") else "download.bin"


def download(
    name: str,
    to: str | os.PathLike,
    *,
    url: str | None = None,
    md5: str | None = None,
    sha256: str | None = None,
    size: int | None = None,
    keep_archives: bool = False,
    download_dir: str | os.PathLike | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    quiet: bool = False,
) -> Path:
    """Downloads corpus ``name`` and installs it as directory ``to``.

    Does nothing (and says so) if ``to`` already holds the complete corpus.
    Archives are kept in ``download_dir`` (default: ``.<to name>.download``
    next to ``to``) while in progress, so an interrupted run resumes; they are
    deleted after a successful install unless ``keep_archives``.

    Args:
        name: corpus name (aliases accepted, case-insensitive).
        to: the data directory to create (must be absent, empty, or complete).
        url: download from this URL instead (mirror); the published checksum
            and size still apply unless ``md5``/``sha256``/``size`` is given.
            Also allows installing a licence-gated corpus from your own copy.
        md5: expected md5 of the archive; replaces the published checksum.
        sha256: expected sha256 of the archive; replaces the published checksum.
        size: expected size in bytes; replaces the published size.
        keep_archives: keep the downloaded archives after installing.
        download_dir: where archives and ``.part`` files are kept.
        retries: automatic resume attempts after a truncated transfer.
        timeout: socket timeout in seconds.
        quiet: no progress or messages on stderr.

    Returns:
        The path of the installed corpus directory.

    Raises:
        ManualDownloadRequired: licence-gated or manual corpus (the message is
            :func:`hint`).
        DownloadError: any failure; the message says what happened and what
            was kept (see the subclasses).
        ValueError: malformed arguments.
    """
    table = load_sources()
    key = resolve(name, table)
    src = table[key]
    to = Path(to).expanduser().absolute()
    status = check(key, to)
    if status.complete:
        say(quiet, f"{key}: {to} already holds the complete corpus ({status.message}); nothing to do.")
        return to
    md5 = check_hex(md5, "md5", 32)
    sha256 = check_hex(sha256, "sha256", 64)
    overridden = md5 is not None or sha256 is not None or size is not None
    published = src.get("files", [])
    if url is None and src["access"] != "download":
        raise ManualDownloadRequired(hint(key, to=to))
    if url is not None:
        if len(published) > 1:
            raise ParameterError(
                f"--url replaces the single archive of a corpus, but {key} is published as "
                f"{len(published)} files. Received: url={url!r}"
            )
        base = published[0] if published else {"filename": _filename_from_url(url)}
        entry = {**base, "urls": [url]}
        if overridden or not published:
            entry.update(md5=md5, sha256=sha256, size=size, checksum_note="given on the command line")
        files = [entry]
    else:
        if overridden and len(published) > 1:
            raise ParameterError(
                f"--md5/--sha256/--size apply to a corpus published as one archive; {key} has "
                f"{len(published)} files. Received: md5={md5!r}, sha256={sha256!r}, size={size!r}"
            )
        files = [dict(f) for f in published]
        if overridden:
            files[0].update(md5=md5, sha256=sha256, size=size, checksum_note="given on the command line")

    if to.exists() and not to.is_dir():
        raise DownloadError(f"{to} exists and is not a directory; choose another --to.")
    if to.is_dir() and any(to.iterdir()):
        raise DownloadError(
            f"{to} exists and is not empty, but does not hold the complete {key} corpus "
            f"({status.message}). Nothing was changed: move it away or choose another --to."
        )
    parent = to.parent
    parent.mkdir(parents=True, exist_ok=True)
    work_default = parent / f".{to.name}.download"
    work = Path(download_dir).expanduser().absolute() if download_dir is not None else work_default
    work.mkdir(parents=True, exist_ok=True)
    lock_path = work_default / ".lock"
    if src["access"] != "download":
        say(quiet, f"{key}: installing from {url}; make sure your licence covers this copy ({src['licence']}).")
    unverified = [f["filename"] for f in files if not (f.get("md5") or f.get("sha256"))]
    if unverified:
        say(
            quiet,
            f"{key}: NOTE: no checksum is published for {', '.join(unverified)}; the checksum is NOT "
            f"verified (zip CRCs, size and file count are checked where known).",
        )

    fetched: list[tuple[dict, Path, dict]] = []
    installed = False
    try:
        count = _install(key, src, to, files, work, lock_path, overridden, retries, timeout, quiet, fetched)
        installed = True
    finally:
        if installed and not keep_archives:
            for _, path, _ in fetched:
                with contextlib.suppress(OSError):
                    path.unlink()
        with contextlib.suppress(OSError):
            work_default.rmdir()  # only if empty; a user-given download_dir is left alone
    say(quiet, f"{key}: installed {count} files in {to}.")
    return to


def _install(key, src, to, files, work, lock_path, overridden, retries, timeout, quiet, fetched) -> int:
    """Fetches ``files`` into ``work`` and installs them atomically as ``to``."""
    layout = src["layout"]
    parent = to.parent
    with _lock(lock_path):
        for stale in parent.glob(f".{glob.escape(to.name)}.extract-*"):
            shutil.rmtree(stale, ignore_errors=True)
        for entry in files:
            dest = work / entry["filename"]
            say(quiet, f"{key}: downloading {entry['filename']} from {entry['urls'][0]}")
            info = fetch(
                entry["urls"],
                dest,
                md5=entry.get("md5"),
                sha256=entry.get("sha256"),
                size=entry.get("size"),
                retries=retries,
                timeout=timeout,
                quiet=quiet,
            )
            fetched.append((entry, dest, info))

        # mkdir (not mkdtemp) so the installed directory gets the usual umask permissions.
        staging = parent / f".{to.name}.extract-{os.getpid()}-{secrets.token_hex(4)}"
        staging.mkdir()
        try:
            for entry, path, _ in fetched:
                if archives.is_archive(path):
                    say(quiet, f"{key}: extracting {path.name}")
                    try:
                        archives.extract(path, staging)
                    except CorruptArchiveError as e:
                        path.unlink()
                        raise CorruptArchiveError(
                            f"{e} The archive was deleted; run the command again to download it afresh."
                        ) from None
                else:
                    target = staging / entry["filename"]
                    if target.exists():
                        raise CorruptArchiveError(
                            f"{entry['filename']} clashes with a file of the same name from an archive."
                        )
                    shutil.copy2(path, target)
            root = _find_root(staging, layout["pattern"])
            kept = f" The downloaded files are kept in {work}." if fetched else ""
            if root is None:
                raise LayoutError(
                    f"The download of {key} does not contain files matching {layout['pattern']} "
                    f"(expected layout: {layout['description']}).{kept}"
                )
            count = len(matches(root, layout["pattern"]))
            missing = [rel for rel in layout.get("required", []) if not (root / rel).is_file()]
            if missing:
                raise LayoutError(f"The download of {key} lacks {', '.join(missing)}.{kept}")
            expected = layout.get("expected_files")
            if expected is not None and count != expected:
                message = (
                    f"The download of {key} holds {count} files matching {layout['pattern']}, "
                    f"the published corpus has {expected}."
                )
                if not overridden:
                    if any(root.glob("MANIFEST.TXT")):
                        message += " See MANIFEST.TXT in the download for files the server left out."
                    raise LayoutError(
                        f"{message}{kept} Nothing was installed; get the files from {src['homepage']} "
                        f"and place them in {to} (layout: {layout['description']})"
                    )
                say(
                    quiet,
                    f"{key}: warning: {message[0].lower()}{message[1:]} Installing anyway because "
                    f"you gave your own checksum/size.",
                )
            if root != staging:
                ignored = sorted(
                    str(p.relative_to(staging))
                    for p in staging.rglob("*")
                    if p.is_file() and root not in p.parents
                )
                if ignored:
                    shown = ", ".join(ignored[:10]) + (f" and {len(ignored) - 10} more" if len(ignored) > 10 else "")
                    say(
                        quiet,
                        f"{key}: the corpus is {root.relative_to(staging)}/ inside the download; "
                        f"not installing the {len(ignored)} file(s) outside it: {shown}",
                    )
            record = {
                "corpus": key,
                "title": src["title"],
                "licence": src["licence"],
                "licence_url": src["licence_url"],
                "citation": src.get("citation"),
                "downloaded_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "files": [
                    {
                        "filename": entry["filename"],
                        "url": info["url"],
                        "size": info["size"],
                        "md5": info["md5"],
                        "sha256": info["sha256"],
                        "verified_by": info["verified"],
                        "expected_md5": entry.get("md5"),
                        "expected_sha256": entry.get("sha256"),
                        "expected_size": entry.get("size"),
                        "checksum_note": entry.get("checksum_note"),
                    }
                    for entry, _, info in fetched
                ],
                "layout": {"pattern": layout["pattern"], "files": count, "expected_files": expected},
            }
            fileio.atomic_write_text(root / RECORD_NAME, json.dumps(record, indent=2) + "\n")
            if to.is_dir():
                to.rmdir()  # empty, checked above
            os.rename(root, to)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return count
