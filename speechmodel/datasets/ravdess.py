"""RAVDESS: the Ryerson Audio-Visual Database of Emotional Speech and Song.

24 professional actors (odd ids male, even ids female), North American
English, two lexically matched statements. Layout of the official
``Audio_Speech_Actors_01-24.zip`` (and ``Audio_Song_Actors_01-24.zip``)::

    Actor_01/03-01-01-01-01-01-01.wav
    ...
    Actor_24/03-01-08-02-02-02-24.wav

File name fields, in order:

1. modality: 01 full-AV, 02 video-only, 03 audio-only (audio files are 03);
2. vocal channel: 01 speech, 02 song;
3. emotion: 01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful,
   07 disgust, 08 surprised (song has only 01-06);
4. intensity: 01 normal, 02 strong (neutral has no strong intensity);
5. statement: 01 "Kids are talking by the door", 02 "Dogs are sitting by
   the door";
6. repetition: 01, 02;
7. actor: 01-24.

The speech part has 1440 files (60 per actor): 96 neutral and 192 of each
other emotion. The song part (1012 files; actor 18 has none) is excluded
unless ``include_song=True``.

A flat layout (all files in one folder) is accepted too, since the file name
carries the actor; a file inside an ``Actor_XX`` folder whose actor field
says otherwise is reported as a problem.
"""

import os
import re

from . import emotions as emotions_lib
from .manifest import (
    Collector,
    NameScan,
    Utterance,
    check_data_dir,
    natural_key,
    scan_audio,
)

CORPUS = "ravdess"
# The corpus' own emotion codes -> canonical names (``emotions.EMOTIONS``),
# exactly as the corpus writes them.
LABELS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}

EXPECTED = (
    "folders Actor_01 ... Actor_24 holding files named like "
    "03-01-05-01-02-01-12.wav (modality-channel-emotion-intensity-"
    "statement-repetition-actor)"
)

_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_ACTOR_DIR = re.compile(r"^actor_(\d+)$", re.IGNORECASE)

# Files of the complete official release.
SPEECH_FILES = 1440
SONG_FILES = 1012

_INTENSITY = {"01": "normal", "02": "strong"}
_CHANNEL = {"01": "speech", "02": "song"}
_SONG_EMOTIONS = ("01", "02", "03", "04", "05", "06")


def parse_name(stem):
    """Fields of a RAVDESS file name (without extension).

    Returns:
        dict with modality, channel, emotion, intensity, statement,
        repetition, actor (the two-digit strings).

    Raises:
        ValueError: the name does not follow the scheme or a field is out of
            range; the message says which.
    """
    match = _NAME.match(stem)
    if not match:
        raise ValueError(
            "name does not follow the RAVDESS scheme "
            "MM-VV-EE-II-SS-RR-AA (e.g. 03-01-05-01-02-01-12)"
        )
    keys = (
        "modality",
        "channel",
        "emotion",
        "intensity",
        "statement",
        "repetition",
        "actor",
    )
    fields = dict(zip(keys, match.groups()))
    if fields["modality"] != "03":
        raise ValueError(
            f"modality {fields['modality']} is not audio-only (03); "
            "01/02 are video files"
        )
    if fields["channel"] not in _CHANNEL:
        raise ValueError(
            f"unknown vocal channel {fields['channel']} (01 speech, 02 song)"
        )
    if fields["emotion"] not in LABELS:
        raise ValueError(f"unknown emotion code {fields['emotion']} (01-08)")
    if fields["intensity"] not in _INTENSITY:
        raise ValueError(
            f"unknown intensity {fields['intensity']} (01 normal, 02 strong)"
        )
    if fields["emotion"] == "01" and fields["intensity"] == "02":
        raise ValueError("neutral (01) has no strong intensity (02)")
    if fields["statement"] not in ("01", "02"):
        raise ValueError(f"unknown statement {fields['statement']} (01, 02)")
    if fields["repetition"] not in ("01", "02"):
        raise ValueError(f"unknown repetition {fields['repetition']} (01, 02)")
    if not 1 <= int(fields["actor"]) <= 24:
        raise ValueError(f"actor {fields['actor']} out of range 01-24")
    if fields["channel"] == "02" and fields["emotion"] not in _SONG_EMOTIONS:
        raise ValueError(
            f"song (vocal channel 02) has no emotion {fields['emotion']} "
            "(only 01-06)"
        )
    return fields


def load_ravdess(data_dir, *, include_song=False):
    """Loads RAVDESS from its official layout.

    Args:
        data_dir: the folder holding ``Actor_01`` ... ``Actor_24`` (or any
            folder above them; or a flat folder of RAVDESS files).
        include_song: also load the song part (vocal channel 02). Off by
            default: the song part is a different task (sung statements) and
            has no disgust or surprised.

    Returns:
        Manifest of ``Utterance(corpus="ravdess", label="05", speaker="12",
        gender=..., text=statement, intensity="normal"|"strong",
        extra=(("channel", "speech"|"song"), ("repetition", "01")))``.

    Raises:
        CorpusError: ``data_dir`` is missing or holds no RAVDESS file.
    """
    data_dir = check_data_dir(CORPUS, data_dir, EXPECTED)
    collector = Collector(CORPUS)
    names = NameScan(scan_audio(data_dir, collector), collector, parse_name, _NAME)
    for path, stem, fields in names:
        folder = os.path.basename(os.path.dirname(path))
        folder_match = _ACTOR_DIR.match(folder)
        if folder_match and int(folder_match.group(1)) != int(fields["actor"]):
            collector.problem(
                path,
                f"file of actor {fields['actor']} in folder {folder} "
                f"(expected Actor_{fields['actor']})",
            )
            continue
        if fields["channel"] == "02" and not include_song:
            collector.exclude("song part (vocal channel 02); pass include_song=True")
            continue
        actor = fields["actor"]
        utterance = Utterance(
            path=path,
            corpus=CORPUS,
            emotion=emotions_lib.corpus_emotion(CORPUS, fields["emotion"]),
            label=fields["emotion"],
            speaker=actor,
            gender="male" if int(actor) % 2 == 1 else "female",
            text=fields["statement"],
            intensity=_INTENSITY[fields["intensity"]],
            extra=(
                ("channel", _CHANNEL[fields["channel"]]),
                ("repetition", fields["repetition"]),
            ),
        )
        collector.add(utterance, key=stem)
    if not names.matched:
        raise names.no_match_error(data_dir, EXPECTED, "RAVDESS")
    return collector.manifest(
        sort_key=lambda u: (natural_key(u.speaker), os.path.basename(u.path)),
        expected=SPEECH_FILES + (SONG_FILES if include_song else 0),
    )
