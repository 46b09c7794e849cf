"""Download speech emotion corpora: ``python -m speechmodel.datasets.download NAME --to DIR``.

Every corpus is described once, in the registry (:mod:`speechmodel.datasets.registry`
and ``speechmodel/datasets/sources.json``): where it comes from, its licence, the
checksum or size its distributor publishes, and the directory layout the
loaders expect.

Corpora whose licence allows it are downloaded automatically. The transfer,
progress, checksum verification and unpacking are pooch's
(``pooch.retrieve``, ``HTTPDownloader``, ``Unzip``/``Untar``); this module
adds what pooch does not do:

* resume: bytes go to ``<name>.part`` and an interrupted or truncated
  download continues with an HTTP ``Range`` request (a server that ignores
  ``Range`` makes the download restart cleanly from byte 0);
* the published size, and a clear message when no checksum is published
  (then the file count of the extracted corpus is checked instead);
* safe extraction: members with absolute paths, ``..`` components or links,
  names too long for the file system and file/folder clashes are refused
  before anything is written (no "zip slip");
* the layout check, and an atomic install: archives are extracted into a
  temporary directory next to DIR that is renamed to DIR only once the
  layout has been checked, so an interrupted run never leaves a half-filled
  DIR that looks complete; a DIR that already holds the complete corpus is
  left alone.

Licence-gated corpora (IEMOCAP, SAVEE) and corpora without a single archive
(CREMA-D) are never fetched: the command prints what to request, where, and
where to put the files, and exits with status 2.

Examples:

    python -m speechmodel.datasets.download --list
    python -m speechmodel.datasets.download ravdess --to data/ravdess
    python -m speechmodel.datasets.download ravdess --to data/ravdess --url https://mirror.example/ravdess.zip
    python -m speechmodel.datasets.download iemocap --to data/iemocap   # prints instructions, exit 2
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import glob
import hashlib
import json
import logging
import os
import re
import secrets
import shlex
import shutil
import stat
import sys
import tarfile
import time
import urllib.parse
import zipfile
import zlib
from pathlib import Path
from typing import Sequence

import pooch
import requests

from speechmodel import fileio
from speechmodel.errors import Error, ParameterError

from . import registry

try:  # POSIX advisory lock; without it concurrent runs are simply not guarded.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = [
    "ChecksumError",
    "CorpusStatus",
    "CorruptArchiveError",
    "DownloadError",
    "HTTPStatusError",
    "IncompleteDownloadError",
    "LayoutError",
    "ManualDownloadRequired",
    "NetworkError",
    "UnsafeArchiveError",
    "check",
    "corpora",
    "download",
    "extract",
    "fetch",
    "hint",
    "is_archive",
    "load_sources",
    "main",
    "source",
]

SOURCES_PATH = registry.SOURCES_PATH
ACCESS_KINDS = registry.ACCESS_KINDS
RECORD_NAME = ".speechmodel-download.json"
USER_AGENT = f"speechmodel-datasets-download/2 (pooch {pooch.__version__})"
CHUNK_SIZE = 1 << 20
_RETRY_WAIT_S = 2.0  # base wait between automatic resume attempts
_LFS_POINTER_PREFIX = b"version https://git-lfs"


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------
class DownloadError(Error, RuntimeError):
    """Base class of every failure while downloading or installing a corpus."""


class NetworkError(DownloadError):
    """The server could not be reached (offline machine, DNS, refused, timeout)."""


class HTTPStatusError(DownloadError):
    """The server answered with an HTTP error status."""


class IncompleteDownloadError(DownloadError):
    """The connection closed before the whole file arrived; the part is kept."""


class ChecksumError(DownloadError):
    """The downloaded file does not match the published checksum or size."""


class UnsafeArchiveError(DownloadError):
    """An archive member would be written outside the target directory."""


class CorruptArchiveError(DownloadError):
    """An archive cannot be read (bad zip/tar, CRC error, truncated member)."""


class LayoutError(DownloadError):
    """The extracted files do not have the layout the loaders expect."""


class ManualDownloadRequired(DownloadError):
    """The corpus cannot be fetched automatically; the message says what to do."""


# --------------------------------------------------------------------------
# The registry's sources
# --------------------------------------------------------------------------
def load_sources(path: str | os.PathLike | None = None) -> dict[str, dict]:
    """Reads and validates the corpus sources (:func:`registry.load_sources`).

    Args:
        path: JSON file to read; defaults to :data:`SOURCES_PATH`.

    Raises:
        ValueError: the file is missing, not JSON, or malformed; the message
            names the file, the corpus and the field.
    """
    return registry.load_sources(SOURCES_PATH if path is None else path)


def _resolve(name: str, table: dict[str, dict]) -> str:
    try:
        return registry.corpus_name(name, among=table)
    except ParameterError:
        own = registry.corpus_name(name)  # raises for an unknown name
        raise ParameterError(
            f"The {own} loader reads your own files; there is nothing to download. "
            f"Received: name={name!r}. Downloadable corpora: {', '.join(corpora())}"
        ) from None


def corpora() -> list[str]:
    """The canonical names of the corpora with a source, in registry order."""
    table = load_sources()
    return [n for n in registry.corpus_names() if n in table]


def source(name: str) -> dict:
    """Returns a copy of the ``sources.json`` entry of corpus ``name`` (aliases accepted)."""
    table = load_sources()
    return json.loads(json.dumps(table[_resolve(name, table)]))


# --------------------------------------------------------------------------
# Checking a directory
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CorpusStatus:
    """Whether a directory holds a complete corpus.

    Attributes:
        name: canonical corpus name.
        directory: the directory that was checked.
        complete: True if the directory can be used as the corpus' data dir.
        found: number of files matching the layout pattern.
        expected: number of files in the published corpus, or None if unknown.
        message: one sentence describing what was found.
    """

    name: str
    directory: Path
    complete: bool
    found: int
    expected: int | None
    message: str


def _matches(root: Path, pattern: str) -> list[str]:
    # glob.glob (unlike Path.glob) skips dot-files such as macOS "._x.wav".
    hits = glob.glob(pattern, root_dir=str(root), recursive=True)
    return sorted(h for h in hits if (root / h).is_file())


def _read_record(directory: Path) -> dict | None:
    try:
        record = json.loads((directory / RECORD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def check(name: str, directory: str | os.PathLike) -> CorpusStatus:
    """Checks, without writing anything, whether ``directory`` holds corpus ``name``.

    A directory is complete when the files matching the layout pattern of
    ``sources.json`` number exactly the published count, or, for a corpus
    whose publisher gives no count, when at least one matches (and the
    required side files exist). A download record written by
    :func:`download` also counts as proof for a non-standard mirror.

    Args:
        name: corpus name (aliases accepted, case-insensitive).
        directory: the would-be data directory.

    Returns:
        A :class:`CorpusStatus`.
    """
    table = load_sources()
    key = _resolve(name, table)
    layout = table[key]["layout"]
    pattern, expected = layout["pattern"], layout.get("expected_files")
    d = Path(directory)

    def status(complete: bool, found: int, message: str) -> CorpusStatus:
        return CorpusStatus(key, d, complete, found, expected, message)

    if not d.exists():
        return status(False, 0, f"{d} does not exist")
    if not d.is_dir():
        return status(False, 0, f"{d} is not a directory")
    files = _matches(d, pattern)
    count = len(files)
    if count == 0:
        msg = f"no files matching {pattern} in {d}"
        with contextlib.suppress(OSError):
            for sub in sorted(p for p in d.iterdir() if p.is_dir()):
                if _matches(sub, pattern):
                    msg += f"; they are in {sub}: use that directory instead"
                    break
        return status(False, 0, msg)
    for rel in files[:3]:
        with contextlib.suppress(OSError), open(d / rel, "rb") as f:
            if f.read(len(_LFS_POINTER_PREFIX)) == _LFS_POINTER_PREFIX:
                return status(
                    False,
                    count,
                    f"{d / rel} is a Git LFS pointer file, not audio: run `git lfs pull` in the repository",
                )
    missing = [rel for rel in layout.get("required", []) if not (d / rel).is_file()]
    if missing:
        return status(False, count, f"missing required file(s) in {d}: {', '.join(missing)}")
    what = f"{count} files matching {pattern}"
    if expected is not None and count == expected:
        return status(True, count, what)
    record = _read_record(d)
    if record and record.get("corpus") == key and record.get("layout", {}).get("files") == count:
        return status(True, count, f"{what}, as recorded by its download")
    if expected is None:
        return status(True, count, f"{what} (the publisher gives no total to compare with)")
    return status(False, count, f"found {count} of {expected} files matching {pattern} in {d}")


# --------------------------------------------------------------------------
# Hints
# --------------------------------------------------------------------------
def _human(n: int | None) -> str:
    if n is None:
        return "unknown size"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    raise AssertionError("unreachable")


def _verification_text(entries: Sequence[dict], expected_files: int | None) -> str:
    if entries and all(e.get("md5") or e.get("sha256") for e in entries):
        return "verifies the published checksum"
    if entries and all(e.get("size") for e in entries):
        return "verifies the published size (no checksum is published)"
    instead = "zip CRCs and the file count" if expected_files else "zip CRCs only"
    return f"cannot verify a checksum because none is published (it checks {instead})"


def hint(name: str, *, to: str | os.PathLike | None = None) -> str:
    """One paragraph telling a user how to obtain corpus ``name``.

    For downloadable corpora it gives the exact command; for licence-gated or
    manual ones, what to request, where, and where to put the files.

    Args:
        name: corpus name (aliases accepted, case-insensitive).
        to: the data directory to mention; ``DIR`` if None.

    Returns:
        A single paragraph (no line breaks).

    Raises:
        ValueError: unknown corpus name.
    """
    table = load_sources()
    key = _resolve(name, table)
    src = table[key]
    layout = src["layout"]
    d = shlex.quote(str(to)) if to is not None else "DIR"
    expected = layout.get("expected_files")
    count = f"{expected} files" if expected else "files"
    example = layout.get("example")
    where = (
        f"{d}/{example} exists ({count} matching {layout['pattern']})"
        if example
        else f"{d} holds {count} matching {layout['pattern']} ({layout['description'].rstrip('.')})"
    )
    licence = f"licence: {src['licence']}, {src['licence_url']}"
    if src["access"] == "download":
        files = src["files"]
        if len(files) == 1:
            f0 = files[0]
            what = f"{f0['filename']} ({_human(f0.get('size'))}"
            what += f", md5 {f0['md5']})" if f0.get("md5") else ")"
        else:
            what = f"{len(files)} files ({', '.join(f['filename'] for f in files)})"
        text = (
            f"{src['title']} ({licence}) can be downloaded automatically: run "
            f"`python -m speechmodel.datasets.download {key} --to {d}`. It fetches {what} from "
            f"{src['homepage']}, {_verification_text(files, expected)}, and extracts "
            f"{'it' if len(files) == 1 else 'them'} so that {where}; "
            f"an interrupted download resumes when the command is run again. "
            f"Then use {d} as the data directory."
        )
    else:
        kind = (
            "is licence-gated and cannot be downloaded automatically"
            if src["access"] == "licence-gated"
            else "cannot be downloaded automatically"
        )
        instructions = re.sub(r"\bDIR\b", lambda _: d, src["instructions"])
        text = (
            f"{src['title']} ({licence}) {kind}. {instructions} "
            f"When done, {where}; use {d} as the data directory."
        )
    return " ".join(text.split())


# --------------------------------------------------------------------------
# Resumable download through pooch
# --------------------------------------------------------------------------
def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _pooch_quiet():
    """Silences pooch's INFO log (its own download and unzip messages)."""
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


