"""Corpus loaders, the emotion vocabulary and speaker-independent protocols.

Load a corpus into a :class:`Manifest` of labelled utterances::

    from speechmodel import datasets
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

The one registry of corpora is :mod:`speechmodel.datasets.registry` (each
corpus' source, licence and layout in ``sources.json``, its loader
``load_<name>`` in ``<name>.py``): ``CORPORA`` maps every corpus name to its
loader, ``corpus_names()`` lists them, ``corpus(name)``
gives the whole entry, ``corpus_name(name)`` resolves aliases (``"emo-db"``,
``"vistec"``) and ``load(name, data_dir, **options)`` calls the loader. A
folder that does not look like the corpus raises :class:`CorpusError`.
Files that do not fit the corpus' scheme are listed in
``Manifest.problems`` with the reason, never dropped silently. Audio is not
decoded here.
"""

from .balance import class_weights, oversample
from .csv_manifest import load_csv
from .emotions import (
    EMOTIONS,
    canonical_emotion,
    common_emotions,
    map_emotion,
    parse_emotions,
)
from .folder import load_folder
from .manifest import (
    AUDIO_EXTENSIONS,
    UNKNOWN_SPEAKER,
    CorpusError,
    Manifest,
    Problem,
    Utterance,
)
from .protocols import (
    PROTOCOLS,
    Fold,
    check_fold,
    make_folds,
    read_folds,
    write_folds,
)
from .registry import (
    ALIASES,
    CORPORA,
    REGISTRY,
    Corpus,
    corpus,
    corpus_name,
    corpus_names,
    load,
)

__all__ = [
    "ALIASES",
    "AUDIO_EXTENSIONS",
    "CORPORA",
    "Corpus",
    "EMOTIONS",
    "REGISTRY",
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
    "corpus",
    "corpus_name",
    "corpus_names",
    "load",
    "load_csv",
    "load_folder",
    "make_folds",
    "map_emotion",
    "oversample",
    "parse_emotions",
    "read_folds",
    "write_folds",
]
