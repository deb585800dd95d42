"""Reads while writing: searches over HTTP (and straight on the engine) run in several threads
while one writer adds, updates and deletes documents, and sends uploads that must fail.

Every search must succeed and come from one consistent index generation: the writer records, after
each committed write, the chunks (id → text) of every document at that generation; each search
response names its generation (`X-Index-Generation`, or `SearchResult.generation`), and every
passage returned must be a chunk, with that exact text, of that generation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rag.engine import Engine

BASE_DOCS = {
    "base/station.txt": "流动观测站设在东海岸，站内记录潮汐、风速与降水。观测站每天整点上传一次数据。",
    "base/library.txt": "城南图书馆藏书四十万册，周一闭馆。馆内设有少儿阅览室和古籍修复中心。",
    "base/meteor.txt": "The Marlow observatory recorded 4,812 meteors during the Perseid peak of 2029.",
}
QUERIES = [
    "流动观测站记录什么数据",
    "观测站 潮汐 风速",
    "图书馆周几闭馆",
    "临时站点第几号记录了多少毫米降水",
    "How many meteors were recorded?",
]
CYCLES = 12
READERS = 4


def dynamic_text(i: int, version: int) -> str:
    return (
        f"临时站点第{i}号在第{version}版报告中记录了{100 + 7 * i + version}毫米降水。"
        f"该站点的观测员共{3 + version}人，负责潮汐与风速的记录。"
    )


@dataclass
class History:
    """generation → {chunk_id: text} of the whole collection, recorded by the writer."""

    chunks: dict[int, dict[str, str]] = field(default_factory=dict)
    docs: dict[int, set[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, engine: Engine) -> int:
        gen = engine.store.generation()
        with engine.store.read_view() as view:
            batches = list(view.row_batches(engine.embedder.dim))
        docs = {d.doc_id for d in engine.documents()}
        assert engine.store.generation() == gen  # the caller is the only writer
        with self.lock:
            self.chunks[gen] = {
                f"{d}:{o}": t
                for rows in batches
                for d, o, t in zip(rows.doc_ids, rows.ords.tolist(), rows.texts, strict=True)
            }
            self.docs[gen] = docs
        return gen


@pytest.fixture(scope="module")
def engine(engine: Engine) -> Engine:
    """The module's engine, holding the base documents."""
    for source, text in BASE_DOCS.items():
        engine.ingest_bytes(source, text.encode())
    return engine


