"""One emotion vocabulary for every corpus.

Every loader maps the corpus' own codes to the canonical names below, so that
manifests of different corpora can be mixed, compared and restricted to the
emotions they share (cross-corpus experiments). The canonical order is the
order of :data:`EMOTIONS`; it is the order used whenever a set of emotions is
listed (``Manifest.emotions()``, ``common_emotions``).

Canonical names, in order::

    neutral, calm, happy, sad, angry, fearful, disgust, surprised,
    boredom, frustrated, excited, other

How each corpus' codes map is its loader's ``LABELS``
(``speechmodel/datasets/<corpus>.py``; ``corpus_labels()`` gathers them in
registry order): ``speechmodel/datasets/EMOTIONS.md`` shows them as one table
(``markdown_table()``), with notes on the codes.

Free-form names (folder names, CSV columns, ``--emotions`` flags) go through
:func:`canonical_emotion`, which also accepts common synonyms such as
``anger``, ``happiness``, ``fear``, ``sadness``, ``surprise`` or ``ps``.
"""

import functools
import importlib

EMOTIONS = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
    "boredom",
    "frustrated",
    "excited",
    "other",
)

_ORDER = {name: i for i, name in enumerate(EMOTIONS)}

# Synonyms accepted wherever a person types an emotion name. Keys are
# lower-case; spaces and hyphens are read as underscores.
SYNONYMS = {
    "neu": "neutral",
    "neutrality": "neutral",
    "calmness": "calm",
    "hap": "happy",
    "happiness": "happy",
    "joy": "happy",
    "sadness": "sad",
    "ang": "angry",
    "anger": "angry",
    "fear": "fearful",
    "fea": "fearful",
    "afraid": "fearful",
    "anxiety": "fearful",
    "anxious": "fearful",
    "dis": "disgust",
    "disgusted": "disgust",
    "sur": "surprised",
    "surprise": "surprised",
    "ps": "surprised",
    "pleasant_surprise": "surprised",
    "pleasant_surprised": "surprised",
    "bored": "boredom",
    "fru": "frustrated",
    "frustration": "frustrated",
    "exc": "excited",
    "excitement": "excited",
    "oth": "other",
    "others": "other",
}

def _key(name):
    return str(name).strip().lower().replace(" ", "_").replace("-", "_")


def is_emotion(name):
    """Whether ``name`` is a canonical emotion name (synonyms excluded)."""
    return name in _ORDER


def canonical_emotion(name):
    """The canonical name of ``name`` (a canonical name or a synonym).

    Args:
        name: e.g. ``"angry"``, ``"Anger"``, ``"fear"``, ``"ps"``.

    Returns:
        str, one of :data:`EMOTIONS`.

    Raises:
        ValueError: ``name`` is neither; the message lists the valid names.
    """
    key = _key(name)
    if key in _ORDER:
        return key
    if key in SYNONYMS:
        return SYNONYMS[key]
    raise ValueError(
        f"Unknown emotion name. Received: emotion={name!r}. Valid names: "
        f"{', '.join(EMOTIONS)} (synonyms such as anger, happiness, fear, "
        "sadness, surprise, ps are accepted too)."
    )


@functools.cache
def _corpus_modules():
    """The loader module of every published corpus, in registry order."""
    from . import registry

    return {
        name: importlib.import_module(registry.corpus(name).loader.__module__)
        for name in registry.corpus_names(published=True)
    }


def corpus_labels():
    """Each published corpus' own codes -> canonical names: the ``LABELS``
    of its loader's module (``speechmodel/datasets/<corpus>.py``), in
    registry order."""
    return {name: module.LABELS for name, module in _corpus_modules().items()}


def corpus_emotion(corpus, code):
    """The canonical emotion of a corpus' own code.

    Args:
        corpus: a published corpus, e.g. ``"emodb"``.
        code: the corpus' code, e.g. ``"W"`` (matched lower-case for the
            corpora whose spelling varies: ``LABELS_ANY_CASE``).

    Returns:
        str, one of :data:`EMOTIONS`.

    Raises:
        ValueError: unknown corpus or code; the message lists the valid codes.
    """
    modules = _corpus_modules()
    if corpus not in modules:
        raise ValueError(
            f"No label table for this corpus. Received: corpus={corpus!r}. "
            f"Known: {', '.join(sorted(modules))}"
        )
    table = modules[corpus].LABELS
    lookup = _key(code) if getattr(modules[corpus], "LABELS_ANY_CASE", False) else code
    if lookup not in table:
        raise ValueError(
            f"Unknown {corpus} emotion code. Received: code={code!r}. "
            f"Valid codes: {', '.join(table)}"
        )
    return table[lookup]


