"""Reports as text: ``format_table`` (a readable table), ``format_json``,
``format_jsonl`` (one object per file) and ``format_csv`` (one row per
file, window and attention segment).
"""

import io
import json

import numpy as np

from speechmodel.inference.results import NO_SPEECH, Failure, result_dict

OUTPUT_FORMATS = ("table", "json", "jsonl", "csv")


def _seconds(value):
    return f"{value:.2f} s"


def _render_rows(rows):
    widths = [max(len(str(r[c])) for r in rows) for c in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [str(v).ljust(w) for v, w in zip(row, widths)]
        lines.append("  ".join(cells).rstrip())
    return lines


def format_table(report, *, top_k=1, timeline=False):
    """A readable table: one row per analysed file (file, emotion,
    confidence, duration; the top-k classes when ``top_k > 1``; the window
    count of long files). ``timeline=True`` adds a row per window of long
    files; attention adds a row per segment of clips. Failures are not
    listed (they are reported on stderr)."""
    predictions = report.predictions
    header = ["file", "emotion", "confidence", "duration"]
    if top_k > 1:
        header.append(f"top {top_k}")
    any_windowed = any(p.windowed for p in predictions)
    if any_windowed:
        header.append("windows")
    rows = [header]
    extra = {}
    for p in predictions:
        if p.probabilities is None:  # VAD segmentation that found no speech.
            row = [p.file, NO_SPEECH, "-", _seconds(p.duration)]
        else:
            row = [p.file, p.label, f"{p.confidence:.3f}", _seconds(p.duration)]
        if top_k > 1:
            row.append(", ".join(f"{n} {q:.3f}" for n, q in p.top_k(top_k)))
        if any_windowed:
            row.append(str(len(p.timeline)) if p.windowed else "-")
        rows.append(row)
        sub = []
        if p.windowed and timeline:
            for w in p.timeline:
                sub.append(
                    f"    {w.start:8.2f}-{w.end:8.2f} s  {w.label:<12} "
                    f"{w.confidence:.3f}  voiced {w.voiced:.2f}"
                )
        if p.attention is not None:
            for s in p.attention:
                sub.append(f"    segment {s.start:6.2f}-{s.end:6.2f} s  attention {s.weight:.3f}")
        if p.warning:
            sub.insert(0, f"    warning: {p.warning}")
        extra[len(rows) - 1] = sub
    lines = []
    for n, line in enumerate(_render_rows(rows)):
        lines.append(line)
        lines.extend(extra.get(n, []))
    return "\n".join(lines) + "\n"


def format_json(report, *, top_k=1, model=None):
    """JSON: ``{"model", "class_names", "settings", "results"}`` where
    ``results`` holds one object per file in input order: ``file``,
    ``label``, ``confidence``, ``probabilities`` (every class), ``top_k``,
    ``duration`` (s), ``windowed``, plus ``timeline`` and ``weighting`` for
    long files, ``attention`` when asked and ``warning`` for a damaged file
    analysed on what it holds; or ``file`` and ``error`` for a file that
    failed."""
    payload = {
        "model": model,
        "class_names": list(report.class_names),
        "settings": report.settings,
        "results": [result_dict(r, top_k=top_k) for r in report.results],
    }
    return json.dumps(payload, indent=2) + "\n"


def format_jsonl(report, *, top_k=1):
    """JSON lines: one object per file (as in ``format_json``'s
    ``results``), in input order."""
    return "".join(json.dumps(result_dict(r, top_k=top_k)) + "\n" for r in report.results)


def format_csv(report, *, top_k=1):
    """CSV, one row per file plus, for long files, one per window and, with
    attention, one per segment. Columns: ``file, kind`` (``file``,
    ``window``, ``segment`` or ``error``), ``start, end, duration`` (s),
    ``label, confidence``, ``p_<class>`` for every class, ``top<i>_label,
    top<i>_probability`` when ``top_k > 1``, ``voiced`` (windows: the
    voiced fraction),
    ``attention`` (segments), ``error``."""
    import csv

    names = list(report.class_names)
    header = ["file", "kind", "start", "end", "duration", "label", "confidence"]
    header += [f"p_{c}" for c in names]
    if top_k > 1:
        for i in range(1, top_k + 1):
            header += [f"top{i}_label", f"top{i}_probability"]
    header += ["voiced", "attention", "error"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    blank_top = [""] * (2 * top_k if top_k > 1 else 0)

    def row(file, kind, start, end, duration, probs=None, top=None, voiced="", attention="", error="",
            label=None):
        values = [file, kind, start, end, duration]
        if probs is None:
            values += [label or "", ""] + [""] * len(names)
        else:
            values += [label or names[int(np.argmax(probs))], f"{float(np.max(probs)):.6f}"]
            values += [f"{float(p):.6f}" for p in probs]
        if top_k > 1:
            values += blank_top if top is None else [v for n, q in top for v in (n, f"{q:.6f}")]
        values += [voiced, attention, error]
        writer.writerow(values)

    def segments(p_file, items):
        for s in items or []:
            row(p_file, "segment", f"{s.start:.3f}", f"{s.end:.3f}", f"{s.end - s.start:.3f}",
                attention=f"{s.weight:.6f}")

    for r in report.results:
        if isinstance(r, Failure):
            row(r.file, "error", "", "", "", error=r.reason)
            continue
        row(r.file, "file", "0.000", f"{r.duration:.3f}", f"{r.duration:.3f}", r.probabilities,
            r.top_k(top_k) if top_k > 1 and r.probabilities is not None else None,
            error="; ".join(x for x in (r.plot_error, r.warning and f"warning: {r.warning}") if x),
            label=r.label)
        segments(r.file, r.attention)
        for w in r.timeline or []:
            order = np.argsort(-w.probabilities, kind="stable")[:top_k]
            row(r.file, "window", f"{w.start:.3f}", f"{w.end:.3f}", f"{w.end - w.start:.3f}",
                w.probabilities, [(names[i], float(w.probabilities[i])) for i in order] if top_k > 1 else None,
                voiced=f"{w.voiced:.4f}", label=w.label)
            segments(r.file, w.attention)
    return buffer.getvalue()
