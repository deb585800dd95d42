"""The write path costs the change: every write becomes a small segment and tombstones, and the
result is exactly what a rebuild from SQLite gives.

Real SQLite, real FAISS, real segment files; the embedder is a stand-in (hashed character
bigrams, `tests/hashing.py`) so that hundreds of writes take seconds.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hashing import HashingEmbedder, saved_current
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.config import Settings
from rag.engine import Engine
from rag.index.container import read_header
from rag.index.segments import MANIFEST_FILE
from rag.retrieve.collapse import collapse
from rag.store import sqlite as store_sqlite
from rag.store.sqlite import doc_id_for

TESTS = Path(__file__).resolve().parents[1]
WORDS = [
    "长三角",
    "一体化",
    "示范区",
    "上海",
    "杭州",
    "苏州",
    "合肥",
    "港口",
    "航运",
    "高铁",
    "绿色",
    "科技",
    "园区",
    "企业",
    "投资",
    "人才",
    "生态",
    "湿地",
    "数字",
    "经济",
]
QUERIES = ["长三角 示范区 绿色", "上海港口航运", "合肥 科技 人才", "数字经济 投资", "湿地生态"]


def text_of(seed: int) -> str:
    """A document of a few sentences drawn from `WORDS` (two or three chunks at chunk_size 50)."""
    rng = np.random.default_rng(seed)
    sentences = []
    for _ in range(int(rng.integers(2, 7))):
        picked = rng.choice(WORDS, size=int(rng.integers(3, 7)))
        sentences.append("".join(picked) + f"第{int(rng.integers(0, 99))}项。")
    return "".join(sentences) + "\n"


def make_settings(index_dir: Path) -> Settings:
    return Settings(index_dir=index_dir, parse_sandbox=False, chunk_size=50)


def open_engine(index_dir: Path, **kw: bool) -> Engine:
    return Engine(make_settings(index_dir), embedder=HashingEmbedder(), **kw)


Results = list[list[tuple[str, float, float, float, str]]]


def results(engine: Engine, *, sources: list[str] | None = None) -> Results:
    """(chunk id, score, dense, lexical, text) of every passage of every query."""
    out = []
    for q in QUERIES:
        r = engine.search(q, 5, sources=sources)
        out.append(
            [
                (p.chunk_id, p.score, h.dense, h.lexical, p.text)
                for p, h in zip(r.passages, r.hits, strict=True)
            ]
        )
    return out


def assert_same(got: Results, want: Results) -> None:
    """The same passages with the same signals (to float tolerance). Two near-copies of one text
    that tie (scores equal to ~1e-7, summed in another order over other segment layouts) collapse
    into either one: at such a place the two passages must be copies (search collapses them)."""
    for g, w in zip(got, want, strict=True):
        assert len(g) == len(w)
        for a, b in zip(g, w, strict=True):
            if a[0] == b[0]:
                assert a[1:4] == pytest.approx(b[1:4], abs=1e-5)
            else:  # the other copy was kept: the same rank score, its own signals
                assert len(collapse([a[4], b[4]], 2)) == 1, (a[0], b[0])
                assert a[1] == pytest.approx(b[1], abs=1e-5)


def rebuilt_copy(engine: Engine, where: Path) -> Engine:
    """A fresh engine over a copy of `engine`'s SQLite file (no segment files: all rebuilt)."""
    where.mkdir(parents=True)
    src = sqlite3.connect(engine.settings.db_path)
    dst = sqlite3.connect(where / "rag.sqlite3")
    src.backup(dst)
    src.close()
    dst.close()
    fresh = open_engine(where, background_merge=False)
    assert fresh.info()["rebuilt_on_load"] == [MANIFEST_FILE]
    return fresh


