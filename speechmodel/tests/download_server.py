"""A local HTTP server and tiny corpora for the tests of
``speechmodel.datasets.download`` (not a test module).

The server listens on 127.0.0.1 (ephemeral port) in a daemon thread, supports
single ``Range: bytes=N-`` requests, can drop the connection after N bytes of
its first answer, or ignore ``Range``. Archives are built by the tests: a few
tiny WAV files in the RAVDESS layout.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import re
import stat
import threading
import wave
import zipfile
from pathlib import Path

from speechmodel.datasets import download as dl

RAVDESS_MEMBERS = (
    "Actor_01/03-01-01-01-01-01-01.wav",
    "Actor_01/03-01-05-02-01-01-01.wav",
    "Actor_02/03-01-01-01-01-01-02.wav",
    "Actor_02/03-01-08-01-02-02-02.wav",
)


def wav_bytes(seed: int, n: int = 400) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(bytes((seed * 7 + i) % 256 for i in range(2 * n)))
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buf.getvalue()


def ravdess_zip(prefix: str = "") -> bytes:
    return zip_bytes({prefix + m: wav_bytes(i) for i, m in enumerate(RAVDESS_MEMBERS)})


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class Server:
    """A tiny HTTP/1.0 file server on 127.0.0.1 with Range support."""

    def __init__(self, files: dict[str, bytes], *, truncate_first: int | None = None, ignore_range=False):
        self.files = files
        self.truncate_first = truncate_first
        self.ignore_range = ignore_range
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                m = re.fullmatch(r"bytes=(\d+)-", rng or "")
                if m and not server.ignore_range:
                    start = int(m.group(1))
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                payload = body[start:]
                first = sum(1 for p, _ in server.requests if p == self.path) == 1
                if server.truncate_first is not None and first:
                    payload = payload[: server.truncate_first]
                self.wfile.write(payload)
                self.wfile.flush()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def leftovers(parent: Path, keep: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name != keep)


def download_ravdess(server, tmp_path, data, **kwargs):
    kwargs.setdefault("md5", md5(data))
    kwargs.setdefault("timeout", 5.0)
    return dl.download("ravdess", tmp_path / "ravdess", url=server.url("/ravdess.zip"), **kwargs)
