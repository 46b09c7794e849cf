import importlib
import inspect
import os
import pkgutil
import tempfile

import pytest

import speechmodel
from speechmodel import errors
from speechmodel.fileio import atomic_path, atomic_write_text

# Modules whose exception classes are the toolkit's public errors. Private
# control-flow exceptions (a leading underscore) are not errors a caller sees.
# The thin CLIs (speechmodel.cli) define absl flags at import: not imported.
_SKIP = ("_test", "__main__")


def _modules():
    names = []
    for info in pkgutil.walk_packages(speechmodel.__path__, "speechmodel."):
        if not info.name.endswith(_SKIP) and not info.name.startswith(("speechmodel.tests", "speechmodel.cli")):
            names.append(info.name)
    return names


def test_every_public_exception_derives_from_the_root():
    found = []
    for name in _modules():
        try:
            module = importlib.import_module(name)
        except ImportError:  # an optional extra (e.g. sounddevice's PortAudio)
            continue
        for attr, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and not issubclass(value, Warning)
                and value.__module__ == module.__name__
                and not attr.startswith("_")
            ):
                found.append(value)
                assert issubclass(value, errors.Error), f"{name}.{attr} is not a speechmodel.Error"
    # AudioError, ConfigError, ModelError, CorpusError, DownloadError and more.
    assert len(found) >= 15, found


def test_root_is_reachable_from_the_package_and_keeps_builtin_bases():
    from speechmodel.audio import AudioError

    assert speechmodel.Error is errors.Error
    assert issubclass(speechmodel.ParameterError, ValueError)
    assert issubclass(AudioError, ValueError) and issubclass(AudioError, speechmodel.Error)


def test_atomic_path_replaces_only_on_success():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.weights.h5")
        atomic_write_text(path, "old")
        with pytest.raises(RuntimeError):
            with atomic_path(path) as tmp:
                assert tmp.endswith(".weights.h5") and os.path.dirname(tmp) == d
                with open(tmp, "w") as f:
                    f.write("half")
                raise RuntimeError("killed")
        assert open(path).read() == "old"
        assert os.listdir(d) == ["model.weights.h5"]
        with atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                f.write("new")
        assert open(path).read() == "new"
        assert os.listdir(d) == ["model.weights.h5"]


def test_is_number():
    import numpy as np

    assert all(errors.is_number(v) for v in (0, 1.5, -3, float("inf"), np.float32(2.0), np.int64(3)))
    assert not any(errors.is_number(v) for v in (True, False, None, "1.5", [1.0], np.zeros(2)))
