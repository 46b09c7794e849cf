"""The transfer of one file (``fetch``): pooch's ``retrieve`` and
``HTTPDownloader`` with what pooch does not do: resuming a ``.part`` file
with HTTP ``Range``, the published size, mirrors, and errors that say what
was kept and what to do."""

from __future__ import annotations

import hashlib
import os
import re
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Sequence

import pooch
import requests

from speechmodel.errors import ParameterError

from .. import registry
from .errors import ChecksumError, DownloadError, HTTPStatusError, IncompleteDownloadError, NetworkError
from .report import human_size, pooch_quiet, say


USER_AGENT = f"speechmodel-datasets-download/2 (pooch {pooch.__version__})"
CHUNK_SIZE = 1 << 20
_RETRY_WAIT_S = 2.0  # base wait between automatic resume attempts


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
            of = f" / {human_size(full)} ({100 * done / full:.0f}%)" if full else ""
            print(f"{self.label}: {human_size(done)}{of}", file=sys.stderr, flush=True)

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
                say(self.quiet, f"{label}: the server does not support resuming (HTTP Range); starting again from byte 0.")
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
            say(quiet, f"{label}: partial file is larger than the published size; starting again.")
            part.unlink()
            offset = 0
        if size is not None and offset == size:
            return
        if offset:
            say(quiet, f"{label}: resuming at byte {offset} ({human_size(offset)}).")
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
                say(quiet, f"{label}: the server rejected the resume offset; starting again.")
                part.unlink()
                continue
            raise HTTPStatusError(
                f"HTTP error {answer.status_code} ({answer.reason}) while downloading {url}."
            ) from None
        except _Restart as e:
            restarts += 1
            if restarts > 1:
                raise DownloadError(f"The server answered a resume request for {url} with an unusable range.") from None
            say(quiet, str(e))
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
        say(quiet, f"{label}: connection lost after {human_size(received)} ({why}); retry {attempts}/{retries}.")
        time.sleep(_RETRY_WAIT_S * attempts)


def _digests(path: Path) -> dict[str, str]:
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK_SIZE), b""):
            md5.update(block)
            sha256.update(block)
    return {"md5": md5.hexdigest(), "sha256": sha256.hexdigest()}


def check_hex(value: str | None, algo: str, length: int) -> str | None:
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
    md5 = check_hex(md5, "md5", 32)
    sha256 = check_hex(sha256, "sha256", 64)
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
        say(quiet, f"{dest.name}: the existing file has the wrong size; downloading it again.")
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
            with pooch_quiet():
                pooch.retrieve(u, known_hash, fname=dest.name, path=dest.parent, downloader=downloader)
        except (NetworkError, HTTPStatusError) as e:
            failures.append(e)
            if u != urls[-1]:
                say(quiet, f"{dest.name}: {e} Trying the next mirror.")
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
            say(quiet, f"{dest.name}: already downloaded{' and verified' if verified else ' (no checksum to verify)'}.")
        if md5 and sha256 and got["md5"] != md5:  # pooch checked the sha256
            dest.unlink()
            raise ChecksumError(f"Checksum mismatch for {dest.name}: expected md5 {md5}, got {got['md5']}; deleted.")
        return {"size": dest.stat().st_size, **got, "verified": verified, "url": u}
    message = " ".join(f"[{i + 1}] {e}" for i, e in enumerate(failures)) if len(failures) > 1 else str(failures[0])
    if part.exists() and part.stat().st_size:
        message += (
            f" The partial download ({human_size(part.stat().st_size)}) is kept at {part}; run the same "
            f"command again to resume."
        )
    message += (
        f" Or download {urls[0]} by other means and save it as {dest}: the same command then "
        f"verifies and installs it without downloading."
    )
    raise type(failures[-1])(message)