def assert_matches_rebuild(engine: Engine, where: Path) -> None:
    fresh = rebuilt_copy(engine, where)
    try:
        assert len(engine.snapshot) == engine.store.count_chunks() == len(fresh.snapshot)
        assert dict(engine.snapshot.sources) == dict(fresh.snapshot.sources)
        assert dict(engine.snapshot.metadata) == dict(fresh.snapshot.metadata)
        assert_same(results(engine), results(fresh))
        some = sorted(fresh.snapshot.sources.values())[:2]
        sources = [s for s, _ in some]
        assert_same(results(engine, sources=sources), results(fresh, sources=sources))
    finally:
        fresh.close()


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 7), st.integers(0, 10_000)),
        st.tuples(st.just("delete"), st.integers(0, 7), st.just(0)),
        st.tuples(st.just("merge"), st.just(0), st.just(0)),
        st.tuples(st.just("copy"), st.integers(0, 7), st.integers(0, 7)),
    ),
    min_size=1,
    max_size=24,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=OPS)
def test_any_write_sequence_searches_like_a_rebuild(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, int, int]]
) -> None:
    """Adds, updates (a put of another text under a source), deletes, near-duplicate copies
    (whose delete re-points metadata) and merges, in any order: the engine's segments give the
    same passages, scores and signals as a fresh engine rebuilt from the same SQLite file."""
    root = tmp_path_factory.mktemp("prop")
    engine = open_engine(root / "idx", background_merge=False)
    texts: dict[int, str] = {}
    try:
        for op, a, b in ops:
            source = f"doc{a}.txt"
            if op == "put":
                texts[a] = text_of(b)
                engine.ingest_bytes(source, texts[a].encode(), {"n": b % 3})
            elif op == "copy" and b in texts:  # a near-copy of another document
                texts[a] = texts[b] + "转载。\n"
                engine.ingest_bytes(source, texts[a].encode())
            elif op == "delete" and a in texts:
                engine.delete(doc_id_for(source))
                del texts[a]
            elif op == "merge":
                engine.merge()
            assert engine.snapshot.generation == engine.store.generation()
        assert saved_current(engine)
        assert_matches_rebuild(engine, root / "fresh")
    finally:
        engine.close()


def test_a_write_adds_one_small_segment_and_merges_fold_them(tmp_path: Path) -> None:
    engine = open_engine(tmp_path / "idx", background_merge=False)
    try:
        for i in range(12):
            engine.ingest_bytes(f"d{i}.txt", text_of(i).encode())
            assert engine.info()["segments"] == i + 1  # one new segment per write, none rebuilt
        engine.ingest_bytes("d3.txt", text_of(99).encode())  # an update: tombstones + a segment
        engine.delete(doc_id_for("d5.txt"))
        assert engine.info()["segments"] == 13
        assert engine.merge() >= 1
        assert engine.info()["segments"] < 13
        segs = {p.name for p in (tmp_path / "idx").glob("seg-*.seg")}
        assert segs == {f"seg-{s}.seg" for s in engine.snapshot.segments.seg_ids}  # old ones gone
        assert saved_current(engine)
        assert_matches_rebuild(engine, tmp_path / "fresh")
    finally:
        engine.close()


def test_the_background_merge_thread_merges_without_blocking(tmp_path: Path) -> None:
    engine = open_engine(tmp_path / "idx")  # with the merge thread
    try:
        for i in range(20):
            engine.ingest_bytes(f"d{i}.txt", text_of(i).encode())
            assert engine.search("长三角 示范区", 3).passages  # reads go on during merges
        for _ in range(200):  # the thread catches up within moments
            if len(engine.snapshot.segments.entries) < 8:
                break
            import time

            time.sleep(0.05)
        assert len(engine.snapshot.segments.entries) < 8
        assert_matches_rebuild(engine, tmp_path / "fresh")
    finally:
        engine.close()


