"""A batch run's output folder: JSON Lines shards and ``manifest.json``.

    DIR/manifest.json              the model (name, file, SHA-256), the task and
                                   its settings, the counts, the shards, the runs
    DIR/results-00000.jsonl        one JSON object per input file
    DIR/<model key>/<hash>.npy     --embed: the embeddings, in the layout of the
                                   training embedding cache

Each shard is written whole and atomically (``speechmodel.fileio``): a
reader, or a run killed at any moment, never sees half of one. Every line
names the file (``file``, its absolute path) and its identity when it was
analysed (``file_size``, ``file_mtime_ns``): a rerun skips the files whose
line matches them, and drops the line of a file that changed before
analysing it again (its shard is rewritten without it), so that no file
ever has two lines.

The folder is refused when it holds anything else (nothing of the user's
is overwritten) or the results of another model, task or settings.
"""

import dataclasses
import json
import os
import re
import time

from speechmodel import fileio
from speechmodel.errors import Error

MANIFEST = "manifest.json"
SHARD_PATTERN = re.compile(r"^(results|embeddings)-(\d{5,})\.jsonl$")
# What may be in an output folder besides the shards and the manifest: the
# lock file, the atomic writers' temporary files, the embedding folders.
_OWN = re.compile(r"^(\.lock|\.tmp-.*|[0-9a-f]{20})$")


class OutputError(Error, ValueError):
    """The output folder cannot be used; the message says why."""


def identity(path):
    """``(absolute path, size, mtime_ns)`` of a file, or None when it cannot
    be read (its analysis then reports why)."""
    path = os.path.abspath(os.fspath(path))
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (path, st.st_size, st.st_mtime_ns)


def line_identity(record):
    """The identity a shard line was made for, or None."""
    size, mtime = record.get("file_size"), record.get("file_mtime_ns")
    if size is None or mtime is None:
        return None
    return (record["file"], size, mtime)


@dataclasses.dataclass
class Shard:
    name: str
    records: list