def sort_emotions(names):
    """Canonical names sorted in the vocabulary's order (duplicates removed)."""
    unique = set(names)
    for name in unique:
        if name not in _ORDER:
            canonical_emotion(name)  # raises with the list of valid names
            raise ValueError(
                "Expected canonical emotion names, not synonyms. "
                f"Received: emotion={name!r}"
            )
    return sorted(unique, key=_ORDER.__getitem__)


def parse_emotions(spec):
    """Parses and validates a list of emotions, e.g. from a command line.

    Args:
        spec: a comma-separated string (``"angry,happy,neutral,sad"``) or a
            sequence of names. Synonyms are mapped to canonical names.

    Returns:
        list of canonical names, in the order given (this order defines the
        class indices of a model trained on them).

    Raises:
        ValueError: empty list, unknown name or a name given twice (also
            through a synonym, e.g. ``"angry,anger"``).
    """
    if isinstance(spec, str):
        items = [s for s in (p.strip() for p in spec.split(",")) if s]
    else:
        items = [str(s).strip() for s in spec]
    if not items:
        raise ValueError(
            f"Expected at least one emotion. Received: emotions={spec!r}. "
            f"Valid names: {', '.join(EMOTIONS)}"
        )
    result = []
    for item in items:
        name = canonical_emotion(item)
        if name in result:
            raise ValueError(
                f"Emotion listed twice. Received: emotions={spec!r} "
                f"({item!r} is {name!r}, already listed)"
            )
        result.append(name)
    return result


def common_emotions(manifest_a, manifest_b):
    """Emotions present in both manifests, in canonical order.

    Used to restrict a cross-corpus experiment (train on one corpus, test on
    another) to the classes both corpora have.

    Args:
        manifest_a, manifest_b: ``datasets.Manifest`` objects (anything with
            an ``emotions()`` method, or an iterable of emotion names).

    Returns:
        list of canonical names; may be empty.
    """

    def names(m):
        return set(m.emotions()) if hasattr(m, "emotions") else set(m)

    return sort_emotions(names(manifest_a) & names(manifest_b))


def map_emotion(token, emotion_map=None):
    """The canonical emotion of a free-form label, with an optional user map.

    Args:
        token: a label as written in a folder name, file name or CSV cell.
        emotion_map: optional dict from the user's own labels (matched
            case-insensitively) to canonical names or synonyms, e.g.
            ``{"joy": "happy", "irritated": "angry"}``; it takes precedence.

    Returns:
        str, one of :data:`EMOTIONS`.

    Raises:
        ValueError: ``token`` maps to no canonical name.
    """
    if emotion_map:
        lowered = {_key(k): v for k, v in emotion_map.items()}
        if _key(token) in lowered:
            return canonical_emotion(lowered[_key(token)])
    return canonical_emotion(token)


def check_emotion_map(emotion_map):
    """Validates the values of a user emotion map; returns it as a dict."""
    if emotion_map is None:
        return None
    if not isinstance(emotion_map, dict):
        raise ValueError(
            "`emotion_map` must be a dict from your labels to emotion names. "
            f"Received: emotion_map={emotion_map!r}"
        )
    for key, value in emotion_map.items():
        try:
            canonical_emotion(value)
        except ValueError as exc:
            raise ValueError(f"`emotion_map[{key!r}]`: {exc}") from None
    return dict(emotion_map)


def markdown_table():
    """The corpus-code table as Markdown (``speechmodel/datasets/EMOTIONS.md`` holds it)."""
    tables = corpus_labels()
    used = [e for e in EMOTIONS if any(e in t.values() for t in tables.values())]
    lines = [
        "| corpus | " + " | ".join(used) + " |",
        "| --- | " + " | ".join("---" for _ in used) + " |",
    ]
    for corpus, table in tables.items():
        cells = []
        for emotion in used:
            codes = [f"`{c}`" for c, e in table.items() if e == emotion]
            cells.append(", ".join(codes))
        lines.append(f"| {corpus} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
