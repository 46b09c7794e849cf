"""nEMO: a dataset of emotional speech in Polish.

4481 utterances (3.07 hours) by 9 actors (4 female, 5 male), six emotions:
anger 749, fear 736, happiness 749, neutral 809, sadness 769, surprised 669
(Christop, LREC-COLING 2024). Layout of the official release (the
``amu-cai/nEMO`` repository on GitHub; Hugging Face holds the same corpus as
Parquet)::

    data.tsv                     file_id, emotion, raw_text, normalized_text,
                                 speaker_id, gender, age (tab-separated, UTF-8)
    samples/EB0_anger_1.wav
    ...
    samples/WR0_surprised_64.wav

``data.tsv`` is the authority: one row per utterance, its ``file_id`` is the
file name in ``samples/`` (``{speaker_id}_{emotion}_{sentence_id}.wav``).
The official ``speaker_id`` column is left-padded with spaces; they are
stripped. The sentence id is the same number for the same sentence whatever
the speaker and emotion (90 sentences).

Re-encoded copies: a row whose named file is absent uses the file of
``samples/`` with the same stem and another audio extension (e.g.
``WR0_surprised_64.opus`` for ``WR0_surprised_64.wav``), provided exactly one
exists. The named file is preferred when both exist; the other encodings are
then reported as problems.

Nothing is dropped silently. Problems (``Manifest.problems``) are

* rows of ``data.tsv`` (reported as ``data.tsv:<line>``): a missing file,
  several candidate files for one row, an unknown emotion, a file name whose
  speaker or emotion contradicts the row's columns, an empty speaker, a bad
  gender, a malformed row, a repeated row;
* audio files that no row uses: not listed in ``data.tsv``, outside
  ``samples/``, or another encoding of a file that is used.

Hidden files (macOS ``._`` copies) are counted in ``Manifest.excluded``.
"""

import csv
import os
import re

from . import emotions as emotions_lib
from .manifest import (
    AUDIO_EXTENSIONS,
    Collector,
    CorpusError,
    Utterance,
    check_data_dir,
    describe_dir,
    natural_key,
    find_by_stem,
    normalize_gender,
    scan_audio,
    stem_index,
)

CORPUS = "nemo"
# The corpus' own emotion codes -> canonical names (``emotions.EMOTIONS``),
# exactly as the corpus writes them.
LABELS = {
    "anger": "angry",
    "fear": "fearful",
    "happiness": "happy",
    "neutral": "neutral",
    "sadness": "sad",
    "surprised": "surprised",
}

LABELS_FILE = "data.tsv"
SAMPLES_DIR = "samples"

COLUMNS = (
    "file_id",
    "emotion",
    "raw_text",
    "normalized_text",
    "speaker_id",
    "gender",
    "age",
)
REQUIRED_COLUMNS = ("file_id", "emotion", "speaker_id")

# Utterances of the complete official release.
UTTERANCES = 4481

EXPECTED = (
    "data.tsv (tab-separated columns file_id, emotion, raw_text, "
    "normalized_text, speaker_id, gender, age) beside a samples/ folder of "
    "files named like WR0_surprised_64.wav"
)

_NAME = re.compile(r"^([A-Za-z0-9]+)_([A-Za-z]+)_(\d+)$")


def parse_name(stem):
    """Speaker, emotion and sentence id of a nEMO file name (no extension).

    Returns:
        dict with ``speaker``, ``emotion`` (the corpus' word, e.g.
        ``"anger"``) and ``sentence`` (digits), as strings.

    Raises:
        ValueError: the stem is not ``{speaker}_{emotion}_{sentence}``.
    """
    match = _NAME.match(stem)
    if not match:
        raise ValueError(
            "name does not follow the nEMO scheme speaker_emotion_sentence "
            "(e.g. WR0_surprised_64)"
        )
    speaker, emotion, sentence = match.groups()
    return {"speaker": speaker, "emotion": emotion, "sentence": sentence}


def _missing_labels_error(data_dir):
    found = f"no {LABELS_FILE}; top level: {describe_dir(data_dir)}"
    try:
        children = sorted(os.listdir(data_dir))
    except OSError:
        children = []
    for child in children:
        if os.path.isfile(os.path.join(data_dir, child, LABELS_FILE)):
            found += f"; {child}/ holds a {LABELS_FILE}: use that directory"
            break
    return CorpusError(CORPUS, data_dir, expected=EXPECTED, found=found)


