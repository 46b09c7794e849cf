"""`pip install .` makes a library: import speechmodel from anywhere, the
console commands, the shipped models, and no top-level `datasets` package.

The package is built from a copy of the checkout (so no build/ or
egg-info is left in it) into a fresh virtual environment that sees this
interpreter's packages (the pinned stack and the pinned build requirements,
setuptools and wheel, of requirements-test.txt), with no network and no
dependency resolution: `pip install --no-deps --no-build-isolation
--no-index`.
"""

import json
import os
import shutil
import pathlib
import subprocess
import sys
import sysconfig
import venv

import pytest

from tests.paths import REPO, ravdess_files

# slow: builds and installs the package into a fresh virtual environment (left out by -m "not slow").
pytestmark = pytest.mark.slow

CLIP = ravdess_files("Actor_24/*.wav")[0]
CLASSES = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
SOURCES = ("speechmodel", "configs")
FILES = ("pyproject.toml", "setup.py", "requirements.txt", "README.md", "LICENSE")


def _source_copy(target):
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES:
        shutil.copytree(REPO / name, target / name, ignore=ignore)
    for name in FILES:
        shutil.copy(REPO / name, target / name)
    return target


def _env():
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def _run(args, cwd, timeout=300, status=0):
    out = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == status, f"{args}: exit {out.returncode}\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return out.stdout


def _venv(path):
    """A virtual environment that sees this interpreter's packages (the
    pinned stack, the build requirements): a ``.pth`` file names them, so
    it works the same under a venv of a venv, where ``system_site_packages``
    would show the base interpreter's packages instead."""
    venv.EnvBuilder(with_pip=False).create(path)
    python = path / "bin" / "python"
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    pathlib.Path(_site_packages(python, path), "_outer_environment.pth").write_text("\n".join(ours) + "\n")
    return python


def _pip_install(python, *args, cwd):
    # The venv has no pip of its own: this interpreter's pip installs into it.
    _run([sys.executable, "-m", "pip", "--python", python, "install", "-q",
          "--no-deps", "--no-build-isolation", "--no-index", *args], cwd=cwd)


def _site_packages(python, cwd):
    return _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd).strip()


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("install")
    source = _source_copy(root / "src")
    python = _venv(root / "venv")
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    _pip_install(python, str(source), cwd=elsewhere)
    return python, elsewhere


def test_pip_install_gives_the_library_and_no_top_level_datasets(installed):
    python, elsewhere = installed
    site = _site_packages(python, elsewhere)
    assert os.path.isfile(os.path.join(site, "speechmodel", "presets", "fast.keras"))
    assert os.path.isfile(os.path.join(site, "speechmodel", "presets", "fast.md"))
    assert os.path.isfile(os.path.join(site, "speechmodel", "datasets", "ravdess.py"))
    for data in ("sources.json", "EMOTIONS.md"):
        assert os.path.isfile(os.path.join(site, "speechmodel", "datasets", data))
    assert os.path.isfile(os.path.join(site, "speechmodel", "configs", "ravdess.json"))
    assert not os.path.exists(os.path.join(site, "datasets"))
    records = [
        line.split(",")[0]
        for name in os.listdir(site) if name.startswith("speechmodel-") and name.endswith(".dist-info")
        for line in open(os.path.join(site, name, "RECORD"))
    ]
    assert records and all(not r.startswith("datasets/") for r in records)
    # The library only: no test module, no test helpers, no test runner.
    assert not [r for r in records if r.endswith(("_test.py", "conftest.py")) or "/tests/" in r]
    metadata = next(os.path.join(site, n, "METADATA") for n in os.listdir(site)
                    if n.startswith("speechmodel-") and n.endswith(".dist-info"))
    requires = [line.split(":", 1)[1].strip().lower() for line in open(metadata)
                if line.startswith("Requires-Dist:")]
    assert requires and not [r for r in requires if r.startswith(("pytest", "selenium", "httpx"))]
    info = json.loads(_run([python, "-c", (
        "import json, speechmodel; from speechmodel import datasets; "
        "from speechmodel.training.config import default_config_path; "
        "print(json.dumps([speechmodel.__file__, datasets.__name__, datasets.CORPORA['ravdess'].__module__, "
        "default_config_path('ravdess')]))"
    )], elsewhere))
    assert info[0].startswith(site)
    assert info[1] == "speechmodel.datasets" and info[2] == "speechmodel.datasets.ravdess"
    assert info[3].startswith(site)
    listing = _run([python, "-m", "speechmodel.datasets.download", "--list"], elsewhere)
    assert "ravdess" in listing and "nemo" in listing


def test_console_commands_and_the_one_liner(installed):
    python, elsewhere = installed
    bin_dir = python.parent
    table = _run([bin_dir / "speechmodel-infer", "--model", "fast", CLIP], elsewhere)
    label = table.splitlines()[1].split()[1]
    assert label in CLASSES
    one_liner = _run([python, "-c", (
        "import speechmodel; print(speechmodel.load_model('fast').classify(%r).label)" % CLIP
    )], elsewhere)
    assert one_liner.strip().splitlines()[-1] == label
    # The same help (and status: --help exits 0) as the scripts.
    # (The flags are listed under the program's path.)
    for command, script, status, words in (
        ("speechmodel-train", "train.py", 0, ("--dataset", "--protocol", "Speaker-independent")),
        ("speechmodel-infer", "infer.py", 0, ("--window", "--top_k", "Recognise the emotion")),
    ):
        usage = _run([bin_dir / command, "--help"], elsewhere, status=status)
        assert all(w in usage for w in words)
        script_usage = _run([sys.executable, REPO / script, "--help"], REPO, status=status)
        assert usage.replace(str(bin_dir / command), "PROG") == script_usage.replace(str(REPO / script), "PROG")
    usage = _run([bin_dir / "speechmodel-serve", "--help"], elsewhere)
    assert "--port" in usage or "--host" in usage
    usage = _run([bin_dir / "speechmodel-batch", "--help"], elsewhere)
    assert all(w in usage for w in ("--engine", "--address", "--embed", "resumably"))


def test_editable_install(tmp_path):
    source = _source_copy(tmp_path / "src")
    python = _venv(tmp_path / "venv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _pip_install(python, "-e", str(source), cwd=elsewhere)
    names = json.loads(_run([python, "-c", (
        "import json, speechmodel; from speechmodel import datasets; "
        "print(json.dumps([speechmodel.__file__, datasets.__file__]))"
    )], elsewhere))
    assert names[0] == str(source / "speechmodel" / "__init__.py")
    assert names[1] == str(source / "speechmodel" / "datasets" / "__init__.py")
    assert not os.path.exists(os.path.join(_site_packages(python, elsewhere), "datasets"))
