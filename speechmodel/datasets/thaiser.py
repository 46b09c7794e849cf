"""THAI SER: the VISTEC-depa Thai speech emotion corpus (release v1).

About 41 hours of Thai speech (27,854 utterances) by some 200 actors, in
80 studio sessions and 20 Zoom sessions, in five emotions: neutral, angry,
happy, sad, frustrated. This loader follows the layout of the v1 release
(``studio1-10.zip`` ... ``studio71-80.zip``, ``zoom1-10.zip``,
``zoom11-20.zip``, ``emotion_label.json``, ``actor_demography.json``)::

    studio1-10/studio001/con/s001_con_actor001_impro1_1.flac
    studio1-10/studio001/clip/s001_clip_actor001_impro1_1.flac
    zoom1-10/zoom001/mic/z001_mic_actor101_script1_1.flac
    emotion_label.json
    actor_demography.json            (optional; genders)

The ``studioX-Y`` level is optional (some tools unpack ``studio001/``
directly under the corpus folder); audio may be ``.flac`` or ``.wav``.

Assumptions, from the release notes and the reference preprocessing of the
corpus' authors (documented here because the release has no formal spec):

* File name ``<s|z><NNN>_<mic>_actor<NNN>_<turn>``: ``s``/``z`` and the
  number are the studio / Zoom session (the ``session`` field, e.g.
  ``s001``); ``mic`` is ``con`` (condenser) or ``clip`` (clip-on) in the
  studio, ``mic`` on Zoom; ``actor<NNN>`` is the speaker (the ``speaker``
  field, e.g. ``actor001``); ``turn`` is ``impro<N>_<k>`` or
  ``script<N>_<k>``. Studio sessions were recorded by both microphones:
  each studio utterance exists twice, so one microphone is loaded
  (``mic="con"`` by default).
* ``emotion_label.json`` maps each file name to a one-element list
  ``[{"assigned_emo": ..., "agreement": ..., "annotated": [[votes of
  annotator 1], [votes of annotator 2], ...]}]`` (keys with or without
  extension; a ``clip`` or Zoom file without a key of its own takes the
  label of its ``con``-named twin). The label of a file is
  computed as in the authors' baseline: each annotator's votes are
  normalised to sum to one (votes ``None``/``Other`` ignored), the
  annotators are averaged, and the top emotion is kept when its score
  reaches ``agreement_threshold`` (0.71) and is not tied; other files are
  excluded (counted, not problems). With ``agreement_threshold=None`` the
  file's ``assigned_emo`` is used as is. Entries without ``annotated`` fall
  back to ``assigned_emo`` and ``agreement``.
* ``actor_demography.json`` is ``{"data": [{"Actor's ID": ..., "Sex": ...,
  ...}, ...]}``; when it is absent or not in that shape, genders are
  ``None`` (a warning is logged).
* Speakers may appear in more than one session; the protocols keep test
  speakers out of training in every case.
"""

import json
import logging
import os
import re

from . import emotions as emotions_lib
from .manifest import (
    Collector,
    CorpusError,
    NameScan,
    Utterance,
    check_data_dir,
    describe_dir,
    natural_key,
    scan_audio,
)

logger = logging.getLogger(__name__)

CORPUS = "thaiser"
# The corpus' own emotion codes -> canonical names (``emotions.EMOTIONS``),
# matched lower-case: their spelling varies within the corpus.
LABELS = {
    "neutral": "neutral",
    "angry": "angry",
    "happy": "happy",
    "sad": "sad",
    "frustrated": "frustrated",
}
LABELS_ANY_CASE = True

EXPECTED = (
    "emotion_label.json beside studioNNN/<con|clip>/ and zoomNNN/mic/ "
    "folders of files named like s001_con_actor001_impro1_1.flac"
)

LABEL_FILES = ("emotion_label.json", "emotion_label_v1.json", "labels.json")
DEMOGRAPHY_FILES = ("actor_demography.json", "actor_demography_v1.json")
STUDIO_MICS = ("con", "clip")

_NAME = re.compile(
    r"^([sz])(\d{3})_([a-z]+)_actor(\d+)_((?:impro|script)\w*)$", re.IGNORECASE
)
_SESSION_DIR = re.compile(r"^(studio|zoom)(\d+)$", re.IGNORECASE)
_IGNORED_VOTES = ("none", "other", "")


def parse_name(stem):
    """Session kind and number, mic, actor and turn of a THAI SER file name.

    Raises:
        ValueError: not ``<s|z>NNN_<mic>_actorNNN_<impro|script>...`` or a
            mic that does not belong to the session kind.
    """
    match = _NAME.match(stem)
    if not match:
        raise ValueError(
            "name does not follow the THAI SER scheme "
            "<s|z>NNN_<mic>_actorNNN_<impro|script>N_K (e.g. s001_con_actor001_impro1_1)"
        )
    kind, number, mic, actor, turn = match.groups()
    kind, mic = kind.lower(), mic.lower()
    valid = STUDIO_MICS if kind == "s" else ("mic",)
    if mic not in valid:
        raise ValueError(
            f"mic {mic!r} is not a {'studio' if kind == 's' else 'Zoom'} mic "
            f"({', '.join(valid)})"
        )
    return {
        "kind": kind,
        "number": int(number),
        "session": f"{kind}{int(number):03d}",
        "mic": mic,
        "actor": f"actor{int(actor):03d}",
        "turn": turn,
    }


