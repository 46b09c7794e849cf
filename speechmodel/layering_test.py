"""The layers never climb back up: file -> audio -> signal/features ->
model -> result -> command. Checked on the source (every ``import``, at
the top or inside a function), so that a lazy import cannot hide a cycle;
and no module of the package imports, at its top, one that imports it
back (directly or through others)."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent  # speechmodel/

# The low modules and what they must never import (a package and its
# submodules).
UPPER = ("speechmodel.inference", "speechmodel.models", "speechmodel.training",
         "speechmodel.api", "speechmodel.cli", "speechmodel.serve", "speechmodel.stream",
         "speechmodel.pipeline", "speechmodel.export")
LOW = {
    "speechmodel/signal.py": UPPER,
    "speechmodel/audio": UPPER,
    "speechmodel/features.py": UPPER,
    "speechmodel/config.py": UPPER,
    "speechmodel/errors.py": UPPER,
    "speechmodel/fileio.py": UPPER,
    "speechmodel/speaker_statistics.py": UPPER,
    # The table of the shipped models: names and files, nothing that loads them.
    "speechmodel/presets": UPPER,
    # The name tables read by train.py's validation: no TensorFlow, no model
    # module (the classes are imported by name when a model is built).
    "speechmodel/models/registry.py": ("tensorflow", "keras", "speechmodel.models.backbones",
                                       "speechmodel.models.speech_model", "speechmodel.models.segment_classifier",
                                       "speechmodel.models.audio_speech_model"),
    "speechmodel/models/frontends.py": ("tensorflow", "keras", "speechmodel.models.whisper.whisper_segment_embedder"),
    "speechmodel/models/whisper/whisper_config.py": ("tensorflow", "keras"),
    "speechmodel/training/schema.py": ("tensorflow", "keras", "speechmodel.models.backbones"),
    "speechmodel/audio_sources.py": UPPER,
    # Inference uses the models, never the command, the API or the server
    # (nor the audio sources: it takes blocks, whatever gives them).
    "speechmodel/inference": ("speechmodel.cli", "speechmodel.api", "speechmodel.serve",
                              "speechmodel.training", "speechmodel.stream", "speechmodel.audio_sources"),
}

# Modules that share names through a third one and never import each other.
APART = [
    ("speechmodel/cli/infer_command.py", "speechmodel.cli.stream_command"),
    ("speechmodel/cli/stream_command.py", "speechmodel.cli.infer_command"),
    ("speechmodel/classical/registry.py", "speechmodel.classical.classifiers"),
    ("speechmodel/classical/registry.py", "speechmodel.classical.grid_search"),
    ("speechmodel/classical/grid_search.py", "speechmodel.classical.classifiers"),
]


def imported_modules(path, source=None):
    """Every module ``path`` imports (``from speechmodel import x`` counts
    as ``speechmodel.x``; relative imports are resolved)."""
    source = path.read_text() if source is None else source
    found = set()
    for base, names in import_statements(ast.walk(ast.parse(source, filename=str(path))), path):
        found.add(base)
        found.update(f"{base}.{name}" for name in names)
    return found


def import_statements(nodes, path):
    """``(module, names)`` of each import among ``nodes`` of ``path``'s
    code: ``import a.b`` gives ``("a.b", ())``, ``from .x import y, z``
    ``("package.x", ("y", "z"))`` (relative imports resolved)."""
    package = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts[:-1])
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            yield base, tuple(alias.name for alias in node.names)


def sources(entry):
    path = ROOT.parent / entry
    if path.is_dir():
        return sorted(p for p in path.rglob("*.py") if not p.name.endswith("_test.py") and p.name != "conftest.py")
    return [path]


def climbs(modules, forbidden):
    return sorted(m for m in modules for f in forbidden if m == f or m.startswith(f + "."))


@pytest.mark.parametrize("entry", sorted(LOW))
def test_low_modules_import_nothing_above_them(entry):
    for path in sources(entry):
        assert climbs(imported_modules(path), LOW[entry]) == [], path


@pytest.mark.parametrize("entry, forbidden", APART)
def test_modules_that_share_names_do_not_import_each_other(entry, forbidden):
    assert climbs(imported_modules(ROOT.parent / entry), (forbidden,)) == []


def test_the_stream_module_is_gone():
    assert not (ROOT / "stream.py").exists() and not (ROOT / "stream").exists()


def module_names():
    """Every module of the package -> its file."""
    names = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def top_level_imports(path, modules):
    """The package's modules that ``path`` imports when it is imported:
    the imports at its top (also under ``if`` and ``try``, not inside a
    function or class). ``from package import name`` is the submodule when
    ``name`` is one, else the package; a module's own packages are left
    out (Python imports them before it)."""
    name = next(n for n, p in modules.items() if p == path)
    nodes = []
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        nodes += list(ast.walk(node)) if isinstance(node, (ast.If, ast.Try)) else [node]
    found = set()
    for base, names in import_statements(nodes, path):
        if not names:  # import a.b
            found.add(base)
        found.update(f"{base}.{n}" if f"{base}.{n}" in modules else base for n in names)
    out = set()
    for imported in found:
        while imported and imported not in modules:  # A name in a module: the module.
            imported = imported.rpartition(".")[0]
        if imported and imported != name and not name.startswith(imported + "."):
            out.add(imported)
    return out


def import_cycle(graph):
    """One cycle of ``graph`` (module -> modules) as a list, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle_among_the_modules():
    modules = module_names()
    graph = {
        name: top_level_imports(path, modules)
        for name, path in modules.items()
        if not path.name.endswith("_test.py") and path.name != "conftest.py"
    }
    assert import_cycle(graph) is None


