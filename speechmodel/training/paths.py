"""The files and folders a config names, checked before anything runs:
corpus folders (and a CSV manifest's encoding), ``protocol.folds``,
``model.weights``, ``training.init_from``, the caches and the run
directory (:func:`check_paths`, :func:`check_writable`)."""

import os

from speechmodel.training.corpora import corpus_specs
from speechmodel.training.defaults import ConfigError, get_key
from speechmodel.training.schema import FRONT_ENDS, model_kind

# Weights a CNN backbone takes by name (else: a file).
CNN_WEIGHT_NAMES = ("imagenet",)
FRONT_END_WEIGHT_NAMES = ("pretrained", "random") + FRONT_ENDS


def check_paths(config, *, output_dir=None):
    """Checks the files and folders a config names, before anything runs:
    corpus folders (or the CSV file of ``csv``), ``protocol.folds``,
    ``model.weights`` and ``training.init_from`` files exist, and the run
    directory (``output_dir``, default the config's) can be created and
    written.

    Raises:
        ConfigError: names the key and the path.
    """
    for spec in corpus_specs(config["dataset"]):
        _check_corpus_path(spec["name"], spec["data_dir"])
    if config["dataset"]["test_name"] and config["dataset"]["test_data_dir"]:
        _check_corpus_path(config["dataset"]["test_name"], config["dataset"]["test_data_dir"])
    folds = config["protocol"]["folds"]
    if folds and not os.path.isfile(folds):
        raise ConfigError(f"protocol.folds: no such file. Received: folds={folds!r}")
    model = config["model"]
    weights = model.get("weights")
    kind = model_kind(model)
    names = FRONT_END_WEIGHT_NAMES if kind == "front_end" else CNN_WEIGHT_NAMES
    if isinstance(weights, str) and weights not in names and not os.path.exists(weights):
        raise ConfigError(
            f"model.weights (--weights): no such file, and not one of {', '.join(names)} or none. "
            f"Received: weights={weights!r}"
        )
    init = config["training"]["init_from"]
    if init is not None:
        from speechmodel import presets
        from speechmodel.inference.loading import resolve_model

        try:
            path = resolve_model(init)
        except ValueError:
            path = None
        if not (path and path.endswith(".keras") and os.path.isfile(path)):
            why = "no such file or folder" if not os.path.exists(init) else (
                "a folder without model.keras" if os.path.isdir(init) else "not a .keras file")
            raise ConfigError(
                "training.init_from (--init_from) takes a saved .keras model, a shipped model's "
                f"name ({', '.join(sorted(presets.PRESETS))}) or a run directory holding "
                f"model.keras: {why}. Received: init_from={init!r}"
            )
    for key in ("training.embedding_cache",):
        path = get_key(config, key)
        if path:
            check_writable(path, key)
    cache = config["training"]["cache"]
    if cache and cache != "memory":
        check_writable(cache, "training.cache")
    target = output_dir or config["output_dir"]
    if target:
        check_writable(target, "output_dir (--output_dir)")


def check_writable(path, what):
    """``path`` is a folder that exists and can be written, or can be
    created (its nearest existing parent is a writable folder). Tried, not
    guessed from permission bits (root passes ``os.access`` everywhere, and
    /proc refuses even root): a folder is made and removed there."""
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise ConfigError(f"{what}: {path} is a file, not a folder.")
        _probe(path, f"{what}: {path} is not writable")
        return
    parent = os.path.dirname(path)
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ConfigError(f"{what}: {path} cannot be created: {parent} is a file, not a folder.")
    _probe(parent, f"{what}: {path} cannot be created: {parent} is not writable")


def _probe(folder, message):
    """Makes and removes an empty folder in ``folder``; ConfigError(message
    and the system's reason) when that fails."""
    import tempfile

    try:
        os.rmdir(tempfile.mkdtemp(prefix=".speechmodel-probe-", dir=folder))
    except OSError as exc:
        raise ConfigError(f"{message} ({exc.strerror or exc}).") from None


def _check_corpus_path(name, data_dir):
    """A corpus folder that exists (the runner explains a missing one, with
    the download hint); for ``csv``, a CSV file (or a folder holding
    manifest.csv) that is UTF-8 text."""
    if not data_dir or str(name).strip().lower() != "csv":
        return
    path = os.path.abspath(os.path.expanduser(data_dir))
    if os.path.isdir(path):
        path = os.path.join(path, "manifest.csv")
    if not os.path.isfile(path):
        return  # the loader's message names the expected layout
    try:
        with open(path, encoding="utf-8-sig") as f:
            while f.read(1 << 20):
                pass
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"dataset.data_dir: the CSV manifest {path} is not UTF-8 text ({exc.reason} at byte "
            f"{exc.start}); save it as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)."
        ) from None
    except OSError as exc:
        raise ConfigError(f"dataset.data_dir: cannot read {path} ({exc.strerror or exc}).") from None
