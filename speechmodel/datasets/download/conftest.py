"""The fixtures of the download tests: ``serve`` starts local HTTP servers
(``speechmodel.tests.download_server.Server``), shut down after each test;
automatic resumes do not wait."""

import pytest

from speechmodel.datasets.download import transfer
from speechmodel.tests.download_server import Server


@pytest.fixture
def serve():
    servers = []

    def start(files, **kwargs):
        s = Server(files, **kwargs)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


@pytest.fixture(autouse=True)
def _no_retry_wait(monkeypatch):
    monkeypatch.setattr(transfer, "_RETRY_WAIT_S", 0.0)
