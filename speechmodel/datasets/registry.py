"""The one registry of corpora: name -> loader, aliases, source, licence, layout.

Every published corpus the toolkit knows is one entry of ``sources.json``
(data, read with ``json.load``): where it comes from (download files and
checksums), its licence, its aliases and the layout its loader expects, in
the order corpora are listed. Its loader is ``load_<name>`` of the module
``speechmodel/datasets/<name>.py``, which also holds its emotion codes
(``LABELS``). Adding a corpus is that module (with its ``*_test.py``) and
its entry here: ``load`` / ``corpus_name`` (the loaders,
``train.py --dataset``) and ``python -m speechmodel.datasets.download`` all
read this module, so a name or alias known to one is known to all::

    from speechmodel.datasets import registry
    registry.corpus_names()            # ['ravdess', 'emodb', ..., 'folder', 'csv']
    registry.corpus("vistec").name     # 'thaiser' (VISTEC's THAI SER corpus)
    registry.corpus("emo-db").licence  # 'no formal licence stated; ...'

``folder`` and ``csv`` load the user's own data: they have a loader but no
source (nothing to download).
"""

import dataclasses
import importlib
import inspect
import json
import re
from pathlib import Path
from typing import Callable, Mapping

from speechmodel.errors import Error, ParameterError

from .csv_manifest import load_csv
from .folder import load_folder

SOURCES_PATH = Path(__file__).resolve().with_name("sources.json")
ACCESS_KINDS = ("download", "manual", "licence-gated")

# The loaders of the user's own data, listed after the published corpora.
_OWN_DATA = {"folder": load_folder, "csv": load_csv}

_HEX = re.compile(r"[0-9a-f]+")
_CORPUS_NAME = re.compile(r"[a-z][a-z0-9_]*")


class RegistryError(Error, ValueError):
    """``sources.json`` is unreadable or malformed, or disagrees with the loaders."""


@dataclasses.dataclass(frozen=True)
class Corpus:
    """One corpus of the registry.

    Attributes:
        name: canonical name (a key of :data:`CORPORA`).
        loader: ``loader(data_dir, **options) -> Manifest``.
        aliases: other accepted spellings (from ``sources.json``).
        source: the ``sources.json`` entry (title, homepage, licence, access,
            files, layout, ...), or None for the user's own data
            (``folder``, ``csv``).
    """

    name: str
    loader: Callable
    aliases: tuple = ()
    source: Mapping | None = None

    @property
    def title(self):
        return self.source["title"] if self.source else self.name

    @property
    def licence(self):
        """The licence of the published corpus (None for your own data)."""
        return self.source["licence"] if self.source else None

    @property
    def access(self):
        """``"download"``, ``"manual"``, ``"licence-gated"``, or None (your own data)."""
        return self.source["access"] if self.source else None

    @property
    def layout(self):
        """``sources.json``'s layout: pattern, expected_files, required, example, description."""
        return self.source["layout"] if self.source else None

    @property
    def options(self):
        """The keyword options of the loader."""
        return [
            p.name
            for p in inspect.signature(self.loader).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        ]