# --- another process writes ----------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from hashing import HashingEmbedder
    from rag.config import Settings
    from rag.engine import Engine
    from rag.store.sqlite import doc_id_for

    index_dir = Path(sys.argv[1])
    engine = Engine(
        Settings(index_dir=index_dir, parse_sandbox=False, chunk_size=50),
        embedder=HashingEmbedder(),
        background_merge=False,
    )
    for arg in sys.argv[2:]:
        op, name, _, text = arg.partition(":")[0], *arg.partition(":")[2].partition("=")
        if op == "put":
            engine.ingest_bytes(name, text.encode())
        else:
            engine.delete(doc_id_for(name))
    print("done", flush=True)
    engine.close()
    """
)


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    return env


def run_writer(tmp_path: Path, index_dir: Path, *ops: str) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script), str(index_dir), *ops],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=300,
    )
    assert proc.returncode == 0 and "done" in proc.stdout, proc.stderr


def saved_ids(index_dir: Path) -> tuple[str, ...]:
    """The segment ids the saved manifest lists."""
    return tuple(str(s["id"]) for s in read_header(index_dir / MANIFEST_FILE)["segments"])


@pytest.mark.parametrize("writer_saved", [True, False])
def test_a_served_engine_catches_up_with_another_process_incrementally(
    tmp_path: Path, writer_saved: bool
) -> None:
    index_dir = tmp_path / "idx"
    reader = open_engine(index_dir, background_merge=False)
    try:
        for i in range(3):
            reader.ingest_bytes(f"d{i}.txt", text_of(i).encode())
        before = len(reader.snapshot.segments.entries)
        run_writer(
            tmp_path,
            index_dir,
            f"put:new.txt={text_of(50)}",
            f"put:d1.txt={text_of(51)}",  # an update
            "delete:d2.txt",
        )
        if not writer_saved:  # as when the writer's disk refused its segment files
            (index_dir / MANIFEST_FILE).unlink()
        reader.refresh()  # what a search does by itself once RECHECK_SECONDS have passed
        assert reader.snapshot.generation == reader.store.generation() == 6
        assert reader.info()["rebuilt_on_load"] == []
        if writer_saved:
            # the segments the writer saved for this generation are mapped in, not built again
            assert reader.snapshot.segments.seg_ids == saved_ids(index_dir)
            assert len(reader.snapshot.segments.entries) > before
        else:
            # the three writes arrive through the change log as one segment and tombstones
            assert len(reader.snapshot.segments.entries) == before + 1
        assert set(reader.snapshot.sources) == {
            doc_id_for(s) for s in ("d0.txt", "d1.txt", "new.txt")
        }
        assert_matches_rebuild(reader, tmp_path / "fresh")
    finally:
        reader.close()


def test_catch_up_past_the_logged_generations_rebuilds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_dir = tmp_path / "idx"
    reader = open_engine(index_dir, background_merge=False)
    writer = open_engine(index_dir, background_merge=False)  # stands for a second process
    try:
        reader.ingest_bytes("a.txt", text_of(1).encode())
        monkeypatch.setattr(store_sqlite, "CHANGE_LOG_KEEP", 2)
        for i in range(4):
            writer.ingest_bytes(f"w{i}.txt", text_of(10 + i).encode())
        with reader.store.read_view() as view:
            assert view.changes_since(reader.snapshot.generation) is None  # pruned
        reader.refresh()
        assert len(reader.snapshot.segments.entries) == 1  # rebuilt from SQLite
        assert reader.snapshot.generation == reader.store.generation()
        assert_matches_rebuild(reader, tmp_path / "fresh")
    finally:
        writer.close()
        reader.close()


def test_server_workers_adopt_the_merges_one_of_them_makes(tmp_path: Path) -> None:
    """Two engines on one index, as two `rag serve` workers: the one that merges saves the merged
    layout; the other maps it in (same generation, same results) instead of searching its
    unmerged segments for as long as it lives; each sees the other's writes at its next read."""
    index_dir = tmp_path / "idx"
    worker_settings = make_settings(index_dir).model_copy(update={"workers": 2})
    merger = Engine(worker_settings, embedder=HashingEmbedder(), background_merge=False)
    other = Engine(worker_settings, embedder=HashingEmbedder(), background_merge=False)
    try:
        for i in range(10):
            merger.ingest_bytes(f"d{i}.txt", text_of(i).encode())
        other.search(QUERIES[0], 5)  # a read catches up at once (a worker checks every read)
        assert other.snapshot.generation == merger.snapshot.generation
        assert len(other.snapshot.segments.entries) > 1
        assert merger.merge() >= 1
        assert len(merger.snapshot.segments.entries) < len(other.snapshot.segments.entries)
        before = results(other)
        other.search(QUERIES[0], 5)
        assert other.snapshot.segments.seg_ids == merger.snapshot.segments.seg_ids
        assert_same(results(other), before)
        # and the other way round: a write through the other is a read away for the merger
        other.ingest_bytes("late.txt", text_of(99).encode())
        merger.search(QUERIES[0], 5)
        assert merger.snapshot.generation == other.snapshot.generation
        assert doc_id_for("late.txt") in merger.snapshot.sources
        assert_matches_rebuild(merger, tmp_path / "fresh")
    finally:
        other.close()
        merger.close()


