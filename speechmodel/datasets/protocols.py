"""Speaker-independent evaluation protocols.

A protocol turns a :class:`~speechmodel.datasets.manifest.Manifest` into
:class:`Fold` objects: index sets into the manifest for training,
validation and test. Every protocol is speaker-independent: a test speaker
is never in training or validation, and the validation speakers are taken
from the training speakers only (a whole number of speakers, balanced by
gender when the genders are known, chosen deterministically from the seed).

Protocols (``make_folds(manifest, protocol, ...)``):

``"loso"``
    Leave one speaker out: one fold per speaker, named ``loso-<speaker>``.
``"kfold"``
    Speaker k-fold: the speakers are split into ``k`` groups, each the test
    set of one fold (``fold1`` ... ``foldk``). ``grouping="contiguous"``
    takes consecutive speakers in natural order (RAVDESS: actors 1-4, 5-8,
    ..., 21-24, the usual 6 folds; the default for a RAVDESS-only manifest,
    with ``k=6``); ``grouping="shuffled"`` deals the speakers, shuffled by
    the seed, over the folds, males and females alternately (the default
    otherwise, with ``k=5``).
``"session"``
    Leave one session out (IEMOCAP ``Ses01`` ... ``Ses05``): the test set is
    the session; its speakers are kept out of training and validation. If a
    test speaker also speaks in another session, those utterances are in no
    set of that fold.
``"holdout"``
    One fold whose test speakers are ``holdout_speakers`` (a list, or a
    number chosen from the seed; default 20 % of the speakers, at least 1).
``"cross"``
    Cross-corpus: train (and validate) on ``manifest``, test on
    ``test_manifest``; both restricted to their common emotions
    (``Fold.emotions``); ``Fold.test`` indexes ``test_manifest``.
``"all"``
    Train on every speaker to deploy one model: validation still comes from
    held-out speakers, the test set is empty.
``"loco"``
    Leave one corpus out, for a manifest of several corpora
    (``Manifest.concat``): one fold per corpus, named ``loco-<corpus>``,
    that tests on every speaker of that corpus and trains (and validates) on
    the other corpora. Every fold is restricted to the emotions that all
    the corpora share (``Fold.emotions``), so that the folds have the same
    classes.
``"multi"``
    Speaker k-fold inside each corpus of a manifest of one or more corpora:
    the speakers of every corpus are split into ``k`` groups by that
    corpus' own rule, and fold ``i`` tests group ``i`` of every corpus.
    ``grouping=None`` takes contiguous groups for RAVDESS (its usual 6
    folds of 4 actors) and shuffled, gender-alternating groups for the
    other corpora; ``k`` defaults to 6 when RAVDESS is one of the corpora,
    else 5, and may not exceed the speakers of the smallest corpus. All
    emotions are kept (restrict the manifest first to train on fewer).

Speakers that may only train (``Manifest.train_only_speakers``: an id that
several people share, such as EmoSpeech's ``unknown_user``) are in the
training set of every fold and never in validation or test.

Coverage: for loso, kfold, multi, holdout and all, ``train + val + test`` is
the whole manifest; for session, the whole manifest but the exception above;
for cross and loco, the utterances of the common emotions.

Several corpora: speaker ids are ``"<corpus>/<speaker>"`` (see
``Manifest.speaker_ids``), so speakers of different corpora never merge, and
the validation speakers are drawn per corpus, from that corpus' training
speakers, by the rule below.

Validation speakers: ``val_speakers=None`` takes ``round(n / 10)`` (at least
1) of the ``n`` training speakers, and at least 2 (one of each gender) when
the genders are known and each gender has at least 3 training speakers; an
int fixes the number; a list fixes the speakers (a listed speaker that is a
test speaker of a fold is left out of that fold's validation). With a single
training speaker there is no validation set (a warning is logged). With
several corpora the rule (or the int) applies to each corpus' training
speakers in turn; a corpus with a single training speaker gives none.

A random utterance split, which mixes speakers between training and test
and so overestimates accuracy on new speakers, exists only behind
``random_split=True`` (kfold, holdout, all, cross), and warns.

Manifests whose speakers are ``"unknown"`` are refused by every speaker
split. Folds are deterministic for a seed and round-trip through JSON with
``write_folds`` / ``read_folds``.
"""

import dataclasses
import json
import logging
import os
import warnings
import zlib

import numpy as np

from . import emotions as emotions_lib
from .manifest import UNKNOWN_SPEAKER, Manifest, natural_key
from speechmodel import fileio

logger = logging.getLogger(__name__)

PROTOCOLS = ("loso", "kfold", "session", "holdout", "cross", "all", "loco", "multi")
GROUPINGS = ("contiguous", "shuffled")

FOLDS_FORMAT = "speechmodel-folds"
FOLDS_VERSION = 1