def run_threads(
    writer: Callable[[], None], readers: list[Callable[[threading.Event], None]]
) -> None:
    """Run readers until the writer is done; re-raise the first failure of any thread."""
    done = threading.Event()
    errors: list[BaseException] = []

    def guard(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:
                errors.append(exc)
                done.set()

        return run

    def write_then_stop() -> None:
        try:
            writer()
        finally:
            done.set()

    threads = [threading.Thread(target=guard(write_then_stop), name="writer")] + [
        threading.Thread(target=guard(lambda r=r: r(done)), name=f"reader{i}")  # type: ignore[misc]
        for i, r in enumerate(readers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    if errors:
        raise errors[0]


def check_passages(history: History, gen: int, passages: list[dict[str, Any]], where: str) -> None:
    chunks = history.chunks.get(gen)
    assert chunks is not None, f"{where}: generation {gen} was never committed by the writer"
    for p in passages:
        assert p["doc_id"] in history.docs[gen], f"{where}: {p['doc_id']} not in generation {gen}"
        assert p["chunk_id"].split(":")[0] == p["doc_id"]
        assert chunks.get(p["chunk_id"]) == p["text"], f"{where}: {p['chunk_id']} at {gen}"


def test_searches_during_writes_are_consistent(client: TestClient, engine: Engine) -> None:
    history = History()
    history.record(engine)
    seen: list[tuple[int, list[dict[str, Any]], str]] = []
    seen_lock = threading.Lock()
    failed_uploads: list[int] = []

    def http_reader(done: threading.Event, offset: int) -> None:
        n = 0
        while not done.is_set() or n < 5:
            q = QUERIES[(n + offset) % len(QUERIES)]
            r = client.post("/v1/search", json={"query": q, "top_k": 5})
            assert r.status_code == 200, r.text
            gen = int(r.headers["X-Index-Generation"])
            with seen_lock:
                seen.append((gen, r.json()["results"], f"http {q}"))
            if n % 4 == 0:
                assert client.get("/v1/documents").status_code == 200
                a = client.post("/v1/ask", json={"question": q})
                assert a.status_code == 200, a.text
                body = a.json()
                for c in body["citations"]:
                    assert body["passages"][c["marker"] - 1]["chunk_id"] == c["chunk_id"]
            n += 1
            if n > 2000:  # pragma: no cover - the writer should finish long before
                break

    def engine_reader(done: threading.Event) -> None:
        n = 0
        while not done.is_set() or n < 5:
            q = QUERIES[n % len(QUERIES)]
            result = engine.search(q, 5)
            passages = [
                {"doc_id": p.doc_id, "chunk_id": p.chunk_id, "text": p.text}
                for p in result.passages
            ]
            with seen_lock:
                seen.append((result.generation, passages, f"engine {q}"))
            n += 1
            if n > 2000:  # pragma: no cover
                break

    def bad_uploads() -> None:
        before = (engine.store.count_documents(), engine.store.count_chunks())
        gen = engine.store.generation()
        r = client.post(
            "/v1/documents", files={"file": ("bad/binary.txt", b"\x00\x01" * 64, "text/plain")}
        )
        failed_uploads.append(r.status_code)
        r = client.post(
            "/v1/documents",
            files=[
                ("file", ("bad/ok.txt", "本应不被保存的正常文本。".encode(), "text/plain")),
                ("file", ("bad/report.pdf", b"%PDF-1.4", "application/pdf")),
            ],
        )
        failed_uploads.append(r.status_code)
        r = client.post("/v1/documents", json={"source": "../bad.txt", "text": "越界。"})
        failed_uploads.append(r.status_code)
        assert (engine.store.count_documents(), engine.store.count_chunks()) == before
        assert engine.store.generation() == gen

    def writer() -> None:
        for i in range(CYCLES):
            src = f"dyn/site-{i}.txt"
            r = client.post("/v1/documents", json={"source": src, "text": dynamic_text(i, 1)})
            assert r.status_code == 201 and r.json()["status"] == "added", r.text
            doc_id = r.json()["doc_id"]
            history.record(engine)
            if i % 3 == 0:
                bad_uploads()
            r = client.post(
                "/v1/documents",
                files={"file": (src, dynamic_text(i, 2).encode(), "text/plain")},
            )
            assert r.status_code == 201 and r.json()["status"] == "updated", r.text
            history.record(engine)
            if i % 2 == 0:
                r = client.delete(f"/v1/documents/{doc_id}")
                assert r.status_code == 200, r.text
                history.record(engine)
            if i % 4 == 1:  # several files in one request: one refresh after all of them
                files = [
                    (
                        "file",
                        (f"dyn/batch-{i}-{k}.txt", dynamic_text(100 + k, i).encode(), "text/plain"),
                    )
                    for k in range(3)
                ]
                r = client.post("/v1/documents", files=files)
                assert r.status_code == 201, r.text
                history.record(engine)
            time.sleep(0.005)

    run_threads(
        writer,
        [lambda d, k=k: http_reader(d, k) for k in range(READERS)] + [engine_reader],  # type: ignore[misc]
    )

    assert failed_uploads and all(400 <= s < 500 for s in failed_uploads), failed_uploads
    assert len(seen) >= (READERS + 1) * 5
    for gen, passages, where in seen:
        check_passages(history, gen, passages, where)
    generations = {gen for gen, _, _ in seen}
    assert len(generations) >= 2, f"reads never overlapped a write: {generations}"
    assert any(p["doc_id"] not in history.docs[min(history.docs)] for _, ps, _ in seen for p in ps)

    # after the dust settles: the HTTP view, the store and the snapshot agree
    listed = client.get("/v1/documents").json()
    final = max(history.docs)
    assert {d["doc_id"] for d in listed["documents"]} == history.docs[final]
    assert engine.snapshot.generation == engine.store.generation() == final


def test_failing_uploads_during_reads_change_nothing(client: TestClient, engine: Engine) -> None:
    before = (
        client.get("/v1/documents").json()["total"],
        engine.store.count_chunks(),
        engine.store.generation(),
    )
    statuses: list[int] = []
    bad_requests: list[dict[str, Any]] = [
        {"files": {"file": ("x/empty.txt", b"", "text/plain")}},
        {"files": {"file": ("x/nul.txt", b"a\x00b" * 100, "text/plain")}},
        {"files": {"file": ("x/undecodable.txt", b"\xff" * 64, "text/plain")}},
        {"files": {"file": ("x/tool.exe", b"MZ\x90\x00", "application/octet-stream")}},
        {"files": {"file": ("/etc/passwd", b"root:x:0:0", "text/plain")}},
        {"json": {"source": "x/blank.txt", "text": "   \n  "}},
        {"content": b"plain", "headers": {"content-type": "text/plain"}},
    ]

    def writer() -> None:
        for _ in range(5):
            for kwargs in bad_requests:
                statuses.append(client.post("/v1/documents", **kwargs).status_code)

    def reader(done: threading.Event) -> None:
        n = 0
        while not done.is_set() or n < 5:
            r = client.post("/v1/search", json={"query": QUERIES[n % len(QUERIES)]})
            assert r.status_code == 200, r.text
            assert int(r.headers["X-Index-Generation"]) == before[2]
            n += 1

    run_threads(writer, [reader] * READERS)
    assert len(statuses) == 5 * len(bad_requests)
    assert all(s in (413, 415, 422) for s in statuses), statuses
    after = (
        client.get("/v1/documents").json()["total"],
        engine.store.count_chunks(),
        engine.store.generation(),
    )
    assert after == before