class _Progress:
    """pooch's progress-bar protocol (``total``, ``update``, ``reset``,
    ``close``) as lines on stderr: one per 10% of a known size, one per
    64 MB otherwise. ``offset``: bytes already on disk (a resume)."""

    def __init__(self, label: str, offset: int):
        self.label, self.offset = label, offset
        self.total = self.n = 0  # pooch sets total: bytes of this answer (0: unknown)
        self.shown = -1

    def update(self, n: int) -> None:
        self.n += n
        full = self.offset + self.total if self.total else None
        done = self.offset + (min(self.n, self.total) if self.total else self.n)
        step = 10 * done // full if full else done // (64 << 20)
        if step > self.shown:
            self.shown = step
            of = f" / {_human(full)} ({100 * done / full:.0f}%)" if full else ""
            print(f"{self.label}: {_human(done)}{of}", file=sys.stderr, flush=True)

    def reset(self) -> None:
        self.n = 0

    def close(self) -> None:
        pass


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """'bytes 100-199/200' -> (100, 200); 'bytes */200' -> (None, 200)."""
    m = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", value or "")
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) else None
    total = int(m.group(2)) if m.group(2) != "*" else None
    return start, total


def _network_error(url: str, exc: Exception, timeout: float) -> NetworkError:
    host = urllib.parse.urlsplit(url).hostname or url
    if isinstance(exc, requests.Timeout):
        reason = f"no answer within {timeout:g} s"
    else:
        m = re.search(r"\[Errno -?\d+\] [^'\")]+", str(exc))
        reason = m.group(0).rstrip() if m else str(exc)
    return NetworkError(
        f"Could not connect to {host} to download {url}: {reason}. The machine seems to be "
        f"offline or the server is unreachable; check the network connection and proxy "
        f"settings, or pass --url with a mirror."
    )


