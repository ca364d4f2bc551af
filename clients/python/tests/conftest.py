"""Fixtures for the client's tests. The package is imported from src/ (it need not be
installed), so the app's `make test` runs these tests too."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from sdk_fakes import API_KEY, FakeServer


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def client(server: FakeServer):
    from reviewapp_client import Client

    c = Client("https://review.test", API_KEY, transport=httpx.MockTransport(server.handle), backoff_factor=0.5)
    c._clock = server.clock
    c._sleep = server.clock.sleep
    yield c
    c.close()


@pytest.fixture
def make_async_client(server: FakeServer):
    from reviewapp_client import AsyncClient

    def make() -> AsyncClient:
        c = AsyncClient(
            "https://review.test", API_KEY, transport=httpx.MockTransport(server.handle), backoff_factor=0.5
        )
        c._clock = server.clock
        c._sleep = server.clock.asleep
        return c

    return make
