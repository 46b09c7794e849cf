"""Manifests: the list of utterances of a corpus, with what was left out.

A :class:`Manifest` is what every corpus loader returns and what the
protocols split. It holds

* ``utterances``: :class:`Utterance` records (path, harmonised emotion, the
  corpus' own label, speaker, ...), in a deterministic order;
* ``problems``: :class:`Problem` records, one per file that was seen but not
  used because something is wrong with it (a name that does not follow the
  corpus' scheme, a file in the wrong folder, a duplicate, an unknown code);
* ``excluded``: a tally ``reason -> count`` of utterances left out on
  purpose by an option (e.g. the song part of RAVDESS, IEMOCAP labels outside
  the 4-class setting). These are not problems.

Nothing is dropped silently: every audio file a loader sees is an utterance,
a problem or counted in ``excluded``. Audio is never decoded here; unreadable
audio is reported later by ``speechmodel.audio``.

Manifests round-trip through CSV (``to_csv`` / ``from_csv``; the utterances
only, problems and tallies are for logs).
"""

import csv
import dataclasses
import hashlib
import json
import logging
import os
import re

import numpy as np

from . import emotions as emotions_lib
from speechmodel import fileio
from speechmodel.audio import AUDIO_EXTENSIONS
from speechmodel.errors import Error

logger = logging.getLogger(__name__)

# Extensions of the audio files loaders look at (lower-case): the one list,
# speechmodel.audio.AUDIO_EXTENSIONS. Other files (READMEs, label files,
# .DS_Store) are not utterances and are not reported.

GENDERS = ("male", "female")

UNKNOWN_SPEAKER = "unknown"
# Utterances whose ``extra`` has ("train_only", "yes") only train: their
# speaker id is shared by several people (see Manifest.train_only_speakers).
TRAIN_ONLY = "train_only"

CSV_COLUMNS = (
    "path",
    "corpus",
    "emotion",
    "label",
    "speaker",
    "gender",
    "session",
    "text",
    "intensity",
    "extra",
)

_FIELDS = (
    "corpus",
    "emotion",
    "label",
    "speaker",
    "gender",
    "session",
    "text",
    "intensity",
)


class CorpusError(Error, ValueError):
    """A data directory that does not look like the corpus asked for.

    Attributes:
        corpus: the corpus name (e.g. ``"ravdess"``), so that a command line
            can print how to obtain it.
        data_dir: the directory given.
        expected: what the corpus' layout looks like.
        found: what was found instead.
    """

    def __init__(self, corpus, data_dir, *, expected, found):
        self.corpus = corpus
        self.data_dir = str(data_dir)
        self.expected = expected
        self.found = found
        super().__init__(
            f"{self.data_dir} does not look like the {corpus} corpus. "
            f"Expected: {expected}. Found: {found}."
        )

    def __reduce__(self):
        return (
            _rebuild_corpus_error,
            (self.corpus, self.data_dir, self.expected, self.found),
        )


def _rebuild_corpus_error(corpus, data_dir, expected, found):
    return CorpusError(corpus, data_dir, expected=expected, found=found)