class OutputDir:
    """The output folder of a batch run (see the module docstring).

    Args:
        directory: the folder (created if missing).
        task: ``"predict"`` or ``"embed"``: the shards' prefix
            (``results``, ``embeddings``).
    """

    def __init__(self, directory, *, task):
        self.directory = os.path.abspath(os.fspath(directory))
        self.task = task
        self.prefix = "results" if task == "predict" else "embeddings"
        self.shards = []
        self.manifest = None

    def check(self):
        """Raises OutputError when the folder is a file, cannot be created,
        or holds files that are not a batch run's."""
        if os.path.lexists(self.directory) and not os.path.isdir(self.directory):
            raise OutputError(f"--output is not a directory. Received: --output={self.directory}")
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot create the --output directory ({exc.strerror or exc}). "
                f"Received: --output={self.directory}"
            ) from None
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise OutputError(f"cannot write in --output (permission denied). Received: --output={self.directory}")
        names = os.listdir(self.directory)
        foreign = [n for n in names if n != MANIFEST and not SHARD_PATTERN.match(n) and not _OWN.match(n)]
        if foreign or (names and MANIFEST not in names and any(SHARD_PATTERN.match(n) for n in names)):
            raise OutputError(
                f"--output {self.directory} holds files that are not a batch run's "
                f"({', '.join(sorted(foreign)[:3]) or 'shards without manifest.json'}); "
                "refusing to write there. Choose a new or empty directory, or the output of an earlier run."
            )

    def load(self):
        """Reads ``manifest.json`` and the shards of earlier runs."""
        path = os.path.join(self.directory, MANIFEST)
        if os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as f:
                    self.manifest = json.load(f)
            except (OSError, ValueError) as exc:
                raise OutputError(f"cannot read {path} ({exc}); choose another --output") from None
        self.shards = []
        for name in sorted(os.listdir(self.directory)):
            match = SHARD_PATTERN.match(name)
            if not match:
                continue
            if match.group(1) != self.prefix:
                raise OutputError(
                    f"--output {self.directory} holds the {match.group(1)} of another task "
                    f"({name}); choose another --output for {self.task}."
                )
            records = []
            with open(os.path.join(self.directory, name), encoding="utf-8", errors="surrogateescape") as f:
                for n, line in enumerate(f, start=1):
                    try:
                        record = json.loads(line)
                        record["file"]
                    except (ValueError, TypeError, KeyError):
                        raise OutputError(
                            f"{os.path.join(self.directory, name)}, line {n}: not a result line; "
                            "the folder was changed by hand. Choose another --output."
                        ) from None
                    records.append(record)
            self.shards.append(Shard(name, records))

    def check_same_run(self, description):
        """Refuses a folder whose manifest describes another model, task or
        settings: their lines would mix with this run's."""
        if self.manifest is None:
            return
        for key in ("task", "model_sha256", "settings"):
            before, now = self.manifest.get("run_key", {}).get(key), description.get(key)
            if before != now:
                raise OutputError(
                    f"--output {self.directory} holds results of another {key.replace('_', ' ')} "
                    f"(theirs: {json.dumps(before, sort_keys=True)[:200]}; "
                    f"this run's: {json.dumps(now, sort_keys=True)[:200]}); "
                    "choose another --output."
                )

    def pending(self, identities):
        """Splits this run's files (``[(path, identity or None)]``) into those
        already done (their line matches the file) and those to analyse.
        The lines of this run's files that no longer match them are dropped
        first (their shards rewritten, atomically), so a file never gets two
        lines. Returns ``(the lines of the files done, [(path, identity)]
        to analyse)``."""
        by_path = {os.path.abspath(p): ident for p, ident in identities}
        done = {}
        for shard in self.shards:
            kept = []
            for record in shard.records:
                path = record["file"]
                if path in by_path and (by_path[path] is None or line_identity(record) != by_path[path]):
                    continue  # Stale: the file changed (or could not be read).
                kept.append(record)
                if path in by_path:
                    done[path] = record
            if len(kept) != len(shard.records):
                shard.records = kept
                target = os.path.join(self.directory, shard.name)
                if kept:
                    fileio.atomic_write_text(target, _lines(kept))
                else:
                    os.unlink(target)
        self.shards = [s for s in self.shards if s.records]
        todo = [(p, ident) for p, ident in identities if os.path.abspath(p) not in done]
        return list(done.values()), todo

    def write_shard(self, records):
        """Writes ``records`` as the next shard, atomically; returns its name."""
        numbers = [int(SHARD_PATTERN.match(s.name).group(2)) for s in self.shards]
        name = f"{self.prefix}-{(max(numbers) + 1 if numbers else 0):05d}.jsonl"
        fileio.atomic_write_text(os.path.join(self.directory, name), _lines(records))
        self.shards.append(Shard(name, list(records)))
        return name

    def counts(self):
        records = [r for s in self.shards for r in s.records]
        failed = sum(1 for r in records if "error" in r)
        return {"files": len(records), "analysed": len(records) - failed, "failed": failed}

    def write_manifest(self, description, run):
        """``manifest.json``: the run key (``description``), the counts, the
        shards and every run (``run``: this one's figures, replaced as it
        goes), atomically."""
        runs = list((self.manifest or {}).get("runs", []))
        if runs and runs[-1].get("id") == run.get("id"):
            runs[-1] = run
        else:
            runs.append(run)
        self.manifest = {
            "run_key": {k: description[k] for k in ("task", "model_sha256", "settings")},
            "model": description["model"],
            "task": description["task"],
            "settings": description["settings"],
            "counts": self.counts(),
            "shards": [s.name for s in self.shards],
            "runs": runs,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        fileio.atomic_write_text(
            os.path.join(self.directory, MANIFEST), json.dumps(self.manifest, indent=2) + "\n"
        )


def _lines(records):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
