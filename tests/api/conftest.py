"""Fixtures shared by the HTTP tests: one engine and one in-process client per test module.

A module that needs documents in place first overrides `engine` (or `client`) with a fixture of
the same name that takes this one and adds them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
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