@dataclasses.dataclass(frozen=True)
class Problem:
    """A file that was seen but not used, and why."""

    path: str
    reason: str

    def __str__(self):
        return f"{self.path}: {self.reason}"


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One labelled recording.

    Attributes:
        path: absolute path to the audio file.
        corpus: corpus name, e.g. ``"ravdess"``, ``"folder"``, ``"csv"``.
        emotion: harmonised emotion name (see ``datasets.emotions``).
        label: the corpus' own code, e.g. ``"05"``, ``"W"``, ``"ang"``.
        speaker: speaker id, unique within the corpus (``"unknown"`` when
            the source does not say).
        gender: ``"male"``, ``"female"`` or ``None``.
        session: recording session, e.g. ``"Ses01"``, or ``None``.
        text: sentence / text id, or ``None``.
        intensity: emotional intensity as the corpus states it, or ``None``.
        extra: further ``(key, value)`` string pairs.
    """

    path: str
    corpus: str
    emotion: str
    label: str
    speaker: str
    gender: str | None = None
    session: str | None = None
    text: str | None = None
    intensity: str | None = None
    extra: tuple = ()

    def __post_init__(self):
        for name in ("path", "corpus", "label", "speaker"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(
                    f"Utterance.{name} must be a non-empty string. "
                    f"Received: {name}={value!r} (path={self.path!r})"
                )
        if not emotions_lib.is_emotion(self.emotion):
            raise ValueError(
                "Utterance.emotion must be a canonical emotion name "
                f"({', '.join(emotions_lib.EMOTIONS)}). "
                f"Received: emotion={self.emotion!r} (path={self.path!r})"
            )
        if self.gender is not None and self.gender not in GENDERS:
            raise ValueError(
                "Utterance.gender must be 'male', 'female' or None. "
                f"Received: gender={self.gender!r} (path={self.path!r})"
            )
        for name in ("session", "text", "intensity"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValueError(
                    f"Utterance.{name} must be a string or None. "
                    f"Received: {name}={value!r} (path={self.path!r})"
                )
        extra = tuple(tuple(pair) for pair in self.extra)
        for pair in extra:
            if len(pair) != 2 or not all(isinstance(x, str) for x in pair):
                raise ValueError(
                    "Utterance.extra must hold (key, value) pairs of strings. "
                    f"Received: extra={self.extra!r} (path={self.path!r})"
                )
        object.__setattr__(self, "extra", extra)

    def get(self, key, default=None):
        """The value of an ``extra`` key."""
        for k, v in self.extra:
            if k == key:
                return v
        return default


def natural_key(text):
    """Sort key that orders embedded numbers numerically ("2" < "10")."""
    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.split(r"(\d+)", str(text))
        if part
    ]


def _as_index_array(index, n):
    array = np.asarray(index)
    if array.dtype == bool:
        if array.shape != (n,):
            raise IndexError(
                "A boolean mask must have one entry per utterance. "
                f"Received: mask of shape {array.shape} for {n} utterances"
            )
        return np.flatnonzero(array)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(array.dtype, np.integer):
        raise IndexError(
            "Manifest indices must be integers, a slice or a boolean mask. "
            f"Received: dtype={array.dtype}"
        )
    array = array.reshape(-1).astype(np.int64)
    if array.min() < -n or array.max() >= n:
        raise IndexError(
            f"Manifest index out of range for {n} utterances. "
            f"Received: min={array.min()}, max={array.max()}"
        )
    return np.where(array < 0, array + n, array)


class Manifest:
    """An ordered collection of utterances, plus what was left out.

    Args:
        utterances: iterable of :class:`Utterance`.
        problems: iterable of :class:`Problem` (files seen but not used).
        excluded: mapping ``reason -> count`` of utterances deliberately left
            out by a loader option.
        name: a label for logs, e.g. the corpus name.
        expected: the number of utterances of the complete corpus with the
            loader's options, when the corpus documents it (e.g. 1440 for
            RAVDESS speech); a different count is flagged in the summary
            and logs. Subsets made by indexing or ``select`` drop it.

    Indexing with an int gives an :class:`Utterance`; with a slice, a
    sequence of ints or a boolean mask it gives a new ``Manifest`` (which
    keeps ``problems`` and ``excluded``, as they describe the source).

    Speaker ids are unique within a corpus only. When a manifest holds more
    than one corpus (see :meth:`concat`), speakers are named
    ``"<corpus>/<speaker>"`` by :meth:`speakers`, :meth:`speaker_ids`,
    :meth:`select` and the protocols.
    """

    def __init__(
        self, utterances=(), problems=(), excluded=None, *, name=None, expected=None
    ):
        self._utterances = tuple(utterances)
        for u in self._utterances:
            if not isinstance(u, Utterance):
                raise TypeError(
                    f"Manifest items must be Utterance. Received: {type(u).__name__}"
                )
        self._problems = tuple(problems)
        self._excluded = dict(excluded or {})
        self.expected = expected
        corpora = sorted({u.corpus for u in self._utterances})
        self.name = name or ("+".join(corpora) if corpora else "empty")
        self._multi_corpus = len(corpora) > 1

    # --- Container protocol -------------------------------------------------

    @property
    def utterances(self):
        """Tuple of :class:`Utterance`."""
        return self._utterances

    @property
    def problems(self):
        """Tuple of :class:`Problem`."""
        return self._problems

    @property
    def excluded(self):
        """Dict ``reason -> count`` of utterances left out on purpose."""
        return dict(self._excluded)

    def __len__(self):
        return len(self._utterances)

    def __iter__(self):
        return iter(self._utterances)

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            return self._utterances[int(index)]
        if isinstance(index, slice):
            chosen = self._utterances[index]
        else:
            chosen = [self._utterances[i] for i in _as_index_array(index, len(self))]
        return Manifest(chosen, self._problems, self._excluded, name=self.name)

    def __eq__(self, other):
        if not isinstance(other, Manifest):
            return NotImplemented
        return (
            self._utterances == other._utterances
            and self._problems == other._problems
            and self._excluded == other._excluded
        )

    __hash__ = None

    def __repr__(self):
        return (
            f"<Manifest {self.name}: {len(self)} utterances, "
            f"{len(self.speakers())} speakers, {len(self._problems)} problems>"
        )

    # --- Queries ------------------------------------------------------------

    def corpora(self):
        """Sorted corpus names present."""
        return sorted({u.corpus for u in self._utterances})

    def speaker_id(self, utterance):
        """The speaker id of ``utterance`` as this manifest names it."""
        if self._multi_corpus:
            return f"{utterance.corpus}/{utterance.speaker}"
        return utterance.speaker

    def speaker_ids(self):
        """List of the speaker id of every utterance, in order."""
        return [self.speaker_id(u) for u in self._utterances]

    def speakers(self):
        """Sorted (numbers numerically) unique speaker ids."""
        return sorted(set(self.speaker_ids()), key=natural_key)

    def train_only_speakers(self):
        """Sorted speaker ids whose utterances may only train (``extra``
        ``("train_only", "yes")``): an id that several people share, such as
        EmoSpeech's ``unknown_user``. The protocols never put them in
        validation or test."""
        return sorted(
            {self.speaker_id(u) for u in self._utterances if u.get(TRAIN_ONLY) == "yes"}, key=natural_key
        )

    def speaker_genders(self):
        """Dict speaker id -> gender, ``None`` when unknown or inconsistent."""
        genders = {}
        for u in self._utterances:
            key = self.speaker_id(u)
            if key not in genders:
                genders[key] = u.gender
            elif genders[key] != u.gender:
                genders[key] = None
        return genders

    def emotions(self):
        """Emotions present, in the vocabulary's canonical order."""
        return emotions_lib.sort_emotions(u.emotion for u in self._utterances)

    def counts(self, by="emotion"):
        """Number of utterances per value of a field.

        Args:
            by: a field name (``"emotion"``, ``"speaker"``, ``"gender"``,
                ``"session"``, ``"corpus"``, ``"label"``, ``"text"``,
                ``"intensity"``) or a tuple of them for joint counts.

        Returns:
            dict value -> count (tuple keys for a tuple ``by``), emotions in
            canonical order, other values sorted naturally.
        """
        fields = (by,) if isinstance(by, str) else tuple(by)
        for field in fields:
            if field not in _FIELDS:
                raise ValueError(
                    f"Cannot count by this field. Received: by={by!r}. "
                    f"Valid fields: {', '.join(_FIELDS)}"
                )

        def value(u, field):
            return self.speaker_id(u) if field == "speaker" else getattr(u, field)

        tally = {}
        for u in self._utterances:
            key = tuple(value(u, f) for f in fields)
            tally[key] = tally.get(key, 0) + 1

        order = {name: i for i, name in enumerate(emotions_lib.EMOTIONS)}

        def sort_key(key):
            out = []
            for field, v in zip(fields, key):
                if v is None:
                    out.append((1, [], 0))
                elif field == "emotion":
                    out.append((0, [], order[v]))
                else:
                    out.append((0, natural_key(v), 0))
            return out

        keys = sorted(tally, key=sort_key)
        if len(fields) == 1:
            return {k[0]: tally[k] for k in keys}
        return {k: tally[k] for k in keys}

    def label_indices(self, class_names):
        """Class index of every utterance, for a model with ``class_names``.

        Raises:
            ValueError: an utterance's emotion is not in ``class_names``;
                restrict the manifest with :meth:`select` first.
        """
        index = {name: i for i, name in enumerate(class_names)}
        missing = sorted({u.emotion for u in self._utterances} - set(index))
        if missing:
            raise ValueError(
                "The manifest has emotions that are not classes of the model. "
                f"Received: class_names={list(class_names)}, extra emotions in "
                f"the manifest: {missing}. Use Manifest.select(emotions=...)."
            )
        return np.array([index[u.emotion] for u in self._utterances], dtype=np.int64)

    def select(self, *, emotions=None, speakers=None):
        """The utterances with one of ``emotions`` and one of ``speakers``.

        Args:
            emotions: emotion names (synonyms accepted), or ``None`` for all.
            speakers: speaker ids as :meth:`speakers` lists them, or ``None``.

        Returns:
            a new ``Manifest``, order preserved.

        Raises:
            ValueError: an unknown emotion name, or a speaker id that is not
                in the manifest (the message lists the available ones).
        """
        keep_emotions = None
        if emotions is not None:
            names = [emotions] if isinstance(emotions, str) else list(emotions)
            keep_emotions = {emotions_lib.canonical_emotion(e) for e in names}
        keep_speakers = None
        if speakers is not None:
            names = [speakers] if isinstance(speakers, str) else list(speakers)
            keep_speakers = {str(s) for s in names}
            unknown = sorted(keep_speakers - set(self.speaker_ids()), key=natural_key)
            if unknown:
                raise ValueError(
                    f"Speakers not in the manifest. Received: speakers={unknown}. "
                    f"Available: {self.speakers()}"
                )
        chosen = [
            u
            for u in self._utterances
            if (keep_emotions is None or u.emotion in keep_emotions)
            and (keep_speakers is None or self.speaker_id(u) in keep_speakers)
        ]
        return Manifest(chosen, self._problems, self._excluded, name=self.name)

    @classmethod
    def concat(cls, manifests, *, name=None):
        """Joins manifests (e.g. of several corpora) into one.

        Problems are concatenated and ``excluded`` tallies are prefixed with
        each manifest's name. A path present twice raises ``ValueError``.
        """
        manifests = list(manifests)
        utterances, problems, excluded, seen = [], [], {}, {}
        for m in manifests:
            for u in m:
                if u.path in seen:
                    raise ValueError(
                        "The same file is in two manifests. Received: "
                        f"{u.path} in {seen[u.path]} and {m.name}"
                    )
                seen[u.path] = m.name
                utterances.append(u)
            problems.extend(m.problems)
            for reason, count in m.excluded.items():
                excluded[f"{m.name}: {reason}"] = count
        return cls(utterances, problems, excluded, name=name)

    def fingerprint(self):
        """A digest of the order, emotions and speakers of the utterances.

        Paths are taken relative to the utterances' common folder, so the
        digest survives moving the corpus; it changes when files are added,
        removed, reordered or relabelled.
        """
        digest = hashlib.sha1()
        paths = [u.path for u in self._utterances]
        root = os.path.commonpath(paths) if paths else ""
        if len(paths) == 1:
            root = os.path.dirname(root)
        for u, p in zip(self._utterances, paths):
            rel = os.path.relpath(p, root) if root else p
            digest.update(f"{rel}\t{u.emotion}\t{u.speaker}\t{u.corpus}\n".encode())
        return digest.hexdigest()

    def incomplete(self):
        """Whether the count differs from the complete corpus' (if known)."""
        return self.expected is not None and len(self) != self.expected

    def summary(self, *, max_problems=10):
        """A multi-line text for logs: counts, exclusions and problems."""
        lines = [
            f"{self.name}: {len(self)} utterances, {len(self.speakers())} "
            f"speakers, {len(self.emotions())} emotions"
        ]
        if self.incomplete():
            lines.append(
                f"  WARNING: the complete corpus has {self.expected} utterances "
                f"with these options; {len(self)} found (incomplete or altered copy?)"
            )
        if self._utterances:
            lines.append(
                "  emotions: "
                + ", ".join(f"{k} {v}" for k, v in self.counts("emotion").items())
            )
            genders = self.speaker_genders()
            by_gender = {}
            for g in genders.values():
                by_gender[g or "unknown"] = by_gender.get(g or "unknown", 0) + 1
            lines.append(
                "  speakers by gender: "
                + ", ".join(f"{k} {v}" for k, v in sorted(by_gender.items()))
            )
        for reason, count in self._excluded.items():
            lines.append(f"  excluded: {count} ({reason})")
        lines.append(f"  problems: {len(self._problems)}")
        for p in self._problems[:max_problems]:
            lines.append(f"    {p}")
        if len(self._problems) > max_problems:
            lines.append(f"    ... and {len(self._problems) - max_problems} more")
        return "\n".join(lines)

    # --- CSV ----------------------------------------------------------------

    def to_csv(self, path):
        """Writes the utterances to a CSV file, atomically.

        Columns: ``path, corpus, emotion, label, speaker, gender, session,
        text, intensity, extra`` (``extra`` as a JSON list of pairs; empty
        cells for ``None``). Problems and ``excluded`` are not written.
        """
        with fileio.atomic_path(path) as tmp:
            # File names that are not UTF-8 (kept by Python as surrogate
            # escapes) are written back as their own bytes, and read back
            # to the same name.
            with open(tmp, "w", newline="", encoding="utf-8", errors="surrogateescape") as f:
                writer = csv.writer(f)
                writer.writerow(CSV_COLUMNS)
                for u in self._utterances:
                    row = [u.path] + [
                        "" if getattr(u, c) is None else getattr(u, c)
                        for c in CSV_COLUMNS[1:-1]
                    ]
                    row.append(
                        json.dumps([list(p) for p in u.extra]) if u.extra else ""
                    )
                    writer.writerow(row)

    @classmethod
    def from_csv(cls, path, *, name=None):
        """Reads a CSV written by :meth:`to_csv`.

        Relative paths are resolved against the CSV's folder. Every row must
        be valid: this reads the toolkit's own files. For a hand-made CSV
        use ``datasets.load_csv``, which reports bad rows as problems.

        Raises:
            ValueError: missing columns or a bad row (file and line named).
        """
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        utterances = []
        with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
            reader = csv.DictReader(f)
            missing = [
                c
                for c in ("path", "emotion", "speaker")
                if c not in (reader.fieldnames or [])
            ]
            if missing:
                raise ValueError(
                    f"{path}: not a manifest CSV, missing columns {missing}. "
                    f"Received columns: {reader.fieldnames}"
                )
            for line, row in enumerate(reader, start=2):
                try:
                    extra = row.get("extra") or ""
                    extra = tuple(tuple(p) for p in json.loads(extra)) if extra else ()
                    audio = row["path"]
                    if not os.path.isabs(audio):
                        audio = os.path.normpath(os.path.join(folder, audio))
                    utterances.append(
                        Utterance(
                            path=audio,
                            corpus=row.get("corpus") or "csv",
                            emotion=row["emotion"],
                            label=row.get("label") or row["emotion"],
                            speaker=row["speaker"],
                            gender=row.get("gender") or None,
                            session=row.get("session") or None,
                            text=row.get("text") or None,
                            intensity=row.get("intensity") or None,
                            extra=extra,
                        )
                    )
                except (ValueError, TypeError) as exc:
                    raise ValueError(f"{path}, line {line}: {exc}") from None
        return cls(utterances, name=name)