RANDOM_SPLIT_WARNING = (
    "random_split=True: training, validation and test share speakers, so the "
    "scores are not speaker-independent and overestimate accuracy on new "
    "speakers. Report them as such."
)


@dataclasses.dataclass(frozen=True)
class Fold:
    """One train / validation / test split.

    Attributes:
        name: e.g. ``"fold1"``, ``"loso-03"``, ``"Ses01"``.
        train, val, test: sorted indices into the manifest (``test`` into
            the test manifest for the ``"cross"`` protocol).
        train_speakers, val_speakers, test_speakers: sorted speaker ids.
        emotions: when not empty, the emotions the fold is restricted to
            (the ``"cross"`` protocol).
        speaker_independent: ``False`` only for ``random_split=True`` folds.
    """

    name: str
    train: tuple
    val: tuple
    test: tuple
    train_speakers: tuple
    val_speakers: tuple
    test_speakers: tuple
    emotions: tuple = ()
    speaker_independent: bool = True

    def __post_init__(self):
        for field in ("train", "val", "test"):
            object.__setattr__(self, field, tuple(int(i) for i in getattr(self, field)))
        for field in ("train_speakers", "val_speakers", "test_speakers", "emotions"):
            object.__setattr__(self, field, tuple(str(s) for s in getattr(self, field)))

    def to_dict(self):
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "train_speakers": list(self.train_speakers),
            "val_speakers": list(self.val_speakers),
            "test_speakers": list(self.test_speakers),
            "emotions": list(self.emotions),
            "speaker_independent": self.speaker_independent,
            "train": list(self.train),
            "val": list(self.val),
            "test": list(self.test),
        }

    @classmethod
    def from_dict(cls, data):
        """Inverse of :meth:`to_dict`; raises ValueError on a bad record."""
        if not isinstance(data, dict):
            raise ValueError(
                f"A fold must be a JSON object. Received: {type(data).__name__}"
            )
        required = (
            "name",
            "train",
            "val",
            "test",
            "train_speakers",
            "val_speakers",
            "test_speakers",
        )
        missing = [k for k in required if k not in data]
        if missing:
            raise ValueError(
                f"Fold record lacks {missing}. Received keys: {sorted(data)}"
            )
        for key in ("train", "val", "test"):
            values = data[key]
            if not isinstance(values, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) and i >= 0
                for i in values
            ):
                raise ValueError(
                    f"Fold {data['name']!r}: {key} must be a list of non-negative ints"
                )
        return cls(
            name=str(data["name"]),
            train=data["train"],
            val=data["val"],
            test=data["test"],
            train_speakers=data["train_speakers"],
            val_speakers=data["val_speakers"],
            test_speakers=data["test_speakers"],
            emotions=data.get("emotions", ()),
            speaker_independent=bool(data.get("speaker_independent", True)),
        )


# --- Speaker helpers -------------------------------------------------------------


def _rng(seed, name):
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])


def _sorted(speakers):
    return sorted(speakers, key=natural_key)


def default_val_count(pool, genders):
    """The default number of validation speakers among ``pool``."""
    n = len(pool)
    if n < 2:
        return 0
    count = max(1, int(round(n / 10)))
    known = [genders.get(s) for s in pool]
    if all(g in ("male", "female") for g in known):
        if known.count("male") >= 3 and known.count("female") >= 3:
            count = max(count, 2)
    return min(count, n - 1)


