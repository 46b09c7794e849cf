"""SAVEE: the Surrey Audio-Visual Expressed Emotion database.

Four native English male speakers (DC, JE, JK, KL), seven emotions, 120
utterances each: 480 files. Per speaker, 15 sentences for each of anger,
disgust, fear, happiness, sadness and surprise, and 30 neutral ones.

Two layouts are read:

* the official one, ``AudioData/DC/a01.wav`` (speaker = folder);
* the flat one of common mirrors, ``DC_a01.wav`` (speaker = prefix).

File name: emotion code then a two-digit number: ``a`` anger, ``d`` disgust,
``f`` fear, ``h`` happiness, ``n`` neutral, ``sa`` sadness, ``su``
surprise; numbers 01-15 (01-30 for neutral). The text id is the code and
number (``a01``): sentences differ per emotion.
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

CORPUS = "savee"
# The corpus' own emotion codes -> canonical names (``emotions.EMOTIONS``),
# exactly as the corpus writes them.
LABELS = {
    "a": "angry",
    "d": "disgust",
    "f": "fearful",
    "h": "happy",
    "n": "neutral",
    "sa": "sad",
    "su": "surprised",
}

EXPECTED = (
    "AudioData/<DC|JE|JK|KL>/a01.wav folders, or flat files named like DC_a01.wav"
)

SPEAKERS = ("DC", "JE", "JK", "KL")

_NAME = re.compile(r"^(?:([A-Za-z]{2})_)?(sa|su|a|d|f|h|n)(\d\d)$", re.IGNORECASE)


def parse_name(stem):
    """Speaker prefix (or ``None``), emotion code and number of a file name.

    Raises:
        ValueError: not ``[SP_]<code><nn>``, unknown speaker prefix or a
            number out of the corpus' range.
    """
    match = _NAME.match(stem)
    if not match:
        raise ValueError(
            "name does not follow the SAVEE scheme [speaker_]<code><nn> "
            "(e.g. a01, DC_sa12; codes a, d, f, h, n, sa, su)"
        )
    prefix, code, number = match.groups()
    code = code.lower()
    if prefix is not None:
        prefix = prefix.upper()
        if prefix not in SPEAKERS:
            raise ValueError(
                f"speaker {prefix} is not one of the SAVEE speakers ({', '.join(SPEAKERS)})"
            )
    limit = 30 if code == "n" else 15
    if not 1 <= int(number) <= limit:
        raise ValueError(f"number {number} out of range 01-{limit} for code {code!r}")
    return {"speaker": prefix, "emotion": code, "number": number}


def load_savee(data_dir):
    """Loads SAVEE from either layout.

    Args:
        data_dir: the corpus folder (holding ``AudioData/``), the
            ``AudioData`` folder, or a folder of flat ``DC_a01.wav`` files.

    Returns:
        Manifest of ``Utterance(corpus="savee", label="sa", speaker="DC",
        gender="male", text="sa01")``.

    Raises:
        CorpusError: ``data_dir`` is missing or holds no SAVEE file.
    """
    data_dir = check_data_dir(CORPUS, data_dir, EXPECTED)
    collector = Collector(CORPUS)
    names = NameScan(scan_audio(data_dir, collector), collector, parse_name, _NAME)
    identified = False
    for path, _, fields in names:
        folder = os.path.basename(os.path.dirname(path))
        folder_speaker = folder.upper() if folder.upper() in SPEAKERS else None
        speaker = fields["speaker"] or folder_speaker
        if speaker is None:
            collector.problem(
                path,
                "cannot tell the speaker: not in a DC/JE/JK/KL folder and no "
                "speaker prefix in the name",
            )
            continue
        identified = True
        if fields["speaker"] and folder_speaker and fields["speaker"] != folder_speaker:
            collector.problem(
                path,
                f"in folder {folder} but the file name says speaker {fields['speaker']}",
            )
            continue
        text = f"{fields['emotion']}{fields['number']}"
        utterance = Utterance(
            path=path,
            corpus=CORPUS,
            emotion=emotions_lib.corpus_emotion(CORPUS, fields["emotion"]),
            label=fields["emotion"],
            speaker=speaker,
            gender="male",
            text=text,
        )
        collector.add(utterance, key=(speaker, text))
    # A name that parses but whose speaker cannot be told does not count.
    if not (identified or names.near_miss):
        raise names.no_match_error(data_dir, EXPECTED, "SAVEE")
    return collector.manifest(
        sort_key=lambda u: (u.speaker, u.text, u.path), expected=480
    )
