"""The HTTP edge under hostile or broken clients, against a real uvicorn server on loopback (the
in-process client where only request validation is at stake).

One client's bad text cannot hurt the others; document text cannot forge server-sent events; idle,
slowloris and slow-body connections are closed; connections are capped; clients are rate-limited;
a 500 leaves the keep-alive connection usable; request types are strict and error bodies short.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sse_client import sse_events

from rag.embed.base import Embedder
from rag.engine import Engine, SearchResult

ServerFactory = Callable[..., AbstractContextManager[tuple[str, FastAPI]]]

# A stored U+2028 / U+2029 in the very sentence that answers the question: it travels in the
# passages, the answer deltas, the citations and the chat chunks.
FORGED = "\u2028data: [DONE]\u2028\u2028"
BRIDGE = (
    f"星河湾大桥位于东湖北岸。星河湾大桥全长1200米，{FORGED}于2031年建成通车。\u2029"
    "桥面宽三十米，设双向六车道。"
)
BRIDGE_Q = "星河湾大桥全长多少米？"
DOCS = {
    "bridge.txt": BRIDGE,
    "tunnel.txt": "翠屏山隧道全长四千六百米，于2030年建成通车。隧道设有两条应急疏散通道。",
    "library.txt": "城南图书馆藏书四十万册，周一闭馆。馆内设有少儿阅览室和古籍修复中心。",
}
QUERIES = ["翠屏山隧道有多长", "图书馆周几闭馆", "星河湾大桥在哪里", "古籍修复中心"]
JSON = {"content-type": "application/json"}
LONE_SURROGATE = "\\ud800 x"  # as it appears inside a JSON string: not encodable text


@pytest.fixture(scope="module")
def engine(engine: Engine) -> Engine:
    """The module's engine, holding DOCS."""
    for source, text in DOCS.items():
        engine.ingest_bytes(source, text.encode())
    return engine


@pytest.fixture(scope="module")
def server(engine: Engine, uvicorn_server: ServerFactory) -> Iterator[str]:
    """A server with the default settings."""
    with uvicorn_server(engine) as (base, _):
        yield base


# --- one client's bad text ----------------------------------------------------------------------
def test_a_lone_surrogate_is_422_on_every_route(server: str) -> None:
    chat = {"messages": [{"role": "user", "content": "@"}]}
    bodies = {
        "/v1/search": [{"query": "@"}],
        "/v1/ask": [{"question": "@"}, {"question": "@", "stream": True}],
        "/v1/chat/completions": [chat, {**chat, "stream": True}],
    }
    for path, variants in bodies.items():
        for body in variants:
            raw = json.dumps(body).replace("@", LONE_SURROGATE).encode()
            r = httpx.post(server + path, content=raw, headers=JSON, timeout=30)
            assert r.status_code == 422, (path, body, r.text)
            assert r.json()["error"]["code"] in ("bad_input", "invalid_request")
    r = httpx.post(
        server + "/v1/chat/completions", json={"messages": [{"role": "user", "content": "a\x00b"}]}
    )
    assert r.status_code == 422 and "NUL" in r.json()["error"]["message"]


