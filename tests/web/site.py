"""What the browser tests' server fixtures give a test, and the server they start."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn

from api.app import create_app
from api.server import server_config
from rag.engine import Engine


@dataclass
class Site:
    """A running server: its base URL and the engine behind it."""

    base: str
    engine: Engine


def free_port() -> int:

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class _Running:
    server: uvicorn.Server
    thread: threading.Thread


def start_server(engine: Engine, **overrides: Any) -> tuple[str, _Running]:
    """Serve `engine` (with its settings, `overrides` on top) on a free loopback port, in a thread."""
    values: dict[str, Any] = {"api_keys": None, "admin_keys": None, "cors_origins": None}
    values.update(overrides)
    settings = engine.settings.model_copy(update={"port": free_port(), **values})
    server = uvicorn.Server(server_config(create_app(settings, engine=engine), settings))
    thread = threading.Thread(target=server.run, name="uvicorn-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the web test server did not start")
        time.sleep(0.02)
    return f"http://127.0.0.1:{settings.port}", _Running(server, thread)


def stop_server(running: _Running) -> None:
    """Stop a server `start_server` started."""
    running.server.should_exit = True
    running.thread.join(timeout=15)