def test_the_cycle_search_finds_a_cycle():
    assert import_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert import_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    modules = module_names()
    found = top_level_imports(ROOT / "cli" / "stream_command.py", modules)
    assert {"speechmodel.audio_sources", "speechmodel.cli.common", "speechmodel.inference.streaming"} <= found
    assert "speechmodel.cli" not in found  # Its own package.


def test_the_check_sees_lazy_and_relative_imports():
    found = imported_modules(ROOT / "inference" / "predictor.py")
    assert "speechmodel.config" in found and "numpy" in found  # One inside a method.
    source = "def f():\n    from ..cli import flag_names\n    from . import results\n"
    assert imported_modules(ROOT / "inference" / "x.py", source) >= {
        "speechmodel.cli.flag_names", "speechmodel.inference.results"
    }
    assert climbs({"speechmodel.cli.flag_names", "speechmodel.client"}, ("speechmodel.cli",)) == [
        "speechmodel.cli.flag_names"
    ]


def test_the_package_root_only_re_exports():
    """``speechmodel/__init__.py`` defines no loader of its own and imports
    nothing of the toolkit (every name comes lazily from its module), so
    that no module below imports it back for a function."""
    import ast

    path = ROOT / "__init__.py"
    tree = ast.parse(path.read_text())
    functions = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    assert functions <= {"__getattr__", "__dir__"}, functions
    assert [m for m in imported_modules(path) if m.startswith("speechmodel")] == []


def test_one_way_to_load_a_model():
    """One resolver (``inference.loading.resolve_model``), one loader per
    layer, one table of shipped names: no module reaches for the root's
    old loaders or the removed copies."""
    gone = {"speechmodel.load_keras_model", "speechmodel.check_config_size", "speechmodel.presets.resolve_model",
            "speechmodel.serve.resolve_model", "speechmodel.inference.DEFAULT_MODEL"}
    for path in sorted(ROOT.rglob("*.py")):
        found = imported_modules(path) & gone
        assert not found, (path, found)
        if path.name != "api.py":
            assert "speechmodel.load_model" not in imported_modules(path) or path.name.endswith("_test.py"), path


# The corpus loaders are ``speechmodel.datasets``: no top-level ``datasets``
# package of ours (it would shadow Hugging Face's), and no code that imports
# one, in the library, the scripts, the benchmarks or the tests.
REPO = ROOT.parent


def _repository_sources():
    for folder in ("speechmodel", "tests", "benchmarks"):
        yield from sorted((REPO / folder).rglob("*.py"))
    yield from sorted(REPO.glob("*.py"))


def test_no_top_level_datasets_package_and_no_import_of_one():
    # (A folder left holding only __pycache__ from before the move is no package.)
    assert not list((REPO / "datasets").rglob("*.py"))
    importers = [
        str(path.relative_to(REPO))
        for path in _repository_sources()
        if any(m == "datasets" or m.startswith("datasets.") for m in imported_modules(path))
    ]
    assert importers == []


def test_importing_the_loaders_leaves_datasets_to_others():
    import subprocess
    import sys

    code = (
        "import sys, speechmodel, speechmodel.datasets, speechmodel.datasets.download\n"
        "found = sys.modules.get('datasets')\n"
        "print(found is None or not str(getattr(found, '__file__', '')).startswith(sys.argv[1]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(REPO)], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_augmentation_settings_need_no_tensorflow():
    """Config validation checks ``training.augment`` with the settings
    alone: they never import TensorFlow or the operations."""
    found = imported_modules(ROOT / "augment" / "settings.py")
    # speechmodel.errors (is_number) imports the standard library alone.
    found -= {"speechmodel.errors", "speechmodel.errors.is_number"}
    assert imported_modules(ROOT / "errors.py") == {"numbers"}
    assert not [m for m in found if m.startswith(("tensorflow", "keras", "speechmodel"))]
    assert (ROOT / "augment" / "__init__.py").read_text().lstrip().startswith('"""')
    assert imported_modules(ROOT / "augment" / "__init__.py") == set()