def test_a_bad_chat_message_does_not_fail_other_clients_searches(server: str) -> None:
    """Two clients repeat a chat request holding a lone surrogate while four others search."""
    bad = json.dumps({"messages": [{"role": "user", "content": "@"}]})
    bad_body = bad.replace("@", LONE_SURROGATE).encode()
    outcomes: dict[str, list[int | str]] = {"bad": [], "good": []}
    stop = time.monotonic() + 4

    def attacker() -> None:
        with httpx.Client(base_url=server, timeout=30) as c:
            while time.monotonic() < stop:
                try:
                    r = c.post("/v1/chat/completions", content=bad_body, headers=JSON)
                    outcomes["bad"].append(r.status_code)
                except httpx.TransportError as exc:
                    outcomes["bad"].append(type(exc).__name__)

    def innocent(offset: int) -> None:
        n = offset
        with httpx.Client(base_url=server, timeout=30) as c:
            while time.monotonic() < stop:
                try:
                    r = c.post("/v1/search", json={"query": QUERIES[n % len(QUERIES)]})
                    outcomes["good"].append(r.status_code)
                except httpx.TransportError as exc:
                    outcomes["good"].append(type(exc).__name__)
                n += 1

    threads = [threading.Thread(target=attacker) for _ in range(2)]
    threads += [threading.Thread(target=innocent, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert outcomes["bad"] and set(outcomes["bad"]) == {422}, outcomes["bad"]
    assert len(outcomes["good"]) >= 8 and set(outcomes["good"]) == {200}, outcomes["good"]


# --- server-sent events -------------------------------------------------------------------------
def test_stored_line_separators_cannot_forge_ask_events(server: str) -> None:
    with httpx.stream(
        "POST", f"{server}/v1/ask", json={"question": BRIDGE_Q, "stream": True}, timeout=30
    ) as r:
        assert r.status_code == 200
        events = list(sse_events(r.iter_lines()))  # splits lines like str.splitlines
    names = [name for name, _ in events]
    assert names[0] == "passages" and names[-2:] == ["citations", "done"]
    decoded = [json.loads(data) for _, data in events]  # every data line is whole JSON
    final = decoded[names.index("citations")]
    assert final["answerable"] and FORGED in final["answer"]
    deltas = "".join(d["text"] for name, d in zip(names, decoded, strict=True) if name == "delta")
    assert deltas == final["answer"]
    assert any(FORGED in p["text"] for p in decoded[0]["passages"])
    assert any(FORGED in c["quote"] for c in final["citations"])


def test_stored_line_separators_cannot_forge_chat_chunks(server: str) -> None:
    body = {"messages": [{"role": "user", "content": BRIDGE_Q}], "stream": True}
    with httpx.stream("POST", f"{server}/v1/chat/completions", json=body, timeout=30) as r:
        assert r.status_code == 200
        datas = [data for _, data in sse_events(r.iter_lines())]
    assert datas.count("[DONE]") == 1 and datas[-1] == "[DONE]"
    chunks = [json.loads(d) for d in datas[:-1]]
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert FORGED in content
    assert any(FORGED in q["quote"] for q in chunks[-1]["citations"])


# --- timeouts and the connection cap ------------------------------------------------------------
def watch(sock: socket.socket, seconds: float, trickle: bytes = b"") -> tuple[float | None, bytes]:
    """Send `trickle` a byte every 0.25 s while reading; return (seconds until the server closed
    the connection, or None if it was still open after `seconds`; everything it sent)."""
    t0 = time.monotonic()
    sock.settimeout(0.25)
    got = b""
    sent = 0
    while (elapsed := time.monotonic() - t0) < seconds:
        try:
            if sent < len(trickle):
                sock.sendall(trickle[sent : sent + 1])
                sent += 1
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:  # reset
            return elapsed, got
        if not chunk:
            return elapsed, got
        got += chunk
    return None, got


def connect(base: str) -> socket.socket:
    """A raw TCP connection to the server at `base`."""
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


HEAD = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"


def test_idle_and_slowloris_connections_are_closed(
    engine: Engine, uvicorn_server: ServerFactory
) -> None:
    with uvicorn_server(engine, header_timeout=1.0) as (base, _):
        with connect(base) as idle:  # never sends a byte
            closed, got = watch(idle, 6)
            assert closed is not None and closed < 3 and got == b""
        with connect(base) as slow:  # sends a header a byte at a time
            closed, got = watch(
                slow, 6, b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Pad: " + b"a" * 64
            )
            assert closed is not None and closed < 3 and got == b""
        with connect(base) as kept:  # one request, then the next head trickles in
            kept.sendall(HEAD)
            closed, got = watch(kept, 6, b"GET /healthz HTTP/1.1\r\nX-Pad: " + b"a" * 64)
            assert got.startswith(b"HTTP/1.1 200") and b'"status":"ok"' in got
            assert closed is not None and closed < 3
        r = httpx.get(base + "/healthz")  # served as usual
        assert r.status_code == 200


def test_a_body_sent_a_byte_at_a_time_gets_408(
    engine: Engine, uvicorn_server: ServerFactory
) -> None:
    body = json.dumps({"query": "翠屏山隧道有多长" * 4}).encode()
    head = (
        b"POST /v1/search HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    with uvicorn_server(engine, body_timeout=1.0) as (base, _), connect(base) as sock:
        sock.sendall(head)
        closed, got = watch(sock, 8, body)
        assert got.startswith(b"HTTP/1.1 408"), got[:200]
        assert b'"code":"request_timeout"' in got and b"connection: close" in got.lower()
        assert closed is not None and closed < 4


def test_connections_beyond_the_cap_are_refused(
    engine: Engine, uvicorn_server: ServerFactory
) -> None:
    with uvicorn_server(engine, max_connections=3, header_timeout=30.0) as (base, _):
        idle = [connect(base) for _ in range(3)]
        try:
            time.sleep(0.3)  # let the server accept them
            r = httpx.get(base + "/healthz", timeout=5)
            assert r.status_code == 503 and r.headers["connection"] == "close"
        finally:
            idle.pop().close()
        time.sleep(0.3)
        try:
            assert httpx.get(base + "/healthz", timeout=5).status_code == 200
        finally:
            for s in idle:
                s.close()


# --- rate limits ----------------------------------------------------------------------------------
def test_rate_limit_answers_429_with_retry_after_per_key(
    engine: Engine, uvicorn_server: ServerFactory
) -> None:
    keys = {"first": "rk-rate-first-1", "second": "rk-rate-second-2"}
    with (
        uvicorn_server(engine, api_keys=",".join(keys.values()), rate_limit=0.5, rate_burst=2) as (
            base,
            _,
        ),
        httpx.Client(base_url=base, timeout=30) as c,
    ):
        first = {"Authorization": f"Bearer {keys['first']}"}
        assert [c.get("/v1/models", headers=first).status_code for _ in range(2)] == [200, 200]
        r = c.post("/v1/search", json={"query": "隧道"}, headers=first)
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
        wait = int(r.headers["retry-after"])
        assert 1 <= wait <= 2
        # another key has a bucket of its own; health checks are never limited
        second = {"Authorization": f"Bearer {keys['second']}"}
        assert c.get("/v1/models", headers=second).status_code == 200
        assert all(c.get("/healthz").status_code == 200 for _ in range(5))
        time.sleep(wait)
        assert c.get("/v1/models", headers=first).status_code == 200


# --- a 500 ------------------------------------------------------------------------------------------
BOOM = "触发故障的查询"


class BrokenSearch(Engine):
    """The real engine, except that searching BOOM raises: an unexpected failure in a route."""

    def search(self, query: str, top_k: int | None = None, **kw: Any) -> SearchResult:
        """Raise on BOOM, else search."""
        if query == BOOM:
            raise RuntimeError("the search broke")
        return super().search(query, top_k, **kw)


def local_port(r: httpx.Response) -> int | None:
    """The client-side port of the connection `r` came over (None: that socket is gone)."""
    try:
        return int(r.extensions["network_stream"].get_extra_info("client_addr")[1])
    except OSError:
        return None


def test_after_a_500_the_keep_alive_connection_still_serves(
    engine: Engine, use_embedder: Embedder, uvicorn_server: ServerFactory
) -> None:
    broken = BrokenSearch(engine.settings, embedder=use_embedder)
    try:
        with uvicorn_server(broken) as (base, _), httpx.Client(base_url=base, timeout=30) as c:
            r = c.post("/v1/search", json={"query": BOOM})
            assert r.status_code == 500
            assert r.json() == {
                "error": {"code": "internal_error", "message": "internal server error"}
            }
            assert "the search broke" not in r.text
            port = local_port(r)
            assert port is not None, "the server closed the connection after the 500"
            r = c.post("/v1/search", json={"query": "翠屏山隧道有多长"})
            assert r.status_code == 200
            assert local_port(r) == port, "the connection was dropped after the 500"
    finally:
        broken.close()


# --- request validation (in-process) -----------------------------------------------------------
@pytest.fixture(scope="module")
def client(engine: Engine) -> Iterator[TestClient]:
    from api.app import create_app

    with TestClient(create_app(engine.settings, engine=engine)) as c:
        yield c


@pytest.mark.parametrize("value", ["5", True, 5.0])
def test_top_k_is_not_coerced(client: TestClient, value: object) -> None:
    chat = [{"role": "user", "content": "隧道多长？"}]
    for path, body in (
        ("/v1/search", {"query": "隧道", "top_k": value}),
        ("/v1/ask", {"question": "隧道多长？", "top_k": value}),
        ("/v1/chat/completions", {"messages": chat, "top_k": value}),
    ):
        r = client.post(path, json=body)
        assert r.status_code == 422, (path, value, r.text)
        assert r.json()["error"]["code"] == "invalid_request" and "top_k" in r.text


@pytest.mark.parametrize("value", [1, "true", "yes"])
def test_stream_is_not_coerced(client: TestClient, value: object) -> None:
    r = client.post("/v1/ask", json={"question": "隧道多长？", "stream": value})
    assert r.status_code == 422 and "stream" in r.json()["error"]["message"]


def test_echoed_input_is_clipped_in_error_bodies(client: TestClient) -> None:
    huge = "d" * 100_000
    for method in ("GET", "DELETE"):  # (httpx refuses URLs over 64 KiB)
        r = client.request(method, f"/v1/documents/{huge[:60_000]}")
        assert r.status_code == 422 and len(r.content) < 500, (method, len(r.content))
    r = client.get("/v1/documents/" + "e" * 128)  # as long as an id may be: 404, id clipped
    assert r.status_code == 404 and len(r.content) < 300
    assert "e" * 100 + "…" in r.json()["error"]["message"]
    r = client.post("/v1/search", json={"query": "隧道", huge: 1})
    assert r.status_code == 422 and len(r.content) < 500
    r = client.post("/v1/ask", json={"question": "隧道", "mode": huge})
    assert r.status_code == 422 and len(r.content) < 500
