"""Shared helpers for the benchmark scripts (not part of the library)."""

import json
import os
import platform
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RAVDESS = REPO / ".." / "shared" / "data" / "ravdess"


def ravdess_dir(arg=None):
    path = Path(arg or os.environ.get("SER_DATA_DIR", "") or DEFAULT_RAVDESS)
    if not path.is_dir():
        raise SystemExit(
            f"RAVDESS not found at {path}: pass --data-dir or set SER_DATA_DIR "
            "(python -m speechmodel.datasets.download ravdess --to DIR fetches it)."
        )
    return path.resolve()


def ravdess_files(data_dir):
    return sorted(str(p) for p in Path(data_dir).glob("Actor_*/*.wav"))


def timed(fn, repeats):
    """Runs fn() `repeats` times; returns (median seconds, all times, last result)."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def machine():
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def write_json(path, payload):
    from speechmodel import fileio

    fileio.atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True))
