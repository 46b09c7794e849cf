"""Download speech emotion corpora: ``python -m datasets.download NAME --to DIR``.

Every corpus is described in ``datasets/sources.json`` (data only, read with
``json.load``): where it comes from, its licence, the checksum or size its
distributor publishes, and the directory layout the loaders expect.

Corpora whose licence allows it are downloaded automatically:

* streamed in chunks (bounded memory) with a progress line on stderr;
* resumable: bytes go to ``<name>.part`` and an interrupted or truncated
  download continues with an HTTP ``Range`` request (a server that ignores
  ``Range`` makes the download restart cleanly from byte 0);
* verified against the published md5/sha256 and size; where the distributor
  publishes none, this is said on every run and recorded, and the file count
  of the extracted corpus is checked instead;
* extracted safely (members with absolute paths, ``..`` components or links
  are refused before anything is written: no "zip slip");
* atomic: archives are extracted into a temporary directory next to DIR that
  is renamed to DIR only once the layout has been checked, so an interrupted
  run never leaves a half-filled DIR that looks complete;
* idempotent: a DIR that already holds the complete corpus is left alone.

Licence-gated corpora (IEMOCAP, SAVEE) and corpora without a single archive
(CREMA-D) are never fetched: the command prints what to request, where, and
where to put the files, and exits with status 2.

Examples:

    python -m datasets.download --list
    python -m datasets.download ravdess --to data/ravdess
    python -m datasets.download ravdess --to data/ravdess --url https://mirror.example/ravdess.zip
    python -m datasets.download iemocap --to data/iemocap   # prints instructions, exit 2
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import glob
import hashlib
import http.client
import json
import os
import re
import secrets
import shlex
import shutil
import stat
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path
from typing import Sequence
from speechmodel.errors import Error

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

SOURCES_PATH = Path(__file__).resolve().with_name("sources.json")
RECORD_NAME = ".speechmodel-download.json"
ACCESS_KINDS = ("download", "manual", "licence-gated")
USER_AGENT = "speechmodel-datasets-download/1 (+python-urllib)"
CHUNK_SIZE = 1 << 20
_RETRY_WAIT_S = 2.0  # base wait between automatic resume attempts
_LFS_POINTER_PREFIX = b"version https://git-lfs"
_HEX = re.compile(r"[0-9a-f]+")


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
# sources.json
# --------------------------------------------------------------------------
def load_sources(path: str | os.PathLike | None = None) -> dict[str, dict]:
    """Reads and validates the corpus descriptions.

    Args:
        path: JSON file to read; defaults to ``datasets/sources.json``.

    Returns:
        A dict mapping canonical corpus names to their descriptions.

    Raises:
        ValueError: the file is missing, not JSON, or malformed; the message
            names the file, the corpus and the field.
    """
    path = Path(path) if path is not None else SOURCES_PATH
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"Cannot read corpus sources {path}: {e}") from None
    corpora = data.get("corpora") if isinstance(data, dict) else None
    if not isinstance(corpora, dict) or not corpora:
        raise ValueError(f"{path}: expected an object with a non-empty 'corpora' mapping.")
    for key, src in corpora.items():
        _validate_source(path, key, src)
    return corpora


def _validate_source(path: Path, key: str, src: object) -> None:
    def bad(msg: str) -> ValueError:
        return ValueError(f"{path}: corpus {key!r}: {msg}")

    if not isinstance(src, dict):
        raise bad("must be an object.")
    for field in ("title", "homepage", "licence", "licence_url", "access", "layout"):
        if not src.get(field):
            raise bad(f"missing field {field!r}.")
    if src["access"] not in ACCESS_KINDS:
        raise bad(f"access must be one of {ACCESS_KINDS}. Received: access={src['access']!r}")
    layout = src["layout"]
    if not isinstance(layout, dict) or not isinstance(layout.get("pattern"), str):
        raise bad("layout.pattern must be a string.")
    expected = layout.get("expected_files")
    if expected is not None and (not isinstance(expected, int) or expected <= 0):
        raise bad(f"layout.expected_files must be a positive integer or null. Received: {expected!r}")
    for rel in layout.get("required", []):
        if not _is_plain_relpath(rel):
            raise bad(f"layout.required entries must be relative paths. Received: {rel!r}")
    files = src.get("files", [])
    if not isinstance(files, list):
        raise bad("files must be a list.")
    if src["access"] == "download" and not files:
        raise bad("a corpus with access 'download' needs at least one entry in files.")
    if src["access"] != "download" and not src.get("instructions"):
        raise bad(f"a corpus with access {src['access']!r} needs 'instructions'.")
    for entry in files:
        name = entry.get("filename")
        if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
            raise bad(f"files[].filename must be a plain file name. Received: {name!r}")
        urls = entry.get("urls")
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
            raise bad(f"{name}: urls must be a non-empty list of strings.")
        for algo, length in (("md5", 32), ("sha256", 64)):
            value = entry.get(algo)
            if value is not None and not _is_hex(value, length):
                raise bad(f"{name}: {algo} must be {length} hex digits or null. Received: {value!r}")
        size = entry.get("size")
        if size is not None and (not isinstance(size, int) or size <= 0):
            raise bad(f"{name}: size must be a positive integer or null. Received: {size!r}")


def _is_hex(value: object, length: int) -> bool:
    return isinstance(value, str) and len(value) == length and bool(_HEX.fullmatch(value))


def _is_plain_relpath(rel: object) -> bool:
    if not isinstance(rel, str) or not rel or rel.startswith(("/", "\\")):
        return False
    return ".." not in rel.replace("\\", "/").split("/")


def _normalise(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name.strip().lower())


def _resolve(name: str, corpora: dict[str, dict]) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"A corpus name is required. Received: name={name!r}")
    wanted = _normalise(name)
    for key, src in corpora.items():
        if wanted in {_normalise(key), *(_normalise(a) for a in src.get("aliases", []))}:
            return key
    raise ValueError(
        f"Unknown corpus. Received: name={name!r}. Known corpora: {', '.join(sorted(corpora))}."
    )


def corpora() -> list[str]:
    """Returns the canonical names of all described corpora, sorted."""
    return sorted(load_sources())


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
            f"`python -m datasets.download {key} --to {d}`. It fetches {what} from "
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
# Streaming, resumable, verified download
# --------------------------------------------------------------------------
def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


class _Progress:
    """A progress line on stderr: redrawn in place on a terminal, every 10% otherwise."""

    def __init__(self, label: str, total: int | None, start: int, quiet: bool):
        self.label, self.total, self.start, self.quiet = label, total, start, quiet
        self.stream = sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = self.last = time.monotonic()
        self.next_step = 0.1
        self.done = start

    def _line(self) -> str:
        elapsed = max(time.monotonic() - self.t0, 1e-6)
        rate = (self.done - self.start) / elapsed
        if self.total:
            pct = 100.0 * self.done / self.total
            return f"{self.label}: {_human(self.done)} / {_human(self.total)} ({pct:5.1f}%) {_human(int(rate))}/s"
        return f"{self.label}: {_human(self.done)} {_human(int(rate))}/s"

    def update(self, done: int) -> None:
        self.done = done
        if self.quiet:
            return
        now = time.monotonic()
        if self.tty:
            if now - self.last >= 0.2:
                self.stream.write("\r" + self._line() + "\x1b[K")
                self.stream.flush()
                self.last = now
        elif self.total and done / self.total >= self.next_step:
            self.stream.write(self._line() + "\n")
            while done / self.total >= self.next_step:
                self.next_step += 0.1
        elif not self.total and now - self.last >= 30:
            self.stream.write(self._line() + "\n")
            self.last = now

    def close(self) -> None:
        if self.quiet:
            return
        if self.tty:
            self.stream.write("\r" + self._line() + "\x1b[K\n")
        elif not self.total:
            self.stream.write(self._line() + "\n")
        self.stream.flush()


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """'bytes 100-199/200' -> (100, 200); 'bytes */200' -> (None, 200)."""
    m = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", value or "")
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) else None
    total = int(m.group(2)) if m.group(2) != "*" else None
    return start, total


def _network_error(url: str, reason: object, timeout: float) -> NetworkError:
    host = urllib.parse.urlsplit(url).hostname or url
    if isinstance(reason, (TimeoutError,)) or "timed out" in str(reason):
        reason = f"no answer within {timeout:g} s"
    return NetworkError(
        f"Could not connect to {host} to download {url}: {reason}. The machine seems to be "
        f"offline or the server is unreachable; check the network connection and proxy "
        f"settings, or pass --url with a mirror."
    )


def _open(url: str, offset: int, timeout: float):
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError:
        raise
    except urllib.error.URLError as e:
        raise _network_error(url, e.reason, timeout) from None
    except (OSError, http.client.HTTPException) as e:
        raise _network_error(url, e, timeout) from None


def _stream_to_part(
    url: str,
    part: Path,
    *,
    size: int | None,
    retries: int,
    timeout: float,
    chunk_size: int,
    quiet: bool,
) -> None:
    """Fills ``part`` with the body of ``url``, resuming and retrying as needed."""
    attempts = 0
    restarts = 0
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
        try:
            response = _open(url, offset, timeout)
        except urllib.error.HTTPError as e:
            if e.code == 416 and offset:
                _, total = _parse_content_range(e.headers.get("Content-Range"))
                e.close()
                if total is not None and total == offset:
                    return  # the part already holds the whole file
                restarts += 1
                if restarts > 1:
                    raise HTTPStatusError(f"HTTP error 416 (range not satisfiable) for {url}") from None
                _say(quiet, f"{label}: the server rejected the resume offset; starting again.")
                part.unlink()
                continue
            e.close()
            raise HTTPStatusError(
                f"HTTP error {e.code} ({e.reason}) while downloading {url}."
            ) from None
        with response:
            status = getattr(response, "status", 200)
            length = response.headers.get("Content-Length")
            length = int(length) if length and length.isdigit() else None
            if offset and status == 206:
                start, total = _parse_content_range(response.headers.get("Content-Range"))
                if start != offset:
                    restarts += 1
                    if restarts > 1:
                        raise DownloadError(f"The server answered a resume request for {url} with an unusable range.")
                    _say(quiet, f"{label}: the server resumed at the wrong offset; starting again.")
                    part.unlink()
                    continue
                if total is None and length is not None:
                    total = offset + length
                mode = "ab"
            elif status == 200:
                if offset:
                    _say(quiet, f"{label}: the server does not support resuming (HTTP Range); starting again from byte 0.")
                offset, total, mode = 0, length, "wb"
            else:
                raise HTTPStatusError(f"Unexpected HTTP status {status} while downloading {url}.")
            if size is not None and total is not None and total != size:
                if part.exists():
                    part.unlink()
                raise ChecksumError(
                    f"Size mismatch for {label} at {url}: the server announces {total} bytes but the "
                    f"published size is {size} bytes. Nothing was kept; check the URL or mirror "
                    f"(pass --md5/--sha256/--size for a different file)."
                )
            if total is None:
                total = size
            progress = _Progress(label, total, offset, quiet)
            received, cause = offset, None
            with open(part, mode) as out:
                while True:
                    try:
                        chunk = response.read(chunk_size)
                    except (OSError, http.client.HTTPException) as e:
                        cause = e
                        break
                    if not chunk:
                        break
                    out.write(chunk)
                    received += len(chunk)
                    progress.update(received)
            progress.close()
        if cause is None and (total is None or received == total):
            return
        if total is not None and received > total:
            part.unlink()
            raise DownloadError(
                f"{url} sent {received} bytes, more than the {total} it announced; the file was deleted."
            )
        attempts += 1
        why = f"{type(cause).__name__}: {cause}" if cause is not None else "connection closed early"
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


def _verify(path: Path, *, md5: str | None, sha256: str | None, size: int | None, url: str) -> dict:
    """Checks ``path``; on mismatch deletes it and raises ChecksumError."""
    got_size = path.stat().st_size
    shown = path.name[: -len(".part")] if path.name.endswith(".part") else path.name
    if size is not None and got_size != size:
        path.unlink()
        raise ChecksumError(
            f"Size mismatch for {shown} downloaded from {url}: expected {size} bytes, got {got_size}. "
            f"The file was deleted and nothing was extracted; run the command again to download it afresh."
        )
    digests = _digests(path)
    for algo, expected in (("sha256", sha256), ("md5", md5)):
        if expected and digests[algo] != expected.lower():
            path.unlink()
            raise ChecksumError(
                f"Checksum mismatch for {shown} downloaded from {url}: expected {algo} {expected.lower()}, "
                f"got {digests[algo]}. The file was deleted and nothing was extracted; run the command "
                f"again, or check the URL or mirror."
            )
    verified = "sha256" if sha256 else "md5" if md5 else "size" if size is not None else None
    return {"size": got_size, **digests, "verified": verified}


def _check_hex(value: str | None, algo: str, length: int) -> str | None:
    if value is None:
        return None
    if not _is_hex(value.strip().lower(), length):
        raise ValueError(f"{algo} must be {length} hexadecimal digits. Received: {algo}={value!r}")
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

    Bytes are written to ``dest + '.part'``; a part left by an earlier run is
    resumed with an HTTP ``Range`` request, and a truncated transfer is
    resumed up to ``retries`` times. ``dest`` appears only once the file is
    complete and matches the given checksum/size. An existing ``dest`` that
    verifies is not downloaded again.

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
        NetworkError: the server cannot be reached.
        HTTPStatusError: the server answered with an error status.
        ValueError: malformed arguments.
    """
    urls = [url] if isinstance(url, str) else list(url)
    if not urls:
        raise ValueError(f"At least one URL is required. Received: url={url!r}")
    for u in urls:
        if urllib.parse.urlsplit(u).scheme not in ("http", "https"):
            raise ValueError(f"Only http and https URLs can be downloaded. Received: url={u!r}")
    md5 = _check_hex(md5, "md5", 32)
    sha256 = _check_hex(sha256, "sha256", 64)
    if size is not None and (not isinstance(size, int) or size <= 0):
        raise ValueError(f"size must be a positive number of bytes. Received: size={size!r}")
    if retries < 0 or chunk_size <= 0 or timeout <= 0:
        raise ValueError(
            f"retries must be >= 0, chunk_size and timeout > 0. Received: retries={retries}, "
            f"chunk_size={chunk_size}, timeout={timeout}"
        )
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if dest.exists():
        if md5 or sha256 or size is not None:
            try:
                info = _verify(dest, md5=md5, sha256=sha256, size=size, url=str(dest))
                _say(quiet, f"{dest.name}: already downloaded and verified.")
                return {**info, "url": urls[0]}
            except ChecksumError:
                _say(quiet, f"{dest.name}: the existing file does not match; downloading it again.")
        else:
            _say(quiet, f"{dest.name}: already downloaded by an earlier run (no checksum to verify).")
            return {"size": dest.stat().st_size, **_digests(dest), "verified": None, "url": urls[0]}
    failures = []
    for u in urls:
        try:
            _stream_to_part(
                u, part, size=size, retries=retries, timeout=timeout, chunk_size=chunk_size, quiet=quiet
            )
        except (NetworkError, HTTPStatusError) as e:
            failures.append(e)
            if u != urls[-1]:
                _say(quiet, f"{dest.name}: {e} Trying the next mirror.")
            continue
        info = _verify(part, md5=md5, sha256=sha256, size=size, url=u)
        os.replace(part, dest)
        return {**info, "url": u}
    message = " ".join(f"[{i + 1}] {e}" for i, e in enumerate(failures)) if len(failures) > 1 else str(failures[0])
    if part.exists() and part.stat().st_size:
        message += (
            f" The partial download ({_human(part.stat().st_size)}) is kept at {part}; run the same "
            f"command again to resume."
        )
    raise type(failures[-1])(message)