# --- Helpers for loaders -------------------------------------------------------


class Collector:
    """Gathers utterances, problems and exclusions while a loader scans.

    Keeps the first utterance of each key and reports later ones as
    duplicates, so that a corpus copied twice into one folder is noticed.
    """

    def __init__(self, corpus):
        self.corpus = corpus
        self.utterances = []
        self.problems = []
        self.excluded = {}
        self._keys = {}

    def add(self, utterance, *, key=None, where=None):
        """Adds ``utterance`` unless ``key`` (default: its path) was seen.

        A repeat becomes a problem at ``where`` (default: its path), e.g. a
        CSV line. Returns whether the utterance was added.
        """
        key = key if key is not None else utterance.path
        if key in self._keys:
            reason = (
                f"duplicate of {self._keys[key]} (same utterance); the first is used"
            )
            if where is not None:
                reason = f"{utterance.path}: {reason}"
            self.problem(where if where is not None else utterance.path, reason)
            return False
        self._keys[key] = utterance.path
        self.utterances.append(utterance)
        return True

    def problem(self, path, reason):
        """Records a file (or label line) seen but not used, and why."""
        self.problems.append(Problem(str(path), reason))

    def exclude(self, reason, count=1):
        """Counts ``count`` utterances left out on purpose for ``reason``."""
        self.excluded[reason] = self.excluded.get(reason, 0) + count

    def manifest(self, *, sort_key=None, expected=None):
        """The finished :class:`Manifest` (sorted by ``sort_key``), logged."""
        utterances = self.utterances
        if sort_key is not None:
            utterances = sorted(utterances, key=sort_key)
        manifest = Manifest(
            utterances,
            self.problems,
            self.excluded,
            name=self.corpus,
            expected=expected,
        )
        log_summary(manifest)
        return manifest


