"""Uploads that expand too far, or parse too long, are refused with a JSON 4xx naming the limit
and its setting and leave the index as it was; a parse that runs too long has its process killed.

One engine serves the module: default limits but for a 3-second parse timeout and a 200,000
character limit, so that a slow or dense file is refused quickly.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from ingest import bombs
from ingest.processes import alive, busy_parse_process, cpu_ticks, parse_processes, wait_until

from rag.config import Settings
from rag.embed.base import Embedder
from rag.engine import Engine


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, use_embedder: Embedder) -> Iterator[Engine]:
    settings = Settings(
        index_dir=tmp_path_factory.mktemp("parse_limits_api"),
        api_keys=None,
        admin_keys=None,
        cors_origins=None,
        parse_timeout=3,
        max_document_chars=200_000,
    )
    engine = Engine(settings, embedder=use_embedder)
    yield engine
    engine.close()


def upload(client: TestClient, name: str, data: bytes) -> Any:
    return client.post("/v1/documents", files=[("file", (name, data, "application/octet-stream"))])


def state(engine: Engine) -> tuple[int, int, int]:
    return engine.store.count_documents(), engine.store.count_chunks(), engine.store.generation()


@pytest.mark.parametrize(
    ("name", "make", "status", "code", "words"),
    [
        ("bomb.docx", lambda: bombs.docx_of_paragraphs(350), 413, "document_too_large",
         ["expands to", "RAG_MAX_EXPANDED_BYTES"]),
        ("node.docx", lambda: bombs.docx_of_one_text_node(1000), 413, "document_too_large",
         ["expands to", "RAG_MAX_EXPANDED_BYTES"]),
        ("pages.pdf", lambda: bombs.pdf_of_pages(100_000), 413, "document_too_large",
         ["100000 pages", "RAG_MAX_PDF_PAGES"]),
        ("dense.pdf", lambda: bombs.pdf_drawing(50_000, 40), 413, "document_too_large",
         ["200000 characters", "RAG_MAX_DOCUMENT_CHARS"]),
    ],
    ids=["docx-paragraphs", "docx-text-node", "pdf-pages", "pdf-chars"],
)  # fmt: skip
def test_upload_past_a_parse_limit_is_refused_and_changes_nothing(
    client: TestClient,
    engine: Engine,
    name: str,
    make: Any,
    status: int,
    code: str,
    words: list[str],
) -> None:
    data = make()
    before = state(engine)
    workers = parse_processes(os.getpid())
    start = time.monotonic()
    r = upload(client, name, data)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code
    assert error["message"].startswith(f"{name}: ")
    for word in words:
        assert word in error["message"]
    assert time.monotonic() - start < 30
    assert state(engine) == before
    # at most this engine's one warm worker was added (other engines of the session have theirs)
    assert len(parse_processes(os.getpid())) <= len(workers) + 1


def test_upload_parsing_longer_than_the_time_limit_is_refused_and_its_process_killed(
    client: TestClient, engine: Engine
) -> None:
    data = bombs.slow_pdf(200_000)  # a few KB; its page takes pypdf ~12 s to read
    before = state(engine)
    baseline = {p: cpu_ticks(p) for p in parse_processes(os.getpid())}
    parsing: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set() and not parsing:
            worker = busy_parse_process(os.getpid(), baseline)
            if worker is not None:
                parsing.append(worker)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    start = time.monotonic()
    try:
        r = upload(client, "slow.pdf", data)
    finally:
        done.set()
        watcher.join()
    assert r.status_code == 422, r.text
    assert r.json()["error"] == {
        "code": "document_too_complex",
        "message": "slow.pdf: parsing took longer than the limit of 3 s (RAG_PARSE_TIMEOUT); "
        "the file is too complex to read",
    }
    assert time.monotonic() - start < 15
    assert state(engine) == before
    assert parsing, "no parse process was seen parsing"
    assert wait_until(lambda: not alive(parsing[0]), 5)  # killed, not left running
