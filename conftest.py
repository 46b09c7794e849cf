"""Test-session settings shared by every test folder.

The embedding cache of the toolkit defaults to ``~/.cache/speechmodel``
(``speechmodel.training.embeddings.default_cache_dir``): tests, and the
train.py / infer.py processes they start, use a fresh folder instead, so
that a test run never fills or reads a user's cache.
"""

import os
import shutil
import tempfile

_CACHE = tempfile.mkdtemp(prefix="speechmodel-test-cache-")
os.environ["SPEECHMODEL_CACHE"] = _CACHE


def pytest_unconfigure(config):
    shutil.rmtree(_CACHE, ignore_errors=True)
