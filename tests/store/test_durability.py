"""Durability of the index: SQLite is the one truth, derived files are rebuilt, never trusted.

Real engine, real bundled embedder (`use-multilingual`), small documents written into tmp_path.
Crashes are real: a child process is SIGKILLed in the middle of an ingest.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.config import Settings
from rag.embed.base import Embedder, Kind
from rag.engine import Engine
from rag.errors import EmbedderMismatch, NotFound
from rag.index.segments import MANIFEST_FILE
from rag.ingest.chunk import make_chunks
from rag.ingest.pipeline import prepare
from rag.store.sqlite import doc_id_for

# --- sample documents ------------------------------------------------------------------------

FIRST = (
    "苏州工业园区位于江苏省苏州市东部，成立于1994年，是中国和新加坡两国政府间的重要合作项目。"
    "园区总面积278平方公里，其中中新合作区80平方公里。2023年，园区实现地区生产总值3686亿元，"
    "同比增长5.8%。园区重点发展新一代信息技术、高端装备制造、生物医药和纳米技术应用等产业。\n"
)
DEMO = (
    "长三角生态绿色一体化发展示范区于2019年11月1日正式揭牌，范围包括上海市青浦区、江苏省苏州市"
    "吴江区和浙江省嘉兴市嘉善县，面积约2413平方公里。示范区的先行启动区面积约660平方公里。"
    "示范区坚持生态优先、绿色发展，探索跨行政区域共建共享的新机制。\n"
)
ENGLISH = (
    "The Yangtze River Delta covers Shanghai, Jiangsu, Zhejiang and Anhui. The region produces "
    "nearly a quarter of China's economic output. A new high-speed rail line links Hefei and "
    "Hangzhou, cutting the journey to under two hours. Officials plan shared data standards for "
    "customs, health insurance and business registration across the provinces.\n"
)
CITIES = ["上海", "南京", "杭州", "合肥", "苏州", "无锡", "宁波", "常州", "嘉兴", "湖州"]
INDUSTRIES = [
    "集成电路",
    "生物医药",
    "人工智能",
    "新能源汽车",
    "高端装备",
    "新材料",
    "航空航天",
    "数字经济",
]
QUERIES = ["示范区的面积是多少？", "苏州工业园区成立于哪一年？", "high-speed rail Hefei Hangzhou"]


def city_text(i: int) -> str:
    """A small, unique Chinese document (one or two chunks)."""
    city = CITIES[i % len(CITIES)]
    a, b = INDUSTRIES[i % len(INDUSTRIES)], INDUSTRIES[(i * 3 + 1) % len(INDUSTRIES)]
    return (
        f"第{i}号简报：{city}在{2000 + i}年启动了第{i + 1}批产业园区建设，重点引进{a}和{b}项目。"
        f"截至年底，园区共有企业{120 + 7 * i}家，从业人员{3 + i}万人，全年税收{15 + 2 * i}亿元。"
        f"简报编号{i:04d}，由{city}市发展和改革委员会发布，供长三角一体化协调会议参考。"
        + ("会议还讨论了跨省通勤、医保结算和公共数据共享的具体安排。" * (1 + i % 3))
        + "\n"
    )


def big_text(n_sentences: int = 100) -> str:
    """A larger document of unique sentences (about 13 chunks at the default chunk size)."""
    out = []
    for i in range(n_sentences):
        city = CITIES[i % len(CITIES)]
        out.append(
            f"第{i}段记录：{city}第{i}号项目投资{10 + i}亿元，建设{INDUSTRIES[i % len(INDUSTRIES)]}"
            f"研发中心，预计{2025 + i % 6}年投产。"
        )
        if i % 8 == 7:
            out.append("\n\n")
    return "".join(out) + "\n"


# --- helpers -----------------------------------------------------------------------------------


Results = list[list[tuple[str, float]]]  # per query: (chunk_id, score) of each passage


def settings_for(index_dir: Path, **kw: Any) -> Settings:
    return Settings(index_dir=index_dir, **kw)


@pytest.fixture
def open_engine(use_embedder: Embedder) -> Iterator[Any]:
    """`open_engine(index_dir) -> Engine` with the shared real embedder; all closed at the end."""
    opened: list[Engine] = []

    def _open(index_dir: Path, embedder: Embedder | None = None, **kw: Any) -> Engine:
        engine = Engine(settings_for(index_dir, **kw), embedder=embedder or use_embedder)
        opened.append(engine)
        return engine

    yield _open
    for e in opened:
        with contextlib.suppress(sqlite3.Error):
            e.close()


def ro_db(index_dir: Path) -> sqlite3.Connection:
    """A read-only connection to the index database."""
    return sqlite3.connect(f"file:{index_dir / 'rag.sqlite3'}?mode=ro", uri=True)


def db_state(index_dir: Path) -> dict[str, Any]:
    """Everything durable, read straight from SQLite: counts, generation, documents, chunks."""
    db = ro_db(index_dir)
    try:
        gen = db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return {
            "documents": db.execute("SELECT COUNT(*) FROM documents").fetchone()[0],
            "chunks": db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0],
            "generation": int(gen[0]) if gen else 0,
            "docs": db.execute(
                "SELECT doc_id, source, text, content_hash FROM documents ORDER BY doc_id"
            ).fetchall(),
            "chunk_rows": db.execute(
                "SELECT doc_id, ord, start, end, text, hash, vector FROM chunks "
                "ORDER BY doc_id, ord"
            ).fetchall(),
        }
    finally:
        db.close()


def stored_chunk_ids(index_dir: Path) -> dict[str, str]:
    """`chunk_id -> text` of every chunk in SQLite."""
    return {f"{r[0]}:{r[1]}": r[4] for r in db_state(index_dir)["chunk_rows"]}


def assert_documents_complete(engine: Engine, files: dict[str, Path] | None = None) -> None:
    """Every stored document has exactly the chunks re-chunking its stored text gives, with vectors.

    With `files` (source -> path), the stored text must also be the full text of that file.
    """
    s = engine.settings
    db = ro_db(s.index_dir)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        docs = db.execute("SELECT doc_id, source FROM documents").fetchall()
        for doc_id, source in docs:
            text = engine.store.document_text(doc_id)
            expected = make_chunks(doc_id, text, s.chunk_size, s.chunk_overlap)
            rows = db.execute(
                "SELECT ord, start, end, text, length(vector) FROM chunks "
                "WHERE doc_id=? ORDER BY ord",
                (doc_id,),
            ).fetchall()
            want = [(c.ord, c.start, c.end, c.text) for c in expected]
            assert want == [r[:4] for r in rows], source
            assert all(r[4] == 4 * engine.embedder.dim for r in rows), source
            assert engine.store.document(doc_id).chunks == len(expected)
            if files is not None:
                data = files[source].read_bytes()
                full = prepare(
                    source,
                    data,
                    chunk_size=s.chunk_size,
                    chunk_overlap=s.chunk_overlap,
                    max_bytes=s.max_file_bytes,
                )
                assert text == full.document.text, f"{source}: stored text is not the whole file"
        orphans = db.execute(
            "SELECT COUNT(*) FROM chunks WHERE doc_id NOT IN (SELECT doc_id FROM documents)"
        ).fetchone()[0]
        assert orphans == 0
    finally:
        db.close()


def assert_search_consistent(engine: Engine, queries: Sequence[str] = QUERIES) -> None:
    """Search works and returns only chunks that exist in SQLite, with their stored text."""
    existing = stored_chunk_ids(engine.settings.index_dir)
    docs = {d.doc_id for d in engine.documents()}
    for q in queries:
        passages = engine.search(q, 5).passages
        assert passages, q
        for p in passages:
            assert p.chunk_id in existing, (q, p.chunk_id)
            assert p.text == existing[p.chunk_id]
            assert p.doc_id in docs
            assert engine.store.document_text(p.doc_id)[p.start : p.end] == p.text


def results(engine: Engine, queries: Sequence[str] = QUERIES) -> Results:
    return [[(p.chunk_id, p.score) for p in engine.search(q, 5).passages] for q in queries]


def assert_same_results(got: Results, want: Results) -> None:
    assert [[c for c, _ in r] for r in got] == [[c for c, _ in r] for r in want]
    for g, w in zip(got, want, strict=True):
        assert [s for _, s in g] == pytest.approx([s for _, s in w], abs=1e-5)


def derived_files(index_dir: Path) -> set[str]:
    """The derived index files present beside the database (the manifest and its segments)."""
    return {p.name for p in index_dir.iterdir() if p.name == MANIFEST_FILE or p.suffix == ".seg"}


def segment_files(index_dir: Path) -> list[str]:
    """The segment files the saved manifest lists."""
    from rag.index.container import read_header

    head = read_header(index_dir / MANIFEST_FILE)
    return [f"seg-{s['id']}.seg" for s in head["segments"]]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- killing an ingest -------------------------------------------------------------------------

HELPER = textwrap.dedent(
    '''
    """Ingest in a child process the tests SIGKILL. Usage: helper.py MODE INDEX_DIR PATH."""
    import os
    import signal
    import sys
    from pathlib import Path

    from rag.config import Settings
    from rag.engine import Engine

    mode, index_dir, target = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])


    def say(msg):
        print(msg, flush=True)


    batch = 4 if mode == "embedding" else 64
    engine = Engine(Settings(index_dir=index_dir, embed_batch_size=batch))
    if mode == "embedding":  # announce every embedding batch; the test kills us during one
        inner = engine.embedder.embed_batch
        inner_pool = engine.embedder.pool  # the default embedder pools parts (rag.embed.passages)
        batches = [0]

        def embed_batch(texts, kind):
            batches[0] += 1
            say(f"batch {batches[0]}")
            return inner(texts, kind)

        def pool(texts):
            batches[0] += 1
            say(f"batch {batches[0]}")
            return inner_pool(texts)

        engine.embedder.embed_batch = embed_batch
        engine.embedder.pool = pool
    elif mode == "folder":
        # These documents are small: grouped for embedding (rag.write.indexer.GROUP_CHUNKS) all
        # forty would commit within milliseconds of each other. One document per group spreads the
        # commits over the run, as large documents do, so the kill lands between or inside them.
        import rag.write.indexer

        rag.write.indexer.GROUP_CHUNKS = 1
    elif mode == "commit":  # die inside the write transaction: rows written, COMMIT about to run
        wrote = [False]

        def trace(sql):
            if sql.lstrip().upper().startswith("INSERT INTO CHUNKS"):
                wrote[0] = True
            elif wrote[0] and sql.strip().upper() == "COMMIT":
                say("in-transaction")
                os.kill(os.getpid(), signal.SIGKILL)

        engine.store._db.set_trace_callback(trace)
    say("ready")
    engine.ingest_paths([target], progress=lambda r: say(f"done {r.status} {r.source}"))
    say("finished")
    '''
)


class Child:
    """A helper process whose stdout lines arrive on a queue (no blocking reads in the test)."""

    def __init__(self, tmp_path: Path, mode: str, index_dir: Path, target: Path) -> None:
        script = write(tmp_path / "ingest_helper.py", HELPER)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
        self.proc = subprocess.Popen(
            [sys.executable, str(script), mode, str(index_dir), str(target)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, predicate: Any, timeout: float = 60.0) -> str:
        """Consume lines until one satisfies `predicate`; fail on EOF or timeout."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                self.kill()
                pytest.fail(f"helper gave no expected line within {timeout}s; saw {self.seen}")
            if line is None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                pytest.fail(f"helper ended early (seen {self.seen}); stderr:\n{err}")
            self.seen.append(line)
            if predicate(line):
                return line

    def kill(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        rc = self.proc.wait(timeout=30)
        # Whatever the child printed before it died.
        while True:
            try:
                line = self.lines.get(timeout=5)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
        # the pump has read stdout to its end (or gave up): close both pipes here, not in the GC
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        return rc


def test_ingest_killed_midway_keeps_complete_documents(tmp_path: Path, open_engine: Any) -> None:
    index_dir = tmp_path / "idx"
    folder = tmp_path / "docs"
    files = {f"c{i:02d}.txt": write(folder / f"c{i:02d}.txt", city_text(i)) for i in range(40)}
    first = write(tmp_path / "first" / "first.txt", FIRST)
    engine = open_engine(index_dir)
    assert engine.ingest_paths([first])[0].status == "added"
    engine.close()
    assert db_state(index_dir)["generation"] == 1

    child = Child(tmp_path, "folder", index_dir, folder)
    child.wait_for(lambda line: line == "ready")
    # Kill a moment after the third new document committed: most likely mid-way through the next
    # one (embedding it or writing it), in any case long before the 40th.
    child.wait_for(lambda line: sum(s.startswith("done ") for s in child.seen) >= 3)
    threading.Event().wait(0.03)
    rc = child.kill()
    assert rc == -signal.SIGKILL
    assert "finished" not in child.seen
    reported = [line.split()[2] for line in child.seen if line.startswith("done ")]
    assert all(line.startswith("done added ") for line in child.seen if line.startswith("done "))

    state = db_state(index_dir)
    stored = {src for _, src, _, _ in state["docs"]}
    new = stored - {"first.txt"}
    assert "first.txt" in stored
    # Everything reported committed is there; at most one more (committed, not yet reported).
    assert set(reported) <= new
    order = sorted(files)
    assert new <= set(order[: len(reported) + 1])
    assert 3 <= len(new) < 40
    assert state["generation"] == 1 + len(new)

    engine = open_engine(index_dir)
    info = engine.info()
    assert engine.store.count_documents() == 1 + len(new) == info["documents"]
    # The manifest is stale after the new commits (the killed process never saved its own):
    # every segment is rebuilt from SQLite, none of the stale ones served.
    assert info["rebuilt_on_load"] == [MANIFEST_FILE]
    assert info["generation"] == state["generation"]
    assert len(engine.snapshot) == engine.store.count_chunks()
    assert_documents_complete(engine, {"first.txt": first, **files})
    assert_search_consistent(engine, [*QUERIES, "第2号简报 南京 产业园区"])
    engine.close()

    # Derived files are fresh now; finishing the interrupted ingest adds only what is missing.
    engine = open_engine(index_dir)
    assert engine.info()["rebuilt_on_load"] == []
    statuses = {r.source: r.status for r in engine.ingest_paths([folder])}
    assert {s for s, st in statuses.items() if st == "unchanged"} == new
    assert {s for s, st in statuses.items() if st == "added"} == set(files) - new
    assert engine.store.count_documents() == 41
    assert_documents_complete(engine, {"first.txt": first, **files})
    assert_search_consistent(engine)


@pytest.mark.parametrize("mode", ["embedding", "commit"])
def test_kill_during_large_file_keeps_previous_state(
    tmp_path: Path, open_engine: Any, mode: str
) -> None:
    """SIGKILL while a large new version of a document is embedded, or inside its transaction."""
    index_dir = tmp_path / "idx"
    first = write(tmp_path / "src" / "first.txt", FIRST)
    big = write(tmp_path / "src" / "big.txt", DEMO)  # the old, small version
    engine = open_engine(index_dir)
    engine.ingest_paths([first, big])
    before_results = results(engine)
    engine.close()
    before = db_state(index_dir)
    assert before["documents"] == 2

    big_new = big_text()
    write(big, big_new)
    n_chunks = len(
        prepare(
            "big.txt", big_new.encode(), chunk_size=400, chunk_overlap=1, max_bytes=10**7
        ).chunks
    )
    assert n_chunks >= 12
    child = Child(tmp_path, mode, index_dir, big)
    if mode == "embedding":
        child.wait_for(lambda line: line == "batch 2")  # of about n_chunks / 4 batches
        rc = child.kill()
        assert not any(line.startswith("done") for line in child.seen)
    else:
        child.wait_for(lambda line: line == "in-transaction")  # it kills itself right after
        rc = child.kill()
    assert rc == -signal.SIGKILL

    after = db_state(index_dir)
    assert after == before  # counts, generation, every document and chunk row, byte for byte
    engine = open_engine(index_dir)
    assert engine.info()["rebuilt_on_load"] == []  # nothing committed: derived files still current
    assert (
        engine.store.document_text(doc_id_for("big.txt"))
        == prepare(
            "big.txt", DEMO.encode(), chunk_size=400, chunk_overlap=1, max_bytes=10**7
        ).document.text
    )
    assert_documents_complete(engine)
    assert_same_results(results(engine), before_results)
    assert_search_consistent(engine)


# --- corrupt and stale derived files -----------------------------------------------------------


@pytest.fixture(scope="module")
def built_index(
    tmp_path_factory: pytest.TempPathFactory, use_embedder: Embedder
) -> tuple[Path, Results]:
    """An index of three documents (derived files current), and the search results it gives."""
    root = tmp_path_factory.mktemp("built")
    src = root / "src"
    for name, text in (("suzhou.txt", FIRST), ("demo.txt", DEMO), ("delta_en.txt", ENGLISH)):
        write(src / name, text)
    engine = Engine(settings_for(root / "idx"), embedder=use_embedder)
    engine.ingest_paths([src])
    want = results(engine)
    engine.close()
    return root / "idx", want


def copy_index(built: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "idx"
    shutil.copytree(built, dst)
    return dst


def _flip_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    for i in range(mid, min(mid + 64, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def _garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(7).bytes(path.stat().st_size))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _delete(path: Path) -> None:
    path.unlink()


CORRUPTIONS = {
    "flip-middle": _flip_middle,
    "truncate": _truncate,
    "garbage": _garbage,
    "empty": _empty,
    "missing": _delete,
}


@pytest.mark.parametrize("which", ["manifest", "segment"])
@pytest.mark.parametrize("how", sorted(CORRUPTIONS))
def test_damaged_derived_file_is_rebuilt(
    tmp_path: Path, built_index: tuple[Path, Results], open_engine: Any, which: str, how: str
) -> None:
    index_dir = copy_index(built_index[0], tmp_path)
    name = MANIFEST_FILE if which == "manifest" else segment_files(index_dir)[0]
    intact = (index_dir / name).read_bytes()
    CORRUPTIONS[how](index_dir / name)
    assert not (index_dir / name).exists() or (index_dir / name).read_bytes() != intact

    engine = open_engine(index_dir)
    assert engine.info()["rebuilt_on_load"] == [MANIFEST_FILE]  # rebuilt, the damage not served
    assert_same_results(results(engine), built_index[1])
    assert_search_consistent(engine)
    engine.close()
    # The rebuilt file was written back, intact: the next start serves it without rebuilding.
    engine = open_engine(index_dir)
    assert engine.info()["rebuilt_on_load"] == []
    assert_same_results(results(engine), built_index[1])


def test_all_derived_files_damaged(
    tmp_path: Path, built_index: tuple[Path, Results], open_engine: Any
) -> None:
    index_dir = copy_index(built_index[0], tmp_path)
    names = sorted(derived_files(index_dir))
    for i, n in enumerate(names):
        (_garbage, _truncate, _flip_middle)[i % 3](index_dir / n)
    engine = open_engine(index_dir)
    assert engine.info()["rebuilt_on_load"] == [MANIFEST_FILE]
    assert_same_results(results(engine), built_index[1])


def test_stale_derived_files_are_rebuilt_not_served(tmp_path: Path, open_engine: Any) -> None:
    index_dir = tmp_path / "idx"
    src = tmp_path / "src"
    engine = open_engine(index_dir)
    engine.ingest_paths([write(src / "suzhou.txt", FIRST), write(src / "demo.txt", DEMO)])
    old = {n: (index_dir / n).read_bytes() for n in derived_files(index_dir)}
    assert MANIFEST_FILE in old and len(old) >= 2
    old_generation = engine.store.generation()
    # A later ingest that keeps the number of chunks, and one that adds a document.
    write(src / "demo.txt", DEMO.replace("2413", "2300"))
    engine.ingest_paths([src / "demo.txt", write(src / "delta_en.txt", ENGLISH)])
    assert engine.store.generation() == old_generation + 2
    want = results(engine)
    engine.close()

    for n, data in old.items():  # put the older generation's files back
        (index_dir / n).write_bytes(data)
    engine = open_engine(index_dir)
    assert engine.info()["rebuilt_on_load"] == [MANIFEST_FILE]  # none of the stale ones served
    assert len(engine.snapshot) == engine.store.count_chunks()
    assert_same_results(results(engine), want)
    assert_search_consistent(engine)
    hits = engine.search("high-speed rail Hefei Hangzhou", 3).passages
    assert hits[0].source == "delta_en.txt"  # the document the stale files do not know
    assert all("2413" not in p.text for p in engine.search("示范区面积多少平方公里", 5).passages)

    # Only the manifest stale (its segments intact): rebuilt all the same, never served.
    engine.close()
    (index_dir / MANIFEST_FILE).write_bytes(old[MANIFEST_FILE])
    engine = open_engine(index_dir)
    assert engine.info()["rebuilt_on_load"] == [MANIFEST_FILE]
    assert_same_results(results(engine), want)


# --- embedder mismatch -------------------------------------------------------------------------


def test_embedder_mismatch_is_refused(
    tmp_path: Path, built_index: tuple[Path, Results], use_embedder: Embedder
) -> None:
    index_dir = copy_index(built_index[0], tmp_path)
    db = sqlite3.connect(index_dir / "rag.sqlite3")
    with db:
        db.execute("UPDATE meta SET value='other-model' WHERE key='embedder'")
    db.close()

    for embedder in (None, use_embedder):  # the configured default, and an instance passed in
        with pytest.raises(EmbedderMismatch) as exc:
            Engine(settings_for(index_dir), embedder=embedder)
        assert "other-model" in str(exc.value) and "use-multilingual" in str(exc.value)
    db = ro_db(index_dir)  # refusing did not re-bind the index
    assert db.execute("SELECT value FROM meta WHERE key='embedder'").fetchone()[0] == "other-model"
    db.close()

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env["RAG_INDEX_DIR"] = str(index_dir)
    for args in (["info"], ["search", "示范区"]):
        proc = subprocess.run(
            [sys.executable, "-m", "rag.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode != 0
        assert proc.stderr.startswith("error: ")
        assert "other-model" in proc.stderr and "use-multilingual" in proc.stderr
        assert "Traceback" not in proc.stderr


# --- re-ingest, update, delete -----------------------------------------------------------------

OLD_BODY = "示范区旧版规划写明：水乡客厅的核心区面积约35平方公里，旧方案代号甲。"
NEW_BODY = "示范区新版规划写明：元荡湖生态岸线全长约12公里，量子通信实验室落户西岑科创中心。"


def test_reingest_update_and_delete(tmp_path: Path, open_engine: Any) -> None:
    index_dir = tmp_path / "idx"
    src = tmp_path / "src"
    keep = write(src / "suzhou.txt", FIRST)
    doc = write(src / "plan.txt", DEMO + OLD_BODY * 3)
    engine = open_engine(index_dir)
    assert [r.status for r in engine.ingest_paths([src])] == ["added", "added"]
    generation = engine.store.generation()
    plan_id = doc_id_for("plan.txt")

    # Unchanged: nothing written, generation as before.
    again = engine.ingest_paths([doc])
    assert [(r.status, r.doc_id) for r in again] == [("unchanged", plan_id)]
    assert again[0].chunks == engine.store.document(plan_id).chunks
    assert engine.store.generation() == generation
    assert engine.info()["generation"] == generation
    assert engine.ingest_bytes("plan.txt", doc.read_bytes()).status == "unchanged"
    assert engine.store.generation() == generation

    # Changed: replaced, old chunks gone, new text searchable.
    write(doc, DEMO + NEW_BODY * 3)
    (r,) = engine.ingest_paths([doc])
    assert (r.status, r.doc_id) == ("updated", plan_id)
    assert engine.store.generation() == generation + 1
    assert engine.store.count_documents() == 2
    state = db_state(index_dir)
    plan_chunks = [row for row in state["chunk_rows"] if row[0] == plan_id]
    assert r.chunks == len(plan_chunks) == engine.store.document(plan_id).chunks
    assert [row[1] for row in plan_chunks] == list(range(len(plan_chunks)))
    assert not any("旧方案代号甲" in row[4] or "水乡客厅" in row[4] for row in state["chunk_rows"])
    assert "水乡客厅" not in engine.store.document_text(plan_id)
    assert_documents_complete(engine, {"plan.txt": doc, "suzhou.txt": keep})
    top = engine.search("量子通信实验室落户在哪里？", 3).passages
    assert top[0].doc_id == plan_id and "量子通信实验室" in top[0].text
    assert not any("水乡客厅" in p.text for p in engine.search("水乡客厅核心区面积", 5).passages)

    # Delete: the document and its chunks go, search no longer returns it.
    engine.delete(plan_id)
    assert engine.store.generation() == generation + 2
    assert engine.store.count_documents() == 1
    with pytest.raises(NotFound):
        engine.store.document(plan_id)
    state = db_state(index_dir)
    assert [d[1] for d in state["docs"]] == ["suzhou.txt"]
    assert not any(row[0] == plan_id for row in state["chunk_rows"])
    assert state["chunks"] == engine.store.count_chunks() == len(engine.snapshot)
    assert all(p.doc_id != plan_id for p in engine.search("量子通信实验室", 5).passages)

    # Unknown ids (and the one just deleted): NotFound, nothing changes.
    for bad in (plan_id, "0123456789abcdef", ""):
        with pytest.raises(NotFound):
            engine.delete(bad)
    assert engine.store.generation() == generation + 2
    assert engine.store.count_documents() == 1


# --- the embedding cache -----------------------------------------------------------------------


class CountingEmbedder(Embedder):
    """The real embedder, recording every passage text it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.passages: list[str] = []

    def embed_batch(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        if kind == "passage":
            self.passages.extend(texts)
        return self.inner.embed_batch(texts, kind)


def test_embedding_cache_reuses_unchanged_chunks(
    tmp_path: Path, open_engine: Any, use_embedder: Embedder
) -> None:
    counting = CountingEmbedder(use_embedder)
    index_dir = tmp_path / "idx"
    text = big_text(60)
    doc = write(tmp_path / "src" / "long.txt", text)
    engine = open_engine(index_dir, embedder=counting)
    (r,) = engine.ingest_paths([doc])
    assert r.chunks >= 6
    first_rows = db_state(index_dir)["chunk_rows"]
    assert {row[4] for row in first_rows} <= set(counting.passages)  # first time: every chunk
    first_count = len(counting.passages)
    old = {row[4]: row[6] for row in first_rows}

    counting.passages.clear()
    write(doc, text.rstrip("\n") + "附记：最后一段于今年三月修订，新增两项绿色金融试点。\n")
    (r2,) = engine.ingest_paths([doc])
    assert r2.status == "updated"
    new_rows = db_state(index_dir)["chunk_rows"]
    changed = [row[4] for row in new_rows if row[4] not in old]
    unchanged = [row[4] for row in new_rows if row[4] in old]
    assert 1 <= len(changed) <= 2 and len(unchanged) >= len(new_rows) - 2
    # Only what changed was embedded: the changed chunks (and whatever the engine embeds with a
    # chunk, e.g. its sentences), never an unchanged chunk.
    assert set(changed) <= set(counting.passages)
    assert not set(unchanged) & set(counting.passages)
    assert len(counting.passages) < first_count / 2
    for row in new_rows:  # the reused vectors are the stored ones, byte for byte
        if row[4] in old:
            assert row[6] == old[row[4]]
    fresh = use_embedder.embed(changed, "passage")
    got = np.stack([np.frombuffer(r[6], dtype=np.float32) for r in new_rows if r[4] in changed])
    assert np.allclose(got, fresh, atol=1e-4)

    # Re-ingesting the same bytes embeds nothing at all.
    counting.passages.clear()
    assert engine.ingest_paths([doc])[0].status == "unchanged"
    assert counting.passages == []


def test_reader_picks_up_writes_from_another_process(
    tmp_path: Path, use_embedder: Embedder
) -> None:
    """A serving engine sees documents another process ingested, without a restart."""
    import rag.engine as engine_module

    settings = Settings(index_dir=tmp_path / "idx")
    reader = Engine(settings, embedder=use_embedder)
    assert reader.search("苏州工业园区", 3).passages == ()
    writer = Engine(settings, embedder=use_embedder)  # stands for a second process
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "suzhou.txt").write_text(FIRST, encoding="utf-8")
    writer.ingest_paths([tmp_path / "d"])
    reader.indexer._checked_at -= engine_module.RECHECK_SECONDS + 1  # as if a second had passed
    hits = reader.search("苏州工业园区", 3).passages
    assert hits and hits[0].source == "suzhou.txt"