def vote_scores(annotated):
    """Emotion -> score from the annotators' votes (the authors' soft label).

    Each annotator's votes for the five emotions are normalised to sum to
    one (``None``/``Other`` ignored; an annotator with no such vote counts
    as zeros) and the annotators are averaged.
    """
    table = LABELS
    totals = {name: 0.0 for name in table}
    if not annotated:
        return totals
    for votes in annotated:
        if isinstance(votes, str):
            votes = votes.split(",")
        mine = {name: 0.0 for name in table}
        for vote in votes:
            key = str(vote).strip().lower()
            if key in mine:
                mine[key] += 1.0
        total = sum(mine.values())
        if total:
            for name in totals:
                totals[name] += mine[name] / total
    return {name: s / len(annotated) for name, s in totals.items()}


def decide_label(entry, threshold):
    """(code, agreement) of a label entry, or (None, reason) when excluded.

    Raises:
        ValueError: the entry is not a label record.
    """
    if isinstance(entry, list):
        if len(entry) != 1 or not isinstance(entry[0], dict):
            raise ValueError("label entry is not a one-element list of records")
        entry = entry[0]
    if not isinstance(entry, dict):
        raise ValueError("label entry is not a record")
    table = LABELS
    assigned = (
        str(entry.get("assigned_emo", entry.get("majority_emo", ""))).strip().lower()
    )
    if threshold is None or "annotated" not in entry:
        if assigned not in table:
            if assigned in _IGNORED_VOTES:
                return None, "no emotion assigned (None/Other)"
            raise ValueError(f"unknown assigned emotion {assigned!r}")
        if threshold is None:
            return assigned, entry.get("agreement")
        agreement = entry.get("agreement")
        if agreement is None:
            raise ValueError(
                "label entry has neither 'annotated' votes nor 'agreement'"
            )
        if float(agreement) < threshold:
            return None, f"annotator agreement below {threshold}"
        return assigned, float(agreement)
    annotated = entry["annotated"]
    if not isinstance(annotated, list):
        raise ValueError("'annotated' is not a list of votes")
    scores = vote_scores(annotated)
    best = max(scores.values())
    winners = [name for name, s in scores.items() if s == best]
    if best < threshold or best == 0.0:
        return None, f"annotator agreement below {threshold}"
    if len(winners) > 1:
        return None, "tie between emotions in the annotators' votes"
    return winners[0], best


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read JSON ({exc})") from None


def _read_demography(path):
    data = _read_json(path)
    rows = data.get("data") if isinstance(data, dict) else data
    genders = {}
    if isinstance(rows, list):
        for row in rows:
            if not isinstance(row, dict):
                continue
            actor = next((v for k, v in row.items() if "id" in k.lower()), None)
            sex = next(
                (v for k, v in row.items() if k.lower() in ("sex", "gender")), None
            )
            if actor is None or sex is None:
                continue
            digits = re.sub(r"\D", "", str(actor))
            sex = str(sex).strip().lower()
            sex = {"m": "male", "f": "female"}.get(sex, sex)
            if digits and sex in ("male", "female"):
                genders[f"actor{int(digits):03d}"] = sex
    if not genders:
        logger.warning(
            "thaiser: %s is not in the expected {'data': [{\"Actor's ID\", "
            "'Sex', ...}]} shape; genders are unknown",
            path,
        )
    return genders