# --------------------------------------------------------------------------
# Safe extraction
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
    over NAME_MAX bytes, or a whole path over PATH_MAX), or a name that is
    both a file and a folder (``a`` and ``a/b``).

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
        if parts:
            (folders if is_dir else files).setdefault(tuple(parts), name)
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


def _extract_zip(archive: Path, dest: Path) -> int:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            plan = []
            for info in infos:
                parts = _safe_parts(info.filename, archive, dest)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise UnsafeArchiveError(
                        f"Refusing to extract {archive}: member {info.filename!r} is a symbolic link. "
                        f"Nothing was extracted."
                    )
                plan.append((info, parts))
            _check_names([(i.filename, p, i.is_dir()) for i, p in plan], archive, dest)
            _check_space(dest, sum(i.file_size for i in infos), archive)
            count = 0
            for info, parts in plan:
                if not parts:
                    continue
                target = dest.joinpath(*parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    out = open(target, "xb")
                except FileExistsError:
                    raise CorruptArchiveError(
                        f"{archive} contains {info.filename!r} twice (or it clashes with another "
                        f"downloaded file); refusing to overwrite it."
                    ) from None
                except OSError as e:
                    raise DownloadError(
                        f"Cannot extract {info.filename!r} from {archive}: {e.strerror or e}."
                    ) from None
                with out, zf.open(info) as src:  # zipfile checks each member's CRC-32
                    shutil.copyfileobj(src, out, CHUNK_SIZE)
                count += 1
            return count
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as e:
        raise CorruptArchiveError(f"{archive} is not a valid zip archive: {e}") from None


def _extract_tar(archive: Path, dest: Path) -> int:
    try:
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            named = []
            for m in members:
                named.append((m.name, _safe_parts(m.name, archive, dest), m.isdir()))
                if m.issym() or m.islnk():
                    raise UnsafeArchiveError(
                        f"Refusing to extract {archive}: member {m.name!r} is a link. Nothing was extracted."
                    )
                if not (m.isfile() or m.isdir()):
                    raise UnsafeArchiveError(
                        f"Refusing to extract {archive}: member {m.name!r} is a device or special file. "
                        f"Nothing was extracted."
                    )
            _check_names(named, archive, dest)
            _check_space(dest, sum(m.size for m in members), archive)
            kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            try:
                tf.extractall(dest, members=members, **kwargs)
            except OSError as e:
                raise DownloadError(
                    f"Cannot extract {e.filename or 'a member'} from {archive}: {e.strerror or e}."
                ) from None
            return sum(1 for m in members if m.isfile())
    except (tarfile.TarError, zlib.error, EOFError) as e:
        if isinstance(e, getattr(tarfile, "FilterError", ())):
            raise UnsafeArchiveError(f"Refusing to extract {archive}: {e}") from None
        raise CorruptArchiveError(f"{archive} is not a valid tar archive: {e}") from None


def is_archive(path: str | os.PathLike) -> bool:
    """True if ``path`` is a zip or tar (optionally gz/bz2/xz) archive, judged by content."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return True
    try:
        return tarfile.is_tarfile(path)
    except (OSError, tarfile.TarError):
        return False


def extract(archive: str | os.PathLike, dest: str | os.PathLike) -> int:
    """Extracts a zip or tar archive into ``dest``, refusing unsafe members.

    Every member name is checked before anything is written: absolute paths,
    ``..`` components, links and special files are refused ("zip slip").
    Existing files are never overwritten.

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
        DownloadError: not enough disk space.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with open(archive, "rb") as f:
        head = f.read(4)
    if head in (b"PK\x03\x04", b"PK\x05\x06"):
        return _extract_zip(archive, dest)
    if is_archive(archive):
        return _extract_tar(archive, dest)
    raise CorruptArchiveError(f"{archive} is neither a zip nor a tar archive.")


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
            raise ValueError(
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
            raise ValueError(
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
            (root / RECORD_NAME).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
            if to.is_dir():
                to.rmdir()  # empty, checked above
            os.rename(root, to)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return count


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------
def _list_text() -> str:
    table = load_sources()
    rows = [("NAME", "ACCESS", "LICENCE", "TITLE")]
    for key in sorted(table):
        src = table[key]
        rows.append((key, src["access"], src["licence"], src["title"]))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [
        "  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2].ljust(widths[2]), r[3]]).rstrip()
        for r in rows
    ]
    lines.append("")
    lines.append("download: `python -m datasets.download NAME --to DIR` fetches it.")
    lines.append("manual, licence-gated: the same command prints what to request and where to put the files.")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m datasets.download",
        description="Download a speech emotion corpus into DIR, or explain how to obtain it.",
        epilog="Exit status: 0 installed or already complete; 1 download failed; "
        "2 manual/licence-gated corpus (instructions printed) or bad arguments.",
    )
    parser.add_argument("name", nargs="?", help="corpus name (see --list)")
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


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list:
        print(_list_text())
        return 0
    if not args.name:
        parser.print_usage(sys.stderr)
        print("error: NAME is required (or use --list).", file=sys.stderr)
        return 2
    if not args.to:
        parser.print_usage(sys.stderr)
        print(f"error: --to DIR is required. {hint(args.name) if _known(args.name) else ''}".rstrip(), file=sys.stderr)
        return 2
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
