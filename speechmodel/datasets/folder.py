"""Your own recordings, organised in folders.

The emotion of a file comes from

* the name of the folder it sits in: ``root/happy/x.wav``; or
* a ``_label`` suffix of its file name: ``root/20190616_125714_happy.wav``.

Labels may be canonical names (``datasets.emotions.EMOTIONS``), common
synonyms (``anger``, ``happiness``, ``fear``, ``ps``...) or your own words
mapped with ``emotion_map={"joy": "happy"}``. When both the folder and the
suffix name an emotion they must agree.

The speaker of a file comes from, in this order:

* ``speaker_pattern``: a regular expression searched in the file's path
  relative to ``root`` (``/``-separated); its group ``speaker`` (or its
  first group, or the whole match) is the speaker, an optional group
  ``gender`` (``m``/``f``/``male``/``female``) the gender. Example:
  ``r"^(?P<speaker>[^/]+)/"`` for ``root/<speaker>/<emotion>/x.wav``.
* ``speakers.csv``: columns ``path`` (relative to ``root``, or just the file
  name) and ``speaker``, optional ``gender``; read from ``root`` unless
  ``speakers_csv`` gives another path.
* the layout ``root/<speaker>/<emotion>/x.wav``: the folder above the
  emotion folder is the speaker (when it is not itself an emotion name);
* otherwise every speaker is ``"unknown"``: the manifest can be used to
  train a model on all data, but speaker-independent protocols refuse it.

What was found (the layout, speakers, emotions and clips) is logged in one
line before anything is trained.
"""

import csv
import logging
import os
import re

from . import emotions as emotions_lib
from .manifest import (
    AUDIO_EXTENSIONS,
    UNKNOWN_SPEAKER,
    Collector,
    CorpusError,
    Utterance,
    check_data_dir,
    describe_dir,
    normalize_gender,
    scan_audio,
)

logger = logging.getLogger(__name__)

CORPUS = "folder"

EXPECTED = (
    "audio files in emotion-named folders (root/happy/x.wav, or "
    "root/<speaker>/happy/x.wav) or named with an emotion suffix (root/x_happy.wav)"
)


def _is_emotion(name, emotion_map):
    try:
        emotions_lib.map_emotion(name, emotion_map)
    except ValueError:
        return False
    return True


def _layout_speaker(rel, emotion_map):
    """The speaker of ``root/<speaker>/<emotion>/x.wav``, else None."""
    parts = rel.split("/")
    if len(parts) == 3 and _is_emotion(parts[1], emotion_map) and not _is_emotion(parts[0], emotion_map):
        return parts[0]
    return None


def read_speakers_csv(path):
    """``{key: (speaker, gender)}`` from a speakers CSV (key: path or name).

    Raises:
        ValueError: missing columns, an empty speaker, a bad gender or a key
            listed twice (file and line named).
    """
    table = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        if "speaker" not in columns or not ({"path", "file"} & set(columns)):
            raise ValueError(
                f"{path}: expected columns path (or file) and speaker, "
                f"optionally gender. Received: {columns}"
            )
        for line, row in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            key = (row.get("path") or row.get("file") or "").replace("\\", "/")
            speaker = row.get("speaker", "")
            if not key or not speaker:
                raise ValueError(f"{path}, line {line}: empty path or speaker")
            try:
                gender = normalize_gender(row.get("gender"))
            except ValueError as exc:
                raise ValueError(f"{path}, line {line}: {exc}") from None
            if key in table:
                raise ValueError(f"{path}, line {line}: {key} is listed twice")
            table[key] = (speaker, gender)
    return table


def _label_of(rel, emotion_map):
    """(emotion, label) from the folder and the suffix; raises ValueError."""
    parts = rel.split("/")
    stem = os.path.splitext(parts[-1])[0]
    candidates = []
    if len(parts) > 1:
        try:
            candidates.append(
                ("folder", parts[-2], emotions_lib.map_emotion(parts[-2], emotion_map))
            )
        except ValueError:
            pass
    if "_" in stem:
        suffix = stem.rsplit("_", 1)[1]
        try:
            candidates.append(
                ("name", suffix, emotions_lib.map_emotion(suffix, emotion_map))
            )
        except ValueError:
            pass
    if not candidates:
        where = f"folder {parts[-2]!r}" if len(parts) > 1 else "no folder"
        raise ValueError(
            f"no emotion in the folder name or a _label file-name suffix ({where}); "
            f"valid names: {', '.join(emotions_lib.EMOTIONS)}"
            + (" or keys of emotion_map" if emotion_map else "")
        )
    if len(candidates) == 2 and candidates[0][2] != candidates[1][2]:
        raise ValueError(
            f"folder says {candidates[0][1]!r} ({candidates[0][2]}) but the file "
            f"name says {candidates[1][1]!r} ({candidates[1][2]})"
        )
    return candidates[0][2], candidates[0][1]