def log_summary(manifest):
    """Logs a one-line summary of a loaded manifest (and each problem at debug)."""
    parts = [
        f"{manifest.name}: loaded {len(manifest)} utterances of "
        f"{len(manifest.speakers())} speakers"
    ]
    excluded = sum(manifest.excluded.values())
    if excluded:
        parts.append(f"{excluded} excluded by options")
    if manifest.incomplete():
        parts.append(f"the complete corpus has {manifest.expected}")
    if manifest.problems or manifest.incomplete():
        if manifest.problems:
            parts.append(
                f"{len(manifest.problems)} files with problems "
                f"(first: {manifest.problems[0]}); see Manifest.summary()"
            )
        logger.warning("; ".join(parts))
    else:
        logger.info("; ".join(parts) + "; no problems")
    for p in manifest.problems:
        logger.debug("problem: %s", p)


def scan_audio(root, collector, *, extensions=AUDIO_EXTENSIONS):
    """Audio files under ``root``, sorted, hidden entries skipped and counted.

    Symbolic links to folders are followed (each real folder is read once,
    so a link cycle cannot loop). Hidden files and folders (names starting
    with ``.``, such as macOS ``._x.wav`` resource forks) are not audio; they
    are tallied in ``collector.excluded`` rather than silently ignored.
    """
    found = []
    hidden = 0
    visited = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in visited:
            dirs[:] = []
            continue
        visited.add(real)
        kept = []
        for d in dirs:
            if d.startswith("."):
                hidden += sum(
                    1
                    for _, _, fs in os.walk(os.path.join(folder, d))
                    for f in fs
                    if os.path.splitext(f)[1].lower() in extensions
                )
            else:
                kept.append(d)
        dirs[:] = sorted(kept)
        for f in sorted(files):
            if os.path.splitext(f)[1].lower() not in extensions:
                continue
            if f.startswith("."):
                hidden += 1
                continue
            found.append(os.path.join(folder, f))
    if hidden:
        collector.exclude(
            "hidden files (names starting with '.', e.g. macOS ._ copies)", hidden
        )
    return found