# --- crashes -------------------------------------------------------------------------------------

CRASHER = textwrap.dedent(
    """
    import os
    import signal
    import sys
    from pathlib import Path

    from hashing import HashingEmbedder
    from rag.config import Settings
    from rag.engine import Engine

    mode, index_dir, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    texts = sys.argv[4:]
    engine = Engine(
        Settings(index_dir=index_dir, parse_sandbox=False, chunk_size=50),
        embedder=HashingEmbedder(),
        background_merge=False,
    )
    for i, text in enumerate(texts[:n]):
        engine.ingest_bytes(f"d{i}.txt", text.encode())


    def die(*args, **kwargs):
        print("dying", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


    if mode == "after-commit":  # committed to SQLite; killed before the segments are saved
        import rag.write.indexer

        rag.write.indexer.save_segments = die
        engine.ingest_bytes("late.txt", texts[n].encode())
    elif mode == "merge-before-manifest":  # merged segment saved, manifest not yet
        import rag.index.segment

        save = rag.index.segment.Segment.save

        def save_then_die(self, *args, **kwargs):
            save(self, *args, **kwargs)
            die()

        rag.index.segment.Segment.save = save_then_die
        engine.merge()
    elif mode == "merge-mid-file":  # killed while the merged segment file is being written
        import rag.index.container

        rag.index.container._write_index = die
        engine.merge()
    print("survived", flush=True)
    """
)


@pytest.fixture
def crash(tmp_path: Path) -> Iterator[object]:
    script = tmp_path / "crasher.py"
    script.write_text(CRASHER, encoding="utf-8")

    def run(mode: str, index_dir: Path, n: int) -> None:
        texts = [text_of(200 + i) for i in range(n + 1)]
        proc = subprocess.run(
            [sys.executable, str(script), mode, str(index_dir), str(n), *texts],
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=300,
        )
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        assert "dying" in proc.stdout and "survived" not in proc.stdout

    yield run


def test_killed_after_a_commit_before_the_segments_are_saved(tmp_path: Path, crash: object) -> None:
    index_dir = tmp_path / "idx"
    crash("after-commit", index_dir, 3)  # type: ignore[operator]
    engine = open_engine(index_dir, background_merge=False)
    try:
        assert engine.store.count_documents() == 4  # the commit happened
        assert engine.info()["rebuilt_on_load"] == [MANIFEST_FILE]  # the stale manifest not served
        assert doc_id_for("late.txt") in engine.snapshot.sources
        assert_matches_rebuild(engine, tmp_path / "fresh")
    finally:
        engine.close()


@pytest.mark.parametrize("mode", ["merge-before-manifest", "merge-mid-file"])
def test_killed_during_a_merge(tmp_path: Path, crash: object, mode: str) -> None:
    index_dir = tmp_path / "idx"
    crash(mode, index_dir, 9)  # type: ignore[operator]
    assert not [p for p in index_dir.iterdir() if p.name.endswith(".tmp")] or mode.endswith("file")
    engine = open_engine(index_dir, background_merge=False)
    try:
        # the manifest of before the merge is current: served as it is, nothing rebuilt
        assert engine.info()["rebuilt_on_load"] == []
        assert engine.info()["segments"] == 9
        assert not [p for p in index_dir.iterdir() if p.name.endswith(".tmp")]  # swept
        assert_matches_rebuild(engine, tmp_path / "fresh")
        assert engine.merge() >= 1  # and merging works again
        assert saved_current(engine)
        assert_matches_rebuild(engine, tmp_path / "fresh2")
    finally:
        engine.close()