def choose_speakers(pool, count, genders, rng):
    """``count`` speakers of ``pool``, gender-balanced when genders are known.

    With known genders, ``count // 2`` of each gender are drawn and the odd
    one from the gender with more speakers in ``pool`` (ties broken by
    ``rng``); a gender short of speakers is completed from the other.
    """
    pool = _sorted(pool)
    if count <= 0:
        return []
    if count >= len(pool):
        return pool
    known = [genders.get(s) for s in pool]
    if not all(g in ("male", "female") for g in known):
        picked = rng.permutation(len(pool))[:count]
        return _sorted(pool[i] for i in picked)
    by_gender = {
        g: [pool[i] for i in rng.permutation(len(pool)) if known[i] == g]
        for g in ("male", "female")
    }
    want = {"male": count // 2, "female": count // 2}
    if count % 2:
        sizes = {g: len(v) for g, v in by_gender.items()}
        if sizes["male"] != sizes["female"]:
            extra = max(sizes, key=sizes.get)
        else:
            extra = ("male", "female")[int(rng.integers(2))]
        want[extra] += 1
    for g, other in (("male", "female"), ("female", "male")):
        short = want[g] - len(by_gender[g])
        if short > 0:
            want[g] -= short
            want[other] += short
    return _sorted(
        by_gender["male"][: want["male"]] + by_gender["female"][: want["female"]]
    )


def _refuse_unknown(manifest, protocol):
    ids = manifest.speaker_ids()
    unknown = sum(
        1 for s in ids if s == UNKNOWN_SPEAKER or s.endswith("/" + UNKNOWN_SPEAKER)
    )
    if unknown:
        raise ValueError(
            f"The {protocol!r} protocol splits by speaker, but {unknown} of "
            f"{len(ids)} utterances have speaker 'unknown'. Give the folder "
            "loader a speaker_pattern or a speakers.csv, or lay it out as "
            "DIR/<speaker>/<emotion>/ (or give a speaker column "
            "in your CSV); or pass random_split=True, which mixes speakers "
            "between training and test"
            + (
                "; or, to train without validation, val_speakers=0."
                if protocol in ("all", "cross", "loco")
                else "."
            )
        )


def _indices_by_speaker(manifest):
    table = {}
    for i, s in enumerate(manifest.speaker_ids()):
        table.setdefault(s, []).append(i)
    return table


def _gather(table, speakers):
    out = []
    for s in speakers:
        out.extend(table.get(s, ()))
    return tuple(sorted(out))


# --- Protocols -------------------------------------------------------------------


def make_folds(
    manifest,
    protocol,
    *,
    seed=0,
    k=None,
    val_speakers=None,
    holdout_speakers=None,
    test_manifest=None,
    random_split=False,
    grouping=None,
    val_fraction=0.1,
    test_fraction=0.2,
):
    """Splits a manifest by an evaluation protocol.

    Args:
        manifest: the :class:`~speechmodel.datasets.manifest.Manifest` to split.
        protocol: one of ``"loso"``, ``"kfold"``, ``"session"``,
            ``"holdout"``, ``"cross"``, ``"all"``, ``"loco"``, ``"multi"``
            (see the module docstring).
        seed: non-negative int; the same seed gives the same folds.
        k: number of folds of ``"kfold"`` (default 6 with contiguous
            grouping of a RAVDESS manifest, else 5) or ``"multi"`` (default
            6 when RAVDESS is one of the corpora, else 5).
        val_speakers: ``None`` (default rule), a number of validation
            speakers (per corpus with several corpora), or a list of
            speaker ids.
        holdout_speakers: for ``"holdout"``: a list of test speaker ids or a
            number of them (default: 20 %, at least 1).
        test_manifest: for ``"cross"``: the manifest to test on.
        random_split: split utterances at random instead of speakers (warns;
            kfold, holdout, all and cross only).
        grouping: ``"contiguous"`` or ``"shuffled"`` for ``"kfold"`` and
            ``"multi"`` (for ``"multi"``, ``None`` chooses per corpus).
        val_fraction: validation share of the training utterances, only with
            ``random_split=True``.
        test_fraction: test share for ``"holdout"`` with
            ``random_split=True``.

    Returns:
        list of :class:`Fold`.

    Raises:
        ValueError: unknown protocol or option, unknown speakers, a manifest
            whose speakers are ``"unknown"``, too few speakers (or, for
            ``"loco"``, corpora) for the split.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(
            f"Unknown protocol. Received: protocol={protocol!r}. "
            f"Valid: {', '.join(PROTOCOLS)}"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative int. Received: seed={seed!r}")
    if not isinstance(manifest, Manifest):
        raise ValueError(
            f"`manifest` must be a Manifest. Received: {type(manifest).__name__}"
        )
    if len(manifest) == 0:
        raise ValueError("Cannot split an empty manifest.")
    if (protocol == "cross") != (test_manifest is not None):
        raise ValueError(
            "`test_manifest` is required by the 'cross' protocol and only by it. "
            f"Received: protocol={protocol!r}, test_manifest="
            f"{'given' if test_manifest is not None else None}"
        )
    if protocol not in ("kfold", "multi") and (k is not None or grouping is not None):
        raise ValueError(
            f"`k` and `grouping` apply to the 'kfold' and 'multi' protocols only. Received: "
            f"protocol={protocol!r}, k={k!r}, grouping={grouping!r}"
        )
    if protocol != "holdout" and holdout_speakers is not None:
        raise ValueError(
            "`holdout_speakers` applies to the 'holdout' protocol only. "
            f"Received: protocol={protocol!r}"
        )
    seed = int(seed)
    if random_split:
        if protocol in ("loso", "session", "loco", "multi"):
            raise ValueError(
                f"random_split=True does not apply to the {protocol!r} protocol, "
                "which is defined by speakers, sessions or corpora. Use 'kfold', "
                "'holdout', 'all' or 'cross'."
            )
        if val_speakers is not None or holdout_speakers is not None:
            raise ValueError(
                "`val_speakers` and `holdout_speakers` choose speakers; with "
                "random_split=True use `val_fraction` and `test_fraction`."
            )
        warnings.warn(RANDOM_SPLIT_WARNING, UserWarning, stacklevel=2)
        logger.warning(RANDOM_SPLIT_WARNING)
        folds = _random_folds(
            manifest, protocol, seed, k, test_manifest, val_fraction, test_fraction
        )
        for fold in folds:
            check_fold(fold, manifest, test_manifest=test_manifest)
        return folds

    # Without validation, "all", "cross" and "loco" need no speaker of the
    # training set (loco's test speakers are another corpus').
    if not (protocol in ("all", "cross", "loco") and val_speakers == 0):
        _refuse_unknown(manifest, protocol)
    genders = manifest.speaker_genders()
    table = _indices_by_speaker(manifest)
    # Speakers that may only train (an id several people share) are never
    # tested or validated on.
    train_only = set(manifest.train_only_speakers())
    speakers = [s for s in manifest.speakers() if s not in train_only]
    splitter = _SpeakerSplitter(manifest, genders, table, seed, val_speakers)

    if protocol == "loso":
        if len(speakers) < 2:
            raise ValueError(f"'loso' needs at least 2 speakers. Received: {speakers}")
        folds = [splitter.fold(f"loso-{s}", [s]) for s in speakers]
    elif protocol == "kfold":
        folds = _kfold(manifest, speakers, genders, seed, k, grouping, splitter)
    elif protocol == "session":
        folds = _session_folds(manifest, splitter)
    elif protocol == "holdout":
        folds = [
            splitter.fold(
                "holdout", _holdout(speakers, genders, seed, holdout_speakers)
            )
        ]
    elif protocol == "all":
        folds = [splitter.fold("all", [])]
    elif protocol == "loco":
        folds = _loco_folds(manifest, splitter)
    elif protocol == "multi":
        folds = _multi_folds(manifest, genders, seed, k, grouping, splitter)
    else:
        folds = [_cross_fold(manifest, test_manifest, splitter)]
    for fold in folds:
        check_fold(fold, manifest, test_manifest=test_manifest)
    return folds


class _SpeakerSplitter:
    """Builds a fold from its test speakers: validation speakers and indices."""

    def __init__(self, manifest, genders, table, seed, val_speakers):
        self.manifest = manifest
        self.genders = genders
        self.table = table
        self.seed = seed
        self.speakers = manifest.speakers()
        self.train_only = set(manifest.train_only_speakers())
        self.val_speakers = val_speakers
        # With several corpora, validation speakers are drawn per corpus.
        self.corpus_of = None
        if len(manifest.corpora()) > 1:
            self.corpus_of = {
                s: u.corpus for s, u in zip(manifest.speaker_ids(), manifest)
            }
        if val_speakers is not None and not isinstance(val_speakers, (int, np.integer)):
            names = (
                [val_speakers] if isinstance(val_speakers, str) else list(val_speakers)
            )
            unknown = [s for s in names if s not in table]
            if unknown:
                raise ValueError(
                    f"`val_speakers` not in the manifest. Received: {unknown}. "
                    f"Available: {self.speakers}"
                )
            shared = [s for s in names if s in self.train_only]
            if shared:
                raise ValueError(
                    f"`val_speakers` {shared} may only train (an id that several people share). "
                    f"Received: val_speakers={names}"
                )
            self.val_speakers = [str(s) for s in names]
        elif val_speakers is not None and (
            isinstance(val_speakers, bool) or val_speakers < 0
        ):
            raise ValueError(
                f"`val_speakers` must be a count >= 0 or a list of speakers. "
                f"Received: val_speakers={val_speakers!r}"
            )

    def fold(
        self, name, test_speakers, *, pool=None, test=None, emotions=(), keep=None
    ):
        """A fold testing on ``test_speakers``; train/val from ``pool``."""
        test_speakers = _sorted(set(test_speakers))
        if pool is None:
            pool = [s for s in self.speakers if s not in set(test_speakers)]
        pool = _sorted(pool)
        if not pool:
            raise ValueError(f"Fold {name!r} has no training speaker left.")
        # Validation is drawn from the speakers that may be held out.
        only = [s for s in pool if s in self.train_only]
        pool = [s for s in pool if s not in self.train_only]
        if isinstance(self.val_speakers, list):
            val = [s for s in self.val_speakers if s in set(pool)]
            if len(val) >= len(pool):
                raise ValueError(
                    f"Fold {name!r}: the validation speakers {val} leave no "
                    "training speaker."
                )
        elif self.corpus_of is None:
            val = self._choose_val(name, pool, name)
        else:
            by_corpus = {}
            for s in pool:
                by_corpus.setdefault(self.corpus_of[s], []).append(s)
            val = []
            for corpus in sorted(by_corpus):
                val += self._choose_val(
                    name, by_corpus[corpus], f"{name}:{corpus}", corpus=corpus
                )
            val = _sorted(val)
        train = _sorted([s for s in pool if s not in set(val)] + only)

        def pick(speakers):
            idx = _gather(self.table, speakers)
            if keep is not None:
                idx = tuple(i for i in idx if keep[i])
            return idx

        if test is None:
            test = pick(test_speakers)
        return Fold(
            name=name,
            train=pick(train),
            val=pick(val),
            test=test,
            train_speakers=tuple(train),
            val_speakers=tuple(val),
            test_speakers=tuple(test_speakers),
            emotions=tuple(emotions),
        )


    def _choose_val(self, name, pool, stream, *, corpus=None):
        """Validation speakers of ``pool`` by the count rule (seeded by ``stream``)."""
        where = f" (corpus {corpus})" if corpus else ""
        if self.val_speakers is None:
            count = default_val_count(pool, self.genders)
        else:
            count = int(self.val_speakers)
            if count >= len(pool):
                raise ValueError(
                    f"Fold {name!r}: val_speakers={count} leaves no training "
                    f"speaker{where} ({len(pool)} available: {pool})."
                )
        if count == 0 and self.val_speakers is None:
            logger.warning(
                "Fold %r: a single training speaker%s (%s), %s.",
                name,
                where,
                pool[0],
                "no validation speaker from it" if corpus else "no validation set",
            )
        return choose_speakers(pool, count, self.genders, _rng(self.seed, stream))


def _kfold(manifest, speakers, genders, seed, k, grouping, splitter):
    if grouping is None:
        grouping = "contiguous" if manifest.corpora() == ["ravdess"] else "shuffled"
    if grouping not in GROUPINGS:
        raise ValueError(
            f"Unknown grouping. Received: grouping={grouping!r}. Valid: {', '.join(GROUPINGS)}"
        )
    if k is None:
        k = 6 if (grouping == "contiguous" and manifest.corpora() == ["ravdess"]) else 5
    if (
        isinstance(k, bool)
        or not isinstance(k, (int, np.integer))
        or not 2 <= k <= len(speakers)
    ):
        raise ValueError(
            f"`k` must be an int in [2, number of speakers = {len(speakers)}]. Received: k={k!r}"
        )
    groups = _speaker_groups(speakers, genders, seed, k, grouping)
    return [splitter.fold(f"fold{i + 1}", group) for i, group in enumerate(groups)]


def _speaker_groups(speakers, genders, seed, k, grouping):
    """``speakers`` (naturally sorted) split into ``k`` groups."""
    if grouping == "contiguous":
        return [list(g) for g in np.array_split(np.array(speakers, dtype=object), k)]
    rng = np.random.default_rng([seed, zlib.crc32(b"kfold")])
    order = []
    for g in ("male", "female", None):
        if g is None:
            members = [s for s in speakers if genders.get(s) not in ("male", "female")]
        else:
            members = [s for s in speakers if genders.get(s) == g]
        order.extend(members[i] for i in rng.permutation(len(members)))
    return [order[i::k] for i in range(k)]


def _multi_folds(manifest, genders, seed, k, grouping, splitter):
    if grouping is not None and grouping not in GROUPINGS:
        raise ValueError(
            f"Unknown grouping. Received: grouping={grouping!r}. Valid: {', '.join(GROUPINGS)}"
        )
    corpora = manifest.corpora()
    by_corpus = {}
    train_only = set(manifest.train_only_speakers())
    for s, u in zip(manifest.speaker_ids(), manifest):
        if s not in train_only:  # Never tested.
            by_corpus.setdefault(u.corpus, set()).add(s)
    by_corpus = {c: _sorted(v) for c, v in by_corpus.items()}
    if k is None:
        k = 6 if "ravdess" in corpora else 5
    smallest = min(corpora, key=lambda c: len(by_corpus[c]))
    most = len(by_corpus[smallest])
    if (
        isinstance(k, bool)
        or not isinstance(k, (int, np.integer))
        or not 2 <= k <= most
    ):
        raise ValueError(
            f"`k` must be an int in [2, {most}]: every fold tests speakers of every "
            f"corpus, and {smallest} has {most} speakers. Received: k={k!r}"
        )
    groups = [[] for _ in range(int(k))]
    for corpus in corpora:
        rule = grouping or ("contiguous" if corpus == "ravdess" else "shuffled")
        for i, group in enumerate(
            _speaker_groups(by_corpus[corpus], genders, seed, int(k), rule)
        ):
            groups[i].extend(group)
    return [splitter.fold(f"fold{i + 1}", group) for i, group in enumerate(groups)]


def _loco_folds(manifest, splitter):
    corpora = manifest.corpora()
    if len(corpora) < 2:
        raise ValueError(
            "'loco' (leave one corpus out) needs a manifest of at least 2 corpora "
            f"(Manifest.concat). Received: corpora={corpora}"
        )
    per_corpus = {c: set() for c in corpora}
    for u in manifest:
        per_corpus[u.corpus].add(u.emotion)
    shared = emotions_lib.sort_emotions(set.intersection(*per_corpus.values()))
    if not shared:
        raise ValueError(
            "The corpora share no emotion, so no corpus can be tested on a model of "
            "the others. Received: "
            + "; ".join(
                f"{c}: {emotions_lib.sort_emotions(e)}" for c, e in per_corpus.items()
            )
        )
    keep = [u.emotion in set(shared) for u in manifest]
    ids = manifest.speaker_ids()
    train_only = set(manifest.train_only_speakers())
    folds = []
    for corpus in corpora:
        test = tuple(
            i for i, u in enumerate(manifest)
            if u.corpus == corpus and keep[i] and ids[i] not in train_only
        )
        pool = {ids[i] for i, u in enumerate(manifest) if u.corpus != corpus and keep[i]}
        folds.append(
            splitter.fold(
                f"loco-{corpus}",
                {ids[i] for i in test},
                pool=pool,
                test=test,
                emotions=shared,
                keep=keep,
            )
        )
    return folds


def _session_folds(manifest, splitter):
    sessions = [u.session for u in manifest]
    missing = sum(1 for s in sessions if s is None)
    if missing:
        raise ValueError(
            f"The 'session' protocol needs a session for every utterance; "
            f"{missing} of {len(sessions)} have none (corpus: {', '.join(manifest.corpora())})."
        )
    ids = manifest.speaker_ids()
    if len(manifest.corpora()) > 1:
        sessions = [f"{u.corpus}/{u.session}" for u in manifest]
    names = sorted(set(sessions), key=natural_key)
    if len(names) < 2:
        raise ValueError(
            f"The 'session' protocol needs at least 2 sessions. Received: {names}"
        )
    sessions_of = {}
    for s, session in zip(ids, sessions):
        sessions_of.setdefault(s, set()).add(session)
    folds = []
    for name in names:
        test = tuple(i for i, s in enumerate(sessions) if s == name)
        test_speakers = {ids[i] for i in test}
        shared = [s for s in test_speakers if len(sessions_of[s]) > 1]
        if shared:
            logger.warning(
                "Session %s: speakers %s also speak in other sessions; those "
                "utterances are left out of this fold.",
                name,
                _sorted(shared),
            )
        folds.append(splitter.fold(name, test_speakers, test=test))
    return folds


def _holdout(speakers, genders, seed, holdout_speakers):
    if holdout_speakers is None or isinstance(holdout_speakers, (int, np.integer)):
        if holdout_speakers is None:
            count = max(1, int(round(0.2 * len(speakers))))
        else:
            count = int(holdout_speakers)
        if isinstance(holdout_speakers, bool) or not 1 <= count < len(speakers):
            raise ValueError(
                f"`holdout_speakers` must leave at least one training speaker and "
                f"hold out at least one ({len(speakers)} speakers). "
                f"Received: holdout_speakers={holdout_speakers!r}"
            )
        return choose_speakers(speakers, count, genders, _rng(seed, "holdout"))
    names = (
        [holdout_speakers]
        if isinstance(holdout_speakers, str)
        else [str(s) for s in holdout_speakers]
    )
    unknown = [s for s in names if s not in set(speakers)]
    if unknown:
        raise ValueError(
            f"`holdout_speakers` not in the manifest. Received: {unknown}. Available: {speakers}"
        )
    if not names or len(set(names)) >= len(speakers):
        raise ValueError(
            "`holdout_speakers` must leave at least one training speaker and hold "
            f"out at least one. Received: holdout_speakers={names}"
        )
    return names


def _cross_check(manifest, test_manifest):
    if not isinstance(test_manifest, Manifest) or len(test_manifest) == 0:
        raise ValueError("`test_manifest` must be a non-empty Manifest.")
    common = emotions_lib.common_emotions(manifest, test_manifest)
    if not common:
        raise ValueError(
            "The two manifests share no emotion. Received: "
            f"{manifest.emotions()} and {test_manifest.emotions()}"
        )
    shared = {(u.corpus, u.speaker) for u in manifest} & {
        (u.corpus, u.speaker) for u in test_manifest
    }
    if shared:
        raise ValueError(
            "The training and test manifests share speakers, so a cross-corpus "
            f"split would not be speaker-independent. Shared: {sorted(shared)[:10]}"
        )
    return common


def _cross_fold(manifest, test_manifest, splitter):
    common = _cross_check(manifest, test_manifest)
    if set(manifest.corpora()) & set(test_manifest.corpora()):
        # Within one corpus, unknown test speakers could be training speakers.
        _refuse_unknown(test_manifest, "cross")
    keep = [u.emotion in set(common) for u in manifest]
    pool = _sorted({s for s, ok in zip(manifest.speaker_ids(), keep) if ok})
    test = tuple(i for i, u in enumerate(test_manifest) if u.emotion in set(common))
    test_ids = test_manifest.speaker_ids()
    test_speakers = _sorted({test_ids[i] for i in test})
    name = f"cross-{manifest.name}-to-{test_manifest.name}"
    fold = splitter.fold(name, [], pool=pool, test=test, emotions=common, keep=keep)
    return dataclasses.replace(fold, test_speakers=tuple(test_speakers))


# --- Random (speaker-mixing) splits ----------------------------------------------


def _stratified_take(indices, labels, fraction, rng):
    """Splits ``indices`` into (rest, taken) with ``fraction`` of each label."""
    taken = []
    for label in sorted(set(labels[i] for i in indices)):
        members = [i for i in indices if labels[i] == label]
        n = int(round(fraction * len(members)))
        taken.extend(members[j] for j in rng.permutation(len(members))[:n])
    taken = set(taken)
    return tuple(i for i in indices if i not in taken), tuple(sorted(taken))


def _random_folds(
    manifest, protocol, seed, k, test_manifest, val_fraction, test_fraction
):
    for name, value in (
        ("val_fraction", val_fraction),
        ("test_fraction", test_fraction),
    ):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"`{name}` must be in [0, 1). Received: {name}={value!r}")
    labels = [u.emotion for u in manifest]
    ids = manifest.speaker_ids()
    everything = tuple(range(len(manifest)))
    emotions = ()

    def make(name, train_pool, test, test_ids):
        train, val = _stratified_take(
            train_pool, labels, val_fraction, _rng(seed, "val-" + name)
        )
        return Fold(
            name=name,
            train=train,
            val=val,
            test=tuple(sorted(test)),
            train_speakers=tuple(_sorted({ids[i] for i in train})),
            val_speakers=tuple(_sorted({ids[i] for i in val})),
            test_speakers=tuple(_sorted({test_ids[i] for i in test})),
            emotions=emotions,
            speaker_independent=False,
        )

    if protocol == "kfold":
        k = 5 if k is None else k
        if (
            isinstance(k, bool)
            or not isinstance(k, (int, np.integer))
            or not 2 <= k <= len(manifest)
        ):
            raise ValueError(
                f"`k` must be an int in [2, {len(manifest)}]. Received: k={k!r}"
            )
        rng = _rng(seed, "random-kfold")
        assignment = np.zeros(len(manifest), dtype=np.int64)
        counter = 0
        for label in emotions_lib.sort_emotions(labels):
            members = [i for i in everything if labels[i] == label]
            for j in rng.permutation(len(members)):
                assignment[members[j]] = counter % k
                counter += 1
        folds = []
        for f in range(k):
            test = [i for i in everything if assignment[i] == f]
            pool = tuple(i for i in everything if assignment[i] != f)
            folds.append(make(f"fold{f + 1}", pool, test, ids))
        return folds
    if protocol == "holdout":
        pool, test = _stratified_take(
            everything, labels, test_fraction, _rng(seed, "random-holdout")
        )
        return [make("holdout", pool, test, ids)]
    if protocol == "all":
        return [make("all", everything, (), ids)]
    common = _cross_check(manifest, test_manifest)
    emotions = tuple(common)
    pool = tuple(i for i in everything if labels[i] in set(common))
    test = [i for i, u in enumerate(test_manifest) if u.emotion in set(common)]
    return [
        make(
            f"cross-{manifest.name}-to-{test_manifest.name}",
            pool,
            test,
            test_manifest.speaker_ids(),
        )
    ]


# --- Checks and files ---------------------------------------------------------


def check_fold(fold, manifest, *, test_manifest=None):
    """Verifies a fold against its manifest(s); raises ValueError if wrong.

    Checks that the indices are in range, that train, val and test are
    disjoint, that the speaker lists match the indices, and, for a
    speaker-independent fold, that no speaker is in two of the sets.
    """
    test_source = test_manifest if test_manifest is not None else manifest
    for field, source in (
        ("train", manifest),
        ("val", manifest),
        ("test", test_source),
    ):
        idx = getattr(fold, field)
        if len(set(idx)) != len(idx):
            raise ValueError(f"Fold {fold.name!r}: {field} has repeated indices.")
        if idx and (min(idx) < 0 or max(idx) >= len(source)):
            raise ValueError(
                f"Fold {fold.name!r}: {field} indices out of range for a manifest of "
                f"{len(source)} utterances (max index {max(idx)})."
            )
    sets = {"train": set(fold.train), "val": set(fold.val)}
    if test_manifest is None:
        sets["test"] = set(fold.test)
    names = list(sets)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            both = sets[names[a]] & sets[names[b]]
            if both:
                raise ValueError(
                    f"Fold {fold.name!r}: {len(both)} utterances are in both "
                    f"{names[a]} and {names[b]}."
                )
    ids = manifest.speaker_ids()
    test_ids = test_source.speaker_ids()
    actual = {
        "train": {ids[i] for i in fold.train},
        "val": {ids[i] for i in fold.val},
        "test": {test_ids[i] for i in fold.test},
    }
    for field in ("train", "val", "test"):
        declared = set(getattr(fold, f"{field}_speakers"))
        if actual[field] != declared:
            raise ValueError(
                f"Fold {fold.name!r}: {field}_speakers {_sorted(declared)} do not "
                f"match the speakers of the {field} indices {_sorted(actual[field])}."
            )
    if fold.speaker_independent:
        pairs = [("train", "val")]
        if test_manifest is None:
            pairs += [("train", "test"), ("val", "test")]
        else:
            a = {
                (manifest[i].corpus, manifest[i].speaker) for i in fold.train + fold.val
            }
            b = {(test_manifest[i].corpus, test_manifest[i].speaker) for i in fold.test}
            leaked = sorted(f"{c}/{s}" for c, s in a & b)
            if leaked:
                raise ValueError(
                    f"Fold {fold.name!r}: speakers {leaked} are in train/val and test."
                )
        for x, y in pairs:
            leaked = actual[x] & actual[y]
            if leaked:
                raise ValueError(
                    f"Fold {fold.name!r}: speakers {_sorted(leaked)} are in both {x} and {y}."
                )
    if fold.emotions:
        allowed = set(fold.emotions)
        bad = {manifest[i].emotion for i in fold.train + fold.val} - allowed
        bad |= {test_source[i].emotion for i in fold.test} - allowed
        if bad:
            raise ValueError(
                f"Fold {fold.name!r}: emotions {sorted(bad)} outside the fold's emotions {list(fold.emotions)}."
            )


def _manifest_record(manifest):
    if manifest is None:
        return None
    return {
        "name": manifest.name,
        "corpora": manifest.corpora(),
        "n": len(manifest),
        "fingerprint": manifest.fingerprint(),
    }


def write_folds(folds, manifest, path, *, test_manifest=None):
    """Writes folds to a JSON file (atomically), with speaker lists per fold.

    The manifest's size and fingerprint are stored so that
    :func:`read_folds` can tell when the corpus has changed since.
    """
    folds = list(folds)
    data = {
        "format": FOLDS_FORMAT,
        "version": FOLDS_VERSION,
        "manifest": _manifest_record(manifest),
        "test_manifest": _manifest_record(test_manifest),
        "folds": [f.to_dict() for f in folds],
    }
    fileio.atomic_write_text(path, json.dumps(data, indent=1) + "\n")


def read_folds(path, *, manifest=None, test_manifest=None):
    """Reads folds written by :func:`write_folds` (plain JSON, no code).

    Args:
        path: the JSON file.
        manifest: if given, the folds are checked against it: same
            fingerprint (the corpus has not changed) and :func:`check_fold`.
        test_manifest: the test manifest of ``"cross"`` folds, checked alike.

    Returns:
        list of :class:`Fold`.

    Raises:
        ValueError: not a folds file, or it does not match ``manifest``.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FOLDS_FORMAT:
        raise ValueError(f"{path}: not a folds file (no 'format': '{FOLDS_FORMAT}')")
    if data.get("version") != FOLDS_VERSION:
        raise ValueError(
            f"{path}: unsupported folds version. Received: version={data.get('version')!r}, "
            f"supported: {FOLDS_VERSION}"
        )
    if not isinstance(data.get("folds"), list):
        raise ValueError(f"{path}: 'folds' must be a list")
    try:
        folds = [Fold.from_dict(f) for f in data["folds"]]
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    for given, key in ((manifest, "manifest"), (test_manifest, "test_manifest")):
        if given is None:
            continue
        record = data.get(key)
        if not record:
            raise ValueError(
                f"{path}: written without a {key}, cannot check against one"
            )
        if record.get("fingerprint") != given.fingerprint() or record.get("n") != len(
            given
        ):
            raise ValueError(
                f"{path}: the folds were made for a different {key} "
                f"({record.get('name')}, {record.get('n')} utterances) than the one given "
                f"({given.name}, {len(given)} utterances): the corpus or the loader "
                "options changed. Make the folds again."
            )
    if manifest is not None:
        for fold in folds:
            try:
                check_fold(fold, manifest, test_manifest=test_manifest)
            except ValueError as exc:
                raise ValueError(f"{path}: {exc}") from None
    return folds
