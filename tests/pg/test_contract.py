"""One contract, two implementations: the local store (SQLite + segment files) and PostgreSQL
(`RAG_STORE_URL`) run the same tests — writes, atomicity, filters, equal search results — on a
real embedded PostgreSQL server (tests/pg/server.py); nothing is mocked."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from pg.server import PgServer

from rag.config import Settings
from rag.embed.base import Embedder
from rag.engine import Engine
from rag.errors import DocumentError, NotFound
from rag.retrieve.filter import MetadataFilter

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ["local", "postgres"]

DOC_A = "上海市人民政府发布长三角物流成本降低方案。方案提出三年内降低跨省物流成本百分之十。"
DOC_B = "浙江省杭州市推进数字经济发展，云计算与人工智能产业集群初具规模，税收增长明显。"
DOC_C = "安徽合肥的量子信息实验室发布新成果，科研人员研制出新型量子计算原型机。"


EngineFactory = Callable[..., Engine]


@pytest.fixture(params=BACKENDS)
def make_engine(
    request: pytest.FixtureRequest, tmp_path: Path, use_embedder: Embedder
) -> Iterator[EngineFactory]:
    """Engines of one backend over one store (the same database or index directory)."""
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else ""
    engines: list[Engine] = []

    def make(**overrides: object) -> Engine:
        settings = Settings(index_dir=tmp_path / "idx", store_url=url, parse_sandbox=False)
        engine = Engine(settings.model_copy(update=overrides), embedder=use_embedder)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


def _ids(engine: Engine, query: str, **kw: object) -> list[str]:
    return [p.doc_id for p in engine.search(query, 5, **kw).passages]  # type: ignore[arg-type]


def test_ingest_update_delete(make_engine: EngineFactory) -> None:
    engine = make_engine()
    a = engine.ingest_bytes("a.txt", DOC_A.encode())
    b = engine.ingest_bytes("b.txt", DOC_B.encode())
    assert (a.status, b.status) == ("added", "added")
    assert engine.ingest_bytes("a.txt", DOC_A.encode()).status == "unchanged"
    assert [d.source for d in engine.documents()] == ["a.txt", "b.txt"]
    assert engine.document_text(a.doc_id) == DOC_A
    assert _ids(engine, "物流成本")[0] == a.doc_id

    assert engine.ingest_bytes("a.txt", DOC_C.encode()).status == "updated"
    assert engine.document_text(a.doc_id) == DOC_C
    top = engine.search("量子计算原型机", 5).passages[0]
    assert (top.doc_id, top.text) == (a.doc_id, DOC_C)
    assert "物流" not in "".join(p.text for p in engine.search("物流成本", 5).passages)

    engine.delete(a.doc_id)
    with pytest.raises(NotFound):
        engine.document(a.doc_id)
    with pytest.raises(NotFound):
        engine.delete(a.doc_id)
    assert set(_ids(engine, "量子计算")) <= {b.doc_id}
    assert engine.counts()[:2] == (1, engine.document(b.doc_id).chunks)


def test_the_collection_says_where_places_lie(make_engine: EngineFactory) -> None:
    # what `rag.answer.gazetteer` reads: the chunks a name occurs in, live ones only
    engine = make_engine()
    robots = engine.ingest_bytes("robots.txt", "4款人形机器人出自张江所在的上海浦东新区。".encode())
    engine.ingest_bytes("b.txt", DOC_B.encode())
    assert engine.places("浦东有几款新药？").inside["浦东"] == {"张江"}
    engine.delete(robots.doc_id)
    assert engine.places("浦东有几款新药？").inside["浦东"] == frozenset()


def test_upload_is_atomic(make_engine: EngineFactory) -> None:
    from rag.engine import Upload

    engine = make_engine()
    engine.ingest_bytes("keep.txt", DOC_B.encode())
    before = engine.counts()
    with pytest.raises(DocumentError):
        engine.ingest_documents(
            [Upload("new.txt", DOC_A.encode()), Upload("bad.txt", b"\x00\x01\x02binary\xff")]
        )
    assert engine.counts() == before
    assert [d.source for d in engine.documents()] == ["keep.txt"]


def test_metadata_filters(make_engine: EngineFactory) -> None:
    engine = make_engine()
    engine.ingest_bytes("sh.txt", DOC_A.encode(), {"region": "上海", "date": "2024-03-01"})
    engine.ingest_bytes(
        "zj.txt", DOC_B.encode(), {"region": ["浙江", "杭州"], "date": "2023-05-02"}
    )
    engine.ingest_bytes("ah.txt", DOC_C.encode(), {"region": "安徽", "year": 2024})
    src = {d.doc_id: d.source for d in engine.documents()}

    def sources(**kw: object) -> set[str]:
        return {src[d] for d in _ids(engine, "发展 成果 成本 税收", **kw)}

    assert sources() == {"sh.txt", "zj.txt", "ah.txt"}
    assert sources(where=MetadataFilter.build({"region": "上海"})) == {"sh.txt"}
    assert sources(where=MetadataFilter.build({"region": "杭州"})) == {"zj.txt"}  # list member
    assert sources(where=MetadataFilter.build({"year": 2024})) == {"ah.txt"}
    assert sources(where=MetadataFilter.build({"year": "2024"})) == set()  # JSON types differ
    assert sources(where=MetadataFilter.build(date_from="2024-01-01")) == {"sh.txt"}
    assert sources(where=MetadataFilter.build(date_to="2023-12-31")) == {"zj.txt"}
    assert sources(sources=["ah.txt", "zj.txt"]) == {"ah.txt", "zj.txt"}
    named = sources(sources=["ah.txt", "zj.txt"], where=MetadataFilter.build({"region": "安徽"}))
    assert named == {"ah.txt"}


@pytest.fixture(scope="module")
def corpus_pair(
    tmp_path_factory: pytest.TempPathFactory, use_embedder: Embedder, pg_server: PgServer
) -> Iterator[tuple[Engine, Engine]]:
    """The bundled corpus in both backends (the PostgreSQL one filled by `rag migrate` from
    the local one: the copy is tested too)."""
    import psycopg

    from rag.store.migrate import migrate

    url = pg_server.url.rsplit("/", 1)[0] + "/corpus"
    with psycopg.connect(pg_server.url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE corpus")
    local = Engine(
        Settings(index_dir=tmp_path_factory.mktemp("local"), parse_sandbox=False),
        embedder=use_embedder,
    )
    local.ingest_paths([ROOT / "corpus"])
    done = migrate(local.settings.db_path, url)
    assert (done.documents, done.chunks) == (5, local.store.count_chunks())
    pg = Engine(
        Settings(index_dir=tmp_path_factory.mktemp("pg"), store_url=url), embedder=use_embedder
    )
    yield local, pg
    pg.close()
    local.close()


def _questions() -> list[str]:
    path = ROOT / "benchmarks" / "data" / "seed_dev_qa.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()][:40]


def test_same_results_on_both_backends(corpus_pair: tuple[Engine, Engine]) -> None:
    local, pg = corpus_pair
    questions = [
        *_questions(),
        "How much tax did the Carbon Valley collect in 2023?",
        "2024年诺贝尔物理学奖授予了谁？",
    ]
    same = 0
    for q in questions:
        a, b = local.search(q, 5), pg.search(q, 5)
        if [p.chunk_id for p in a.passages] == [p.chunk_id for p in b.passages]:
            same += 1
            assert [p.score for p in a.passages] == pytest.approx(
                [p.score for p in b.passages], abs=1e-4
            )
            assert a.passages == b.passages or all(
                (x.text, x.start, x.end, x.source) == (y.text, y.start, y.end, y.source)
                for x, y in zip(a.passages, b.passages, strict=True)
            )
    assert same >= len(questions) - 1, f"{same}/{len(questions)} rankings equal"
    ans_local = local.ask("碳谷2023年的税收是多少？")
    ans_pg = pg.ask("碳谷2023年的税收是多少？")
    assert ans_local.answer == ans_pg.answer


def test_bm25_in_sql_equals_local_bm25(corpus_pair: tuple[Engine, Engine]) -> None:
    """The lexical top-k computed in SQL (GIN candidates, tsvector term frequencies, df and N
    from the statistics tables) has the scores and order of the local BM25 (== bm25s)."""
    from rag.index.bm25 import K1, B
    from rag.index.tokenize import tokenize
    from rag.store.postgres import PgStore

    local, pg = corpus_pair
    assert isinstance(pg.store, PgStore)
    segs = local.snapshot.segments
    for q in ["长三角一体化 物流 成本", "G60科创走廊 九城市 投资", "税收 2023年 碳谷", "AI 机器人"]:
        terms = tokenize(q)
        hits = segs.search_lexical(terms, 20)
        want = [(int(c), float(s)) for c, s in zip(hits.chunk_ids, hits.scores, strict=True)]
        with pg.store.read_view() as view:
            n, total, _, _ = view.stats()
            assert (n, total) == (segs.stats.n_docs, segs.stats.total_len)
            query = segs.stats.query(terms)
            got = view.bm25_top(
                dict(zip(query.terms, query.weights.tolist(), strict=True)),
                20,
                query.avgdl,
                None,
                K1,
                B,
            )
            rows = view.rows([c for c, _ in got], pg.embedder.dim)
            texts = dict(zip(rows.chunk_ids.tolist(), rows.texts, strict=True))
        local_texts = [
            local.snapshot.text(int(r))
            for r in local.snapshot.global_rows(hits.segments, hits.rows)
        ]
        assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-5)
        assert [texts[c] for c, _ in got] == local_texts


def test_statistics_stay_exact_through_updates_and_deletes(make_engine: EngineFactory) -> None:
    engine = make_engine()
    if not engine.in_database:
        pytest.skip("the statistics tables are the PostgreSQL backend's")
    engine.ingest_bytes("a.txt", DOC_A.encode())
    engine.ingest_bytes("b.txt", DOC_B.encode())
    engine.ingest_bytes("a.txt", DOC_C.encode())
    engine.delete(engine.documents()[1].doc_id)
    engine.ingest_bytes("c.txt", (DOC_A + DOC_B).encode())
    with engine.store.read_view() as view:  # type: ignore[union-attr]
        rows = next(iter(view.row_batches(512)))
        df: dict[str, int] = {}
        for toks in rows.tokens:
            for t in set(toks or []):
                df[t] = df.get(t, 0) + 1
        stored = dict(view.execute("SELECT term, df FROM rag_terms").fetchall())
        n, total, mass, _ = view.stats()
    assert stored == df
    assert (n, total, mass) == (len(rows), sum(len(t or []) for t in rows.tokens), sum(df.values()))


def test_failed_write_leaves_nothing(make_engine: EngineFactory) -> None:
    """A write failing inside its transaction (here: a vector of the wrong dimension, refused
    by the typed column) stores nothing: no document, no chunk, no statistic, no generation."""
    from rag.store.sqlite import ChunkVectors
    from rag.types import Chunk

    engine = make_engine()
    if not engine.in_database:
        pytest.skip("the local store's atomicity is tested in tests/store")
    engine.ingest_bytes("keep.txt", DOC_B.encode())
    store = engine.store
    before = (store.generation(), store.count_documents(), store.count_chunks())
    chunks = [Chunk("x", 0, DOC_A[:10], 0, 10), Chunk("x", 1, DOC_A[10:20], 10, 20)]
    good = ChunkVectors(np.ones(512, np.float32) / np.sqrt(512), [], np.zeros((0, 512), np.float32))
    bad = ChunkVectors(np.ones(3, np.float32), [], np.zeros((0, 512), np.float32))
    with pytest.raises(Exception, match=r"dimension|expected"):
        store.put_document(
            source="x.txt",
            title="x",
            text=DOC_A,
            content_hash="h",
            encoding="utf-8",
            metadata={},
            chunks=chunks,
            vectors=[good, bad],
        )
    assert (store.generation(), store.count_documents(), store.count_chunks()) == before


def test_a_read_sees_one_state(make_engine: EngineFactory) -> None:
    """A view (what every search reads in) keeps its state while another engine writes."""
    writer = make_engine()
    if not writer.in_database:
        pytest.skip("the local backend's snapshots are tested in tests/write")
    writer.ingest_bytes("a.txt", DOC_A.encode())
    reader = make_engine()
    with reader.store.read_view() as view:
        generation = view.generation
        writer.ingest_bytes("b.txt", DOC_B.encode())
        assert view.generation == generation
        assert {r.source for r in view.doc_rows().values()} == {"a.txt"}
        assert view.counts()[0] == view.stats()[0]
    with reader.store.read_view() as view:
        assert {r.source for r in view.doc_rows().values()} == {"a.txt", "b.txt"}


def test_two_engines_see_each_others_writes_within_a_second(make_engine: EngineFactory) -> None:
    a, b = make_engine(), make_engine()
    b.search("物流", 5)  # b has read before the write
    t0 = time.monotonic()
    doc = a.ingest_bytes("a.txt", DOC_A.encode())
    written = time.monotonic()
    # Visibility is when the first search that finds the write *started*: how long that search
    # then takes (the local backend's first one maps the new segment) is latency, not lag.
    while True:
        started = time.monotonic()
        if doc.doc_id in _ids(b, "物流成本"):
            break
        assert started - written < 1.0, "the write was not seen within 1 s"
        time.sleep(0.02)
    seen = started - written
    a.delete(doc.doc_id)
    deleted = time.monotonic()
    while True:
        started = time.monotonic()
        if doc.doc_id not in _ids(b, "物流成本"):
            break
        assert started - deleted < 1.0, "the delete was not seen within 1 s"
        time.sleep(0.02)
    assert seen < 1.0 and t0 <= written


def test_schema_versioned_and_upgrade_idempotent(pg_url: str) -> None:
    import psycopg

    from rag.errors import IndexError_
    from rag.store.postgres import SCHEMA_VERSION, PgStore, upgrade

    assert upgrade(pg_url) == (0, SCHEMA_VERSION)
    assert upgrade(pg_url) == (SCHEMA_VERSION, SCHEMA_VERSION)
    PgStore(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE rag_meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(IndexError_, match="newer"):
        PgStore(pg_url)


def test_two_servers_on_one_database(
    pg_url: str, tmp_path: Path, loopback_server: Callable[..., object]
) -> None:
    """Two `rag serve` processes on one database: an upload through one is found by a search
    through the other within a second; a delete likewise."""
    env = {"RAG_STORE_URL": pg_url, "RAG_PARSE_SANDBOX": "false"}
    with (
        loopback_server(tmp_path / "one", tmp_path / "one.log", **env) as one,  # type: ignore[attr-defined]
        loopback_server(tmp_path / "two", tmp_path / "two.log", **env) as two,  # type: ignore[attr-defined]
    ):
        r = httpx.post(
            f"{one.base}/v1/documents", json={"source": "a.txt", "text": DOC_A}, timeout=60
        )
        assert r.status_code == 201, r.text
        doc_id = r.json()["doc_id"]
        written = time.monotonic()
        results: list[str] = []
        while doc_id not in results:
            assert time.monotonic() - written < 1.0, "not seen through the other server in 1 s"
            found = httpx.post(f"{two.base}/v1/search", json={"query": "物流成本"}, timeout=10)
            results = [p["doc_id"] for p in found.json()["results"]]
        ready = httpx.get(f"{two.base}/readyz", timeout=10).json()
        assert (ready["documents"], ready["status"]) == (1, "ready")
        assert httpx.delete(f"{two.base}/v1/documents/{doc_id}", timeout=30).status_code in (
            200,
            204,
        )
        gone = httpx.post(f"{one.base}/v1/search", json={"query": "物流成本"}, timeout=10)
        assert doc_id not in [p["doc_id"] for p in gone.json()["results"]]
        assert not (tmp_path / "one").exists() or not any((tmp_path / "one").glob("*.seg"))


def test_two_workers_over_one_database(
    pg_url: str, tmp_path: Path, loopback_server: Callable[..., object]
) -> None:
    """`rag serve` with `RAG_WORKERS=2` over PostgreSQL: the supervisor opens the database once,
    both worker processes serve from it, and a document uploaded through one is found by
    searches that either answers."""
    env = {"RAG_STORE_URL": pg_url, "RAG_PARSE_SANDBOX": "false", "RAG_WORKERS": "2"}
    log = tmp_path / "serve.log"
    with loopback_server(tmp_path / "idx", log, **env) as server:  # type: ignore[attr-defined]
        r = httpx.post(
            f"{server.base}/v1/documents", json={"source": "a.txt", "text": DOC_A}, timeout=60
        )
        assert r.status_code == 201, r.text
        doc_id = r.json()["doc_id"]

        def top() -> str:  # a new connection each time, so that either worker may answer
            found = httpx.post(f"{server.base}/v1/search", json={"query": "物流成本"}, timeout=30)
            assert found.status_code == 200, found.text
            return str(found.json()["results"][0]["doc_id"])

        served: set[str] = set()
        with ThreadPoolExecutor(8) as pool:
            for _ in range(10):
                assert set(pool.map(lambda _: top(), range(16))) == {doc_id}
                served = set(
                    re.findall(r"\[worker (\d)\] rag.access: POST /v1/search", log.read_text())
                )
                if served == {"0", "1"}:
                    break
        assert served == {"0", "1"}, log.read_text()[-3000:]
    assert not any((tmp_path / "idx").glob("*.seg"))


def test_concurrent_searches_share_the_pool(make_engine: EngineFactory) -> None:
    engine = make_engine()
    engine.ingest_bytes("a.txt", DOC_A.encode())
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for _ in range(5):
                assert engine.search("物流成本", 3).passages
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_the_chunk_holding_an_offset(make_engine: EngineFactory) -> None:
    # what an answer reads on to (an article's closing credit chunks below its passages)
    engine = make_engine(chunk_size=60, chunk_overlap=0)
    text = "".join(f"第{n}段讲长三角一体化的第{n}项任务，推动区域协同发展。" for n in range(1, 9))
    doc = engine.ingest_bytes("long.txt", text.encode()).doc_id
    stored = engine.document_text(doc)
    offset = stored.index("第7段")
    chunk = engine.store.chunk_at(doc, offset)
    assert chunk is not None and chunk.ord > 0
    assert chunk.start <= offset < chunk.end and stored[chunk.start : chunk.end] == chunk.text
    assert engine.store.chunk_at(doc, len(stored) + 5) is None
    assert engine.store.chunk_at("no-such-doc", 0) is None
