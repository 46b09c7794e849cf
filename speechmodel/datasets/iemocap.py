"""IEMOCAP: the Interactive Emotional Dyadic Motion Capture database.

Five sessions, each a dialogue between one male and one female actor
(10 speakers), improvised and scripted, segmented into 10039 utterances
labelled by several annotators. Layout of ``IEMOCAP_full_release``::

    Session1/dialog/EmoEvaluation/Ses01F_impro01.txt
    Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav

Each ``EmoEvaluation/*.txt`` file has one summary line per utterance::

    [6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]

(start and end in seconds, utterance name, majority label, valence /
activation / dominance). Labels: neu, hap, exc, sad, ang, fru, fea, dis,
sur, oth, and ``xxx`` when the annotators had no majority.

The speaker of an utterance is its session plus the gender letter of its
last name part: in ``Ses01F_impro01_F000`` the female actor of session 1
(``Ses01F``); in ``Ses01F_impro01_M003`` the male one (``Ses01M``). (The
letter after ``Ses01`` says who wore the markers, not who speaks.)

Settings:

* ``classes="4"`` (default), the usual 4-class setting: angry, happy,
  sad, neutral, with ``exc`` merged into happy (``merge_excited=True``):
  5531 utterances (1103 angry, 1636 happy, 1084 sad, 1708 neutral).
* ``classes="all"``: every label but ``xxx`` (``exc`` stays ``excited``
  unless ``merge_excited=True``).
* ``improvised_only=True`` keeps the improvised dialogues only.

Utterances left out by a setting are counted in ``Manifest.excluded``, not
reported as problems.
"""

import os
import re

from . import emotions as emotions_lib
from .manifest import (
    Collector,
    CorpusError,
    Utterance,
    check_data_dir,
    describe_dir,
    scan_audio,
)

CORPUS = "iemocap"
# The corpus' own emotion codes -> canonical names (``emotions.EMOTIONS``),
# exactly as the corpus writes them.
LABELS = {
    "neu": "neutral",
    "hap": "happy",
    "exc": "excited",
    "sad": "sad",
    "ang": "angry",
    "fru": "frustrated",
    "fea": "fearful",
    "dis": "disgust",
    "sur": "surprised",
    "oth": "other",
}

EXPECTED = (
    "Session1 ... Session5 folders with dialog/EmoEvaluation/*.txt label "
    "files and sentences/wav/<dialog>/<utterance>.wav audio "
    "(the IEMOCAP_full_release folder)"
)

FOUR_CLASSES = ("ang", "hap", "exc", "sad", "neu")

# Utterances of the complete corpus in the standard 4-class setting.
FOUR_CLASS_COUNT = 5531

_SESSION_DIR = re.compile(r"^Session(\d)$")
_LINE = re.compile(
    r"^\[\s*(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\s*\]\s+(\S+)\s+(\S+)\s+\[([^\]]*)\]"
)
_UTTERANCE = re.compile(r"^Ses(\d\d)[FM]_.+_([FM])\d{3}$")


def parse_utterance_name(name):
    """Session, speaker, gender and dialog of an utterance name.

    ``"Ses01F_impro01_M003"`` -> ``("Ses01", "Ses01M", "male",
    "Ses01F_impro01")``.

    Raises:
        ValueError: not ``SesNN[FM]_<dialog>_[FM]NNN``.
    """
    match = _UTTERANCE.match(name)
    if not match:
        raise ValueError(
            f"utterance name {name!r} does not follow the IEMOCAP scheme "
            "SesNN[FM]_<dialog>_[FM]NNN (e.g. Ses01F_impro01_F000)"
        )
    number, letter = match.groups()
    session = f"Ses{number}"
    gender = "female" if letter == "F" else "male"
    return session, f"{session}{letter}", gender, name.rsplit("_", 1)[0]


def _read_labels(txt, collector):
    """(name, start, end, code, vad, line_no) for each summary line."""
    rows = []
    with open(txt, encoding="utf-8", errors="replace") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.startswith("["):
                continue
            match = _LINE.match(line.strip())
            if not match:
                collector.problem(
                    f"{txt}:{line_no}",
                    "label line does not follow '[start - end]<TAB>name<TAB>label<TAB>[v, a, d]'",
                )
                continue
            start, end, name, code, vad = match.groups()
            vad = ",".join(v.strip() for v in vad.split(","))
            rows.append((name, start, end, code, vad, line_no))
    return rows