class _Restart(Exception):
    """The server answered a resume request with an unusable range."""


class _Part:
    """The output file given to pooch's HTTPDownloader: ``<dest>.part``.

    ``on_response`` (a requests response hook) sees the answer before pooch
    streams it: 206 with the requested offset appends to the part, 200
    starts it over, a size other than the published one is refused.
    """

    def __init__(self, path: Path, url: str, size: int | None, quiet: bool):
        self.path, self.url, self.size, self.quiet = path, url, size, quiet
        self.offset = path.stat().st_size if path.exists() else 0
        self.received = self.offset
        self.total: int | None = None
        self.file = None

    def on_response(self, response, *args, **kwargs):
        status = response.status_code
        if response.is_redirect or status >= 400:
            return None  # requests follows redirects; pooch raises for errors
        if status not in (200, 206):
            raise HTTPStatusError(f"Unexpected HTTP status {status} while downloading {self.url}.")
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        label = self.path.name[: -len(".part")]
        if status == 206:
            start, total = _parse_content_range(response.headers.get("Content-Range"))
            if start != self.offset:
                response.close()
                raise _Restart(f"{label}: the server resumed at the wrong offset; starting again.")
            if total is None and length is not None:
                total = self.offset + length
            mode = "ab"
        else:
            if self.offset:
                _say(self.quiet, f"{label}: the server does not support resuming (HTTP Range); starting again from byte 0.")
            self.offset = self.received = 0
            total, mode = length, "wb"
        if self.size is not None and total is not None and total != self.size:
            response.close()
            self.path.unlink(missing_ok=True)
            raise ChecksumError(
                f"Size mismatch for {label} at {self.url}: the server announces {total} bytes but the "
                f"published size is {self.size} bytes. Nothing was kept; check the URL or mirror "
                f"(pass --md5/--sha256/--size for a different file)."
            )
        self.total = total if total is not None else self.size
        # Keep the bytes of a body cut short (urllib3 would drop the last
        # chunk); the shortfall is detected and resumed by _fetch_part.
        response.raw.enforce_content_length = False
        self.file = open(self.path, mode)
        return None

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)
        self.received += len(chunk)

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def _fetch_part(url: str, part: Path, *, size, retries, timeout, chunk_size, quiet) -> None:
    """Fills ``part`` with the body of ``url`` through pooch's HTTPDownloader,
    resuming with ``Range`` (the part of an earlier run, and up to ``retries``
    truncated transfers)."""
    attempts = restarts = 0
    label = part.name[: -len(".part")]
    while True:
        offset = part.stat().st_size if part.exists() else 0
        if size is not None and offset > size:
            _say(quiet, f"{label}: partial file is larger than the published size; starting again.")
            part.unlink()
            offset = 0
        if size is not None and offset == size:
            return
        if offset:
            _say(quiet, f"{label}: resuming at byte {offset} ({_human(offset)}).")
        out = _Part(part, url, size, quiet)
        progress = False if quiet else _Progress(label, offset)
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        downloader = pooch.HTTPDownloader(
            progressbar=progress,
            chunk_size=chunk_size,
            timeout=timeout,
            headers=headers,
            hooks={"response": out.on_response},  # sees the answer before pooch streams it
        )
        cause = None
        try:
            downloader(url, out, None)
        except requests.HTTPError as e:
            answer = e.response
            if answer.status_code == 416 and offset:
                if _parse_content_range(answer.headers.get("Content-Range"))[1] == offset:
                    return  # the part already holds the whole file
                restarts += 1
                if restarts > 1:
                    raise HTTPStatusError(f"HTTP error 416 (range not satisfiable) for {url}") from None
                _say(quiet, f"{label}: the server rejected the resume offset; starting again.")
                part.unlink()
                continue
            raise HTTPStatusError(
                f"HTTP error {answer.status_code} ({answer.reason}) while downloading {url}."
            ) from None
        except _Restart as e:
            restarts += 1
            if restarts > 1:
                raise DownloadError(f"The server answered a resume request for {url} with an unusable range.") from None
            _say(quiet, str(e))
            part.unlink()
            continue
        except requests.RequestException as e:
            if out.file is None:  # no answer at all
                raise _network_error(url, e, timeout) from None
            cause = e  # the transfer broke off
        finally:
            out.close()
        received, total = out.received, out.total
        if cause is None and (total is None or received == total):
            return
        if total is not None and received > total:
            part.unlink()
            raise DownloadError(f"{url} sent {received} bytes, more than the {total} it announced; the file was deleted.")
        attempts += 1
        why = f"{type(cause).__name__}" if cause is not None else "connection closed early"
        if attempts > retries:
            raise IncompleteDownloadError(
                f"Download of {url} stopped after {received} of {total if total is not None else '?'} "
                f"bytes ({why}). The partial file is kept at {part}; run the same command again to resume."
            )
        _say(quiet, f"{label}: connection lost after {_human(received)} ({why}); retry {attempts}/{retries}.")
        time.sleep(_RETRY_WAIT_S * attempts)