def load_thaiser(
    data_dir, *, mic="con", include_zoom=True, agreement_threshold=0.71, label_file=None
):
    """Loads THAI SER with labels from ``emotion_label.json``.

    Args:
        data_dir: the corpus folder (holding the label file and the studio /
            zoom folders).
        mic: studio microphone to load, ``"con"`` or ``"clip"`` (Zoom files
            are always ``mic``).
        include_zoom: load the Zoom sessions too.
        agreement_threshold: keep files whose top emotion score reaches it
            (see the module docstring); ``None`` uses ``assigned_emo``.
        label_file: path of the label JSON; default: the first of
            ``emotion_label.json``, ``emotion_label_v1.json``,
            ``labels.json`` in ``data_dir``.

    Returns:
        Manifest of ``Utterance(corpus="thaiser", label="angry",
        speaker="actor001", gender=..., session="s001", extra=(("mic",
        "con"), ("turn", "impro1_1"), ("agreement", "0.800")))``.

    Raises:
        CorpusError: no label file, or no THAI SER audio.
        ValueError: bad options or an unreadable label file.
    """
    if mic not in STUDIO_MICS:
        raise ValueError(f"`mic` must be one of {STUDIO_MICS}. Received: mic={mic!r}")
    if agreement_threshold is not None and not 0.0 < agreement_threshold <= 1.0:
        raise ValueError(
            "`agreement_threshold` must be in (0, 1] or None. "
            f"Received: agreement_threshold={agreement_threshold!r}"
        )
    data_dir = check_data_dir(CORPUS, data_dir, EXPECTED)
    if label_file is None:
        label_file = next(
            (
                os.path.join(data_dir, n)
                for n in LABEL_FILES
                if os.path.isfile(os.path.join(data_dir, n))
            ),
            None,
        )
        if label_file is None:
            raise CorpusError(
                CORPUS,
                data_dir,
                expected=EXPECTED,
                found=f"no {' / '.join(LABEL_FILES)}; top level: {describe_dir(data_dir)}",
            )
    labels_raw = _read_json(label_file)
    if not isinstance(labels_raw, dict):
        raise ValueError(
            f"{label_file}: expected a JSON object file name -> label record"
        )
    labels = {
        os.path.splitext(os.path.basename(k))[0]: v for k, v in labels_raw.items()
    }
    genders = {}
    for name in DEMOGRAPHY_FILES:
        if os.path.isfile(os.path.join(data_dir, name)):
            genders = _read_demography(os.path.join(data_dir, name))
            break

    collector = Collector(CORPUS)
    files = scan_audio(data_dir, collector, extensions=(".flac", ".wav"))
    names = NameScan(files, collector, parse_name, _NAME)
    seen_labels = set()
    present_sessions = set()
    for path, stem, fields in names:
        mic_dir = os.path.basename(os.path.dirname(path))
        session_dir = os.path.basename(os.path.dirname(os.path.dirname(path)))
        session_match = _SESSION_DIR.match(session_dir)
        expected_dir = (
            f"{'studio' if fields['kind'] == 's' else 'zoom'}{fields['number']:03d}"
        )
        if (
            not session_match
            or session_dir.lower() != expected_dir
            or mic_dir.lower() != fields["mic"]
        ):
            collector.problem(
                path,
                f"in folder {session_dir}/{mic_dir} but the file name says "
                f"{expected_dir}/{fields['mic']}",
            )
            continue
        present_sessions.add(fields["session"])
        # A clip (or Zoom) file may be labelled under its con twin's name.
        label_key = stem
        if label_key not in labels and fields["mic"] != "con":
            label_key = re.sub(
                f"_{fields['mic']}_", "_con_", stem, count=1, flags=re.IGNORECASE
            )
        if label_key not in labels:
            collector.problem(path, f"no entry in {os.path.basename(label_file)}")
            continue
        seen_labels.add(label_key)
        if fields["kind"] == "z" and not include_zoom:
            collector.exclude("Zoom session (include_zoom=False)")
            continue
        if fields["kind"] == "s" and fields["mic"] != mic:
            collector.exclude(f"studio mic {fields['mic']} (mic={mic!r} loaded)")
            continue
        try:
            code, agreement = decide_label(labels[label_key], agreement_threshold)
        except (ValueError, TypeError) as exc:
            collector.problem(
                path, f"bad entry in {os.path.basename(label_file)}: {exc}"
            )
            continue
        if code is None:
            collector.exclude(agreement)
            continue
        extra = [("mic", fields["mic"]), ("turn", fields["turn"])]
        if agreement is not None:
            extra.append(("agreement", f"{float(agreement):.3f}"))
        collector.add(
            Utterance(
                path=path,
                corpus=CORPUS,
                emotion=emotions_lib.corpus_emotion(CORPUS, code),
                label=code,
                speaker=fields["actor"],
                gender=genders.get(fields["actor"]),
                session=fields["session"],
                extra=tuple(extra),
            ),
            key=stem,
        )
    if not names.matched:
        raise CorpusError(
            CORPUS,
            data_dir,
            expected=EXPECTED,
            found=(
                f"{os.path.basename(label_file)} but {len(files)} audio files named "
                f"like THAI SER; top level: {describe_dir(data_dir)}"
            ),
        )
    for key in sorted(set(labels) - seen_labels):
        try:
            fields = parse_name(key)
        except ValueError:
            collector.problem(
                f"{label_file}[{key}]",
                "label key does not follow the THAI SER naming scheme",
            )
            continue
        if fields["kind"] == "z" and not include_zoom:
            continue
        if fields["session"] in present_sessions:
            collector.problem(
                f"{label_file}[{key}]",
                "listed in the label file but its audio file is missing",
            )
        else:
            collector.exclude(
                "labelled files of sessions not present in data_dir (not downloaded?)"
            )
    return collector.manifest(
        sort_key=lambda u: (
            natural_key(u.session),
            natural_key(os.path.basename(u.path)),
        )
    )
