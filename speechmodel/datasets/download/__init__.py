"""Download speech emotion corpora: ``python -m speechmodel.datasets.download NAME --to DIR``.

Every corpus is described once, in the registry (:mod:`speechmodel.datasets.registry`
and ``speechmodel/datasets/sources.json``): where it comes from, its licence, the
checksum or size its distributor publishes, and the directory layout the
loaders expect.

Corpora whose licence allows it are downloaded automatically. The transfer,
progress, checksum verification and unpacking are pooch's
(``pooch.retrieve``, ``HTTPDownloader``, ``Unzip``/``Untar``); this module
adds what pooch does not do:

* resume: bytes go to ``<name>.part`` and an interrupted or truncated
  download continues with an HTTP ``Range`` request (a server that ignores
  ``Range`` makes the download restart cleanly from byte 0);
* the published size, and a clear message when no checksum is published
  (then the file count of the extracted corpus is checked instead);
* safe extraction: members with absolute paths, ``..`` components or links,
  names too long for the file system and file/folder clashes are refused
  before anything is written (no "zip slip");
* the layout check, and an atomic install: archives are extracted into a
  temporary directory next to DIR that is renamed to DIR only once the
  layout has been checked, so an interrupted run never leaves a half-filled
  DIR that looks complete; a DIR that already holds the complete corpus is
  left alone.

Licence-gated corpora (IEMOCAP, SAVEE) and corpora without a single archive
(CREMA-D) are never fetched: the command prints what to request, where, and
where to put the files, and exits with status 2.

The modules: ``status`` (the sources, ``check``, ``hint``), ``transfer``
(``fetch``), ``archives`` (``extract``), ``install`` (``download``), ``cli``
(the command line); ``errors`` holds ``DownloadError`` and its kinds.

Examples:

    python -m speechmodel.datasets.download --list
    python -m speechmodel.datasets.download ravdess --to data/ravdess
    python -m speechmodel.datasets.download ravdess --to data/ravdess --url https://mirror.example/ravdess.zip
    python -m speechmodel.datasets.download iemocap --to data/iemocap   # prints instructions, exit 2
"""

from .archives import extract, is_archive
from .errors import (
    ChecksumError,
    CorruptArchiveError,
    DownloadError,
    HTTPStatusError,
    IncompleteDownloadError,
    LayoutError,
    ManualDownloadRequired,
    NetworkError,
    UnsafeArchiveError,
)
from .install import download
from .status import CorpusStatus, check, corpora, hint, load_sources, source
from .transfer import fetch
