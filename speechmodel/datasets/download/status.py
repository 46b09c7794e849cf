"""What is present and how to get the rest: the corpus sources of the
registry (``load_sources``, ``corpora``, ``source``), whether a directory
holds a complete corpus (``check``), and how to obtain one (``hint``)."""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import json
import os
import re
import shlex
from pathlib import Path
from typing import Sequence

from speechmodel.errors import ParameterError

from .. import registry
from .report import human_size


SOURCES_PATH = registry.SOURCES_PATH
RECORD_NAME = ".speechmodel-download.json"
_LFS_POINTER_PREFIX = b"version https://git-lfs"


def load_sources(path: str | os.PathLike | None = None) -> dict[str, dict]:
    """Reads and validates the corpus sources (:func:`registry.load_sources`).

    Args:
        path: JSON file to read; defaults to :data:`SOURCES_PATH`.

    Raises:
        ValueError: the file is missing, not JSON, or malformed; the message
            names the file, the corpus and the field.
    """
    return registry.load_sources(SOURCES_PATH if path is None else path)


def resolve(name: str, table: dict[str, dict]) -> str:
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
    return json.loads(json.dumps(table[resolve(name, table)]))



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


def matches(root: Path, pattern: str) -> list[str]:
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
    key = resolve(name, table)
    layout = table[key]["layout"]
    pattern, expected = layout["pattern"], layout.get("expected_files")
    d = Path(directory)

    def status(complete: bool, found: int, message: str) -> CorpusStatus:
        return CorpusStatus(key, d, complete, found, expected, message)

    if not d.exists():
        return status(False, 0, f"{d} does not exist")
    if not d.is_dir():
        return status(False, 0, f"{d} is not a directory")
    files = matches(d, pattern)
    count = len(files)
    if count == 0:
        msg = f"no files matching {pattern} in {d}"
        with contextlib.suppress(OSError):
            for sub in sorted(p for p in d.iterdir() if p.is_dir()):
                if matches(sub, pattern):
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
    key = resolve(name, table)
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
            what = f"{f0['filename']} ({human_size(f0.get('size'))}"
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
