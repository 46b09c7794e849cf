"""EMO-DB: the Berlin Database of Emotional Speech.

Ten German actors (five male, five female) speaking ten sentences in seven
emotions; 535 utterances in the released corpus. Layout of the download::

    wav/03a01Fa.wav
    lablaut/ labsilb/ silb/ ...   (other annotation, not used)

File name, position by position:

* 1-2: speaker (03, 08, 09, 10, 11, 12, 13, 14, 15, 16);
* 3-5: text code (a01, a02, a04, a05, a07, b01, b02, b03, b09, b10);
* 6: emotion, a letter for the German word: W (Wut) anger, L (Langeweile)
  boredom, E (Ekel) disgust, A (Angst) anxiety/fear, F (Freude) happiness,
  T (Trauer) sadness, N neutral;
* 7: version (a, b, c, ...) when there is more than one take.

Speakers (from the corpus' documentation): 03 male 31 y, 08 female 34 y,
09 female 21 y, 10 male 32 y, 11 male 26 y, 12 male 30 y, 13 female 32 y,
14 female 35 y, 15 male 25 y, 16 female 31 y.
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

CORPUS = "emodb"
# The corpus' own emotion codes -> canonical names (``emotions.EMOTIONS``),
# exactly as the corpus writes them.
LABELS = {
    "W": "angry",
    "L": "boredom",
    "E": "disgust",
    "A": "fearful",
    "F": "happy",
    "T": "sad",
    "N": "neutral",
}

EXPECTED = "a wav/ folder (or the folder itself) of files named like 03a01Fa.wav"

SPEAKERS = {
    "03": ("male", 31),
    "08": ("female", 34),
    "09": ("female", 21),
    "10": ("male", 32),
    "11": ("male", 26),
    "12": ("male", 30),
    "13": ("female", 32),
    "14": ("female", 35),
    "15": ("male", 25),
    "16": ("female", 31),
}

TEXTS = ("a01", "a02", "a04", "a05", "a07", "b01", "b02", "b03", "b09", "b10")

_NAME = re.compile(r"^(\d\d)([ab]\d\d)([A-Za-z])([a-z])$")


def parse_name(stem):
    """Fields of an EMO-DB file name: speaker, text, emotion code, version.

    Raises:
        ValueError: the name does not follow the scheme, or names an unknown
            speaker, text or emotion letter.
    """
    match = _NAME.match(stem)
    if not match:
        raise ValueError(
            "name does not follow the EMO-DB scheme SSTTTEV "
            "(speaker, text, emotion letter, version; e.g. 03a01Fa)"
        )
    speaker, text, code, version = match.groups()
    if speaker not in SPEAKERS:
        raise ValueError(
            f"speaker {speaker} is not one of the 10 EMO-DB speakers "
            f"({', '.join(SPEAKERS)})"
        )
    if text not in TEXTS:
        raise ValueError(f"text code {text} is not one of {', '.join(TEXTS)}")
    if code not in LABELS:
        raise ValueError(
            f"unknown emotion letter {code!r} "
            f"(valid: {', '.join(LABELS)})"
        )
    return {"speaker": speaker, "text": text, "emotion": code, "version": version}


def load_emodb(data_dir):
    """Loads EMO-DB.

    Args:
        data_dir: the corpus folder (holding ``wav/``) or the ``wav`` folder.

    Returns:
        Manifest of ``Utterance(corpus="emodb", label="W", speaker="03",
        gender=..., text="a01", extra=(("version", "a"),))``.

    Raises:
        CorpusError: ``data_dir`` is missing or holds no EMO-DB file.
    """
    data_dir = check_data_dir(CORPUS, data_dir, EXPECTED)
    wav_dir = os.path.join(data_dir, "wav")
    root = wav_dir if os.path.isdir(wav_dir) else data_dir
    collector = Collector(CORPUS)
    names = NameScan(scan_audio(root, collector), collector, parse_name, _NAME)
    for path, stem, fields in names:
        speaker = fields["speaker"]
        utterance = Utterance(
            path=path,
            corpus=CORPUS,
            emotion=emotions_lib.corpus_emotion(CORPUS, fields["emotion"]),
            label=fields["emotion"],
            speaker=speaker,
            gender=SPEAKERS[speaker][0],
            text=fields["text"],
            extra=(("version", fields["version"]),),
        )
        collector.add(utterance, key=stem)
    if not names.matched:
        raise names.no_match_error(data_dir, EXPECTED, "EMO-DB")
    return collector.manifest(
        sort_key=lambda u: (natural_key(u.speaker), os.path.basename(u.path)),
        expected=535,
    )
