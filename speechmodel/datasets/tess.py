"""TESS: the Toronto Emotional Speech Set.

Two actresses, OAF (older adult female, 64 years) and YAF (younger adult
female, 26 years), say 200 target words in the carrier phrase "Say the word
_" in seven emotions: 2800 files. Layout: one folder per speaker and
emotion::

    OAF_angry/OAF_back_angry.wav
    OAF_Pleasant_surprise/OAF_back_ps.wav
    YAF_pleasant_surprised/YAF_back_ps.wav
    ...

File name: ``<speaker>_<word>_<emotion>``. The released corpus is not
uniform, and the loader reads names case-insensitively and accepts these
variants:

* folder emotion spelled ``angry``/``Fear``/``Sad``/...: case is ignored;
* pleasant surprise: ``ps`` in file names, ``Pleasant_surprise`` or
  ``pleasant_surprised`` in folder names; all are ``surprised``;
* ``fear`` is ``fearful`` in the toolkit's vocabulary.

A file whose folder names another speaker or emotion than its file name is a
problem; files outside ``<speaker>_<emotion>`` folders (a flat copy) are read
from their names alone. Copies that hold the corpus twice (some mirrors nest
a second copy) are reported as duplicates, the first copy being used.
"""

import os
import re

from . import emotions as emotions_lib
from .manifest import (
    Collector,
    NameScan,
    Utterance,
    check_data_dir,
    scan_audio,
)

CORPUS = "tess"
# The corpus' own emotion codes -> canonical names (``emotions.EMOTIONS``),
# matched lower-case: their spelling varies within the corpus.
LABELS = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "ps": "surprised",
    "pleasant_surprise": "surprised",
    "pleasant_surprised": "surprised",
    "sad": "sad",
}
LABELS_ANY_CASE = True

EXPECTED = (
    "folders such as OAF_angry/ and YAF_pleasant_surprised/ holding files "
    "named like OAF_back_angry.wav"
)

SPEAKERS = {"OAF": 64, "YAF": 26}

_NAME = re.compile(r"^(OAF|YAF)_([a-z]+)_([a-z_]+)$", re.IGNORECASE)
_FOLDER = re.compile(r"^(OAF|YAF)_([a-z_]+)$", re.IGNORECASE)


def parse_name(stem):
    """Speaker, word and emotion code (lower-case) of a TESS file name.

    Raises:
        ValueError: not ``<OAF|YAF>_<word>_<emotion>`` or unknown emotion.
    """
    match = _NAME.match(stem)
    if not match:
        raise ValueError(
            "name does not follow the TESS scheme <OAF|YAF>_<word>_<emotion> "
            "(e.g. OAF_back_angry)"
        )
    speaker, word, code = match.groups()
    code = code.lower()
    if code not in LABELS:
        raise ValueError(
            f"unknown emotion {code!r} "
            f"(valid: {', '.join(LABELS)})"
        )
    return {"speaker": speaker.upper(), "word": word.lower(), "emotion": code}


def load_tess(data_dir):
    """Loads TESS.

    Args:
        data_dir: the folder holding the ``OAF_*`` / ``YAF_*`` folders (or a
            folder above it).

    Returns:
        Manifest of ``Utterance(corpus="tess", label="ps", speaker="OAF",
        gender="female", text="back", extra=(("age", "64"),))``.

    Raises:
        CorpusError: ``data_dir`` is missing or holds no TESS file.
    """
    data_dir = check_data_dir(CORPUS, data_dir, EXPECTED)
    collector = Collector(CORPUS)
    names = NameScan(scan_audio(data_dir, collector), collector, parse_name, _NAME)
    for path, _, fields in names:
        emotion = emotions_lib.corpus_emotion(CORPUS, fields["emotion"])
        folder = os.path.basename(os.path.dirname(path))
        folder_match = _FOLDER.match(folder)
        if folder_match:
            folder_speaker = folder_match.group(1).upper()
            try:
                folder_emotion = emotions_lib.corpus_emotion(
                    CORPUS, folder_match.group(2)
                )
            except ValueError:
                folder_emotion = None
            if folder_speaker != fields["speaker"] or folder_emotion != emotion:
                collector.problem(
                    path,
                    f"in folder {folder} but the file name says speaker "
                    f"{fields['speaker']}, emotion {fields['emotion']}",
                )
                continue
        speaker = fields["speaker"]
        utterance = Utterance(
            path=path,
            corpus=CORPUS,
            emotion=emotion,
            label=fields["emotion"],
            speaker=speaker,
            gender="female",
            text=fields["word"],
            extra=(("age", str(SPEAKERS[speaker])),),
        )
        collector.add(utterance, key=(speaker, fields["word"], emotion))
    if not names.matched:
        raise names.no_match_error(data_dir, EXPECTED, "TESS")
    return collector.manifest(
        sort_key=lambda u: (u.speaker, u.emotion, u.text, u.path), expected=2800
    )
