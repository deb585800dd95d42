"""Fixtures shared by the HTTP tests: one engine and one in-process client per test module, and
a real uvicorn server on a loopback port.

A module that needs documents in place first overrides `engine` (or `client`) with a fixture of
the same name that takes this one and adds them.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.server import server_config
from rag.config import Settings
from rag.embed.base import Embedder
from rag.engine import Engine


@pytest.fixture(scope="module")
def engine(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    use_embedder: Embedder,
) -> Iterator[Engine]:
    """An empty engine of the module's own, with the shared embedder and no keys or CORS
    configured (whatever the environment says)."""
    settings = Settings(
        index_dir=tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]),
        api_keys=None,
        admin_keys=None,
        cors_origins=None,
    )
    engine = Engine(settings, embedder=use_embedder)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def client(engine: Engine) -> Iterator[TestClient]:
    """An in-process client of an app serving `engine`."""
    with TestClient(create_app(engine.settings, engine=engine)) as c:
        yield c


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _uvicorn(engine: Engine, **overrides: Any) -> Iterator[tuple[str, FastAPI]]:
    values: dict[str, Any] = {"api_keys": None, "admin_keys": None, "cors_origins": None}
    values.update(overrides)
    settings = Settings(index_dir=engine.settings.index_dir, port=free_port(), **values)
    app = create_app(settings, engine=engine)
    server = uvicorn.Server(server_config(app, settings))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the in-process server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{settings.port}", app
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="session")
def uvicorn_server() -> Callable[..., AbstractContextManager[tuple[str, FastAPI]]]:
    """Factory: `with uvicorn_server(engine, header_timeout=1.0, …) as (base, app):` serves `engine`
    with the app and uvicorn configuration `rag serve` uses (`api.server.server_config`), the given
    settings overriding the defaults (no keys or CORS), on a free loopback port, in a thread of
    this process; the server stops when the block ends."""
    return _uvicorn
