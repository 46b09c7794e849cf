"""Corpus loaders, the emotion vocabulary and speaker-independent protocols.

Load a corpus into a :class:`Manifest` of labelled utterances::

    import datasets
    manifest = datasets.load("ravdess", "/data/ravdess")
    print(manifest.summary())
    folds = datasets.make_folds(manifest, "kfold")     # 6 speaker folds

Several corpora are joined into one manifest (speakers become
``"<corpus>/<speaker>"``) and split by corpus or by speakers inside each::

    both = datasets.Manifest.concat(
        [datasets.load("ravdess", "/data/ravdess"), datasets.load("nemo", "/data/nemo")]
    )
    folds = datasets.make_folds(both, "loco")     # leave one corpus out
    folds = datasets.make_folds(both, "multi")    # fold i: group i of every corpus

``CORPORA`` maps every corpus name to its loader; ``load(name, data_dir,
**options)`` calls it. A folder that does not look like the corpus raises
:class:`CorpusError`. Files that do not fit the corpus' scheme are listed in
``Manifest.problems`` with the reason, never dropped silently. Audio is not
decoded here.
"""

import inspect

from .balance import class_weights, oversample
from .cremad import load_cremad
from .csv_manifest import load_csv
from .emodb import load_emodb
from .emotions import (
    EMOTIONS,
    canonical_emotion,
    common_emotions,
    map_emotion,
    parse_emotions,
)
from .folder import load_folder
from .iemocap import load_iemocap
from .manifest import (
    AUDIO_EXTENSIONS,
    UNKNOWN_SPEAKER,
    CorpusError,
    Manifest,
    Problem,
    Utterance,
)
from .nemo import load_nemo
from .protocols import (
    PROTOCOLS,
    Fold,
    check_fold,
    make_folds,
    read_folds,
    write_folds,
)
from .ravdess import load_ravdess
from .savee import load_savee
from .tess import load_tess
from .thaiser import load_thaiser

CORPORA = {
    "ravdess": load_ravdess,
    "emodb": load_emodb,
    "tess": load_tess,
    "savee": load_savee,
    "cremad": load_cremad,
    "iemocap": load_iemocap,
    "thaiser": load_thaiser,
    "nemo": load_nemo,
    "folder": load_folder,
    "csv": load_csv,
}

# Other spellings accepted by ``load``.
ALIASES = {
    "emo-db": "emodb",
    "emo_db": "emodb",
    "berlin": "emodb",
    "crema-d": "cremad",
    "crema_d": "cremad",
    "crema": "cremad",
    "thai-ser": "thaiser",
    "thai_ser": "thaiser",
    "thai": "thaiser",
}


def corpus_name(name):
    """The canonical corpus name of ``name`` (case and aliases forgiven).

    Raises:
        ValueError: unknown corpus; the message lists the known ones.
    """
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in CORPORA:
        raise ValueError(
            f"Unknown corpus. Received: name={name!r}. Known: {', '.join(CORPORA)}"
        )
    return key


def load(name, data_dir, **options):
    """Loads a corpus by name.

    Args:
        name: a key of :data:`CORPORA` (or an alias such as ``"emo-db"``).
        data_dir: the corpus folder (for ``"csv"``: the CSV file).
        **options: keyword options of the corpus' loader, e.g.
            ``include_song=True`` for RAVDESS, ``classes="4"`` for IEMOCAP.

    Returns:
        :class:`Manifest`.

    Raises:
        ValueError: unknown corpus or option (the message lists the valid
            options).
        CorpusError: ``data_dir`` does not look like the corpus.
    """
    key = corpus_name(name)
    loader = CORPORA[key]
    valid = [
        p.name
        for p in inspect.signature(loader).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"Unknown option for the {key} loader. Received: {unknown}. "
            f"Valid options: {', '.join(valid) if valid else 'none'}"
        )
    return loader(data_dir, **options)


__all__ = [
    "ALIASES",
    "AUDIO_EXTENSIONS",
    "CORPORA",
    "EMOTIONS",
    "PROTOCOLS",
    "UNKNOWN_SPEAKER",
    "CorpusError",
    "Fold",
    "Manifest",
    "Problem",
    "Utterance",
    "canonical_emotion",
    "check_fold",
    "class_weights",
    "common_emotions",
    "corpus_name",
    "load",
    "load_cremad",
    "load_csv",
    "load_emodb",
    "load_folder",
    "load_iemocap",
    "load_nemo",
    "load_ravdess",
    "load_savee",
    "load_tess",
    "load_thaiser",
    "make_folds",
    "map_emotion",
    "oversample",
    "parse_emotions",
    "read_folds",
    "write_folds",
]
