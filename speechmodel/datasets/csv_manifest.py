"""Your own recordings, listed in a CSV file.

Required columns: ``path`` (absolute, or relative to the CSV's folder),
``emotion`` (a canonical name, a synonym, or a key of ``emotion_map``) and
``speaker`` (an empty cell is ``"unknown"``). Optional columns: ``gender``
(``male``/``female``/``m``/``f``), ``session``, ``text``, ``intensity``,
``label`` (your own code; default: the emotion cell), ``corpus`` (default
``"csv"``) and ``extra`` (a JSON list of pairs, as ``Manifest.to_csv``
writes it). Any other non-empty column is kept in ``Utterance.extra``.

A row whose file does not exist, whose emotion or gender is unknown, or
that repeats a path is reported as a problem (``csv-file:line``), never
dropped silently. Manifests written by ``Manifest.to_csv`` load here too.
"""

import csv
import json
import os

from . import emotions as emotions_lib
from .manifest import (
    UNKNOWN_SPEAKER,
    Collector,
    CorpusError,
    Utterance,
    normalize_gender,
)

CORPUS = "csv"

EXPECTED = "a CSV file with columns path, emotion, speaker [, gender, session, ...]"

REQUIRED = ("path", "emotion", "speaker")
_KNOWN = (
    "path",
    "emotion",
    "speaker",
    "gender",
    "session",
    "text",
    "intensity",
    "label",
    "corpus",
    "extra",
)


def load_csv(data_dir, *, emotion_map=None):
    """Loads utterances listed in a CSV file.

    Args:
        data_dir: the CSV file, or a folder holding ``manifest.csv``.
        emotion_map: dict from your labels to emotion names.

    Returns:
        Manifest in the CSV's row order.

    Raises:
        CorpusError: no such file, or required columns missing.
    """
    emotion_map = emotions_lib.check_emotion_map(emotion_map)
    csv_path = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    if os.path.isdir(csv_path):
        candidate = os.path.join(csv_path, "manifest.csv")
        if not os.path.isfile(candidate):
            raise CorpusError(
                CORPUS,
                csv_path,
                expected=EXPECTED,
                found="a folder without manifest.csv",
            )
        csv_path = candidate
    if not os.path.isfile(csv_path):
        raise CorpusError(CORPUS, csv_path, expected=EXPECTED, found="no such file")
    folder = os.path.dirname(csv_path)
    collector = Collector(CORPUS)
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = [(c or "").strip() for c in reader.fieldnames or []]
        missing = [c for c in REQUIRED if c not in columns]
        if missing:
            raise CorpusError(
                CORPUS,
                csv_path,
                expected=EXPECTED,
                found=f"columns {columns} (missing {missing})",
            )
        for line, raw in enumerate(reader, start=2):
            row = {
                (k or "").strip(): (v or "").strip()
                for k, v in raw.items()
                if k is not None
            }
            where = f"{csv_path}:{line}"
            if None in raw:
                collector.problem(where, "row has more cells than the header")
                continue
            audio = row["path"]
            if not audio:
                collector.problem(where, "empty path")
                continue
            if not os.path.isabs(audio):
                audio = os.path.normpath(os.path.join(folder, audio))
            if not os.path.isfile(audio):
                collector.problem(where, f"audio file not found: {audio}")
                continue
            try:
                emotion = emotions_lib.map_emotion(row["emotion"], emotion_map)
            except ValueError as exc:
                collector.problem(where, f"{audio}: {exc}")
                continue
            try:
                gender = normalize_gender(row.get("gender"))
            except ValueError as exc:
                collector.problem(where, f"{audio}: {exc}")
                continue
            extra = []
            if row.get("extra"):
                try:
                    extra = [tuple(str(x) for x in p) for p in json.loads(row["extra"])]
                except (ValueError, TypeError):
                    collector.problem(
                        where, f"{audio}: 'extra' is not a JSON list of pairs"
                    )
                    continue
            extra += [(c, row[c]) for c in columns if c not in _KNOWN and row.get(c)]
            try:
                utterance = Utterance(
                    path=audio,
                    corpus=row.get("corpus") or CORPUS,
                    emotion=emotion,
                    label=row.get("label") or row["emotion"] or emotion,
                    speaker=row["speaker"] or UNKNOWN_SPEAKER,
                    gender=gender,
                    session=row.get("session") or None,
                    text=row.get("text") or None,
                    intensity=row.get("intensity") or None,
                    extra=tuple(extra),
                )
            except ValueError as exc:
                collector.problem(where, str(exc))
                continue
            collector.add(utterance, where=where)
    return collector.manifest()