def _read_rows(path, data_dir):
    """``(line, {column: cell})`` of every data row; CorpusError if the file
    is not nEMO's table. Cells beyond the header are under key ``None``."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(reader, None)
            if header is None:
                raise CorpusError(
                    CORPUS, data_dir, expected=EXPECTED, found=f"an empty {LABELS_FILE}"
                )
            header = [h.strip() for h in header]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise CorpusError(
                    CORPUS,
                    data_dir,
                    expected=EXPECTED,
                    found=(
                        f"{LABELS_FILE} without the columns {missing} "
                        f"(its header: {header[:8]})"
                    ),
                )
            rows = []
            for cells in reader:
                if not any(c.strip() for c in cells):
                    continue  # blank line
                row = dict(zip(header, cells))
                if len(cells) > len(header):
                    row[None] = cells[len(header) :]
                elif len(cells) < len(header):
                    row.update({c: None for c in header[len(cells) :]})
                rows.append((reader.line_num, row))
    except UnicodeDecodeError as exc:
        raise CorpusError(
            CORPUS,
            data_dir,
            expected=EXPECTED,
            found=f"{LABELS_FILE} is not UTF-8 text ({exc.reason} at byte {exc.start})",
        ) from None
    except (OSError, csv.Error) as exc:
        raise CorpusError(
            CORPUS, data_dir, expected=EXPECTED, found=f"unreadable {LABELS_FILE} ({exc})"
        ) from None
    if not rows:
        raise CorpusError(
            CORPUS, data_dir, expected=EXPECTED, found=f"{LABELS_FILE} lists no utterance"
        )
    return rows


def _short(path, data_dir):
    return os.path.relpath(path, data_dir)


def load_nemo(data_dir):
    """Loads nEMO from its official layout (``data.tsv`` + ``samples/``).

    Args:
        data_dir: the folder holding ``data.tsv`` and ``samples/`` (e.g. a
            checkout of ``amu-cai/nEMO``). Audio may be stored under another
            extension than ``data.tsv`` names (a re-encoded copy).

    Returns:
        Manifest of ``Utterance(corpus="nemo", label="anger", speaker="WR0",
        gender="male"|"female", text=sentence id, extra=(("file_id",
        "WR0_anger_1.wav"), ("age", "23"), ("raw_text", ...),
        ("normalized_text", ...)))``, sorted by speaker then file name;
        ``expected`` is 4481.

    Raises:
        CorpusError: ``data_dir`` is missing, has no ``data.tsv`` or no
            ``samples/`` folder, or its ``data.tsv`` is not nEMO's table.
    """
    data_dir = check_data_dir(CORPUS, data_dir, EXPECTED)
    labels = os.path.join(data_dir, LABELS_FILE)
    if not os.path.isfile(labels):
        raise _missing_labels_error(data_dir)
    samples = os.path.join(data_dir, SAMPLES_DIR)
    if not os.path.isdir(samples):
        raise CorpusError(
            CORPUS,
            data_dir,
            expected=EXPECTED,
            found=f"{LABELS_FILE} but no {SAMPLES_DIR}/ folder; top level: "
            f"{describe_dir(data_dir)}",
        )
    rows = _read_rows(labels, data_dir)
    collector = Collector(CORPUS)
    audio = scan_audio(data_dir, collector)
    by_stem = stem_index(audio)
    table = LABELS
    claimed = {}  # audio path -> why no "not listed" problem is needed
    for line, row in rows:
        where = f"{labels}:{line}"
        if None in row:
            collector.problem(where, "row has more cells than the header")
            continue
        file_id = (row.get("file_id") or "").strip()
        if not file_id:
            collector.problem(where, "empty file_id")
            continue
        if "/" in file_id or "\\" in file_id or file_id in (".", ".."):
            collector.problem(
                where, f"file_id {file_id!r} is not a plain file name in {SAMPLES_DIR}/"
            )
            continue
        stem, ext = os.path.splitext(file_id)
        if ext.lower() not in AUDIO_EXTENSIONS:
            collector.problem(
                where, f"file_id {file_id!r} does not name an audio file"
            )
            continue
        named = os.path.join(samples, file_id)
        path, others = find_by_stem(named, by_stem)
        if path == named:
            for other in others:
                claimed.setdefault(
                    other,
                    f"another encoding of {file_id}, which {LABELS_FILE} names "
                    f"(line {line}) and which exists: the named file is preferred",
                )
        elif path is None and others:
            names = ", ".join(os.path.basename(p) for p in others)
            collector.problem(
                where,
                f"{file_id} is absent and several files share its stem "
                f"({names}): which one is meant is ambiguous",
            )
            for other in others:
                claimed.setdefault(other, "")
            continue
        elif path is None:
            collector.problem(
                where,
                f"audio file not found: {SAMPLES_DIR}/{file_id} (nor under "
                "another audio extension)",
            )
            continue
        # The file is this row's, whether the row is usable or not.
        claimed.setdefault(path, "")
        shown = _short(path, data_dir)
        if None in row.values():
            collector.problem(where, f"{shown}: row has fewer cells than the header")
            continue
        code = (row.get("emotion") or "").strip()
        if code not in table:
            collector.problem(
                where,
                f"{shown}: unknown emotion {code!r} (nEMO's are {', '.join(table)})",
            )
            continue
        speaker = (row.get("speaker_id") or "").strip()
        if not speaker:
            collector.problem(where, f"{shown}: empty speaker_id")
            continue
        try:
            gender = normalize_gender(row.get("gender"))
        except ValueError as exc:
            collector.problem(where, f"{shown}: {exc}")
            continue
        sentence = None
        try:
            fields = parse_name(stem)
        except ValueError:
            fields = None  # data.tsv is the authority; any file name will do
        if fields is not None:
            if fields["speaker"] != speaker or fields["emotion"] != code:
                collector.problem(
                    where,
                    f"{shown}: the file name says speaker {fields['speaker']}, "
                    f"emotion {fields['emotion']}, the row speaker {speaker}, "
                    f"emotion {code}",
                )
                continue
            sentence = fields["sentence"]
        extra = [("file_id", file_id)]
        for column in ("age", "raw_text", "normalized_text"):
            value = (row.get(column) or "").strip()
            if value:
                extra.append((column, value))
        utterance = Utterance(
            path=path,
            corpus=CORPUS,
            emotion=emotions_lib.corpus_emotion(CORPUS, code),
            label=code,
            speaker=speaker,
            gender=gender,
            text=sentence,
            extra=tuple(extra),
        )
        collector.add(utterance, key=stem, where=where)
    for path in audio:
        if path in claimed:
            if claimed[path]:
                collector.problem(path, claimed[path])
            continue
        if os.path.dirname(path) == samples:
            reason = f"not listed in {LABELS_FILE}"
        else:
            reason = f"not in {SAMPLES_DIR}/ (where {LABELS_FILE}'s files are)"
        collector.problem(path, reason)
    return collector.manifest(
        sort_key=lambda u: (natural_key(u.speaker), natural_key(os.path.basename(u.path))),
        expected=UTTERANCES,
    )