# --------------------------------------------------------------------------
# sources.json
# --------------------------------------------------------------------------
def load_sources(path=SOURCES_PATH):
    """Reads and validates ``sources.json`` (or another file of its format).

    Returns:
        A dict mapping canonical corpus names to their descriptions.

    Raises:
        RegistryError: the file is missing, not JSON, or malformed; the
            message names the file, the corpus and the field.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise RegistryError(f"Cannot read corpus sources {path}: {e}") from None
    corpora = data.get("corpora") if isinstance(data, dict) else None
    if not isinstance(corpora, dict) or not corpora:
        raise RegistryError(f"{path}: expected an object with a non-empty 'corpora' mapping.")
    for key, src in corpora.items():
        _validate_source(path, key, src)
    return corpora


def _validate_source(path, key, src):
    def bad(msg):
        return RegistryError(f"{path}: corpus {key!r}: {msg}")

    if _loader(key) is None:
        raise bad(
            f"no loader of that name: speechmodel/datasets/{key}.py must define load_{key} "
            "(the corpus' loader)."
        )
    if not isinstance(src, dict):
        raise bad("must be an object.")
    for field in ("title", "homepage", "licence", "licence_url", "access", "layout"):
        if not src.get(field):
            raise bad(f"missing field {field!r}.")
    if src["access"] not in ACCESS_KINDS:
        raise bad(f"access must be one of {ACCESS_KINDS}. Received: access={src['access']!r}")
    aliases = src.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
        raise bad(f"aliases must be a list of names. Received: aliases={aliases!r}")
    layout = src["layout"]
    if not isinstance(layout, dict) or not isinstance(layout.get("pattern"), str):
        raise bad("layout.pattern must be a string.")
    expected = layout.get("expected_files")
    if expected is not None and (not isinstance(expected, int) or expected <= 0):
        raise bad(f"layout.expected_files must be a positive integer or null. Received: {expected!r}")
    for rel in layout.get("required", []):
        if not _is_plain_relpath(rel):
            raise bad(f"layout.required entries must be relative paths. Received: {rel!r}")
    files = src.get("files", [])
    if not isinstance(files, list):
        raise bad("files must be a list.")
    if src["access"] == "download" and not files:
        raise bad("a corpus with access 'download' needs at least one entry in files.")
    if src["access"] != "download" and not src.get("instructions"):
        raise bad(f"a corpus with access {src['access']!r} needs 'instructions'.")
    for entry in files:
        name = entry.get("filename")
        if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
            raise bad(f"files[].filename must be a plain file name. Received: {name!r}")
        urls = entry.get("urls")
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
            raise bad(f"{name}: urls must be a non-empty list of strings.")
        for algo, length in (("md5", 32), ("sha256", 64)):
            value = entry.get(algo)
            if value is not None and not is_hex(value, length):
                raise bad(f"{name}: {algo} must be {length} hex digits or null. Received: {value!r}")
        size = entry.get("size")
        if size is not None and (not isinstance(size, int) or size <= 0):
            raise bad(f"{name}: size must be a positive integer or null. Received: {size!r}")


def _loader(name):
    """``load_<name>`` of the module ``speechmodel.datasets.<name>``, or None."""
    if not isinstance(name, str) or not _CORPUS_NAME.fullmatch(name) or name in _OWN_DATA:
        return None
    try:
        module = importlib.import_module(f"{__package__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.{name}":
            raise
        return None
    loader = getattr(module, f"load_{name}", None)
    return loader if callable(loader) else None


def is_hex(value, length):
    """True if ``value`` is ``length`` lower-case hexadecimal digits."""
    return isinstance(value, str) and len(value) == length and bool(_HEX.fullmatch(value))


def _is_plain_relpath(rel):
    if not isinstance(rel, str) or not rel or rel.startswith(("/", "\\")):
        return False
    return ".." not in rel.replace("\\", "/").split("/")


# --------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------
def _build(sources):
    published = {
        name: Corpus(name, _loader(name), tuple(src.get("aliases", [])), src)
        for name, src in sources.items()
    }
    return {**published, **{name: Corpus(name, loader) for name, loader in _OWN_DATA.items()}}


REGISTRY = _build(load_sources())
CORPORA = {name: c.loader for name, c in REGISTRY.items()}
ALIASES = {alias: c.name for c in REGISTRY.values() for alias in c.aliases}


def _normalise(name):
    return re.sub(r"[\s_\-]", "", name.strip().lower())


_LOOKUP = {_normalise(a): c.name for c in REGISTRY.values() for a in (c.name, *c.aliases)}


def corpus_names(*, published=False):
    """The canonical corpus names, in registry order.

    Args:
        published: only the corpora with a source (not ``folder``/``csv``).
    """
    return [n for n, c in REGISTRY.items() if c.source or not published]


def corpus_name(name, *, among=None):
    """The canonical name of ``name``: case, ``-``/``_``/spaces and aliases
    (``"EMO-DB"``, ``"crema d"``, ``"vistec"``) forgiven.

    Args:
        name: a corpus name or alias.
        among: the names allowed (default: every corpus), e.g. the corpora
            with a download source.

    Raises:
        ParameterError: unknown corpus; the message lists the known ones.
    """
    allowed = list(REGISTRY) if among is None else [n for n in REGISTRY if n in among]
    key = _LOOKUP.get(_normalise(name)) if isinstance(name, str) else None
    if key not in allowed:
        raise ParameterError(
            f"Unknown corpus. Received: name={name!r}. Known corpora: {', '.join(allowed)}"
        )
    return key


def corpus(name):
    """The :class:`Corpus` of ``name`` (aliases accepted)."""
    return REGISTRY[corpus_name(name)]


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
        ParameterError: unknown corpus or option (the message lists the
            valid options).
        CorpusError: ``data_dir`` does not look like the corpus.
    """
    entry = corpus(name)
    valid = entry.options
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ParameterError(
            f"Unknown option for the {entry.name} loader. Received: {unknown}. "
            f"Valid options: {', '.join(valid) if valid else 'none'}"
        )
    return entry.loader(data_dir, **options)
