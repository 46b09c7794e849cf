"""Inference speed: real-time factor over RAVDESS and infer.py start-up.

    python benchmarks/infer.py [--model default|fast|M.keras] [--data-dir DIR] [--limit N]
    python benchmarks/infer.py --untrained configs/ravdess.json --limit 100
    python benchmarks/infer.py --same-speaker --limit 480

Measures, with the shipped default model (``speechmodel.presets``) or
--model (``fast``, a file):

- the real-time factor of ``speechmodel.inference.Predictor.predict`` over
  the RAVDESS files: seconds of audio analysed per wall-clock second
  (decoding, features, model; the model loaded beforehand, one warm-up
  pass over a few files first), the median of --repeats full passes;
  also the CPU seconds of the process (all threads) per pass, whose ratio
  to the audio duration depends little on what else the machine runs
  (the wall-clock factor does: check ``load_average`` in the results);
- the start-up cost of ``python infer.py FILE``: the wall time of the whole
  command on one file (interpreter, imports, model loading, one
  prediction), the median of 3 subprocess runs.

``--same-speaker`` measures ``infer.py --same_speaker`` instead: each pass is
one same-speaker call over the files (``Predictor(same_speaker=True)``; the
speaker normalisation takes the statistics of all of them), and the
start-up runs pass ``--same_speaker`` too; the results go to
``infer_same_speaker.json`` unless --output is given.

``--untrained CONFIG`` measures, before a trained model exists, an untrained
model of the architecture a training config describes (random weights: the
same computation and cost). Writes benchmarks/results/infer.json (or
--output). The goals on the 2-core build machine: >= 30x real time for the
default model (a Whisper-base encoder per clip), >= 300x for ``fast``.
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

from benchmarks.common import REPO, machine, ravdess_dir, ravdess_files, timed, write_json  # noqa: E402

GOALS = {"default": 30.0, "fast": 300.0}


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


def startup_runs(model_path, audio_file, repeats=3, extra=()):
    """Wall seconds of ``python infer.py FILE --model M [extra]`` (each run)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, str(REPO / "infer.py"), audio_file, "--model", model_path, *extra],
            capture_output=True, text=True, cwd=REPO,
        )
        times.append(time.perf_counter() - start)
        if result.returncode != 0:
            raise SystemExit(f"infer.py failed ({result.returncode}):\n{result.stderr}")
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--model", help="a shipped model (default, fast) or a model.keras (default: default)")
    parser.add_argument("--untrained", metavar="CONFIG", help="measure an untrained model of this training config's architecture")
    parser.add_argument("--limit", type=int, default=None, help="first N files only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--startup-repeats", type=int, default=3)
    parser.add_argument("--same-speaker", "--same_speaker", dest="same_speaker", action="store_true",
                        help="time same-speaker calls (infer.py --same_speaker)")
    parser.add_argument("--output", default=None, help="results file (default benchmarks/results/infer.json, "
                        "or infer_same_speaker.json with --same-speaker)")
    args = parser.parse_args()
    if args.output is None:
        name = "infer_same_speaker.json" if args.same_speaker else "infer.json"
        args.output = str(REPO / "benchmarks" / "results" / name)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    from absl import logging

    logging.set_verbosity(logging.ERROR)
    from speechmodel.audio import read_info
    from speechmodel.inference import DEFAULT_MODEL, Predictor, load_model

    files = ravdess_files(ravdess_dir(args.data_dir))[: args.limit]
    if not files:
        raise SystemExit("No RAVDESS files found.")
    with tempfile.TemporaryDirectory() as tmp:
        if args.untrained:
            model_path = untrained_model(args.untrained, tmp)
            model_label = f"untrained {args.untrained}"
        else:
            from speechmodel.presets import resolve_model

            model_path = resolve_model(args.model or DEFAULT_MODEL)
            if not os.path.exists(model_path):
                raise SystemExit(
                    f"{model_path} does not exist: pass --model, or --untrained "
                    "configs/ravdess.json to time an untrained model of that architecture"
                )
            model_label = args.model or DEFAULT_MODEL
        start = time.perf_counter()
        model = load_model(model_path)
        load_seconds = time.perf_counter() - start
        predictor = Predictor(model, batch_size=args.batch_size, same_speaker=args.same_speaker)
        audio_seconds = sum(read_info(f).duration for f in files)

        cpu_seconds = []

        def run():
            cpu = time.process_time()
            report = predictor.predict(files)
            cpu_seconds.append(time.process_time() - cpu)
            if report.failures:
                raise SystemExit(f"{len(report.failures)} files failed: {report.failures[:3]}")
            return report

        predictor.predict(files[: 2 * args.batch_size])  # Warm-up: tracing, caches.
        seconds, all_seconds, _ = timed(run, args.repeats)
        startup = startup_runs(
            model_path, files[0], args.startup_repeats, ["--same_speaker"] if args.same_speaker else []
        )

    rtf = audio_seconds / seconds
    goal = GOALS.get(model_label, GOALS["default"])
    result = {
        "model": model_label,
        "same_speaker": args.same_speaker,
        "files": len(files),
        "audio_seconds": audio_seconds,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "wall_seconds": all_seconds,
        "real_time_factor": rtf,
        "files_per_second": len(files) / seconds,
        "cpu_seconds": cpu_seconds,
        "audio_seconds_per_cpu_second": audio_seconds / statistics.median(cpu_seconds),
        "goal_real_time_factor": goal,
        "meets_goal": rtf >= goal,
        "model_load_seconds": load_seconds,
        "startup_seconds_median": statistics.median(startup),
        "startup_seconds": startup,
        "load_average": os.getloadavg(),
        "machine": machine(),
    }
    print(f"model: {model_label}" + (" (same-speaker calls)" if args.same_speaker else ""))
    print(f"files: {len(files)} ({audio_seconds:.0f} s of audio), median of {args.repeats} passes")
    print(f"real-time factor: {rtf:8.1f}x  ({len(files) / seconds:.1f} files/s; goal {goal:.0f}x)")
    print(f"CPU: {audio_seconds / statistics.median(cpu_seconds):.1f} s of audio per CPU second "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print(f"infer.py on one file: {statistics.median(startup):.2f} s (median of {len(startup)})")
    write_json(args.output, result)


if __name__ == "__main__":
    main()
