"""The corpora of a config's ``dataset`` section: one corpus, or several
(listed in ``dataset.corpora`` or given as comma lists, see
``speechmodel.training.config``), as a list of ``{"name", "data_dir",
"options"}`` dicts (:func:`corpus_specs`)."""

from speechmodel.training.defaults import ConfigError

_CORPUS_KEYS = ("name", "data_dir", "options")


def _split_list(value):
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value]
    return [v.strip() for v in str(value).split(",")]


def corpus_specs(dataset):
    """The corpora of a ``dataset`` section: a list of ``{"name",
    "data_dir", "options"}`` dicts (one for a single corpus).

    Raises:
        ConfigError: an inconsistent description of several corpora (see
            ``speechmodel.training.config``); the message quotes the value.
    """
    name, data_dir, options = dataset.get("name"), dataset.get("data_dir"), dataset.get("options")
    entries = dataset.get("corpora")
    if entries is None:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"dataset.name must be a corpus name. Received: name={name!r}")
        names = [n.strip() for n in name.replace("+", ",").split(",")]
        if len(names) == 1:
            return [{"name": name.strip(), "data_dir": data_dir, "options": options or {}}]
        if options:
            raise ConfigError(
                "dataset.options apply to a single corpus; give each corpus its options in "
                f"dataset.corpora. Received: name={name!r}, options={options!r}"
            )
        entries = [{"name": n} for n in names]
    else:
        if not isinstance(entries, list) or not entries:
            raise ConfigError(
                "dataset.corpora must be a non-empty list of {\"name\", \"data_dir\", \"options\"} "
                f"objects. Received: corpora={entries!r}"
            )
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise ConfigError(
                    f"Each of dataset.corpora needs a \"name\". Received: {entry!r}"
                )
            unknown = sorted(set(entry) - set(_CORPUS_KEYS))
            if unknown:
                raise ConfigError(
                    f"Unknown key in dataset.corpora: {unknown}; known: {list(_CORPUS_KEYS)}. "
                    f"Received: {entry!r}"
                )
            if not isinstance(entry.get("options") or {}, dict):
                raise ConfigError(
                    f"dataset.corpora[].options must be an object. Received: {entry!r}"
                )
        listed = [e["name"].strip() for e in entries]
        named = [n.strip() for n in str(name).replace("+", ",").split(",")]
        if [n.lower() for n in named] != [n.lower() for n in listed]:
            raise ConfigError(
                "dataset.name must name the corpora of dataset.corpora, in order "
                f"(or be left out): {','.join(listed)!r}. Received: name={name!r}"
            )
        if options:
            raise ConfigError(
                "With dataset.corpora, give options per corpus (dataset.corpora[].options). "
                f"Received: options={options!r}"
            )
    names = [e["name"].strip() for e in entries]
    if not all(names):
        raise ConfigError(f"Empty corpus name in the list. Received: name={name!r}")
    repeated = sorted({n for n in names if [m.lower() for m in names].count(n.lower()) > 1})
    if repeated:
        raise ConfigError(
            "A corpus is listed twice, so the same speakers could be in training and "
            f"test. Received: {repeated}"
        )
    dirs = [e.get("data_dir") for e in entries]
    if data_dir not in (None, ""):
        dirs = _split_list(data_dir)
        if len(dirs) != len(entries):
            raise ConfigError(
                f"dataset.data_dir must give one directory per corpus ({len(entries)}: "
                f"{', '.join(names)}), separated by commas (--data_dir A,B; $SER_DATA_DIR "
                f"sets it when --data_dir is not given). Received: data_dir={data_dir!r}"
            )
    return [
        {"name": n, "data_dir": d or None, "options": dict(e.get("options") or {})}
        for n, d, e in zip(names, dirs, entries)
    ]
