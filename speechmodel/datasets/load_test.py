import inspect

import pytest

from speechmodel import datasets
from speechmodel.datasets import registry


def test_corpora_registry():
    assert list(datasets.CORPORA) == [*registry.load_sources(), "folder", "csv"]
    assert list(datasets.CORPORA)[:9] == [
        "ravdess",
        "emodb",
        "tess",
        "savee",
        "cremad",
        "iemocap",
        "thaiser",
        "nemo",
        "emospeech",
    ]
    for name, loader in datasets.CORPORA.items():
        params = list(inspect.signature(loader).parameters.values())
        assert params[0].name == "data_dir", name
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:]), name
        assert loader.__doc__, name


def test_corpus_names_and_aliases():
    assert datasets.corpus_name("EMO-DB") == "emodb"
    assert datasets.corpus_name("crema-d") == "cremad"
    assert datasets.corpus_name("Thai_SER") == "thaiser"
    assert datasets.corpus_name("vistec") == "thaiser"  # VISTEC's THAI SER corpus
    with pytest.raises(ValueError, match=r"name='mspodcast'.*ravdess, emodb"):
        datasets.corpus_name("mspodcast")


@pytest.mark.parametrize("name", list(datasets.CORPORA))
def test_missing_directory_is_a_corpus_error_naming_the_corpus(name, tmp_path):
    with pytest.raises(datasets.CorpusError) as info:
        datasets.load(name, tmp_path / "nowhere")
    assert info.value.corpus == name
    assert "Expected:" in str(info.value) and "nowhere" in str(info.value)


def test_unknown_option_lists_valid_ones(tmp_path):
    with pytest.raises(
        ValueError, match=r"\['classes_'\].*classes, merge_excited, improvised_only"
    ):
        datasets.load("iemocap", tmp_path, classes_="4")
    with pytest.raises(ValueError, match="Valid options: none"):
        datasets.load("emodb", tmp_path, foo=1)


def test_an_alias_loads_the_corpus_under_its_canonical_name(tmp_path):
    with pytest.raises(datasets.CorpusError) as info:
        datasets.load("VISTEC", tmp_path / "nowhere")
    assert info.value.corpus == "thaiser"
    with pytest.raises(ValueError, match=r"Received: name='vistec-2'.*Known corpora: ravdess"):
        datasets.load("vistec-2", tmp_path)
