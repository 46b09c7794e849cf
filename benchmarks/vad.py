"""Speech detection on real speech: Silero VAD against the voicing detector,
and utterance emotion with VAD cutting against fixed windows.

    python benchmarks/vad.py [--model M.keras] [--data-dir DIR]
    python benchmarks/vad.py --actors 23 --snrs 10 --noises white     # a small run

The test set is built from RAVDESS speech (default: actors 23 and 24, whom
the shipped model never heard): each recording joins ``--per-recording``
clips with gaps of 0.5-3 s of digital silence, in a random order (seed 0).
Every clip is one true utterance: from the first to the last 10 ms frame of
the clean clip whose energy is within 40 dB of the clip's loudest frame
(RAVDESS clips hold about a second of room tone around the sentence; pauses
inside a sentence count as speech). Conditions: the clean recordings, then
the same with white and/or pink noise over the whole recording at each SNR
(speech power over the true speech frames against the noise power).

For each condition:

- frame-level precision, recall and F1 at 10 ms of each detector's
  utterances (``speechmodel.vad``: the detector, then the Segmenter with its
  defaults for that detector, as ``--segment vad`` uses them), against the
  true speech frames; and of the raw frame decisions (probability >= 0.5,
  no smoothing), for reference;
- the emotion accuracy per true utterance (the clip's RAVDESS label) with
  the shipped model (or --model): ``vad_<detector>``: the label of the
  detected utterance that overlaps the true one most (none: a miss, counted
  wrong); ``windows``: the overlap-weighted mean of the probabilities of the
  fixed windows (4 s every 2 s) that overlap it; ``clip``: each clip alone,
  whole (the reference: what ``infer.py clip.wav`` says).

Writes benchmarks/results/vad.json and vad.md (or --output).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO, machine, ravdess_dir, write_json  # noqa: E402

RATE = 16000
FRAME = 160  # 10 ms.
CODES = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fearful",
         "07": "disgust", "08": "surprised"}


def speech_extent(y, floor_db=40.0):
    """(first, last) sample of a clean clip's speech: the 10 ms frames whose
    energy is within ``floor_db`` of the loudest one."""
    n = len(y) // FRAME
    energy = 10 * np.log10(np.mean(y[: n * FRAME].reshape(n, FRAME).astype(np.float64) ** 2, axis=1) + 1e-12)
    active = np.flatnonzero(energy > energy.max() - floor_db)
    return int(active[0]) * FRAME, int(active[-1] + 1) * FRAME


def build_recordings(files, per_recording, rng):
    """Recordings of clips and silences: [(signal, [(start, end, label, file)])]."""
    from speechmodel.audio import load_audio

    order = rng.permutation(len(files))
    recordings = []
    for i in range(0, len(order), per_recording):
        parts, truth, position = [], [], 0
        for j in order[i : i + per_recording]:
            gap = np.zeros(int(rng.uniform(0.5, 3.0) * RATE), np.float32)
            clip = load_audio(files[j])
            first, last = speech_extent(clip)
            parts += [gap, clip]
            position += len(gap)
            label = CODES[Path(files[j]).name.split("-")[2]]
            truth.append((position + first, position + last, label, files[j]))
            position += len(clip)
        parts.append(np.zeros(RATE, np.float32))
        recordings.append((np.concatenate(parts), truth))
    return recordings


def noise(kind, n, rng):
    white = rng.standard_normal(n)
    if kind == "white":
        return white
    spectrum = np.fft.rfft(white)
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    return np.fft.irfft(spectrum / np.sqrt(f), n)  # 1/f power: pink.


def add_noise(y, truth, kind, snr, rng):
    mask = truth_mask(truth, len(y), sample=True)
    speech_power = np.mean(y[mask].astype(np.float64) ** 2)
    n = noise(kind, len(y), rng)
    n *= np.sqrt(speech_power / (np.mean(n**2) * 10 ** (snr / 10)))
    return (y + n).astype(np.float32)


def truth_mask(truth, length, sample=False):
    step = 1 if sample else FRAME
    mask = np.zeros(-(-length // step), bool)
    for start, end, *_ in truth:
        mask[start // step : -(-end // step)] = True
    return mask


def region_mask(regions, length):
    mask = np.zeros(-(-length // FRAME), bool)
    for r in regions:
        mask[r.start // FRAME : -(-r.end // FRAME)] = True
    return mask


def prf(pred, true):
    tp = np.sum(pred & true)
    precision = tp / max(1, pred.sum())
    recall = tp / max(1, true.sum())
    f1 = 2 * precision * recall / max(1e-12, precision + recall)
    return {"precision": round(float(precision), 4), "recall": round(float(recall), 4), "f1": round(float(f1), 4)}


def raw_frame_mask(detector, y):
    """The detector's own frame decisions (>= 0.5), at 10 ms."""
    from speechmodel import vad as V

    probs = V.frame_probabilities(y, detector)
    mask = np.zeros(-(-len(y) // FRAME), bool)
    for k in np.flatnonzero(probs >= 0.5):
        start = detector.frame_start(k)
        end = detector.frame_start(k + 1)
        mask[start // FRAME : -(-end // FRAME)] = True
    return mask


def overlap(a0, a1, b0, b1):
    return max(0.0, min(a1, b1) - max(a0, b0))


def evaluate(y, truth, classify, names, detectors, results):
    from speechmodel.inference import streaming as S
    from speechmodel import vad as V

    true = truth_mask(truth, len(y))
    for name in detectors:
        detector = V.make_detector(name, RATE)
        regions = V.speech_regions(y, sample_rate=RATE, vad=name)
        results[f"regions_{name}"].append((region_mask(regions, len(y)), true))
        results[f"frames_{name}"].append((raw_frame_mask(detector, y), true))
        analyzer = S.StreamAnalyzer(classify, sample_rate=RATE, class_names=names, segment="vad", vad=name)
        utterances = S.analyze_blocks([y], analyzer, "x").timeline
        for (start, end, label, _) in truth:
            s, e = start / RATE, end / RATE
            best = max(utterances, key=lambda u: overlap(s, e, u.start, u.end), default=None)
            hit = best is not None and overlap(s, e, best.start, best.end) > 0
            results[f"vad_{name}"].append(hit and best.label == label)
        results[f"utterances_{name}"].append((len(utterances), len(truth)))
    analyzer = S.StreamAnalyzer(classify, sample_rate=RATE, class_names=names, segment="windows")
    windows = S.analyze_blocks([y], analyzer, "x").timeline
    for (start, end, label, _) in truth:
        s, e = start / RATE, end / RATE
        weights = np.array([overlap(s, e, w.start, w.end) for w in windows])
        probs = (weights[:, None] * np.stack([w.probabilities for w in windows])).sum(0)
        results["windows"].append(names[int(np.argmax(probs))] == label)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="default", help="a shipped model name (default, fast) or a model file")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--actors", default="23,24", help="RAVDESS actors whose clips build the test set")
    p.add_argument("--per-recording", type=int, default=12, help="clips per recording")
    p.add_argument("--noises", default="white,pink")
    p.add_argument("--snrs", default="20,10,5,0", help="dB")
    p.add_argument("--detectors", default="silero,voicing")
    p.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "vad.json"))
    args = p.parse_args(argv)

    from speechmodel import inference as I
    from speechmodel.inference import streaming as S

    data = ravdess_dir(args.data_dir)
    files = sorted(str(f) for a in args.actors.split(",") for f in data.glob(f"Actor_{int(a):02d}/*.wav"))
    if not files:
        raise SystemExit(f"no RAVDESS files for actors {args.actors} in {data}")
    model = I.load_model(args.model)
    names = list(model.class_names)
    classify = S.waveform_classifier(model, batch_size=32)
    detectors = [d for d in args.detectors.split(",") if d]
    rng = np.random.default_rng(0)
    recordings = build_recordings(files, args.per_recording, rng)
    started = time.time()

    # The reference: each clip alone, whole, as infer.py analyses a clip.
    report = I.Predictor(model).predict(files)
    clip_correct = [CODES[Path(p.file).name.split("-")[2]] == p.label for p in report.predictions]

    conditions = [("clean", None, None)] + [
        (f"{kind} {snr} dB", kind, float(snr)) for kind in args.noises.split(",") if kind
        for snr in args.snrs.split(",") if snr
    ]
    table = []
    for title, kind, snr in conditions:
        results = {k: [] for k in ["windows"] + [f"{x}_{d}" for d in detectors for x in ("regions", "frames", "vad", "utterances")]}
        noise_rng = np.random.default_rng(1)
        for y, truth in recordings:
            if kind is not None:
                y = add_noise(y, truth, kind, snr, noise_rng)
            evaluate(y, truth, classify, names, detectors, results)
        row = {"condition": title, "noise": kind, "snr_db": snr,
               "accuracy_windows": round(float(np.mean(results["windows"])), 4)}
        for d in detectors:
            pred = np.concatenate([m for m, _ in results[f"regions_{d}"]])
            true = np.concatenate([t for _, t in results[f"regions_{d}"]])
            row[f"{d}_utterances"] = prf(pred, true)
            pred = np.concatenate([m for m, _ in results[f"frames_{d}"]])
            row[f"{d}_raw_frames"] = prf(pred, true)
            row[f"accuracy_vad_{d}"] = round(float(np.mean(results[f"vad_{d}"])), 4)
            found = sum(n for n, _ in results[f"utterances_{d}"])
            row[f"{d}_detected_utterances"] = found
        row["true_utterances"] = len(files)
        table.append(row)
        print(title, {k: v for k, v in row.items() if k not in ("condition", "noise", "snr_db")}, flush=True)

    total_seconds = sum(len(y) for y, _ in recordings) / RATE
    payload = {
        "model": str(args.model),
        "classes": names,
        "actors": args.actors,
        "clips": len(files),
        "recordings": len(recordings),
        "audio_seconds_per_condition": round(total_seconds, 1),
        "speech_fraction": round(float(np.mean(np.concatenate([truth_mask(t, len(y)) for y, t in recordings]))), 4),
        "accuracy_clip_alone": round(float(np.mean(clip_correct)), 4),
        "conditions": table,
        "seconds": round(time.time() - started, 1),
        "machine": machine(),
        "command": "python benchmarks/vad.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    write_json(args.output, payload)
    Path(args.output).with_suffix(".md").write_text(markdown(payload, detectors))
    print(f"wrote {args.output}")


def markdown(payload, detectors):
    lines = [
        f"# Speech detection and utterance emotion (`{payload['command'].strip()}`)",
        "",
        f"RAVDESS actors {payload['actors']}: {payload['clips']} clips joined into {payload['recordings']} "
        f"recordings ({payload['audio_seconds_per_condition']} s per condition, "
        f"{100 * payload['speech_fraction']:.1f} % speech) with 0.5-3 s silences; model "
        f"`{Path(payload['model']).name}`. Accuracy of each clip alone, whole: "
        f"{100 * payload['accuracy_clip_alone']:.1f} %.",
        "",
        "Frame-level F1 (10 ms) of the detected utterances (raw frame decisions in brackets) and "
        "emotion accuracy per true utterance:",
        "",
    ]
    header = ["condition"] + [f"F1 {d}" for d in detectors] + [f"accuracy VAD {d}" for d in detectors] + ["accuracy windows"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + " --- |" * len(header))
    for row in payload["conditions"]:
        cells = [row["condition"]]
        cells += [f"{100 * row[f'{d}_utterances']['f1']:.1f} ({100 * row[f'{d}_raw_frames']['f1']:.1f})" for d in detectors]
        cells += [f"{100 * row[f'accuracy_vad_{d}']:.1f}" for d in detectors]
        cells.append(f"{100 * row['accuracy_windows']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
