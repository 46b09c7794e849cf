import json

import pytest

from speechmodel import datasets
from speechmodel.datasets import download, registry, thaiser
from speechmodel.datasets.ravdess import load_ravdess
from speechmodel.errors import ParameterError


def test_sources_and_loaders_name_the_same_corpora():
    sources = registry.load_sources()
    assert set(sources) <= set(registry.CORPORA)
    own_data = [n for n, c in registry.REGISTRY.items() if c.source is None]
    assert own_data == ["folder", "csv"]  # the only loaders without a published source
    assert registry.corpus_names(published=True) == [n for n in registry.corpus_names() if n in sources]
    assert download.corpora() == registry.corpus_names(published=True)
    assert datasets.corpus_names() == list(datasets.CORPORA) == list(registry.REGISTRY)


def test_every_alias_is_known_to_the_loaders_and_the_downloader():
    for name, src in registry.load_sources().items():
        for alias in [name, *src["aliases"], name.upper()]:
            assert datasets.corpus_name(alias) == name, alias
            assert download.source(alias) == src, alias
    for spelling in ("vistec", "VISTEC", "Thai SER", "thai-ser"):
        assert datasets.corpus_name(spelling) == "thaiser"
        assert registry.corpus(spelling).loader is thaiser.load_thaiser
    assert datasets.ALIASES["vistec"] == "thaiser" and datasets.ALIASES["berlin"] == "emodb"


def test_corpus_entry_has_loader_source_licence_and_layout():
    ravdess = registry.corpus("RAVDESS")
    assert ravdess.loader is load_ravdess
    assert ravdess.licence == "CC BY-NC-SA 4.0" and ravdess.access == "download"
    assert ravdess.layout["pattern"] == "Actor_*/*.wav" and ravdess.layout["expected_files"] == 1440
    assert "include_song" in ravdess.options
    assert registry.corpus("iemocap").access == "licence-gated"
    folder = registry.corpus("folder")
    assert folder.source is None and folder.licence is None and folder.access is None
    assert folder.title == "folder"


def test_unknown_name_lists_the_corpora_in_registry_order():
    with pytest.raises(ValueError) as info:
        registry.corpus_name("mspodcast")
    assert isinstance(info.value, ParameterError)
    assert str(info.value).endswith("Known corpora: " + ", ".join(registry.corpus_names()))
    with pytest.raises(ValueError, match=r"Received: name=3\b"):
        registry.corpus_name(3)
    with pytest.raises(ValueError, match=r"Known corpora: ravdess, emodb, tess, savee, cremad, iemocap, thaiser, nemo, emospeech") as info:
        registry.corpus_name("folder", among=registry.load_sources())
    assert str(info.value).endswith("Known corpora: " + ", ".join(registry.corpus_names(published=True)))


def test_a_source_without_a_loader_is_refused(tmp_path):
    table = json.loads(registry.SOURCES_PATH.read_text())
    table["corpora"]["vistec"] = table["corpora"].pop("thaiser")
    path = tmp_path / "sources.json"
    path.write_text(json.dumps(table))
    with pytest.raises(registry.RegistryError, match=r"corpus 'vistec': no loader of that name"):
        registry.load_sources(path)
    table["corpora"]["thaiser"] = table["corpora"].pop("vistec")
    table["corpora"]["thaiser"]["aliases"] = "vistec"
    path.write_text(json.dumps(table))
    with pytest.raises(registry.RegistryError, match=r"aliases must be a list.*'vistec'"):
        registry.load_sources(path)


def test_a_corpus_is_its_loader_module_and_its_sources_entry(tmp_path):
    """The registry and the package name no corpus: each published corpus
    is its ``sources.json`` entry and ``load_<name>`` of ``<name>.py``."""
    import ast

    for name in registry.corpus_names(published=True):
        assert registry.corpus(name).loader.__module__ == f"speechmodel.datasets.{name}"
        assert registry.corpus(name).loader.__name__ == f"load_{name}"
    folder = registry.SOURCES_PATH.parent
    for module in ("registry.py", "__init__.py"):
        tree = ast.parse((folder / module).read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not imported & set(registry.corpus_names(published=True)), module
    # An entry whose module is missing, or defines no load_<name>, is refused.
    table = json.loads(registry.SOURCES_PATH.read_text())
    for name in ("newcorpus", "manifest", "folder"):
        table["corpora"][name] = table["corpora"]["ravdess"]
        path = tmp_path / "sources.json"
        path.write_text(json.dumps(table))
        with pytest.raises(registry.RegistryError, match=rf"corpus '{name}': no loader of that name"):
            registry.load_sources(path)
        del table["corpora"][name]
