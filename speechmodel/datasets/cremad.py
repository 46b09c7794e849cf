"""CREMA-D: the Crowd-sourced Emotional Multimodal Actors Dataset.

91 actors (48 male, 43 female, ids 1001-1091) speak 12 sentences in six
emotions at up to four levels: 7442 clips. Layout of the release::

    AudioWAV/1001_DFA_ANG_XX.wav
    VideoDemographics.csv          (ActorID, Age, Sex, Race, Ethnicity)

File name: ``<actor>_<sentence>_<emotion>_<level>``:

* sentence: IEO, TIE, IOM, IWW, TAI, MTI, IWL, ITH, DFA, ITS, TSI, WSI;
* emotion: ANG anger, DIS disgust, FEA fear, HAP happy, NEU neutral,
  SAD sad;
* level: LO low, MD medium, HI high, XX unspecified.

Genders come from ``VideoDemographics.csv`` when it is found (in
``data_dir``, or beside the ``AudioWAV`` folder given as ``data_dir``);
otherwise they are ``None``.
"""

import csv
import logging
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

logger = logging.getLogger(__name__)

CORPUS = "cremad"
# The corpus' own emotion codes -> canonical names (``emotions.EMOTIONS``),
# exactly as the corpus writes them.
LABELS = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fearful",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}

EXPECTED = "an AudioWAV/ folder of files named like 1001_DFA_ANG_XX.wav"

SENTENCES = (
    "IEO",
    "TIE",
    "IOM",
    "IWW",
    "TAI",
    "MTI",
    "IWL",
    "ITH",
    "DFA",
    "ITS",
    "TSI",
    "WSI",
)
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}

_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def parse_name(stem):
    """Actor, sentence, emotion code and level of a CREMA-D file name.

    Raises:
        ValueError: not ``AAAA_SSS_EEE_LL`` or a field out of the corpus'
            range.
    """
    match = _NAME.match(stem)
    if not match:
        raise ValueError(
            "name does not follow the CREMA-D scheme <actor>_<sentence>_"
            "<emotion>_<level> (e.g. 1001_DFA_ANG_XX)"
        )
    actor, sentence, code, level = match.groups()
    if not 1001 <= int(actor) <= 1091:
        raise ValueError(f"actor {actor} out of range 1001-1091")
    if sentence not in SENTENCES:
        raise ValueError(
            f"unknown sentence code {sentence} (valid: {', '.join(SENTENCES)})"
        )
    if code not in LABELS:
        raise ValueError(
            f"unknown emotion code {code} "
            f"(valid: {', '.join(LABELS)})"
        )
    if level not in LEVELS:
        raise ValueError(f"unknown level {level} (valid: {', '.join(LEVELS)})")
    return {"actor": actor, "sentence": sentence, "emotion": code, "level": level}


def read_demographics(path):
    """Actor id -> gender (``"male"``/``"female"``) from VideoDemographics.csv.

    Raises:
        ValueError: the file lacks the ActorID or Sex column, or a row has a
            sex other than Male/Female (file and line named).
    """
    genders = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        if "ActorID" not in columns or "Sex" not in columns:
            raise ValueError(
                f"{path}: expected columns ActorID and Sex. Received: {columns}"
            )
        for line, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            sex = row["Sex"].lower()
            if sex not in ("male", "female"):
                raise ValueError(
                    f"{path}, line {line}: Sex must be Male or Female. "
                    f"Received: {row['Sex']!r}"
                )
            genders[row["ActorID"]] = sex
    return genders


def _find_demographics(data_dir):
    candidates = [os.path.join(data_dir, "VideoDemographics.csv")]
    if os.path.basename(data_dir).lower() == "audiowav":
        candidates.append(
            os.path.join(os.path.dirname(data_dir), "VideoDemographics.csv")
        )
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    return None


def load_cremad(data_dir, *, demographics=None):
    """Loads CREMA-D.

    Args:
        data_dir: the corpus folder (holding ``AudioWAV/``) or the
            ``AudioWAV`` folder.
        demographics: path to ``VideoDemographics.csv``; ``None`` looks for
            it in the corpus folder; ``False`` leaves genders unknown.

    Returns:
        Manifest of ``Utterance(corpus="cremad", label="ANG",
        speaker="1001", gender=..., text="DFA", intensity="unspecified")``.

    Raises:
        CorpusError: ``data_dir`` is missing or holds no CREMA-D file.
        ValueError: the demographics file is malformed.
    """
    data_dir = check_data_dir(CORPUS, data_dir, EXPECTED)
    wav_dir = os.path.join(data_dir, "AudioWAV")
    root = wav_dir if os.path.isdir(wav_dir) else data_dir
    if demographics is None:
        demographics = _find_demographics(data_dir)
    genders = read_demographics(demographics) if demographics else {}
    collector = Collector(CORPUS)
    names = NameScan(scan_audio(root, collector), collector, parse_name, _NAME)
    for path, stem, fields in names:
        actor = fields["actor"]
        utterance = Utterance(
            path=path,
            corpus=CORPUS,
            emotion=emotions_lib.corpus_emotion(CORPUS, fields["emotion"]),
            label=fields["emotion"],
            speaker=actor,
            gender=genders.get(actor),
            text=fields["sentence"],
            intensity=LEVELS[fields["level"]],
        )
        collector.add(utterance, key=stem)
    if not names.matched:
        raise names.no_match_error(data_dir, EXPECTED, "CREMA-D")
    if genders:
        missing = sorted({u.speaker for u in collector.utterances} - set(genders))
        if missing:
            logger.warning(
                "cremad: actors without a row in %s, their gender is unknown: %s",
                demographics,
                ", ".join(missing),
            )
    return collector.manifest(
        sort_key=lambda u: (u.speaker, os.path.basename(u.path)), expected=7442
    )