def load_iemocap(data_dir, *, classes="4", merge_excited=None, improvised_only=False):
    """Loads IEMOCAP utterances with their categorical labels.

    Args:
        data_dir: the ``IEMOCAP_full_release`` folder.
        classes: ``"4"`` (angry, happy, sad, neutral) or ``"all"``.
        merge_excited: label ``exc`` as happy. ``None`` means ``True`` for
            ``classes="4"`` and ``False`` for ``"all"``.
        improvised_only: keep only the improvised dialogues.

    Returns:
        Manifest of ``Utterance(corpus="iemocap", label="exc",
        speaker="Ses01M", gender="male", session="Ses01", extra=(("dialog",
        ...), ("start", ...), ("end", ...), ("vad", "v,a,d"),
        ("improvised", "true"|"false")))``.

    Raises:
        CorpusError: no ``SessionN/dialog/EmoEvaluation`` folder found.
        ValueError: bad ``classes``.
    """
    if classes not in ("4", "all"):
        raise ValueError(
            f"`classes` must be '4' or 'all'. Received: classes={classes!r}"
        )
    if merge_excited is None:
        merge_excited = classes == "4"
    data_dir = check_data_dir(CORPUS, data_dir, EXPECTED)
    sessions = []
    for entry in sorted(os.listdir(data_dir)):
        match = _SESSION_DIR.match(entry)
        if match and os.path.isdir(
            os.path.join(data_dir, entry, "dialog", "EmoEvaluation")
        ):
            sessions.append((entry, f"Ses{int(match.group(1)):02d}"))
    if not sessions:
        raise CorpusError(
            CORPUS,
            data_dir,
            expected=EXPECTED,
            found=f"top level: {describe_dir(data_dir)}",
        )

    table = LABELS
    collector = Collector(CORPUS)
    for folder, session_id in sessions:
        session_dir = os.path.join(data_dir, folder)
        eval_dir = os.path.join(session_dir, "dialog", "EmoEvaluation")
        wav_dir = os.path.join(session_dir, "sentences", "wav")
        wavs = {}
        if os.path.isdir(wav_dir):
            for path in scan_audio(wav_dir, collector, extensions=(".wav",)):
                stem = os.path.splitext(os.path.basename(path))[0]
                if stem in wavs:
                    collector.problem(
                        path, f"duplicate of {wavs[stem]}; the first is used"
                    )
                    continue
                wavs[stem] = path
        labelled = set()
        txts = sorted(
            f
            for f in os.listdir(eval_dir)
            if f.endswith(".txt")
            and not f.startswith(".")
            and os.path.isfile(os.path.join(eval_dir, f))
        )
        for txt_name in txts:
            txt = os.path.join(eval_dir, txt_name)
            for name, start, end, code, vad, line_no in _read_labels(txt, collector):
                where = f"{txt}:{line_no}"
                try:
                    session, speaker, gender, dialog = parse_utterance_name(name)
                except ValueError as exc:
                    collector.problem(where, str(exc))
                    continue
                if name in labelled:
                    collector.problem(
                        where, f"{name} is labelled twice; the first label is used"
                    )
                    continue
                labelled.add(name)
                if session != session_id:
                    collector.problem(
                        where,
                        f"{name} belongs to {session} but is listed under {folder}",
                    )
                    continue
                if code == "xxx":
                    collector.exclude("label xxx (no majority among the annotators)")
                    continue
                if code not in table:
                    collector.problem(
                        where,
                        f"unknown label {code!r} for {name} (valid: {', '.join(table)}, xxx)",
                    )
                    continue
                if classes == "4" and (
                    code not in FOUR_CLASSES or (code == "exc" and not merge_excited)
                ):
                    collector.exclude(f"label {code} not in the 4-class setting")
                    continue
                improvised = "impro" in dialog.split("_", 1)[1]
                if improvised_only and not improvised:
                    collector.exclude("scripted dialogue (improvised_only=True)")
                    continue
                path = wavs.get(name)
                if path is None:
                    collector.problem(
                        os.path.join(wav_dir, dialog, name + ".wav"),
                        f"labelled in {txt_name} (line {line_no}) but the audio file is missing",
                    )
                    continue
                emotion = "happy" if (code == "exc" and merge_excited) else table[code]
                collector.add(
                    Utterance(
                        path=path,
                        corpus=CORPUS,
                        emotion=emotion,
                        label=code,
                        speaker=speaker,
                        gender=gender,
                        session=session,
                        extra=(
                            ("dialog", dialog),
                            ("start", start),
                            ("end", end),
                            ("vad", vad),
                            ("improvised", "true" if improvised else "false"),
                        ),
                    ),
                    key=name,
                )
        for stem, path in sorted(wavs.items()):
            if stem not in labelled:
                collector.problem(
                    path, f"no label line for {stem} in {folder}/dialog/EmoEvaluation"
                )
    standard = classes == "4" and merge_excited and not improvised_only
    return collector.manifest(
        sort_key=lambda u: (u.session, u.get("dialog"), os.path.basename(u.path)),
        expected=FOUR_CLASS_COUNT if standard else None,
    )
