"""API keys and CORS: who may read, who may write, what is refused; keys kept as digests only and
never logged; CORS off by default and limited to the configured origins when on.

Real engine on a temporary index (two tiny documents); every app shares it, each with its own
settings.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from rag.config import Settings
from rag.engine import Engine

READ_KEY = "rk-7f3a9c1e5b2d4a6f-read"
READ_KEY_2 = "rk-second-0b1c2d3e"
ADMIN_KEY = "ak-91d2e8f4c6b0a3e7-admin"
ORIGIN = "https://app.example.com"

DOC = "翠屏山隧道全长四千六百米，于2030年建成通车。隧道设有两条应急疏散通道。"


@pytest.fixture(scope="module")
def engine(engine: Engine) -> Engine:
    """The module's engine, holding two documents."""
    engine.ingest_bytes("tunnel.txt", DOC.encode())
    engine.ingest_bytes("meteor.txt", b"The Marlow observatory recorded 4,812 meteors in 2029.")
    return engine


def make_app(engine: Engine, **overrides: Any) -> FastAPI:
    values: dict[str, Any] = {"api_keys": None, "admin_keys": None, "cors_origins": None}
    values.update(overrides)
    settings = Settings(index_dir=engine.settings.index_dir, **values)
    return create_app(settings, engine=engine)


@pytest.fixture()
def keyed(engine: Engine) -> Iterator[TestClient]:
    """Read keys and an admin key configured."""
    app = make_app(engine, api_keys=f"{READ_KEY}, {READ_KEY_2}", admin_keys=ADMIN_KEY)
    with TestClient(app) as c:
        yield c


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def doc_id(client: TestClient, headers: dict[str, str]) -> str:
    docs = client.get("/v1/documents", headers=headers).json()["documents"]
    return next(d["doc_id"] for d in docs if d["source"] == "tunnel.txt")


# (method, path, json body) of every protected read route; `{doc}` is filled in per test.
READS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/v1/search", {"query": "翠屏山隧道有多长"}),
    ("POST", "/v1/ask", {"question": "翠屏山隧道有多长？"}),
    ("POST", "/v1/ask", {"question": "翠屏山隧道有多长？", "stream": True}),
    ("GET", "/v1/documents", None),
    ("GET", "/v1/documents/{doc}", None),
    ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "隧道多长？"}]}),
    (
        "POST",
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "隧道多长？"}], "stream": True},
    ),
    ("GET", "/v1/models", None),
    ("GET", "/metrics", None),
]
WRITES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/v1/documents", {"source": "written.txt", "text": "写入测试：青瓦台。"}),
    ("DELETE", "/v1/documents/{doc}", None),
    ("DELETE", "/v1/documents/0000000000000000", None),  # auth is checked before existence
]


def call(
    client: TestClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    doc: str = "0000000000000000",
) -> Any:
    return client.request(
        method, path.format(doc=doc), json=body, headers=headers or {}, params=params
    )


