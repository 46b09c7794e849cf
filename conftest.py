"""Test-session settings shared by every test folder.

The suite runs on one process per core, at most 4 (pytest.ini: ``-n auto
--maxprocesses=4``, pytest-xdist; ``--dist loadfile``: a file's tests stay
together, so their module fixtures are made once).

The embedding cache of the toolkit defaults to ``~/.cache/speechmodel``
(``speechmodel.training.embeddings.default_cache_dir``): tests, and the
train.py / infer.py processes they start, use a fresh folder instead, so
that a test run never fills or reads a user's cache. (The ONNX conversions
of the shipped models are kept in ``SPEECHMODEL_TEST_ONNX_CACHE``, see
``speechmodel/inference/onnx_backend_test.py``.)
"""

import os
import shutil
import tempfile

import pytest

_CACHE = tempfile.mkdtemp(prefix="speechmodel-test-cache-")
os.environ["SPEECHMODEL_CACHE"] = _CACHE
# The tests of the Keras path (tiny models made on the fly, the Keras
# objects behind a loaded model) run Keras; the ONNX Runtime path, the
# default for users (runtime "auto"), is tested on the shipped models by
# speechmodel/inference/onnx_backend_test.py, which asks for it.
os.environ.setdefault("SPEECHMODEL_RUNTIME", "keras")


def pytest_unconfigure(config):
    shutil.rmtree(_CACHE, ignore_errors=True)


def _printable(text):
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Captured output and logs that name a non-UTF-8 file (the reliability
    tests make such names on purpose) are escaped in the test report, which
    pytest-xdist sends between processes as UTF-8."""
    outcome = yield
    report = outcome.get_result()
    report.sections = [(title, _printable(content)) for title, content in report.sections]
