"""Is there speech in a recording at all? The gate behind ``no speech``,
decided on real speech against generated silence and steady noise.

    python benchmarks/speech_gate.py [--data-dir DIR] [--silero]

For every RAVDESS clip (1440, all real speech, most with about a second of
room tone around the sentence) and for generated signals of 3 s and 60 s
(digital silence, 16-bit dither, white, pink and brown noise from -60 to
-10 dBFS, 50 and 60 Hz mains hum with harmonics, alone and under white
noise), it measures the voicing detector's (``speechmodel.signal.
VoicingDetector``) voiced seconds counted in runs of at least R
consecutive voiced frames (R = 1..5; 40 ms frames: a vowel voices several
in a row, noise passes single frames by chance), and with ``--silero`` the
seconds Silero VAD calls speech (probability >= 0.5), and the time each
takes per clip.

The gate (``speechmodel.signal.has_speech``: ``MIN_VOICED_RUN``,
``MIN_VOICED_SECONDS``) was chosen from these: among the statistics that
put every generated non-periodic signal below every RAVDESS clip, the one
whose least voiced RAVDESS clip is highest, with the threshold at half of
that clip's value. The table reports how the gate as configured calls
every clip and signal.

Writes benchmarks/results/speech_gate.json and .md.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO, machine, ravdess_dir, ravdess_files, write_json  # noqa: E402

RATE = 16000
RUNS = (1, 2, 3, 4, 5)


def generated(seconds, rng):
    """(name, waveform, periodic) of the generated signals."""
    from speechmodel.augment.waveform import colored_noise

    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    out = [("digital silence", np.zeros(n, np.float32), False),
           ("16-bit dither", (rng.integers(-1, 2, n) / 32768.0).astype(np.float32), False)]
    for kind in ("white", "pink", "brown"):
        unit = np.asarray(colored_noise(n, kind=kind, seed=int(rng.integers(1 << 30))), np.float32)
        for dbfs in (-60, -40, -20, -10):
            out.append((f"{kind} noise {dbfs} dBFS", unit * 10 ** (dbfs / 20), False))
    for mains in (50, 60):
        hum = sum(np.sin(2 * np.pi * mains * k * t) / k for k in range(1, 6))
        hum = (hum / np.sqrt(np.mean(hum ** 2)) * 10 ** (-30 / 20)).astype(np.float32)
        out.append((f"{mains} Hz hum -30 dBFS", hum, True))
        white = np.asarray(colored_noise(n, kind="white", seed=int(rng.integers(1 << 30))), np.float32)
        out.append((f"{mains} Hz hum -30 dBFS + white -40 dBFS", hum + white * 10 ** (-40 / 20), True))
    return out


def voicing_statistics(waveform):
    from speechmodel.signal import voiced_frames, voiced_run_seconds

    voiced, hop = voiced_frames(waveform, sample_rate=RATE)
    return {f"voiced_s_runs_{r}": voiced_run_seconds(voiced, hop / RATE, min_run=r) for r in RUNS}


def silero_seconds(waveform, detector):
    from speechmodel.vad import frame_probabilities

    probs = frame_probabilities(waveform, detector)
    return float((probs >= 0.5).sum() * detector.frame_seconds)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", dest="data_dir")
    p.add_argument("--silero", action="store_true", help="also Silero VAD (slow: about 25x real time)")
    args = p.parse_args(argv)

    from speechmodel.audio import load_audio
    from speechmodel.signal import MIN_VOICED_RUN, MIN_VOICED_SECONDS

    detector = None
    if args.silero:
        from speechmodel.vad import make_detector

        detector = make_detector("silero", RATE)
    rows, timing = [], {"voicing": 0.0, "silero": 0.0, "audio_seconds": 0.0}

    def measure(name, source, waveform, periodic=False):
        start = time.perf_counter()
        row = {"name": name, "source": source, "seconds": len(waveform) / RATE, "periodic": periodic,
               **voicing_statistics(waveform)}
        timing["voicing"] += time.perf_counter() - start
        if detector is not None:
            start = time.perf_counter()
            row["silero_speech_s"] = silero_seconds(waveform, detector)
            timing["silero"] += time.perf_counter() - start
        if source == "ravdess":
            timing["audio_seconds"] += len(waveform) / RATE
        rows.append(row)

    files = ravdess_files(ravdess_dir(args.data_dir))
    for i, f in enumerate(files):
        measure(str(Path(f).relative_to(Path(f).parents[1])), "ravdess", load_audio(f, sample_rate=RATE))
        if (i + 1) % 200 == 0:
            print(f"{i + 1}/{len(files)} RAVDESS clips", flush=True)
    rng = np.random.default_rng(0)
    for seconds in (3, 60):
        for name, waveform, periodic in generated(seconds, rng):
            measure(f"{name}, {seconds} s", "generated", waveform, periodic)

    speech = [r for r in rows if r["source"] == "ravdess"]
    noise = [r for r in rows if r["source"] == "generated" and not r["periodic"]]
    periodic = [r for r in rows if r["periodic"]]
    keys = [f"voiced_s_runs_{r}" for r in RUNS] + (["silero_speech_s"] if detector else [])
    summary = {}
    for key in keys:
        low = min(r[key] for r in speech)
        high = max(r[key] for r in noise)
        summary[key] = {
            "ravdess_min": low, "ravdess_p1": float(np.percentile([r[key] for r in speech], 1)),
            "ravdess_median": float(np.median([r[key] for r in speech])),
            "noise_max": high, "periodic_max": max(r[key] for r in periodic),
            "separates": bool(low > high), "margin_factor": float(low / high) if high > 0 else float("inf"),
        }
    gate_key = f"voiced_s_runs_{MIN_VOICED_RUN}"
    flagged = [r["name"] for r in speech if r[gate_key] < MIN_VOICED_SECONDS]
    noise_passed = [r["name"] for r in noise if r[gate_key] >= MIN_VOICED_SECONDS]
    periodic_passed = [r["name"] for r in periodic if r[gate_key] >= MIN_VOICED_SECONDS]
    payload = {
        "command": "python benchmarks/speech_gate.py" + (" --silero" if args.silero else ""),
        "machine": machine(),
        "gate": {"statistic": gate_key, "min_seconds": MIN_VOICED_SECONDS,
                 "ravdess_clips": len(speech), "ravdess_called_no_speech": flagged,
                 "generated_non_periodic": len(noise), "generated_non_periodic_called_speech": noise_passed,
                 "generated_periodic_called_speech": periodic_passed},
        "summary": summary,
        "seconds_per_audio_second": {k: timing[k] / timing["audio_seconds"] for k in ("voicing", "silero")
                                     if timing[k]},
        "generated": [r for r in rows if r["source"] == "generated"],
    }
    lines = [
        "Speech gate: voiced seconds (voicing detector, in runs of at least R frames of 40 ms) and "
        "Silero speech seconds, on the 1440 RAVDESS clips against generated silence and noise "
        "(`python benchmarks/speech_gate.py" + (" --silero" if args.silero else "") + "`).",
        "",
        "| statistic | RAVDESS min | RAVDESS 1st percentile | RAVDESS median | generated noise max | "
        "periodic hum max | separates | margin |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, s in summary.items():
        lines.append(
            f"| {key} | {s['ravdess_min']:.2f} | {s['ravdess_p1']:.2f} | {s['ravdess_median']:.2f} | "
            f"{s['noise_max']:.2f} | {s['periodic_max']:.2f} | {'yes' if s['separates'] else 'no'} | "
            f"{s['margin_factor']:.1f}x |"
        )
    lines += [
        "",
        f"Gate: `{gate_key}` >= {MIN_VOICED_SECONDS} s. RAVDESS clips called `no speech`: "
        f"{len(flagged)} of {len(speech)}; generated non-periodic signals called speech: "
        f"{len(noise_passed)} of {len(noise)}; periodic hum called speech: {len(periodic_passed)} of "
        f"{len(periodic)}.",
        "",
        "Time per second of audio: " + ", ".join(
            f"{k} {1000 * v:.2f} ms" for k, v in payload["seconds_per_audio_second"].items()) + ".",
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    write_json(REPO / "benchmarks" / "results" / "speech_gate.json", payload)
    from speechmodel import fileio

    fileio.atomic_write_text(REPO / "benchmarks" / "results" / "speech_gate.md", text)


if __name__ == "__main__":
    main()
