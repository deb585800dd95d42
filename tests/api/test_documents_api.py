"""Documents over HTTP: upload (multipart and JSON), list, fetch, delete; and every bad upload
refused with a JSON 4xx that leaves the index exactly as it was.

One fresh engine on a temporary index serves the whole module (real embedder, FAISS and SQLite);
tests use their own source names, so they do not depend on each other's documents.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rag.config import Settings
from rag.embed.base import Embedder
from rag.engine import Engine
from rag.errors import DocumentError
from rag.ingest.decode import decode_bytes

MAX_FILE = 8_000
MAX_REQUEST = 32_000

TEXT_A = (
    "紫藤湖实验站位于江南丘陵地带。2031年，该站培育了七百二十种耐盐水稻品种。"
    "研究人员计划在沿海滩涂推广这些品种。"
)
TEXT_B = "# 青石镇年报\n\n青石镇的竹编产业在去年实现产值三亿四千万元。当地共有竹编合作社十二家。\n"
TEXT_C = "The Marlow observatory recorded 4,812 meteors during the Perseid peak of 2029."

Files = list[tuple[str, tuple[str, bytes, str]]]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        index_dir=tmp_path_factory.mktemp("docs_api_idx"),
        max_file_bytes=MAX_FILE,
        max_request_bytes=MAX_REQUEST,
        api_keys=None,
        admin_keys=None,
        cors_origins=None,
    )


@pytest.fixture(scope="module")
def engine(settings: Settings, use_embedder: Embedder) -> Iterator[Engine]:
    engine = Engine(settings, embedder=use_embedder)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=engine)) as c:
        yield c


def state(client: TestClient, engine: Engine) -> tuple[int, int, int]:
    """(documents listed over HTTP, chunks in SQLite, write generation)."""
    r = client.get("/v1/documents")
    assert r.status_code == 200
    return r.json()["total"], engine.store.count_chunks(), engine.store.generation()


def assert_json_error(r: Any, status: int | tuple[int, ...], code: str | None = None) -> None:
    expected = status if isinstance(status, tuple) else (status,)
    assert r.status_code in expected, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert isinstance(err["message"], str) and err["message"].strip()
    if code is not None:
        assert err["code"] == code, err


def upload(client: TestClient, *files: tuple[str, bytes], **data: str) -> Any:
    parts: Files = [
        ("file", (name, content, "application/octet-stream")) for name, content in files
    ]
    return client.post("/v1/documents", files=parts, data=data or None)


def raw_multipart(parts: list[tuple[str, str | None, bytes]]) -> tuple[bytes, dict[str, str]]:
    """A multipart body built by hand, so file names reach the server exactly as written."""
    boundary = "rag-test-boundary-7d1f"
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, {"content-type": f"multipart/form-data; boundary={boundary}"}


# --- good uploads -----------------------------------------------------------------------------
def test_upload_txt_and_md_files_then_list_get(client: TestClient, engine: Engine) -> None:
    docs0, chunks0, gen0 = state(client, engine)
    r = upload(client, ("single/zitenghu.txt", TEXT_A.encode()))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "added" and body["source"] == "single/zitenghu.txt"
    assert body["chunks"] >= 1 and body["documents"] == [
        {k: body[k] for k in ("doc_id", "source", "chunks", "status", "duplicate_of")}
    ]
    r = upload(client, ("single/qingshi.md", TEXT_B.encode()))
    assert r.status_code == 201 and r.json()["status"] == "added"
    md_id = r.json()["doc_id"]

    docs, chunks, gen = state(client, engine)
    assert docs == docs0 + 2 and chunks > chunks0 and gen == gen0 + 2

    info = client.get(f"/v1/documents/{md_id}").json()
    assert info["source"] == "single/qingshi.md"
    assert info["title"] == "青石镇年报"  # markdown: the first heading
    assert info["chunks"] >= 1 and info["chars"] > 20 and info["metadata"] == {}
    listed = {d["doc_id"]: d for d in client.get("/v1/documents").json()["documents"]}
    assert listed[md_id] == info and body["doc_id"] in listed


def test_upload_several_files_in_one_request(client: TestClient, engine: Engine) -> None:
    docs0, _, _ = state(client, engine)
    r = upload(
        client,
        ("multi/a.txt", TEXT_A.encode()),
        ("multi/b.md", TEXT_B.encode()),
        ("multi/c.txt", TEXT_C.encode("utf-16")),  # UTF-16 with BOM is accepted too
    )
    assert r.status_code == 201, r.text
    outcomes = r.json()["documents"]
    assert [d["source"] for d in outcomes] == ["multi/a.txt", "multi/b.md", "multi/c.txt"]
    assert all(d["status"] == "added" and d["chunks"] >= 1 for d in outcomes)
    assert state(client, engine)[0] == docs0 + 3
    for d in outcomes:
        assert client.get(f"/v1/documents/{d['doc_id']}").json()["chunks"] == d["chunks"]


@pytest.mark.parametrize(
    ("source", "title"),
    [("json/no-suffix-note", "The Marlow observatory"), ("json/with-suffix.md", "青石镇年报")],
)
def test_json_text_upload(client: TestClient, engine: Engine, source: str, title: str) -> None:
    text = TEXT_C if "no-suffix" in source else TEXT_B
    r = client.post("/v1/documents", json={"source": source, "text": text})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["source"] == source and body["status"] == "added"
    info = client.get(f"/v1/documents/{body['doc_id']}").json()
    assert info["source"] == source and info["title"].startswith(title)


def own_metadata(client: TestClient, doc_id: str) -> dict[str, Any]:
    """A document's metadata as uploaded. Other tests upload the same texts under other names, so
    the engine may have marked this copy `duplicate_of` one of them (tests/api/test_duplicates.py)."""
    metadata: dict[str, Any] = client.get(f"/v1/documents/{doc_id}").json()["metadata"]
    metadata.pop("duplicate_of", None)
    return metadata


def test_metadata_from_form_field_and_json_body(client: TestClient, engine: Engine) -> None:
    form_meta = {"lang": "zh", "year": 2031, "tags": ["水稻", "盐碱地"], "nested": {"a": 1}}
    r = upload(client, ("meta/form.txt", TEXT_A.encode()), metadata=json.dumps(form_meta))
    assert r.status_code == 201, r.text
    assert own_metadata(client, r.json()["doc_id"]) == form_meta

    json_meta = {"author": "王敏", "draft": False, "score": 0.5, "pages": 3, "note": None}
    r = client.post(
        "/v1/documents", json={"source": "meta/body.txt", "text": TEXT_C, "metadata": json_meta}
    )
    assert r.status_code == 201, r.text
    doc_id = r.json()["doc_id"]
    assert own_metadata(client, doc_id) == json_meta
    listed = {d["doc_id"]: d for d in client.get("/v1/documents").json()["documents"]}
    assert {k: v for k, v in listed[doc_id]["metadata"].items() if k != "duplicate_of"} == json_meta


def test_reupload_unchanged_is_200_and_changed_is_201_updated(
    client: TestClient, engine: Engine
) -> None:
    first = upload(client, ("reup/doc.txt", TEXT_A.encode()))
    assert first.status_code == 201 and first.json()["status"] == "added"
    doc_id = first.json()["doc_id"]
    before = state(client, engine)

    again = upload(client, ("reup/doc.txt", TEXT_A.encode()))
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "unchanged" and again.json()["doc_id"] == doc_id
    assert again.json()["chunks"] == first.json()["chunks"]
    assert state(client, engine) == before  # not even the generation moved

    changed_text = TEXT_A + "二期工程预计于2033年完工。"
    changed = upload(client, ("reup/doc.txt", changed_text.encode()))
    assert changed.status_code == 201 and changed.json()["status"] == "updated"
    assert changed.json()["doc_id"] == doc_id
    docs, _, gen = state(client, engine)
    assert docs == before[0] and gen == before[2] + 1
    assert client.get(f"/v1/documents/{doc_id}").json()["chars"] == len(changed_text)

    # The same bytes with new metadata are a change as well; JSON text behaves the same way.
    r = upload(client, ("reup/doc.txt", changed_text.encode()), metadata='{"v": 2}')
    assert r.status_code == 201 and r.json()["status"] == "updated"
    j = {"source": "reup/json.txt", "text": TEXT_C}
    assert client.post("/v1/documents", json=j).status_code == 201
    r = client.post("/v1/documents", json=j)
    assert r.status_code == 200 and r.json()["status"] == "unchanged"


def test_uploaded_text_is_searchable_right_after_201(client: TestClient) -> None:
    text = "玄武岩书院的藏书楼始建于1897年，共收藏古籍一万六千三百册。书院每年春季举办曝书会。"
    r = client.post("/v1/documents", json={"source": "search/xuanwu.txt", "text": text})
    assert r.status_code == 201
    doc_id = r.json()["doc_id"]
    s = client.post("/v1/search", json={"query": "玄武岩书院收藏了多少册古籍", "top_k": 3})
    assert s.status_code == 200
    top = s.json()["results"][0]
    assert top["doc_id"] == doc_id and "一万六千三百册" in top["text"]
    a = client.post("/v1/ask", json={"question": "玄武岩书院的藏书楼始建于哪一年？"}).json()
    assert a["answerable"] and "1897" in a["answer"]
    assert any(c["source"] == "search/xuanwu.txt" for c in a["citations"])


def test_delete_then_get_and_delete_again_are_404(client: TestClient, engine: Engine) -> None:
    text = "白鹭洲渡口每天清晨六点发出第一班渡船，渡船往返于东西两岸之间。"
    doc_id = client.post("/v1/documents", json={"source": "del/ferry.txt", "text": text}).json()[
        "doc_id"
    ]
    docs0, chunks0, gen0 = state(client, engine)
    r = client.delete(f"/v1/documents/{doc_id}")
    assert r.status_code == 200 and r.json() == {"deleted": doc_id}
    docs, chunks, gen = state(client, engine)
    assert docs == docs0 - 1 and chunks < chunks0 and gen == gen0 + 1
    assert doc_id not in {d["doc_id"] for d in client.get("/v1/documents").json()["documents"]}
    hits = client.post("/v1/search", json={"query": "白鹭洲渡口第一班渡船", "top_k": 5}).json()
    assert all(p["doc_id"] != doc_id for p in hits["results"])

    assert_json_error(client.get(f"/v1/documents/{doc_id}"), 404, "not_found")
    assert_json_error(client.delete(f"/v1/documents/{doc_id}"), 404, "not_found")
    assert_json_error(client.delete("/v1/documents/doesnotexist0000"), 404, "not_found")
    assert state(client, engine) == (docs, chunks, gen)


# --- bad uploads: a clear JSON 4xx, and nothing changes ---------------------------------------
UNDECODABLE = [b"\xff" * 64, b"\xef\xbb\xbf" + b"\xff\xfe\xfd" * 8]


def test_undecodable_samples_really_are_refused_by_the_decoder() -> None:
    for data in UNDECODABLE:
        with pytest.raises(DocumentError):
            decode_bytes(data)


@pytest.mark.parametrize(
    ("name", "data", "status", "code"),
    [
        ("bad/empty.txt", b"", 422, "bad_document"),
        ("bad/blank.txt", b"  \n\t \r\n   ", 422, "bad_document"),
        ("bad/blank.md", "\u3000\n  \n".encode(), 422, "bad_document"),
        ("bad/binary.txt", b"hello\x00world\x00" * 20, 422, "bad_document"),
        ("bad/undecodable1.txt", UNDECODABLE[0], 422, "bad_document"),
        ("bad/undecodable2.txt", UNDECODABLE[1], 422, "bad_document"),
        ("bad/big.txt", b"a" * (MAX_FILE + 1), 413, "document_too_large"),
        ("bad/report.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", 422, "corrupt_document"),
        ("bad/slides.pptx", b"PK\x03\x04" + bytes(40), 415, "unsupported_format"),
        ("bad/tool.exe", b"MZ\x90\x00\x03\x00\x00\x00", 415, "unsupported_format"),
        ("bad/no-suffix", TEXT_A.encode(), 415, "unsupported_format"),
    ],
    ids=[
        *("empty", "blank", "blank-ideographic", "nul", "undecodable", "bad-bom", "too-large"),
        *("truncated-pdf", "pptx", "exe", "no-suffix"),
    ],
)
def test_bad_file_is_refused_and_changes_nothing(
    client: TestClient, engine: Engine, name: str, data: bytes, status: int, code: str
) -> None:
    before = state(client, engine)
    assert_json_error(upload(client, (name, data)), status, code)
    assert state(client, engine) == before
    assert name not in {d["source"] for d in client.get("/v1/documents").json()["documents"]}


@pytest.mark.parametrize(
    "filename", ["../x.txt", "/etc/passwd", "a/../../b.txt", "..\\x.txt", "", "   ", "a\x01b.txt"]
)
def test_unsafe_or_missing_file_names_are_refused(
    client: TestClient, engine: Engine, filename: str
) -> None:
    before = state(client, engine)
    body, headers = raw_multipart([("file", filename, TEXT_A.encode())])
    r = client.post("/v1/documents", content=body, headers=headers)
    assert_json_error(r, 422, "bad_input")
    assert state(client, engine) == before
    if filename.isprintable():  # httpx percent-encodes control characters (a%01b.txt is fine)
        # httpx's own multipart encoding of the same name is refused as well
        assert_json_error(upload(client, (filename, TEXT_A.encode())), 422)
        assert state(client, engine) == before


@pytest.mark.parametrize(
    "payload",
    [
        {"source": "../escape.txt", "text": TEXT_A},
        {"source": "/abs.txt", "text": TEXT_A},
        {"source": "", "text": TEXT_A},
        {"source": "x.txt", "text": ""},
        {"source": "x.txt", "text": " \n\t "},
        {"source": "x.txt", "text": "a\x00b" * 50},
        {"source": "x.txt", "text": TEXT_A, "metadata": {"big": "长" * 6000}},  # over 16 KiB
        {"source": "x.txt", "text": TEXT_A, "metadata": {"": 1}},
        {"source": "x.txt", "text": TEXT_A, "unknown": 1},
        {"text": TEXT_A},
    ],
)
def test_bad_json_upload_is_refused(
    client: TestClient, engine: Engine, payload: dict[str, Any]
) -> None:
    before = state(client, engine)
    assert_json_error(client.post("/v1/documents", json=payload), 422)
    assert state(client, engine) == before


def test_wrong_request_content_types_are_415(client: TestClient, engine: Engine) -> None:
    before = state(client, engine)
    for ctype in ("text/plain", "application/octet-stream", "application/x-www-form-urlencoded"):
        r = client.post("/v1/documents", content=TEXT_A.encode(), headers={"content-type": ctype})
        assert_json_error(r, 415, "unsupported_format")
    r = client.post("/v1/documents", content=TEXT_A.encode())  # no content type at all
    assert_json_error(r, 415, "unsupported_format")
    assert state(client, engine) == before


def test_bad_metadata_or_missing_file_field(client: TestClient, engine: Engine) -> None:
    before = state(client, engine)
    for meta in ("not json", "[1, 2]", '"a string"', "3"):
        assert_json_error(upload(client, ("meta/bad.txt", TEXT_A.encode()), metadata=meta), 422)
    body, headers = raw_multipart([("other", None, b"x")])
    assert_json_error(client.post("/v1/documents", content=body, headers=headers), 422)
    body, headers = raw_multipart([("notfile", "a.txt", TEXT_A.encode())])
    assert_json_error(client.post("/v1/documents", content=body, headers=headers), 422)
    assert state(client, engine) == before


def test_request_body_over_the_limit_with_content_length_is_413(
    client: TestClient, engine: Engine
) -> None:
    before = state(client, engine)
    big = ("长" * (MAX_REQUEST // 3 + 10)).encode()  # ~MAX_REQUEST+30 bytes of UTF-8
    r = upload(client, ("huge/form.txt", big))
    assert int(r.request.headers["content-length"]) > MAX_REQUEST
    assert_json_error(r, 413, "request_too_large")
    r = client.post("/v1/documents", json={"source": "huge/json.txt", "text": big.decode()})
    assert_json_error(r, 413, "request_too_large")
    assert state(client, engine) == before


def test_request_body_over_the_limit_without_content_length_is_413(
    client: TestClient, engine: Engine
) -> None:
    before = state(client, engine)

    def json_chunks() -> Iterator[bytes]:
        yield b'{"source": "huge/chunked.txt", "text": "'
        for _ in range(MAX_REQUEST // 1000 + 5):
            yield b"x" * 1000
        yield b'"}'

    r = client.post(
        "/v1/documents", content=json_chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in r.request.headers
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert_json_error(r, 413, "request_too_large")

    body, headers = raw_multipart([("file", "huge/chunked.txt", b"y" * (MAX_REQUEST + 100))])

    def multipart_chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 4096):
            yield body[i : i + 4096]

    r = client.post("/v1/documents", content=multipart_chunks(), headers=headers)
    assert "content-length" not in r.request.headers
    assert_json_error(r, 413, "request_too_large")
    assert state(client, engine) == before


@pytest.mark.parametrize(
    ("bad", "status"),
    [
        (("multi-bad/binary.txt", b"\x00\x01\x02" * 100), 422),
        (("multi-bad/empty.txt", b""), 422),
        (("multi-bad/undecodable.txt", UNDECODABLE[0]), 422),
        (("multi-bad/report.pdf", b"%PDF-1.7"), 422),
        (("multi-bad/old.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100)), 415),
        (("multi-bad/big.txt", b"b" * (MAX_FILE + 1)), 413),
        (("../multi-bad/escape.txt", TEXT_C.encode()), 422),
    ],
    ids=["binary", "empty", "undecodable", "corrupt-pdf", "doc", "too-large", "unsafe-name"],
)
def test_one_bad_file_fails_the_whole_request(
    client: TestClient, engine: Engine, bad: tuple[str, bytes], status: int
) -> None:
    before = state(client, engine)
    good1 = ("multi-bad/good1.txt", TEXT_A.encode())
    good2 = ("multi-bad/good2.md", TEXT_B.encode())
    for files in ((good1, bad, good2), (bad, good1, good2), (good1, good2, bad)):
        assert_json_error(upload(client, *files), status)
        assert state(client, engine) == before
    sources = {d["source"] for d in client.get("/v1/documents").json()["documents"]}
    assert not {s for s in sources if "multi-bad" in s}


def test_error_responses_are_json_for_unknown_routes_and_methods(client: TestClient) -> None:
    assert_json_error(client.get("/v1/documents/x/y"), 404)
    assert_json_error(client.put("/v1/documents"), 405, "method_not_allowed")
    assert_json_error(client.patch("/v1/documents/abc"), 405, "method_not_allowed")


def test_chunked_body_over_the_limit_over_real_http(
    tmp_path_factory: pytest.TempPathFactory, loopback_server: Any
) -> None:
    """The same limit under uvicorn, where a chunked body really arrives piece by piece."""
    index_dir = tmp_path_factory.mktemp("docs_api_serve_idx")  # its own, empty index
    log = index_dir.parent / "docs_api_server.log"
    with loopback_server(index_dir, log, RAG_MAX_REQUEST_BYTES="4096") as server:
        url = f"{server.base}/v1/documents"

        def body(pieces: int) -> Iterator[bytes]:
            yield b'{"source": "chunked.txt", "text": "'
            for _ in range(pieces):
                yield "长江".encode() * 100  # 600 bytes
            yield b'"}'

        for pieces in (10, 1000):
            r = httpx.post(url, content=body(pieces), headers={"content-type": "application/json"})
            assert r.request.headers["transfer-encoding"] == "chunked"
            assert_json_error(r, 413, "request_too_large")
        assert httpx.get(url).json()["total"] == 0
        r = httpx.post(url, content=body(2), headers={"content-type": "application/json"})
        assert r.status_code == 201, r.text  # a chunked body under the limit is fine
        assert httpx.get(url).json()["total"] == 1
