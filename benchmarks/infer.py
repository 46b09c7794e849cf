"""Inference speed of each runtime, side by side: Keras float32, ONNX
float32, ONNX int8.

    python benchmarks/infer.py [--model default|fast|M.keras] [--data-dir DIR] [--limit N]
    python benchmarks/infer.py --model fast --runtimes keras,onnx
    python benchmarks/infer.py --same-speaker --limit 480
    python benchmarks/infer.py --untrained configs/ravdess.json --limit 100

For each runtime (``--runtimes``, default ``keras,onnx,onnx-int8``), as a
user runs it, each command a fresh process:

- start to end of ``python infer.py FILE --runtime R [--precision int8]``
  on one RAVDESS clip: the wall time of the whole command (interpreter,
  imports, model loading, one prediction), the median of
  ``--startup-repeats`` (5) runs, and its peak resident memory;
- the real-time factor over the RAVDESS files (all 1440, or ``--limit``):
  seconds of audio per wall-clock second of ``python infer.py --list
  FILES --format csv --output ...``, start-up included (the median of
  ``--repeats`` runs), with its CPU seconds (all threads) and peak memory.

One uncounted run of each command comes first: it converts the model to
ONNX into the cache if it is not there yet (once per model) and warms the
file cache. ``--same-speaker`` passes ``--same_speaker`` to every command
(results in ``infer_same_speaker.json`` unless --output is given).
``--untrained CONFIG`` measures an untrained model of the architecture a
training config describes (random weights: the same computation and
cost). Writes benchmarks/results/infer.json (or --output). The goals on
the 2-core machine (issue 22): ``infer.py one.wav`` with the default model
in at most 2 s and 500 MB; >= 150x real time for the default model,
>= 500x for ``fast``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO, machine, ravdess_dir, ravdess_files, write_json  # noqa: E402

GOALS = {"default": 150.0, "fast": 500.0}
STARTUP_GOAL_SECONDS = 2.0
MEMORY_GOAL_MIB = 500.0
RUNTIMES = {
    "keras": ["--runtime", "keras"],
    "onnx": ["--runtime", "onnx"],
    "onnx-int8": ["--runtime", "onnx", "--precision", "int8"],
}


def untrained_model(config_path, directory):
    """Saves an untrained EmotionRecognizer of a training config's
    architecture in ``directory``; returns its path."""
    from speechmodel.config import FeatureConfig
    from speechmodel.models import build_model
    from speechmodel.models.recognizer import EmotionRecognizer

    config = json.loads(Path(config_path).read_text())
    model_config = dict(config["model"])
    name = model_config.pop("name", "speechmodel")
    class_names = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    emotions = (config.get("dataset") or {}).get("emotions")
    if emotions:
        class_names = list(emotions)
    features = FeatureConfig.from_dict(config.get("features", {}))
    classifier = build_model(name, num_classes=len(class_names), **model_config)
    recognizer = EmotionRecognizer(classifier, feature_config=features.to_dict(), class_names=class_names)
    path = os.path.join(directory, "untrained.keras")
    recognizer.save(path)
    return path


def run_command(args):
    """Runs ``python infer.py ARGS``: (wall seconds, CPU seconds of the
    process and its threads, peak resident memory in MiB)."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(REPO / "infer.py"), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO,
    )
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"infer.py {' '.join(args)} failed ({process.returncode}):\n{stderr.decode()[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def measure(runtime_args, model_path, one_file, list_file, audio_seconds, args, extra):
    common = ["--model", model_path, *runtime_args, *extra]
    run_command([one_file, *common])  # Uncounted: builds the ONNX cache once, warms the file cache.
    startup = [run_command([one_file, *common]) for _ in range(args.startup_repeats)]
    with tempfile.TemporaryDirectory() as tmp:
        output = os.path.join(tmp, "out.csv")
        folder = [
            run_command(["--list", list_file, "--format", "csv", "--output", output,
                         "--batch_size", str(args.batch_size), *common])
            for _ in range(args.repeats)
        ]
    wall = statistics.median(r[0] for r in folder)
    return {
        "one_file_seconds_median": statistics.median(r[0] for r in startup),
        "one_file_seconds": [round(r[0], 3) for r in startup],
        "one_file_peak_mib": max(r[2] for r in startup),
        "folder_wall_seconds": [round(r[0], 2) for r in folder],
        "folder_cpu_seconds": [round(r[1], 2) for r in folder],
        "real_time_factor": audio_seconds / wall,
        "audio_seconds_per_cpu_second": audio_seconds / statistics.median(r[1] for r in folder),
        "folder_peak_mib": max(r[2] for r in folder),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--model", help="a shipped model (default, fast) or a model.keras (default: default)")
    parser.add_argument("--untrained", metavar="CONFIG", help="measure an untrained model of this training config's architecture")
    parser.add_argument("--runtimes", default="keras,onnx,onnx-int8",
                        help=f"comma list of {', '.join(RUNTIMES)}")
    parser.add_argument("--limit", type=int, default=None, help="first N files only")
    parser.add_argument("--repeats", type=int, default=1, help="folder runs per runtime (median)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--startup-repeats", type=int, default=5)
    parser.add_argument("--same-speaker", "--same_speaker", dest="same_speaker", action="store_true",
                        help="time same-speaker calls (infer.py --same_speaker)")
    parser.add_argument("--output", default=None, help="results file (default benchmarks/results/infer.json, "
                        "or infer_same_speaker.json with --same-speaker)")
    args = parser.parse_args()
    if args.output is None:
        name = "infer_same_speaker.json" if args.same_speaker else "infer.json"
        args.output = str(REPO / "benchmarks" / "results" / name)
    runtimes = [r for r in args.runtimes.split(",") if r]
    unknown = [r for r in runtimes if r not in RUNTIMES]
    if unknown:
        raise SystemExit(f"--runtimes: unknown {unknown}; known: {', '.join(RUNTIMES)}")
    from speechmodel.audio import read_info
    from speechmodel import presets

    files = ravdess_files(ravdess_dir(args.data_dir))[: args.limit]
    if not files:
        raise SystemExit("No RAVDESS files found.")
    audio_seconds = sum(read_info(f).duration for f in files)
    extra = ["--same_speaker"] if args.same_speaker else []
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.untrained:
            model_path = untrained_model(args.untrained, tmp)
            model_label = f"untrained {args.untrained}"
        else:
            from speechmodel.inference.loading import resolve_model

            model_path = resolve_model(args.model or presets.DEFAULT)
            if not os.path.exists(model_path):
                raise SystemExit(f"{model_path} does not exist: pass --model or --untrained CONFIG")
            model_label = args.model or presets.DEFAULT
        list_file = os.path.join(tmp, "files.txt")
        Path(list_file).write_text("\n".join(files) + "\n")
        for runtime in runtimes:
            results[runtime] = measure(
                RUNTIMES[runtime], model_path, files[0], list_file, audio_seconds, args, extra
            )
            print(runtime, json.dumps(results[runtime]), flush=True)

    goal = GOALS.get(model_label, GOALS["default"])
    result = {
        "model": model_label,
        "same_speaker": args.same_speaker,
        "files": len(files),
        "audio_seconds": audio_seconds,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "startup_repeats": args.startup_repeats,
        "runtimes": results,
        "goal_real_time_factor": goal,
        "goal_one_file_seconds": STARTUP_GOAL_SECONDS,
        "goal_one_file_peak_mib": MEMORY_GOAL_MIB,
        "load_average": os.getloadavg(),
        "machine": machine(),
        "command": "python benchmarks/infer.py " + " ".join(sys.argv[1:]),
    }
    print(f"model: {model_label}" + (" (same-speaker calls)" if args.same_speaker else ""))
    print(f"files: {len(files)} ({audio_seconds:.0f} s of audio); goals: {goal:.0f}x, "
          f"one file <= {STARTUP_GOAL_SECONDS:.0f} s and {MEMORY_GOAL_MIB:.0f} MiB")
    print("| runtime | one file (s, median) | one file peak (MiB) | real time (x) | audio s per CPU s | folder peak (MiB) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for runtime, r in results.items():
        print(f"| {runtime} | {r['one_file_seconds_median']:.2f} | {r['one_file_peak_mib']:.0f} | "
              f"{r['real_time_factor']:.1f} | {r['audio_seconds_per_cpu_second']:.1f} | {r['folder_peak_mib']:.0f} |")
    write_json(args.output, result)


if __name__ == "__main__":
    main()
