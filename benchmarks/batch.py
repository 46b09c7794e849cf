"""Batch inference throughput: the local engine and Ray with 1 and 2 workers.

    flock /tmp/speechmodel-heavy.lock python benchmarks/batch.py [--model default|fast] [--limit N]

Runs ``speechmodel.batch.run_batch`` over the RAVDESS files (all 1440 by
default) once per configuration, each in a fresh process with a fresh
output folder:

- ``local``: the local engine, this process, TensorFlow's default threads;
- ``local-1thread``: the same, limited to one thread (``--threads 1``);
- ``ray-1``, ``ray-2``: Ray on this machine with 1 and 2 worker processes,
  each limited to one CPU thread (TensorFlow intra- and inter-op, OpenMP).

For each: the files per second and real-time factor (seconds of audio per
wall-clock second) over the whole run (the engine's start, the workers'
model loading and Ray's start included), and in the steady state (from
10 % of the files done to 90 %: what more files or a longer run tend to).
The goal: with one thread per worker, 2 Ray workers reach at least 1.6x
the steady-state throughput of 1. Writes benchmarks/results/batch.json and
batch.md (or --output NAME).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO, machine, ravdess_dir, ravdess_files, write_json  # noqa: E402

CONFIGS = {
    "local": {"engine": "local"},
    "local-1thread": {"engine": "local", "threads": 1},
    "ray-1": {"engine": "ray", "workers": 1, "threads": 1},
    "ray-2": {"engine": "ray", "workers": 2, "threads": 1},
}
GOAL = 1.6


def steady_rate(arrivals, total):
    """Files per second from 10 % of the files done to 90 % (the start-up,
    including every worker's model loading, and the last stragglers left
    out)."""
    first = next(((t, n) for t, n in arrivals if n >= 0.1 * total), None)
    last = next(((t, n) for t, n in arrivals if n >= 0.9 * total), None)
    if first is None or last is None or last[0] <= first[0]:
        return None
    return (last[1] - first[1]) / (last[0] - first[0])


def _f(value, digits=2):
    return "n/a" if value is None else f"{value:.{digits}f}"


def run_one(name, files, model, output):
    """One configuration in this process: the figures of its run."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from speechmodel.batch import run_batch

    start = time.perf_counter()
    summary = run_batch(files, output, model=model, **CONFIGS[name])
    wall = time.perf_counter() - start
    steady = steady_rate(summary.arrivals, summary.analysed + summary.failed)
    audio_per_file = summary.audio_seconds / max(1, summary.analysed)
    return {
        "config": name,
        **CONFIGS[name],
        "files": summary.files,
        "analysed": summary.analysed,
        "failed": summary.failed,
        "audio_seconds": summary.audio_seconds,
        "command_seconds": wall,
        "engine_seconds": summary.seconds,
        "first_results_seconds": summary.arrivals[0][0] if summary.arrivals else None,
        "files_per_second": summary.files_per_second,
        "real_time_factor": summary.real_time_factor,
        "steady_files_per_second": steady,
        "steady_real_time_factor": steady * audio_per_file if steady else None,
        "load_average_after": os.getloadavg(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--model", default="default", help="a shipped model (default, fast) or a model.keras")
    parser.add_argument("--limit", type=int, default=None, help="first N files only")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma list of {', '.join(CONFIGS)}")
    parser.add_argument("--output", default="batch", help="results name under benchmarks/results/")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # A child process: one configuration.
    parser.add_argument("--to", help=argparse.SUPPRESS)
    args = parser.parse_args()
    files = ravdess_files(ravdess_dir(args.data_dir))[: args.limit]
    if not files:
        raise SystemExit("No RAVDESS files found.")
    if args.one:
        with tempfile.TemporaryDirectory() as tmp:
            result = run_one(args.one, files, args.model, os.path.join(tmp, "out"))
        Path(args.to).write_text(json.dumps(result))
        return
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    results = []
    for name in names:
        if name not in CONFIGS:
            raise SystemExit(f"unknown configuration {name}; known: {', '.join(CONFIGS)}")
        with tempfile.TemporaryDirectory() as tmp:
            target = os.path.join(tmp, "result.json")
            command = [sys.executable, __file__, "--one", name, "--to", target, "--model", args.model]
            command += ["--data-dir", args.data_dir] if args.data_dir else []
            command += ["--limit", str(args.limit)] if args.limit else []
            print(f"{name}: running", flush=True)
            subprocess.run(command, check=True, cwd=REPO)
            result = json.loads(Path(target).read_text())
        results.append(result)
        print(f"{name}: {_f(result['files_per_second'])} files/s ({_f(result['real_time_factor'], 1)}x real time) "
              f"over the run, {_f(result['steady_files_per_second'])} files/s "
              f"({_f(result['steady_real_time_factor'], 1)}x) steady; first results after "
              f"{_f(result['first_results_seconds'], 0)} s", flush=True)
    by_name = {r["config"]: r for r in results}
    speedup = None
    if "ray-1" in by_name and "ray-2" in by_name and by_name["ray-1"]["steady_files_per_second"] \
            and by_name["ray-2"]["steady_files_per_second"]:
        speedup = by_name["ray-2"]["steady_files_per_second"] / by_name["ray-1"]["steady_files_per_second"]
        print(f"ray 2 workers / 1 worker (steady): {speedup:.2f}x (goal {GOAL}x)")
    payload = {
        "model": args.model,
        "files": len(files),
        "results": results,
        "ray_2_over_1_steady": speedup,
        "goal": GOAL,
        "meets_goal": None if speedup is None else speedup >= GOAL,
        "command": "python benchmarks/batch.py" + (f" --model {args.model}" if args.model != "default" else "")
        + (f" --limit {args.limit}" if args.limit else "")
        + (f" --configs {args.configs}" if args.configs != ",".join(CONFIGS) else ""),
        "machine": machine(),
    }
    out = REPO / "benchmarks" / "results" / f"{args.output}.json"
    write_json(out, payload)
    rows = ["| configuration | files/s (run) | real time (run) | files/s (steady) | real time (steady) | first results |",
            "| --- | --- | --- | --- | --- | --- |"]
    for r in results:
        rows.append(f"| {r['config']} | {_f(r['files_per_second'])} | {_f(r['real_time_factor'], 1)}x | "
                    f"{_f(r['steady_files_per_second'])} | {_f(r['steady_real_time_factor'], 1)}x | "
                    f"{_f(r['first_results_seconds'], 0)} s |")
    text = (f"# Batch inference throughput ({args.model} model, {len(files)} RAVDESS files)\n\n"
            f"`{payload['command']}` (under `flock /tmp/speechmodel-heavy.lock`), "
            f"{payload['machine'].get('cpus', os.cpu_count())} CPUs.\n\n" + "\n".join(rows) + "\n")
    if speedup is not None:
        text += f"\nRay, 2 workers over 1 (steady state, one thread each): {speedup:.2f}x (goal {GOAL}x).\n"
    (REPO / "benchmarks" / "results" / f"{args.output}.md").write_text(text)


if __name__ == "__main__":
    main()
