"""The minimal HTTP surface: health, readiness, search and ask, JSON errors; in-process and on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rag.config import Settings
from rag.embed.base import Embedder
from rag.engine import Engine

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def engine(corpus_engine: Engine) -> Engine:
    return corpus_engine


@pytest.fixture()
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine.settings, engine=engine)) as c:
        yield c


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "documents": None, "chunks": None}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["documents"] == 5 and ready["chunks"] > 100


def test_readyz_is_503_before_the_index_loads(engine: Engine) -> None:
    app = create_app(engine.settings, engine=engine)
    with TestClient(app) as c:  # lifespan ran: ready
        assert c.get("/readyz").status_code == 200
    raw = TestClient(app)  # no lifespan: nothing loaded
    assert raw.get("/readyz").status_code == 503
    r = raw.post("/v1/search", json={"query": "长三角"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready"


def test_readyz_waits_for_the_search_helpers(
    tmp_path: Path, use_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An English question asked while the glossary and romanised vocabulary are being built
    would wait seconds for them: until they are, the server is not ready."""
    from rag.write import indexer

    release = threading.Event()
    real_warm = indexer.warm

    def slow_warm(*args: Any, **kwargs: Any) -> None:
        release.wait(30)
        real_warm(*args, **kwargs)

    monkeypatch.setattr(indexer, "warm", slow_warm)
    engine = Engine(Settings(index_dir=tmp_path / "idx"), embedder=use_embedder)
    try:
        with TestClient(create_app(engine.settings, engine=engine)) as c:
            r = c.get("/readyz")
            assert r.status_code == 503 and r.json()["status"] == "loading"
            release.set()
            deadline = time.monotonic() + 30
            while engine.warming and time.monotonic() < deadline:
                time.sleep(0.05)
            assert c.get("/readyz").status_code == 200
    finally:
        release.set()
        engine.close()


def test_search_returns_passages_from_the_right_document(client: TestClient) -> None:
    r = client.post("/v1/search", json={"query": "碳谷2023年的税收是多少？", "top_k": 3})
    assert r.status_code == 200
    body = r.json()
    assert len(body["results"]) == 3 and body["took_ms"] >= 0
    top = body["results"][0]
    assert top["source"] == "000_965c51176a816a9d.txt" and "43.58亿元" in top["text"]


def test_search_filter_by_source(client: TestClient) -> None:
    src = "003_0f6ae98e24ad4755.txt"
    r = client.post(
        "/v1/search", json={"query": "长三角", "top_k": 5, "filter": {"sources": [src]}}
    )
    assert r.status_code == 200
    assert {p["source"] for p in r.json()["results"]} == {src}


def test_ask_cites_exact_quotes(client: TestClient) -> None:
    body = client.post("/v1/ask", json={"question": "湖州有几大新兴产业？"}).json()
    assert body["answerable"] and body["citations"]
    for c in body["citations"]:
        p = body["passages"][c["marker"] - 1]
        assert p["text"][c["start"] - p["start"] : c["end"] - p["start"]] == c["quote"]


def test_ask_refuses_off_topic(client: TestClient) -> None:
    body = client.post("/v1/ask", json={"question": "2024年诺贝尔物理学奖授予了谁？"}).json()
    assert body["answerable"] is False and body["citations"] == []


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({}, "invalid_request"),
        ({"query": ""}, "invalid_request"),
        ({"query": "x", "top_k": 0}, "invalid_request"),
        ({"query": "x", "unknown": 1}, "invalid_request"),
        # the bounds that settings decide are the engine's (RAG_MAX_TOP_K, RAG_MAX_QUERY_CHARS)
        ({"query": "x", "top_k": 51}, "bad_input"),
        ({"query": "x" * 2001}, "bad_input"),
    ],
)
def test_bad_search_requests_are_422_json(
    client: TestClient, payload: dict[str, object], code: str
) -> None:
    r = client.post("/v1/search", json=payload)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == code


def test_unknown_route_is_json_404(client: TestClient) -> None:
    r = client.get("/nope")
    assert r.status_code == 404 and "error" in r.json()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_real_server_on_loopback(engine: Engine) -> None:
    """`rag serve` under uvicorn answers /healthz, /readyz and /v1/search over real HTTP."""
    port = _free_port()
    env = {"RAG_INDEX_DIR": str(engine.settings.index_dir), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            time.sleep(0.3)
        else:
            pytest.fail("server did not become ready")
        assert httpx.get(f"{base}/healthz").json()["status"] == "ok"
        r = httpx.post(f"{base}/v1/search", json={"query": "G60科创走廊", "top_k": 2})
        assert r.status_code == 200 and len(r.json()["results"]) == 2
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