def _digests(path: Path) -> dict[str, str]:
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK_SIZE), b""):
            md5.update(block)
            sha256.update(block)
    return {"md5": md5.hexdigest(), "sha256": sha256.hexdigest()}


def _check_hex(value: str | None, algo: str, length: int) -> str | None:
    if value is None:
        return None
    if not registry.is_hex(value.strip().lower(), length):
        raise ParameterError(f"{algo} must be {length} hexadecimal digits. Received: {algo}={value!r}")
    return value.strip().lower()


def fetch(
    url: str | Sequence[str],
    dest: str | os.PathLike,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    size: int | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    chunk_size: int = CHUNK_SIZE,
    quiet: bool = False,
) -> dict:
    """Downloads one file to ``dest`` (streamed, resumable, verified).

    ``pooch.retrieve`` does the download and the checksum check: an existing
    ``dest`` that verifies is not downloaded again, one that does not is
    replaced. Its downloader here writes to ``dest + '.part'``; a part left by
    an earlier run is resumed with an HTTP ``Range`` request, and a truncated
    transfer is resumed up to ``retries`` times. ``dest`` appears only once
    the file is complete and matches the given checksum/size.

    Args:
        url: the URL, or a list of mirrors tried in order on HTTP/network errors.
        dest: the final file path.
        md5: expected md5 (hex), or None.
        sha256: expected sha256 (hex), or None.
        size: expected size in bytes, or None.
        retries: automatic resume attempts after a truncated transfer.
        timeout: socket timeout in seconds.
        chunk_size: bytes read per chunk (bounds memory use).
        quiet: no progress or messages on stderr.

    Returns:
        A dict with the file's ``size``, ``md5``, ``sha256``, the ``url`` it came
        from and ``verified`` (``"sha256"``, ``"md5"``, ``"size"`` or None).

    Raises:
        ChecksumError: checksum or size mismatch (the file is deleted).
        IncompleteDownloadError: still truncated after the retries (the part is kept).
        NetworkError: the server cannot be reached (the message names the
            URL and the manual route: save the file as ``dest`` yourself).
        HTTPStatusError: the server answered with an error status.
        ValueError: malformed arguments.
    """
    urls = [url] if isinstance(url, str) else list(url)
    if not urls:
        raise ParameterError(f"At least one URL is required. Received: url={url!r}")
    for u in urls:
        if urllib.parse.urlsplit(u).scheme not in ("http", "https"):
            raise ParameterError(f"Only http and https URLs can be downloaded. Received: url={u!r}")
    md5 = _check_hex(md5, "md5", 32)
    sha256 = _check_hex(sha256, "sha256", 64)
    if size is not None and (not isinstance(size, int) or size <= 0):
        raise ParameterError(f"size must be a positive number of bytes. Received: size={size!r}")
    if retries < 0 or chunk_size <= 0 or timeout <= 0:
        raise ParameterError(
            f"retries must be >= 0, chunk_size and timeout > 0. Received: retries={retries}, "
            f"chunk_size={chunk_size}, timeout={timeout}"
        )
    dest = Path(dest).absolute()
    part = dest.with_name(dest.name + ".part")
    algo = "sha256" if sha256 else "md5" if md5 else None
    known_hash = f"{algo}:{sha256 or md5}" if algo else None
    verified = algo or ("size" if size is not None else None)
    if dest.exists() and size is not None and dest.stat().st_size != size:
        _say(quiet, f"{dest.name}: the existing file has the wrong size; downloading it again.")
        dest.unlink()
    failures = []
    for u in urls:
        got: dict[str, str] = {}

        def downloader(url, tmp, _pooch, got=got):
            _fetch_part(url, part, size=size, retries=retries, timeout=timeout, chunk_size=chunk_size, quiet=quiet)
            if size is not None and part.stat().st_size != size:
                found = part.stat().st_size
                part.unlink()
                raise ChecksumError(
                    f"Size mismatch for {dest.name} downloaded from {url}: expected {size} bytes, got "
                    f"{found}. The file was deleted and nothing was extracted; run the command again "
                    f"to download it afresh."
                )
            got.update(_digests(part))
            os.replace(part, tmp)  # pooch checks the hash, then renames tmp to dest

        try:
            with _pooch_quiet():
                pooch.retrieve(u, known_hash, fname=dest.name, path=dest.parent, downloader=downloader)
        except (NetworkError, HTTPStatusError) as e:
            failures.append(e)
            if u != urls[-1]:
                _say(quiet, f"{dest.name}: {e} Trying the next mirror.")
            continue
        except ValueError:  # pooch's hash mismatch; it deleted the download
            if not got:
                raise
            raise ChecksumError(
                f"Checksum mismatch for {dest.name} downloaded from {u}: expected {algo} "
                f"{sha256 or md5}, got {got[algo]}. The file was deleted and nothing was extracted; "
                f"run the command again, or check the URL or mirror."
            ) from None
        if not got:
            got = _digests(dest)
            _say(quiet, f"{dest.name}: already downloaded{' and verified' if verified else ' (no checksum to verify)'}.")
        if md5 and sha256 and got["md5"] != md5:  # pooch checked the sha256
            dest.unlink()
            raise ChecksumError(f"Checksum mismatch for {dest.name}: expected md5 {md5}, got {got['md5']}; deleted.")
        return {"size": dest.stat().st_size, **got, "verified": verified, "url": u}
    message = " ".join(f"[{i + 1}] {e}" for i, e in enumerate(failures)) if len(failures) > 1 else str(failures[0])
    if part.exists() and part.stat().st_size:
        message += (
            f" The partial download ({_human(part.stat().st_size)}) is kept at {part}; run the same "
            f"command again to resume."
        )
    message += (
        f" Or download {urls[0]} by other means and save it as {dest}: the same command then "
        f"verifies and installs it without downloading."
    )
    raise type(failures[-1])(message)