def assert_error(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.json()["error"]["code"] == code and r.json()["error"]["message"]
    if status == 401:
        assert r.headers["www-authenticate"] == "Bearer"
    else:
        assert "www-authenticate" not in r.headers


# --- refusals -----------------------------------------------------------------------------------
BAD_HEADERS: dict[str, dict[str, str]] = {
    "none": {},
    "wrong-key": bearer("rk-not-a-real-key"),
    "empty-bearer": {"Authorization": "Bearer "},
    "bearer-only": {"Authorization": "Bearer"},
    "basic": {"Authorization": "Basic " + base64.b64encode(f"{READ_KEY}:".encode()).decode()},
    "basic-raw-key": {"Authorization": f"Basic {READ_KEY}"},
    "no-scheme": {"Authorization": READ_KEY},
    "token-scheme": {"Authorization": f"Token {READ_KEY}"},
    "x-api-key": {"X-API-Key": READ_KEY},
    "key-prefix": bearer(READ_KEY[:-1]),
    "key-suffix": bearer(READ_KEY + "x"),
    "both-keys-joined": bearer(f"{READ_KEY},{ADMIN_KEY}"),
}


@pytest.mark.parametrize("kind", list(BAD_HEADERS))
def test_bad_or_missing_credentials_are_401_everywhere(
    keyed: TestClient, engine: Engine, kind: str
) -> None:
    before = engine.store.generation()
    for method, path, body in READS + WRITES:
        r = call(keyed, method, path, body, BAD_HEADERS[kind])
        assert_error(r, 401, "unauthorized")
    assert engine.store.generation() == before


@pytest.mark.parametrize("name", ["api_key", "token", "apikey", "key", "access_token", "API_KEY"])
@pytest.mark.parametrize("key", [READ_KEY, ADMIN_KEY])
def test_key_in_query_string_is_401_even_with_a_good_header(
    keyed: TestClient, engine: Engine, name: str, key: str
) -> None:
    before = engine.store.generation()
    for method, path, body in READS + WRITES:
        r = call(keyed, method, path, body, bearer(key), params={name: key})
        assert_error(r, 401, "unauthorized")
        assert "Authorization header" in r.json()["error"]["message"]
        assert key not in r.text
    assert engine.store.generation() == before


def test_read_key_reads_but_may_not_write(keyed: TestClient, engine: Engine) -> None:
    for key in (READ_KEY, READ_KEY_2):
        doc = doc_id(keyed, bearer(key))
        for method, path, body in READS:
            r = call(keyed, method, path, body, bearer(key), doc=doc)
            assert r.status_code == 200, (path, r.text)
        before = (engine.store.count_documents(), engine.store.generation())
        for method, path, body in WRITES:
            r = call(keyed, method, path, body, bearer(key), doc=doc)
            assert_error(r, 403, "forbidden")
        files = {"file": ("form.txt", "表单上传。".encode(), "text/plain")}
        assert_error(
            keyed.post("/v1/documents", files=files, headers=bearer(key)), 403, "forbidden"
        )
        assert (engine.store.count_documents(), engine.store.generation()) == before


def test_admin_key_writes_and_reads(keyed: TestClient, engine: Engine) -> None:
    h = bearer(ADMIN_KEY)
    r = keyed.post(
        "/v1/documents", json={"source": "admin.txt", "text": "管理员写入的文档。"}, headers=h
    )
    assert r.status_code == 201, r.text
    new_id = r.json()["doc_id"]
    assert keyed.get(f"/v1/documents/{new_id}", headers=bearer(READ_KEY)).status_code == 200
    for method, path, body in READS:  # an admin key may read too
        assert call(keyed, method, path, body, h, doc=new_id).status_code == 200, path
    assert keyed.delete(f"/v1/documents/{new_id}", headers=h).json() == {"deleted": new_id}
    assert_error(keyed.delete(f"/v1/documents/{new_id}", headers=h), 404, "not_found")


def test_scheme_is_case_insensitive_and_token_is_trimmed(keyed: TestClient) -> None:
    for value in (f"bearer {READ_KEY}", f"BEARER {READ_KEY}", f"Bearer {READ_KEY}  "):
        assert keyed.get("/v1/models", headers={"Authorization": value}).status_code == 200


def test_health_endpoints_are_open(keyed: TestClient) -> None:
    for path in ("/healthz", "/readyz"):
        assert keyed.get(path).status_code == 200
        assert keyed.get(path, headers=bearer("wrong")).status_code == 200


def test_only_api_keys_configured_an_api_key_may_write(engine: Engine) -> None:
    with TestClient(make_app(engine, api_keys=READ_KEY)) as c:
        assert_error(c.get("/v1/documents"), 401, "unauthorized")
        assert_error(
            c.post("/v1/documents", json={"source": "k.txt", "text": "密钥写入。"}),
            401,
            "unauthorized",
        )
        r = c.post(
            "/v1/documents",
            json={"source": "k.txt", "text": "密钥写入。"},
            headers=bearer(READ_KEY),
        )
        assert r.status_code == 201, r.text
        r = c.delete(f"/v1/documents/{r.json()['doc_id']}", headers=bearer(READ_KEY))
        assert r.status_code == 200


def test_only_admin_keys_configured_reads_are_open_and_writes_need_the_key(
    engine: Engine,
) -> None:
    with TestClient(make_app(engine, admin_keys=ADMIN_KEY)) as c:
        # Admin keys alone guard writes; reads accept the admin key as well.
        body = {"source": "adm.txt", "text": "只有管理密钥。"}
        assert_error(c.post("/v1/documents", json=body), 401, "unauthorized")
        assert_error(
            c.post("/v1/documents", json=body, headers=bearer(READ_KEY)), 401, "unauthorized"
        )
        r = c.post("/v1/documents", json=body, headers=bearer(ADMIN_KEY))
        assert r.status_code == 201
        assert c.get("/v1/documents", headers=bearer(ADMIN_KEY)).status_code == 200
        assert (
            c.delete(f"/v1/documents/{r.json()['doc_id']}", headers=bearer(ADMIN_KEY)).status_code
            == 200
        )


def test_no_keys_configured_everything_is_open(engine: Engine) -> None:
    with TestClient(make_app(engine)) as c:
        doc = doc_id(c, {})
        for method, path, body in READS:
            assert call(c, method, path, body, doc=doc).status_code == 200, path
        r = c.post("/v1/documents", json={"source": "open.txt", "text": "开放写入。"})
        assert r.status_code == 201
        assert c.delete(f"/v1/documents/{r.json()['doc_id']}").status_code == 200
        # Any header is ignored when nothing is configured, but a key in the URL still is not.
        assert c.get("/v1/models", headers=bearer("anything")).status_code == 200
        assert_error(c.get("/v1/models", params={"api_key": "x"}), 401, "unauthorized")


# --- secrecy ------------------------------------------------------------------------------------
def test_keyring_holds_digests_only(keyed: TestClient) -> None:
    ring = keyed.app.state.keys  # type: ignore[attr-defined]
    dump = str(ring.__dict__) + repr(ring.read) + repr(ring.admin)
    for key in (READ_KEY, READ_KEY_2, ADMIN_KEY):
        assert key not in dump
        assert key.encode() not in b"".join(ring.read + ring.admin)
    assert len(ring.read) == 2 and len(ring.admin) == 1
    assert all(isinstance(d, bytes) and len(d) == 32 for d in ring.read + ring.admin)


def test_keys_are_never_logged(
    keyed: TestClient, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # root: everything any library logs
    caplog.set_level(logging.DEBUG, logger="rag.access")
    doc = doc_id(keyed, bearer(READ_KEY))
    caplog.clear()
    for key in (READ_KEY, ADMIN_KEY, "rk-wrong-key-5150"):
        # deletes aim at a missing document, so the collection stays as it is
        targets = [(r, doc) for r in READS] + [(w, "0000000000000000") for w in WRITES]
        for (method, path, body), target in targets:
            call(keyed, method, path, body, bearer(key), doc=target)
            call(keyed, method, path, body, bearer(key), params={"api_key": key}, doc=target)
            call(keyed, method, path, body, params={"token": key, "q": key}, doc=target)
        keyed.get(f"/healthz?api_key={key}")
        keyed.get(f"/nope/{key}", headers=bearer(key))  # unmatched route: not logged by path
    # The test's own HTTP client (httpx) logs the URLs it requests; that is this process's client
    # side, not the service. Everything else logged during the requests is the service's.
    records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    access = [r for r in records if r.name == "rag.access"]
    assert len(access) >= 3 * 2 * (len(READS) + len(WRITES))
    assert any(" 200 " in r.getMessage() for r in access)
    assert any(" 401 " in r.getMessage() for r in access)
    logged = "".join(f"{r.getMessage()} {r.args!r} {r.__dict__!r}" for r in records)
    for key in (READ_KEY, READ_KEY_2, ADMIN_KEY, "rk-wrong-key-5150"):
        assert key not in logged
    # the admin write above went through; undo it so other tests see the original collection
    for d in keyed.get("/v1/documents", headers=bearer(ADMIN_KEY)).json()["documents"]:
        if d["source"] == "written.txt":
            keyed.delete(f"/v1/documents/{d['doc_id']}", headers=bearer(ADMIN_KEY))
    if engine.store.document(doc).source != "tunnel.txt":  # pragma: no cover
        pytest.fail("the tunnel document was replaced")


# --- CORS ---------------------------------------------------------------------------------------
def preflight(client: TestClient, origin: str, path: str = "/v1/search") -> Any:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_cors_is_off_by_default(engine: Engine) -> None:
    with TestClient(make_app(engine)) as c:
        r = c.post("/v1/search", json={"query": "隧道"}, headers={"Origin": ORIGIN})
        assert r.status_code == 200
        assert "access-control-allow-origin" not in r.headers
        r = preflight(c, ORIGIN)
        assert "access-control-allow-origin" not in r.headers
        assert r.status_code == 405  # no OPTIONS route, no CORS middleware to answer it


def test_cors_allows_only_the_configured_origins(engine: Engine) -> None:
    app = make_app(engine, cors_origins=f" {ORIGIN} , https://other.example.org", api_keys=READ_KEY)
    with TestClient(app) as c:
        r = preflight(c, ORIGIN)
        assert r.status_code == 200  # no key needed for a preflight
        assert r.headers["access-control-allow-origin"] == ORIGIN
        assert "POST" in r.headers["access-control-allow-methods"]
        assert "authorization" in r.headers["access-control-allow-headers"].lower()

        h = {"Origin": ORIGIN, **bearer(READ_KEY)}
        r = c.post("/v1/search", json={"query": "隧道"}, headers=h)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
        # errors carry the header too, so a browser can read them
        r = c.post("/v1/search", json={"query": "隧道"}, headers={"Origin": ORIGIN})
        assert r.status_code == 401 and r.headers["access-control-allow-origin"] == ORIGIN

        for other in ("https://evil.example.net", "http://app.example.com", "null"):
            r = preflight(c, other)
            assert r.status_code == 400
            assert "access-control-allow-origin" not in r.headers
            r = c.post(
                "/v1/search", json={"query": "隧道"}, headers={**bearer(READ_KEY), "Origin": other}
            )
            assert r.status_code == 200
            assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("path", ["/v1/search", "/v1/ask", "/v1/chat/completions"])
def test_credentials_are_checked_before_a_malformed_body(keyed: TestClient, path: str) -> None:
    """FastAPI decodes JSON before it runs dependencies; the key is still checked first."""
    junk = {"content-type": "application/json"}
    r = keyed.post(path, content=b"\x00{", headers=junk)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", r.text
    assert r.headers["www-authenticate"] == "Bearer"
    r = keyed.post(path, content=b"\x00{", headers={**junk, **bearer(READ_KEY)})
    assert r.status_code == 422, r.text  # with a key, the body is what is wrong


@pytest.mark.parametrize("body", [b"\x00", b"\x00" * 9])
@pytest.mark.parametrize("path", ["/v1/search", "/v1/ask", "/v1/chat/completions", "/v1/documents"])
def test_a_malformed_body_without_a_key_is_401_not_4xx(
    keyed: TestClient, path: str, body: bytes
) -> None:
    """FastAPI parses the JSON body before the key check runs (422 or 400 when it cannot): the
    key is checked first anyway."""
    json_type = {"content-type": "application/json"}
    assert_error(keyed.post(path, content=body, headers=json_type), 401, "unauthorized")
    if path == "/v1/documents":  # a write with a read key: 403, whatever the body
        r = keyed.post(path, content=body, headers={**json_type, **bearer(READ_KEY)})
        assert_error(r, 403, "forbidden")
    r = keyed.post(path, content=body, headers={**json_type, **bearer(ADMIN_KEY)})
    assert r.status_code in (400, 422), r.text  # with a good key: the body's fault
