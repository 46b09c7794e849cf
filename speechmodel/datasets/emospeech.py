"""Indian EmoSpeech Command Dataset: single command words in Indian-accented
speech, each said with an emotion, recorded in everyday places.

6624 clips (5.62 hours, about 3 s each) of the keywords help, bacho, stop,
no, go, yes and ``unknown`` (any other word), four emotions: calm 2945,
fearful 1576, angry 1134, happy 969 (Banga et al. 2019, arXiv:1910.13801;
source: GitHub ``RakshakTeam/emospeech-dataset-v1``). Layout of the shared
copy (16 kHz Ogg Opus)::

    data.csv                 path, emotion, speaker, keyword, environment,
                             location, source_file (comma-separated, UTF-8)
    House/bacho-safe-calm-20190709085906-d14a028c....opus
    Near Lake/...
    webservice/...

``data.csv`` is the authority: one row per clip, ``path`` relative to the
corpus folder. A row whose named file is absent uses the file with the same
stem and another audio extension beside it (e.g. the source's ``.wav``),
provided exactly one exists.

Speakers: 106 identified users (``speaker``: the first 12 characters of the
user hash; every one of them recorded through the ``webservice`` folder)
and ``unknown_user``, one hash shared by many people (every clip recorded
in a physical location). ``unknown_user`` is not a speaker: its clips are
marked ``train_only`` (``Manifest.train_only_speakers``), so that the
speaker-independent protocols keep them in training folds only, never in
validation or test (held-out speakers come from the identified users).

Nothing is dropped silently. Problems (``Manifest.problems``) are rows of
``data.csv`` (``data.csv:<line>``: a missing or ambiguous file, a path
outside the corpus folder, an unknown emotion, an empty speaker, a
malformed or repeated row) and audio files no row uses. Hidden files are
counted in ``Manifest.excluded``.
"""

import csv
import os

from . import emotions as emotions_lib
from .manifest import (
    AUDIO_EXTENSIONS,
    TRAIN_ONLY,
    Collector,
    CorpusError,
    Utterance,
    check_data_dir,
    describe_dir,
    find_by_stem,
    natural_key,
    scan_audio,
    stem_index,
)

CORPUS = "emospeech"
# The corpus' own emotion codes -> canonical names (``emotions.EMOTIONS``),
# exactly as the corpus writes them.
LABELS = {
    "calm": "calm",
    "happy": "happy",
    "angry": "angry",
    "fearful": "fearful",
}

LABELS_FILE = "data.csv"
REQUIRED_COLUMNS = ("path", "emotion", "speaker")
# The hash that many different people share: their clips only train.
POOLED_SPEAKER = "unknown_user"

# Clips of the shared copy (the source's 7741 without its 1116 background
# clips and one unlabelled clip).
UTTERANCES = 6624

EXPECTED = (
    "data.csv (columns path, emotion, speaker, keyword, environment, location, "
    "source_file) beside the location folders (House/, webservice/, ...) of "
    "files named like bacho-safe-calm-20190709085906-<hash>.opus"
)


