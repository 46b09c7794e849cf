"""A deployable model on its run's validation speakers, the way users run it.

    python benchmarks/preset_validation.py runs/pretrained/default [--compare OTHER.keras ...]

For a run of protocol ``all`` (``configs/default.json``, the shipped model),
the speakers that chose its epoch never trained it. This classifies their
recordings with ``infer.py``'s predictor (``speechmodel.inference``): every
clip on its own, and, for a speaker-normalised model, each speaker's clips
together with ``same_speaker=True`` (``infer.py --same_speaker``). Models
given with ``--compare`` (e.g. an earlier default trained with the same
validation speakers) are run on the same clips. UAR and WA over the
validation clips, as everywhere (``speechmodel.metrics``).

Writes ``benchmarks/results/preset_validation_<run name>.md`` and ``.json``.
"""

import argparse
import csv
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO  # noqa: E402


def validation_clips(run):
    """``[(path, speaker, emotion)]`` of the run's validation speakers."""
    with open(os.path.join(run, "manifest.csv"), newline="", encoding="utf-8", errors="surrogateescape") as f:
        rows = list(csv.DictReader(f))
    with open(os.path.join(run, "folds.json"), encoding="utf-8") as f:
        [fold] = json.load(f)["folds"]
    return [(rows[i]["path"], f"{rows[i]['corpus']}/{rows[i]['speaker']}", rows[i]["emotion"])
            for i in fold["val"]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a finished run directory of protocol 'all'")
    parser.add_argument("--compare", nargs="*", default=[], help="other models on the same clips")
    args = parser.parse_args(argv)

    from speechmodel import inference
    from speechmodel.metrics import compute_metrics
    from speechmodel.training import artifacts

    run = os.path.abspath(args.run)
    clips = validation_clips(run)
    speakers = sorted({s for _, s, _ in clips})
    results = []
    for path in [os.path.join(run, "model.keras"), *args.compare]:
        model = inference.load_model(path)
        names = list(model.class_names)
        keep = [c for c in clips if c[2] in names]
        modes = [("per clip", False)]
        if model.speaker_normalization is not None:
            modes.append(("same speaker (all of the speaker's validation clips)", True))
        for mode, same in modes:
            predicted = {}
            groups = [[c for c in keep if c[1] == s] for s in speakers] if same else [keep]
            for group in groups:
                report = inference.Predictor(model, same_speaker=same).predict([c[0] for c in group])
                for clip, result in zip(group, report.results):
                    predicted[clip[0]] = getattr(result, "label", None)
            scored = [c for c in keep if predicted.get(c[0]) is not None]
            figures = compute_metrics(
                [names.index(c[2]) for c in scored], [names.index(predicted[c[0]]) for c in scored],
                class_names=names,
            )
            results.append({
                "model": os.path.relpath(os.path.abspath(path), REPO), "mode": mode,
                "uar": figures["uar"], "wa": figures["wa"], "n": len(scored),
                "failed": len(keep) - len(scored),
            })
            print(f"{results[-1]['model']} {mode}: UAR {100 * figures['uar']:.2f} % "
                  f"WA {100 * figures['wa']:.2f} % (n={len(scored)})", flush=True)
    lines = [
        f"Validation speakers of `{os.path.relpath(run, REPO)}` ({', '.join(speakers)}; "
        f"{len(clips)} clips), classified by `speechmodel.inference`",
        "",
        "| model | how | UAR % | WA % | clips |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(f"| `{r['model']}` | {r['mode']} | {100 * r['uar']:.2f} | {100 * r['wa']:.2f} | {r['n']} |")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    out = REPO / "benchmarks" / "results" / f"preset_validation_{os.path.basename(run.rstrip(os.sep))}"
    artifacts.atomic_write_text(str(out) + ".md", text)
    artifacts.atomic_write_text(str(out) + ".json", json.dumps({"run": os.path.relpath(run, REPO),
                                                                "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