def stem_index(paths):
    """Audio paths by their path without the extension: the index
    ``find_by_stem`` looks in."""
    index = {}
    for path in paths:
        index.setdefault(os.path.splitext(path)[0], []).append(path)
    return index


def find_by_stem(named, index):
    """The audio file that a corpus' table names: ``named`` when it exists,
    else the one file beside it with the same stem and another audio
    extension (a re-encoded copy: ``.opus`` for the named ``.wav``).

    Args:
        named: the path the table gives.
        index: ``stem_index`` of the corpus' audio files.

    Returns:
        ``(path, others)``: ``others`` are the indexed files that share the
        stem, other than ``named``; ``path`` is None when ``named`` is
        absent and there is not exactly one of them (none, or several: which
        one is meant is ambiguous).
    """
    others = [p for p in index.get(os.path.splitext(named)[0], ()) if p != named]
    if os.path.isfile(named):
        return named, others
    return (others[0] if len(others) == 1 else None), others


class NameScan:
    """The audio files of a corpus, parsed by the corpus' naming scheme.

    Iterating yields ``(path, stem, fields)`` for each file whose stem
    ``parse_name`` accepts (``fields`` is what it returns). Every other file
    becomes a problem in ``collector``, with the ``ValueError`` message of
    ``parse_name`` as the reason, when the iteration reaches it, so problems
    keep the order of ``files``.

    Args:
        files: audio paths, e.g. from :func:`scan_audio`.
        collector: the loader's :class:`Collector`.
        parse_name: the corpus' parser, stem -> dict of fields; raises
            ``ValueError`` for a name it rejects.
        pattern: compiled regex of the scheme's shape. A rejected name that
            matches it (e.g. an unknown emotion code) still shows that the
            folder holds this corpus.

    Attributes:
        files: the paths, as a list.
        parsed: whether some name was accepted.
        near_miss: whether some name matched ``pattern`` but was rejected.
    """

    def __init__(self, files, collector, parse_name, pattern):
        self.files = list(files)
        self.parsed = False
        self.near_miss = False
        self._collector = collector
        self._parse_name = parse_name
        self._pattern = pattern

    @property
    def matched(self):
        """Whether some name looked like the scheme (parsed or a near miss)."""
        return self.parsed or self.near_miss

    def __iter__(self):
        for path in self.files:
            stem = os.path.splitext(os.path.basename(path))[0]
            try:
                fields = self._parse_name(stem)
            except ValueError as exc:
                self.near_miss = self.near_miss or bool(self._pattern.match(stem))
                self._collector.problem(path, str(exc))
                continue
            self.parsed = True
            yield path, stem, fields

    def no_match_error(self, data_dir, expected, title):
        """The :class:`CorpusError` for a folder with no file named like ``title``."""
        return CorpusError(
            self._collector.corpus,
            data_dir,
            expected=expected,
            found=(
                f"{len(self.files)} audio files, none named like {title}; "
                f"top level: {describe_dir(data_dir)}"
            ),
        )