def load_folder(
    data_dir,
    *,
    speaker_pattern=None,
    speakers_csv=None,
    emotion_map=None,
    extensions=AUDIO_EXTENSIONS,
):
    """Loads a folder of your own labelled recordings.

    Args:
        data_dir: the root folder.
        speaker_pattern: regex giving the speaker from the relative path
            (see the module docstring).
        speakers_csv: path of a speakers CSV; default ``root/speakers.csv``
            when it exists and no ``speaker_pattern`` is given.
        emotion_map: dict from your labels to emotion names.
        extensions: audio file extensions to read.

    Returns:
        Manifest of ``Utterance(corpus="folder", label=<your label>,
        speaker=...)``; relative path order.

    Raises:
        CorpusError: ``data_dir`` is missing or holds no audio file.
        ValueError: bad options or a malformed speakers CSV.
    """
    emotion_map = emotions_lib.check_emotion_map(emotion_map)
    if speaker_pattern is not None and speakers_csv is not None:
        raise ValueError(
            "Give `speaker_pattern` or `speakers_csv`, not both. Received: "
            f"speaker_pattern={speaker_pattern!r}, speakers_csv={speakers_csv!r}"
        )
    pattern = None
    if speaker_pattern is not None:
        try:
            pattern = re.compile(speaker_pattern)
        except re.error as exc:
            raise ValueError(
                f"`speaker_pattern` is not a valid regular expression ({exc}). "
                f"Received: speaker_pattern={speaker_pattern!r}"
            ) from None
    data_dir = check_data_dir(CORPUS, data_dir, EXPECTED)
    extensions = tuple(
        e.lower() if e.startswith(".") else "." + e.lower() for e in extensions
    )
    speakers = None
    if pattern is None:
        if speakers_csv is None and os.path.isfile(
            os.path.join(data_dir, "speakers.csv")
        ):
            speakers_csv = os.path.join(data_dir, "speakers.csv")
        if speakers_csv is not None:
            speakers = read_speakers_csv(speakers_csv)

    collector = Collector(CORPUS)
    files = scan_audio(data_dir, collector, extensions=extensions)
    if not files:
        raise CorpusError(
            CORPUS,
            data_dir,
            expected=EXPECTED,
            found=f"no audio file ({', '.join(extensions)}); top level: {describe_dir(data_dir)}",
        )
    for path in files:
        rel = os.path.relpath(path, data_dir).replace(os.sep, "/")
        try:
            emotion, label = _label_of(rel, emotion_map)
        except ValueError as exc:
            collector.problem(path, str(exc))
            continue
        gender = None
        if pattern is not None:
            match = pattern.search(rel)
            if not match:
                collector.problem(
                    path, f"speaker_pattern {pattern.pattern!r} does not match {rel!r}"
                )
                continue
            groups = match.groupdict()
            if groups.get("speaker"):
                speaker = groups["speaker"]
            elif match.re.groups and match.group(1):
                speaker = match.group(1)
            else:
                speaker = match.group(0)
            if not speaker:
                collector.problem(
                    path,
                    f"speaker_pattern {pattern.pattern!r} matched an empty speaker",
                )
                continue
            try:
                gender = normalize_gender(groups.get("gender"))
            except ValueError as exc:
                collector.problem(path, f"speaker_pattern gender group: {exc}")
                continue
        elif speakers is not None:
            entry = speakers.get(rel) or speakers.get(os.path.basename(rel))
            if entry is None:
                collector.problem(path, f"not listed in {speakers_csv}")
                continue
            speaker, gender = entry
        else:
            speaker = _layout_speaker(rel, emotion_map) or UNKNOWN_SPEAKER
        collector.add(
            Utterance(
                path=path,
                corpus=CORPUS,
                emotion=emotion,
                label=label,
                speaker=speaker,
                gender=gender,
            )
        )
    manifest = collector.manifest()
    if pattern is not None:
        source = f"speaker_pattern {pattern.pattern!r}"
    elif speakers is not None:
        source = str(speakers_csv)
    else:
        source = "the layout <speaker>/<emotion>/"
    ids = [u.speaker for u in manifest]
    unknown = ids.count(UNKNOWN_SPEAKER)
    counts = {}
    for u in manifest:
        counts[u.emotion] = counts.get(u.emotion, 0) + 1
    known = sorted(set(ids) - {UNKNOWN_SPEAKER})
    logger.info(
        "folder %s: %d clips, %d speakers from %s%s, emotions %s",
        data_dir, len(manifest), len(known), source,
        f" ({', '.join(known[:8])}{', ...' if len(known) > 8 else ''})" if known else "",
        ", ".join(f"{e} {n}" for e, n in sorted(counts.items())),
    )
    if unknown:
        logger.warning(
            "folder: %d of %d clips in %s have no speaker (no speaker_pattern, no "
            "speakers.csv, not in a root/<speaker>/<emotion>/ folder): they are "
            "speaker 'unknown' and speaker-independent protocols refuse them. Put "
            "each speaker's clips in root/<speaker>/<emotion>/, or list them in "
            "root/speakers.csv (columns path,speaker), or pass "
            "--set dataset.options.speaker_pattern=REGEX",
            unknown, len(manifest), data_dir,
        )
    return manifest