def _read_rows(path, data_dir):
    """``(line, {column: cell})`` of every data row; CorpusError if the file
    is not the corpus' table."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, restkey=None)
            header = [h.strip() for h in (reader.fieldnames or [])]
            if not header:
                raise CorpusError(CORPUS, data_dir, expected=EXPECTED, found=f"an empty {LABELS_FILE}")
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise CorpusError(
                    CORPUS, data_dir, expected=EXPECTED,
                    found=f"{LABELS_FILE} without the columns {missing} (its header: {header[:8]})",
                )
            reader.fieldnames = header
            rows = [(reader.line_num, row) for row in reader
                    if any((v or "").strip() for k, v in row.items() if k is not None)]
    except UnicodeDecodeError as exc:
        raise CorpusError(
            CORPUS, data_dir, expected=EXPECTED,
            found=f"{LABELS_FILE} is not UTF-8 text ({exc.reason} at byte {exc.start})",
        ) from None
    except (OSError, csv.Error) as exc:
        raise CorpusError(CORPUS, data_dir, expected=EXPECTED, found=f"unreadable {LABELS_FILE} ({exc})") from None
    if not rows:
        raise CorpusError(CORPUS, data_dir, expected=EXPECTED, found=f"{LABELS_FILE} lists no clip")
    return rows


def load_emospeech(data_dir):
    """Loads the Indian EmoSpeech Command Dataset (``data.csv`` + folders).

    Args:
        data_dir: the folder holding ``data.csv``.

    Returns:
        Manifest of ``Utterance(corpus="emospeech", emotion=label="calm"|
        "fearful"|"angry"|"happy", speaker=user hash or "unknown_user",
        text=keyword, extra=(("keyword", ...), ("environment", ...),
        ("location", ...), ("source_file", ...)[, ("train_only", "yes")]))``,
        sorted by speaker then path; ``expected`` is 6624. Clips of
        ``unknown_user`` carry ``train_only``.

    Raises:
        CorpusError: ``data_dir`` is missing, has no ``data.csv``, or its
            ``data.csv`` is not the corpus' table.
    """
    data_dir = check_data_dir(CORPUS, data_dir, EXPECTED)
    labels = os.path.join(data_dir, LABELS_FILE)
    if not os.path.isfile(labels):
        raise CorpusError(
            CORPUS, data_dir, expected=EXPECTED,
            found=f"no {LABELS_FILE}; top level: {describe_dir(data_dir)}",
        )
    rows = _read_rows(labels, data_dir)
    collector = Collector(CORPUS)
    audio = scan_audio(data_dir, collector)
    by_stem = stem_index(audio)
    table = LABELS
    root = os.path.realpath(data_dir)
    claimed = set()
    for line, row in rows:
        where = f"{labels}:{line}"
        if None in row:
            collector.problem(where, "row has more cells than the header")
            continue
        if any(row.get(c) is None for c in REQUIRED_COLUMNS):
            collector.problem(where, "row has fewer cells than the header")
            continue
        relative = row["path"].strip()
        if not relative:
            collector.problem(where, "empty path")
            continue
        named = os.path.normpath(os.path.join(data_dir, relative))
        if os.path.isabs(relative) or not os.path.realpath(named).startswith(root + os.sep):
            collector.problem(where, f"path {relative!r} is outside the corpus folder")
            continue
        if os.path.splitext(named)[1].lower() not in AUDIO_EXTENSIONS:
            collector.problem(where, f"path {relative!r} does not name an audio file")
            continue
        path, others = find_by_stem(named, by_stem)
        if path is None and others:
            names = ", ".join(os.path.basename(p) for p in others)
            collector.problem(where, f"{relative} is absent and several files share its stem ({names})")
            claimed.update(others)
            continue
        if path is None:
            collector.problem(where, f"audio file not found: {relative} (nor under another audio extension)")
            continue
        claimed.add(path)
        shown = os.path.relpath(path, data_dir)
        code = row["emotion"].strip()
        if code not in table:
            collector.problem(where, f"{shown}: unknown emotion {code!r} (the corpus' are {', '.join(table)})")
            continue
        speaker = row["speaker"].strip()
        if not speaker:
            collector.problem(where, f"{shown}: empty speaker")
            continue
        extra = [(column, (row.get(column) or "").strip())
                 for column in ("keyword", "environment", "location", "source_file")
                 if (row.get(column) or "").strip()]
        if speaker == POOLED_SPEAKER:
            extra.append((TRAIN_ONLY, "yes"))
        utterance = Utterance(
            path=path,
            corpus=CORPUS,
            emotion=emotions_lib.corpus_emotion(CORPUS, code),
            label=code,
            speaker=speaker,
            text=(row.get("keyword") or "").strip() or None,
            extra=tuple(extra),
        )
        collector.add(utterance, key=path, where=where)
    for path in audio:
        if path not in claimed:
            collector.problem(path, f"not listed in {LABELS_FILE}")
    return collector.manifest(
        sort_key=lambda u: (natural_key(u.speaker), natural_key(os.path.relpath(u.path, data_dir))),
        expected=UTTERANCES,
    )
