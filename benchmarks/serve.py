"""The HTTP service under load: requests per second and latency at 1, 8 and
32 concurrent clients, for each runtime side by side (Keras float32, ONNX
float32, ONNX int8).

    python benchmarks/serve.py [--model M.keras] [--requests 300] [--concurrency 1,8,32]
    python benchmarks/serve.py --runtimes onnx --concurrency 1,8

For each runtime of ``--runtimes`` (default ``keras,onnx,onnx-int8``),
starts ``python -m speechmodel.serve --runtime R`` with the shipped model
(or --model) on 127.0.0.1 (a free port), then, for each concurrency level, has that many
client threads (one HTTP connection each, httpx) post RAVDESS clips of
actors 23 and 24 (multipart uploads, cycled) until ``--requests`` have been
answered; after ``--warmup`` requests at the same level that are not
counted. Reports, per level: requests per second (answered requests / wall
time), latency median and 95th percentile (request sent -> JSON received),
the failed requests (any answer but 200) and the lost ones (no answer:
connection error or client time-out, 120 s), the largest batch the server
ran; and the server's peak resident memory (VmHWM) over the whole run. With
the queue bound (``--max_pending``, default 64) above the concurrency no
request may fail: the script exits 1 if one does.

The clients run on the same machine (2 cores) as the server and take some
of its CPU. Writes benchmarks/results/serve.json and serve.md (or --output).
"""

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO, machine, ravdess_dir, write_json  # noqa: E402


RUNTIMES = {
    "keras": ["--runtime", "keras"],
    "onnx": ["--runtime", "onnx"],
    "onnx-int8": ["--runtime", "onnx", "--precision", "int8"],
}


def start_server(model, max_pending, extra):
    env = {k: v for k, v in os.environ.items()}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    process = subprocess.Popen(
        [sys.executable, "-m", "speechmodel.serve", "--model", str(model), "--port", "0",
         "--max_pending", str(max_pending), *extra],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    for line in process.stdout:
        match = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        if match:
            return process, match.group(1)
    raise SystemExit("the server did not start")


def memory_kib(pid, field):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def run_level(url, uploads, concurrency, requests, warmup):
    import httpx

    lock = threading.Lock()
    counter = {"next": 0}
    latencies, statuses, lost = [], [], []
    total = requests + warmup

    def take():
        with lock:
            i = counter["next"]
            counter["next"] += 1
        return i if i < total else None

    def client():
        with httpx.Client(base_url=url, timeout=120) as c:
            while True:
                i = take()
                if i is None:
                    return
                name, data = uploads[i % len(uploads)]
                started = time.perf_counter()
                try:
                    r = c.post("/v1/classify", files={"file": (name, data, "audio/wav")})
                    ok = r.status_code == 200 and r.json()["results"][0]["label"] is not None
                    status = r.status_code if ok or r.status_code != 200 else "bad body"
                except Exception as exc:  # No answer: lost.
                    with lock:
                        if i >= warmup:
                            lost.append(f"{type(exc).__name__}: {exc}")
                    continue
                elapsed = time.perf_counter() - started
                with lock:
                    if i >= warmup:
                        latencies.append(elapsed)
                        statuses.append(status)
                        if i == warmup:
                            counter["measured_from"] = time.perf_counter() - elapsed

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    wall_start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - counter.get("measured_from", wall_start)
    answered = len(latencies)
    latencies.sort()
    failed = [s for s in statuses if s != 200]
    return {
        "concurrency": concurrency,
        "requests": requests,
        "answered": answered,
        "failed": len(failed),
        "failed_statuses": sorted({str(s) for s in failed}),
        "lost": len(lost),
        "lost_errors": lost[:5],
        "seconds": round(wall, 2),
        "requests_per_second": round(answered / wall, 2) if wall > 0 else None,
        "latency_median_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "latency_p95_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 1)
        if latencies else None,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="default", help="a shipped model name (default, fast) or a model file")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--requests", type=int, default=300, help="measured requests per level")
    p.add_argument("--warmup", type=int, default=16, help="uncounted requests per level, first")
    p.add_argument("--concurrency", default="1,8,32")
    p.add_argument("--runtimes", default="keras,onnx,onnx-int8", help=f"comma list of {', '.join(RUNTIMES)}")
    p.add_argument("--max_pending", type=int, default=64)
    p.add_argument("--server-args", default="", help="more flags for the server, e.g. '--max_batch 8'")
    p.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "serve.json"))
    args = p.parse_args(argv)

    import httpx

    data = ravdess_dir(args.data_dir)
    files = sorted(str(f) for a in (23, 24) for f in data.glob(f"Actor_{a:02d}/*.wav"))
    uploads = [(Path(f).name, Path(f).read_bytes()) for f in files]
    levels = [int(c) for c in args.concurrency.split(",") if c]
    runtimes = [r for r in args.runtimes.split(",") if r]
    if any(r not in RUNTIMES for r in runtimes):
        raise SystemExit(f"--runtimes: known {', '.join(RUNTIMES)}. Received: {args.runtimes}")
    by_runtime = {}
    for runtime in runtimes:
        process, url = start_server(
            args.model, args.max_pending, RUNTIMES[runtime] + args.server_args.split()
        )
        rows = []
        try:
            info = httpx.get(url + "/v1/model", timeout=30).json()
            for concurrency in levels:
                row = run_level(url, uploads, concurrency, args.requests, args.warmup)
                health = httpx.get(url + "/health", timeout=30).json()
                row["largest_batch_so_far"] = health["largest_batch"]
                row["server_rss_mib"] = round((memory_kib(process.pid, "VmRSS") or 0) / 1024, 1)
                rows.append(row)
                print(runtime, row, flush=True)
            peak = memory_kib(process.pid, "VmHWM")
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
        by_runtime[runtime] = {
            "levels": rows, "server_peak_rss_mib": round(peak / 1024, 1) if peak else None,
        }
    clip_seconds = statistics.mean(
        __import__("soundfile").info(f).duration for f in files
    )
    payload = {
        "model": str(args.model),
        "server_settings": info["settings"],
        "clips": len(files),
        "mean_clip_seconds": round(clip_seconds, 3),
        "runtimes": by_runtime,
        "load_average": list(os.getloadavg()),
        "machine": machine(),
        "command": "python benchmarks/serve.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    write_json(args.output, payload)
    Path(args.output).with_suffix(".md").write_text(markdown(payload))
    print(f"wrote {args.output}")
    below_bound = [
        r for entry in by_runtime.values() for r in entry["levels"] if r["concurrency"] <= args.max_pending
    ]
    return 1 if any(r["failed"] or r["lost"] for r in below_bound) else 0


def markdown(payload):
    lines = [
        f"# HTTP service under load (`{payload['command'].strip()}`)",
        "",
        f"Model `{Path(payload['model']).name}`; uploads: {payload['clips']} RAVDESS clips "
        f"(mean {payload['mean_clip_seconds']} s, multipart); server and clients on the same "
        f"{payload['machine']['cpus']}-core machine.",
        "",
        "| runtime | clients | requests/s | latency median (ms) | latency p95 (ms) | failed | lost "
        "| largest batch | server peak (MiB) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for runtime, entry in payload["runtimes"].items():
        for r in entry["levels"]:
            lines.append(
                f"| {runtime} | {r['concurrency']} | {r['requests_per_second']} | {r['latency_median_ms']} | "
                f"{r['latency_p95_ms']} | {r['failed']} | {r['lost']} | {r['largest_batch_so_far']} | "
                f"{entry['server_peak_rss_mib']} |"
            )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
