"""The web page, the offline docs and `GET /v1/documents/{doc_id}/text`, over HTTP (no browser:
tests/web drives the page in chromium).

Real engine on a temporary index: a plain-text article (with a character outside the BMP), the
four-page gazette PDF, and a document about the same topic so questions have competition.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from ingest.samples import gazette_pdf

from api.app import create_app
from api.routes.web import WEB_DIR
from rag.config import Settings
from rag.engine import Engine, Upload

READ_KEY = "rk-web-5c1d9e7a3b"
ADMIN_KEY = "ak-web-2f8e4d6c0a"
# 𠀀 (U+20000) is one code point, two UTF-16 units: offsets after it differ between Python and JS
ARTICLE = (
    "# 青石湖数据中心𠀀简介\n\n"
    "青石湖数据中心于2025年3月投入运行，共有机柜4800个，由澄江数字科技公司运营。\n\n"
    "数据中心采用液冷技术，年均电能利用效率为1.15。\n"
)


@pytest.fixture(scope="module")
def engine(engine: Engine) -> Engine:
    engine.ingest_documents(
        [
            Upload("qingshihu.md", ARTICLE.encode(), {}),
            Upload("gazette.pdf", gazette_pdf(), {"issuer": "上海市人民政府"}),
            Upload(
                "other.txt", "澄江市的图书馆共有藏书120万册，2024年新增阅览座位600个。".encode(), {}
            ),
        ]
    )
    return engine


def make_client(engine: Engine, **overrides: Any) -> TestClient:
    values: dict[str, Any] = {"api_keys": None, "admin_keys": None, "cors_origins": None}
    values.update(overrides)
    return TestClient(
        create_app(Settings(index_dir=engine.settings.index_dir, **values), engine=engine)
    )


@pytest.fixture(scope="module")
def keyed(engine: Engine) -> Iterator[TestClient]:
    with make_client(engine, api_keys=READ_KEY, admin_keys=ADMIN_KEY) as c:
        yield c


def doc_by_source(client: TestClient, source: str) -> dict[str, Any]:
    docs = client.get("/v1/documents").json()["documents"]
    return next(d for d in docs if d["source"] == source)


# --- the page ---------------------------------------------------------------------------------
def test_page_is_served_with_its_assets_and_a_strict_policy(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp
    html = r.text
    # every asset the page names is on this server, and is served
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert refs
    for ref in refs:
        if ref.startswith("#") or ref == "/docs":
            continue
        assert ref.startswith("/ui/"), ref
        asset = client.get(ref)
        assert asset.status_code == 200, ref
        assert asset.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in html and "style=" not in html  # nothing inline (the CSP forbids it)
    assert client.get("/ui/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/ui/app.css").headers["content-type"].startswith("text/css")


def test_page_script_never_parses_text_as_html() -> None:
    js = (WEB_DIR / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in js, sink
    assert "http://" not in js and "https://" not in js  # talks to its own server only


@pytest.mark.parametrize("path", ["/ui/nope.js", "/ui/..%2Fapp.py", "/docs-assets/index.html"])
def test_only_the_listed_assets_are_served(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_the_page_and_docs_need_no_key_but_the_api_does(keyed: TestClient) -> None:
    for path in (
        "/",
        "/ui/app.js",
        "/ui/app.css",
        "/docs",
        "/redoc",
        "/openapi.json",
        "/docs-assets/swagger-ui-bundle.js",
        "/docs-assets/swagger-ui.css",
    ):
        assert keyed.get(path).status_code == 200, path
    assert keyed.get("/v1/documents").status_code == 401
    # an open prefix opens nothing else: not another method, not a path that climbs out of it
    assert keyed.post("/ui/app.js").status_code == 401
    assert keyed.get("/ui/../v1/documents").status_code in (401, 404)
    assert keyed.get("/docs-assets/../v1/documents").status_code in (401, 404)


# --- offline docs -----------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_load_nothing_from_another_host(client: TestClient, path: str) -> None:
    html = client.get(path).text
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", html) + re.findall(
        r"https?://[^\s\"'<>)]+", html
    )
    assert urls
    for url in urls:
        assert not re.match(r"(https?:)?//", url), f"{path} loads {url}"
    for asset in re.findall(r"/docs-assets/[\w.-]+", html):
        assert client.get(asset).status_code == 200, asset


# --- GET /v1/documents/{doc_id}/text ----------------------------------------------------------
def test_text_endpoint_returns_the_stored_text_and_metadata(
    client: TestClient, engine: Engine
) -> None:
    d = doc_by_source(client, "qingshihu.md")
    r = client.get(f"/v1/documents/{d['doc_id']}/text")
    assert r.status_code == 200
    body = r.json()
    assert body["text"] == engine.store.document_text(d["doc_id"])
    assert len(body["text"]) == d["chars"]
    assert body["source"] == "qingshihu.md" and body["title"] == d["title"]
    assert body["content_hash"] == d["content_hash"]
    assert body["pages"] == []


def test_citation_offsets_slice_the_returned_text(client: TestClient) -> None:
    for question, source in (
        ("青石湖数据中心有多少个机柜？", "qingshihu.md"),
        ("洋山港四期自动化码头的年设计吞吐能力是多少？", "gazette.pdf"),
    ):
        answer = client.post("/v1/ask", json={"question": question}).json()
        assert answer["answerable"], answer
        assert any(c["source"] == source for c in answer["citations"])
        for c in answer["citations"]:
            passage = answer["passages"][c["marker"] - 1]
            doc = client.get(f"/v1/documents/{passage['doc_id']}/text").json()
            assert doc["text"][c["start"] : c["end"]] == c["quote"]
            assert doc["text"][passage["start"] : passage["end"]] == passage["text"]
            if doc["pages"]:
                page = next(p for p in doc["pages"] if p["start"] <= c["start"] <= p["end"])
                assert page["page"] == c["page"]


def test_pdf_text_comes_with_its_page_spans(client: TestClient) -> None:
    d = doc_by_source(client, "gazette.pdf")
    body = client.get(f"/v1/documents/{d['doc_id']}/text").json()
    assert [p["page"] for p in body["pages"]] == [1, 2, 3, 4]
    assert body["metadata"]["issuer"] == "上海市人民政府"
    page3 = body["pages"][2]
    assert "洋山港四期" in body["text"][page3["start"] : page3["end"]]
    assert "洋山港四期" not in body["text"][: body["pages"][1]["end"]]


def test_text_endpoint_errors_and_keys(client: TestClient, keyed: TestClient) -> None:
    r = client.get("/v1/documents/0123456789abcdef/text")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    d = doc_by_source(client, "qingshihu.md")
    assert keyed.get(f"/v1/documents/{d['doc_id']}/text").status_code == 401
    r = keyed.get(
        f"/v1/documents/{d['doc_id']}/text", headers={"Authorization": f"Bearer {READ_KEY}"}
    )
    assert r.status_code == 200  # a read key is enough


def test_text_endpoint_is_in_the_openapi(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/documents/{doc_id}/text"]["get"]
    assert {"200", "401", "404"} <= set(op["responses"])
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert schema.endswith("/DocumentTextOut")
    # the page and the docs are not API operations
    assert "/" not in spec["paths"] and "/docs" not in spec["paths"]


def test_page_files_are_package_data() -> None:
    """A non-editable install (the Docker image) has the page: pyproject lists its files."""
    import fnmatch
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["api"]
    files = [p.relative_to(root / "api").as_posix() for p in WEB_DIR.iterdir()]
    assert {"index.html", "app.js", "app.css", "favicon.svg"} <= {Path(f).name for f in files}
    for f in files:
        assert any(fnmatch.fnmatch(f, pat) for pat in patterns), f
