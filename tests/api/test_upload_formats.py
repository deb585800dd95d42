"""PDF, Word and HTML uploads over HTTP: stored, searchable, cited with the PDF page; a bad file is
a JSON 4xx naming it and the problem, and the index stays as it was.

One fresh engine on a temporary index (default limits) serves the module.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from ingest import samples

from rag.engine import Engine
from rag.ingest.pages import page_of

QUESTION = "洋山港四期自动化码头的年设计吞吐能力是多少？"  # answered on page 3 only


def upload(client: TestClient, *files: tuple[str, bytes]) -> Any:
    parts = [("file", (name, data, "application/octet-stream")) for name, data in files]
    return client.post("/v1/documents", files=parts)


def state(engine: Engine) -> tuple[int, int, int]:
    return engine.store.count_documents(), engine.store.count_chunks(), engine.store.generation()


@pytest.fixture(scope="module")
def gazette(client: TestClient) -> dict[str, Any]:
    r = upload(client, ("gazette/2024-9.pdf", samples.gazette_pdf()))
    assert r.status_code == 201, r.text
    info = client.get(f"/v1/documents/{r.json()['doc_id']}").json()
    assert isinstance(info, dict)
    return info


def test_pdf_upload_is_stored_with_its_pages(gazette: dict[str, Any], engine: Engine) -> None:
    assert gazette["title"] == samples.GAZETTE_PAGES[0][0]
    pages = gazette["metadata"]["pages"]
    assert len(pages) == len(samples.GAZETTE_PAGES)
    text = engine.store.document_text(gazette["doc_id"])
    assert samples.HEADER not in text and gazette["chars"] == len(text)
    assert text[pages[2][0] : pages[2][1]].startswith(samples.GAZETTE_PAGES[2][0])


def test_ask_cites_the_page_of_the_quote(client: TestClient, gazette: dict[str, Any]) -> None:
    r = client.post("/v1/ask", json={"question": QUESTION, "mode": "extractive"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answerable"] and body["citations"]
    for c in body["citations"]:
        p = body["passages"][c["marker"] - 1]
        assert p["text"][c["start"] - p["start"] : c["end"] - p["start"]] == c["quote"]
        assert c["page"] == page_of(gazette["metadata"], c["start"])
        assert "page_spans" not in p  # the contract says `page`, nothing more
    answer = [c for c in body["citations"] if "六百三十万标准箱" in c["quote"]]
    assert answer and all(c["page"] == 3 for c in answer)
    for p in body["passages"]:
        assert p["page"] == page_of(gazette["metadata"], p["start"])


def test_search_and_chat_carry_pages(client: TestClient, gazette: dict[str, Any]) -> None:
    r = client.post("/v1/search", json={"query": QUESTION, "top_k": 3})
    assert r.status_code == 200
    results = r.json()["results"]
    assert results[0]["source"] == "gazette/2024-9.pdf" and results[0]["page"] is not None
    r = client.post(
        "/v1/chat/completions",
        json={"model": "rag-zh", "messages": [{"role": "user", "content": QUESTION}]},
    )
    assert r.status_code == 200, r.text
    citations = r.json()["citations"]
    assert any(c["page"] == 3 and "六百三十万标准箱" in c["quote"] for c in citations)


def test_ask_stream_citations_carry_pages(client: TestClient, gazette: dict[str, Any]) -> None:
    with client.stream(
        "POST", "/v1/ask", json={"question": QUESTION, "mode": "extractive", "stream": True}
    ) as r:
        assert r.status_code == 200
        lines = [ln for ln in r.iter_lines() if ln.startswith("data:")]
    events = [json.loads(ln[5:]) for ln in lines]
    passages = next(e["passages"] for e in events if "passages" in e and "answer" not in e)
    final = next(e for e in events if "citations" in e)
    assert all("page" in p for p in passages)
    assert any(c["page"] == 3 for c in final["citations"])


def test_docx_and_html_uploads_have_no_pages(client: TestClient, engine: Engine) -> None:
    r = upload(
        client,
        ("formats/report.docx", samples.docx_bytes()),
        ("formats/news.htm", samples.html_page("gbk").encode("gb18030")),
    )
    assert r.status_code == 201, r.text
    docs = {d["source"]: d for d in r.json()["documents"]}
    assert {d["status"] for d in docs.values()} == {"added"}
    news = client.get(f"/v1/documents/{docs['formats/news.htm']['doc_id']}").json()
    assert news["title"] == samples.ARTICLE_TITLE and "pages" not in news["metadata"]
    text = engine.store.document_text(news["doc_id"])
    assert "网站首页" not in text and samples.ARTICLE_PARAGRAPHS[1] in text
    r = client.post(
        "/v1/search",
        json={"query": "青石镇竹编合作社", "filter": {"sources": ["formats/report.docx"]}},
    )
    assert r.json()["results"] and all(p["page"] is None for p in r.json()["results"])


def test_json_text_named_pdf_is_plain_text_and_html_is_html(
    client: TestClient, engine: Engine
) -> None:
    # A client that extracted a PDF's text itself may send it under the PDF's name.
    r = client.post("/v1/documents", json={"source": "json/extracted.pdf", "text": "提取的正文。"})
    assert r.status_code == 201, r.text
    assert engine.store.document_text(r.json()["doc_id"]) == "提取的正文。"
    r = client.post(
        "/v1/documents", json={"source": "json/page.html", "text": samples.html_page("gbk")}
    )
    assert r.status_code == 201, r.text
    info = client.get(f"/v1/documents/{r.json()['doc_id']}").json()
    assert info["title"] == samples.ARTICLE_TITLE  # read as HTML; its `gbk` meta did not mislead


@pytest.mark.parametrize(
    ("name", "make", "status", "code", "words"),
    [
        ("bad/secret.pdf", samples.encrypted_pdf, 422, "encrypted_document", ["decrypt it first"]),
        ("bad/scan.pdf", samples.image_only_pdf, 422, "no_text_layer", ["no text layer", "OCR"]),
        (
            "bad/cut.pdf",
            lambda: samples.gazette_pdf()[:2000],
            422,
            "corrupt_document",
            ["truncated"],
        ),
        ("bad/archive.docx", samples.plain_zip, 422, "corrupt_document", ["not a valid .docx"]),
        ("bad/old.docx", lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), 415, None, []),
        ("bad/empty.pdf", lambda: b"", 422, "bad_document", ["empty"]),
    ],
    ids=["encrypted-pdf", "image-only-pdf", "truncated-pdf", "zip-docx", "doc-as-docx", "empty"],
)
def test_bad_upload_is_a_clear_4xx_and_changes_nothing(
    client: TestClient,
    engine: Engine,
    name: str,
    make: Any,
    status: int,
    code: str | None,
    words: list[str],
) -> None:
    before = state(engine)
    r = upload(client, (name, make()), ("bad/good.txt", "同一请求里的好文件。".encode()))
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert code is None or error["code"] == code
    assert error["message"].startswith(f"{name}: ")
    assert all(w in error["message"] for w in words), error["message"]
    assert state(engine) == before