# --------------------------------------------------------------------------
# Safe extraction (checks here, unpacking by pooch)
# --------------------------------------------------------------------------
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
            f"Not enough free disk space to extract {archive}: it needs {_human(needed)}, "
            f"{dest} has {_human(free)} free."
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
        with _pooch_quiet():
            unpack(str(archive.absolute()), "download", None)
    except getattr(tarfile, "FilterError", ()) as e:
        raise UnsafeArchiveError(f"Refusing to extract {archive}: {e}") from None
    except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, NotImplementedError) as e:
        raise CorruptArchiveError(f"{archive} is not a valid {kind} archive: {e}") from None
    except OSError as e:
        raise DownloadError(f"Cannot extract {e.filename or 'a member'} from {archive}: {e.strerror or e}.") from None
    return sum(1 for _, parts, is_dir in plan if parts and not is_dir)


# --------------------------------------------------------------------------
# Installing a corpus
# --------------------------------------------------------------------------
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
            if _matches(d, pattern):
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
    key = _resolve(name, table)
    src = table[key]
    to = Path(to).expanduser().absolute()
    status = check(key, to)
    if status.complete:
        _say(quiet, f"{key}: {to} already holds the complete corpus ({status.message}); nothing to do.")
        return to
    md5 = _check_hex(md5, "md5", 32)
    sha256 = _check_hex(sha256, "sha256", 64)
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
        _say(quiet, f"{key}: installing from {url}; make sure your licence covers this copy ({src['licence']}).")
    unverified = [f["filename"] for f in files if not (f.get("md5") or f.get("sha256"))]
    if unverified:
        _say(
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
    _say(quiet, f"{key}: installed {count} files in {to}.")
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
            _say(quiet, f"{key}: downloading {entry['filename']} from {entry['urls'][0]}")
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
                if is_archive(path):
                    _say(quiet, f"{key}: extracting {path.name}")
                    try:
                        extract(path, staging)
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
            count = len(_matches(root, layout["pattern"]))
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
                _say(
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
                    _say(
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


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------
PROG = "python -m speechmodel.datasets.download"


def _list_text() -> str:
    table = load_sources()
    rows = [("NAME", "ACCESS", "LICENCE", "TITLE")]
    for key in corpora():
        src = table[key]
        rows.append((key, src["access"], src["licence"], src["title"]))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [
        "  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2].ljust(widths[2]), r[3]]).rstrip()
        for r in rows
    ]
    lines.append("")
    lines.append("download: `python -m speechmodel.datasets.download NAME --to DIR` fetches it.")
    lines.append("manual, licence-gated: the same command prints what to request and where to put the files.")
    return "\n".join(lines)


class _UsageError(Exception):
    """A command-line mistake: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Download a speech emotion corpus into DIR, or explain how to obtain it. "
        "Options are spelt --download-dir or --download_dir alike.",
        epilog="Exit status: 0 installed or already complete; 1 download failed; "
        "2 manual/licence-gated corpus (instructions printed) or bad arguments.",
    )
    parser.add_argument("name", nargs="?", help="corpus name or alias (see --list)")
    parser.add_argument("--to", metavar="DIR", help="data directory to create")
    parser.add_argument("--list", action="store_true", help="list corpora with licence and access")
    parser.add_argument("--url", help="download from this URL (mirror or your own copy)")
    parser.add_argument("--md5", help="expected md5; replaces the published checksum")
    parser.add_argument("--sha256", help="expected sha256; replaces the published checksum")
    parser.add_argument("--size", type=int, help="expected size in bytes; replaces the published size")
    parser.add_argument("--download-dir", metavar="PATH", help="where archives and .part files are kept")
    parser.add_argument("--keep-archives", action="store_true", help="keep archives after installing")
    parser.add_argument("--retries", type=int, default=3, help="resume attempts after a dropped connection")
    parser.add_argument("--timeout", type=float, default=60.0, help="socket timeout in seconds")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def _normalise_argv(argv: Sequence[str], parser: argparse.ArgumentParser) -> list[str]:
    """``--download_dir`` -> ``--download-dir`` for the parser's options, so
    that both spellings work; everything after ``--`` is left alone."""
    known = {o for action in parser._actions for o in action.option_strings}
    out = []
    for n, arg in enumerate(argv):
        if arg == "--":
            return out + list(argv[n:])
        name, sep, value = arg.partition("=")
        dashed = "--" + name[2:].replace("_", "-")
        out.append(dashed + sep + value if name.startswith("--") and dashed in known else arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = _parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parser.parse_args(_normalise_argv(argv, parser))
        if not args.list and not args.name:
            raise _UsageError("NAME is required (or use --list)")
        if not args.list and not args.to:
            raise _UsageError(f"--to DIR is required. {hint(args.name) if _known(args.name) else ''}".rstrip())
    except SystemExit as e:  # --help
        return e.code
    except _UsageError as e:
        print(f"{PROG}: error: {str(e).rstrip('.')}. Try --help.", file=sys.stderr)
        return 2
    if args.list:
        print(_list_text())
        return 0
    try:
        download(
            args.name,
            args.to,
            url=args.url,
            md5=args.md5,
            sha256=args.sha256,
            size=args.size,
            keep_archives=args.keep_archives,
            download_dir=args.download_dir,
            retries=args.retries,
            timeout=args.timeout,
            quiet=args.quiet,
        )
    except ManualDownloadRequired as e:
        print(str(e), file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except DownloadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "\ninterrupted: nothing was installed; run the same command again to resume the download.",
            file=sys.stderr,
        )
        return 130
    return 0


def _known(name: str) -> bool:
    try:
        _resolve(name, load_sources())
        return True
    except ValueError:
        return False


if __name__ == "__main__":
    sys.exit(main())