def check_data_dir(corpus, data_dir, expected):
    """The absolute path of ``data_dir``; CorpusError if it is not a folder."""
    data_dir = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    if not os.path.exists(data_dir):
        raise CorpusError(
            corpus, data_dir, expected=expected, found="no such directory"
        )
    if not os.path.isdir(data_dir):
        raise CorpusError(
            corpus, data_dir, expected=expected, found="a file, not a directory"
        )
    return data_dir


def describe_dir(data_dir, limit=6):
    """A short description of a folder's content for error messages."""
    try:
        entries = sorted(os.listdir(data_dir))
    except OSError as exc:
        return f"unreadable ({exc})"
    if not entries:
        return "an empty directory"
    shown = ", ".join(entries[:limit])
    more = f" and {len(entries) - limit} more" if len(entries) > limit else ""
    return f"{shown}{more}"


_GENDER_WORDS = {
    "m": "male",
    "male": "male",
    "man": "male",
    "f": "female",
    "female": "female",
    "woman": "female",
}


def normalize_gender(value):
    """``"M"``, ``"male"``, ``"Female"``, ... -> ``"male"``/``"female"``;
    empty -> ``None``.

    Raises:
        ValueError: any other value.
    """
    if value is None:
        return None
    key = str(value).strip().lower()
    if not key:
        return None
    if key not in _GENDER_WORDS:
        raise ValueError(f"gender must be male/female (or m/f). Received: {value!r}")
    return _GENDER_WORDS[key]
