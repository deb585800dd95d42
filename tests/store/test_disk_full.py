"""A full or read-only disk, for real: the index lives on a tmpfs of a few megabytes (mounted for
the test; skipped where mounting is not permitted), filled to the byte with a ballast file, or
remounted read-only.

A write that cannot complete is refused whole (`StorageFull`, `ReadOnlyIndex`) and leaves SQLite
as it was; a derived file that cannot be saved never fails the write or the load (the snapshot is
served from memory); no temporary file survives a failure; the engine opens on a full or
read-only disk without writing, serves searches, and takes writes again once it can.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hashing import derived_files, random_segment, saved_current
from smalldisk import fill, free, listing, remount, temp_files, tmpfs
from test_durability import (
    DEMO,
    ENGLISH,
    FIRST,
    QUERIES,
    assert_documents_complete,
    assert_same_results,
    assert_search_consistent,
    db_state,
    results,
)

from rag.config import Settings
from rag.embed.base import Embedder
from rag.engine import Engine, Upload
from rag.errors import ReadOnlyIndex, StorageFull
from rag.index.persist import sweep_temp_files
from rag.index.segment import segment_path
from rag.index.segments import MANIFEST_FILE
from rag.index.snapshot import DERIVED
from rag.store.sqlite import doc_id_for

RAIL = "high-speed rail Hefei Hangzhou"


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A fresh 8 MiB tmpfs."""
    with tmpfs(tmp_path / "fs", "8m") as mountpoint:
        yield mountpoint


@pytest.fixture
def engines(use_embedder: Embedder) -> Iterator[Any]:
    """`engines(index_dir) -> Engine` with the shared embedder; all closed before the unmount."""
    opened: list[Engine] = []

    def _open(index_dir: Path) -> Engine:
        engine = Engine(Settings(index_dir=index_dir), embedder=use_embedder)
        opened.append(engine)
        return engine

    yield _open
    for engine in opened:
        engine.close()


def two_documents(engine: Engine) -> None:
    for source, text in (("suzhou.txt", FIRST), ("demo.txt", DEMO)):
        assert engine.ingest_bytes(source, text.encode()).status == "added"


def assert_consistent(engine: Engine) -> None:
    """What readiness reports (the snapshot) is what the store lists, at the store's generation."""
    assert engine.snapshot.generation == engine.store.generation()
    assert set(engine.snapshot.sources) == {d.doc_id for d in engine.documents()}
    assert len(engine.snapshot) == engine.store.count_chunks()


# --- derived files ---------------------------------------------------------------------------


def test_a_derived_write_that_does_not_fit_leaves_no_temp_file(disk: Path) -> None:
    rng = np.random.default_rng(1)
    old = random_segment(rng, 300, 512)
    old.save(disk, "s1")
    kept = segment_path(disk, "s1").read_bytes()
    fill(disk)
    new = random_segment(rng, 320, 512)
    with pytest.raises(OSError) as exc:
        new.save(disk, "s1")
    assert exc.value.errno == errno.ENOSPC
    assert temp_files(disk) == []  # the half-written temporary file is gone
    assert segment_path(disk, "s1").read_bytes() == kept  # and the file as it was


def test_sweep_removes_what_dead_writers_left_and_nothing_else(tmp_path: Path) -> None:
    for name in (
        ".sentences.idx.4194301.tmp",
        ".rag.sqlite3.4194302.tmp",
        ".rag.sqlite3.4194302.tmp-wal",
        ".rag.sqlite3.4194303.tmp-shm",  # its database is gone already
    ):
        (tmp_path / name).write_bytes(b"x" * 1000)
    keep = [MANIFEST_FILE, "rag.sqlite3", "rag.sqlite3-wal", ".hidden.tmp", "notes.txt"]
    for name in keep:
        (tmp_path / name).write_bytes(b"y")
    live = tmp_path / f".{MANIFEST_FILE}.{os.getpid() + 1}.tmp"  # being written (held locked)
    with open(live, "wb") as writer:
        fcntl.flock(writer.fileno(), fcntl.LOCK_EX)
        removed = sweep_temp_files(tmp_path)
        assert live.exists()
    assert sorted(removed) == [
        ".rag.sqlite3.4194302.tmp",
        ".rag.sqlite3.4194302.tmp-wal",
        ".rag.sqlite3.4194303.tmp-shm",
        ".sentences.idx.4194301.tmp",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*keep, live.name])
    assert sweep_temp_files(tmp_path / "no-such-dir") == []


# --- writes on a full disk ---------------------------------------------------------------------


def test_a_full_disk_refuses_writes_whole_and_keeps_serving(disk: Path, engines: Any) -> None:
    index_dir = disk / "idx"
    engine = engines(index_dir)
    two_documents(engine)
    before, want = db_state(index_dir), results(engine)
    fill(disk)

    with pytest.raises(StorageFull) as exc:
        engine.delete(doc_id_for("demo.txt"))
    assert exc.value.code == "insufficient_storage" and "no space left" in str(exc.value)
    with pytest.raises(StorageFull):
        engine.ingest_bytes("delta_en.txt", ENGLISH.encode())
    with pytest.raises(StorageFull):  # two documents, one transaction: neither is stored
        engine.ingest_documents(
            [Upload("a.txt", ENGLISH.encode()), Upload("b.txt", (DEMO + FIRST).encode())]
        )
    assert db_state(index_dir) == before  # nothing of any of them
    assert temp_files(index_dir) == []
    assert_same_results(results(engine), want)  # served from the last good state
    assert_consistent(engine)

    free(disk)  # the next write works, on the same engine
    assert engine.ingest_bytes("delta_en.txt", ENGLISH.encode()).status == "added"
    assert engine.search(RAIL, 3).passages[0].source == "delta_en.txt"
    engine.delete(doc_id_for("demo.txt"))
    assert_consistent(engine)
    assert_documents_complete(engine)
    assert_search_consistent(engine, QUERIES[1:])


def test_a_disk_that_fills_up_after_the_commit(
    disk: Path, engines: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The upload is committed; the derived files then find no room. The upload is acknowledged,
    searches see it (from memory), readiness and the list agree, no temporary file is left."""
    index_dir = disk / "idx"
    engine = engines(index_dir)
    two_documents(engine)
    refresh = engine.indexer.refresh

    def fill_then_refresh() -> None:
        fill(disk)  # e.g. another process's log, between our commit and our derived files
        refresh()

    monkeypatch.setattr(engine.indexer, "refresh", fill_then_refresh)
    with caplog.at_level(logging.WARNING, logger="rag.index.snapshot"):
        result = engine.ingest_bytes("delta_en.txt", ENGLISH.encode())
    assert result.status == "added"
    assert engine.store.document(doc_id_for("delta_en.txt")).chunks == result.chunks
    assert "could not save" in caplog.text
    assert temp_files(index_dir) == []
    assert_consistent(engine)
    assert engine.search(RAIL, 3).passages[0].source == "delta_en.txt"
    assert_search_consistent(engine)
    monkeypatch.undo()

    with pytest.raises(StorageFull):  # still full: refused cleanly, and nothing else breaks
        engine.delete(doc_id_for("demo.txt"))
    assert_search_consistent(engine)
    free(disk)
    engine.delete(doc_id_for("demo.txt"))  # and once there is room, it works
    assert_consistent(engine)
    assert saved_current(engine)  # the segments and their manifest were saved again
    engine.close()
    reopened = engines(index_dir)
    assert reopened.info()["rebuilt_on_load"] == []  # the derived files were saved again


# --- opening on a full or read-only disk -------------------------------------------------------


def test_an_engine_opens_on_a_full_disk_and_serves(disk: Path, engines: Any) -> None:
    index_dir = disk / "idx"
    engine = engines(index_dir)
    two_documents(engine)
    want = results(engine)
    engine.close()
    leftover = index_dir / ".seg-0a1b.seg.4194301.tmp"  # a dead writer's, as the issue saw
    leftover.write_bytes(b"\0" * 200_000)
    fill(disk)
    engine = engines(index_dir)
    assert not leftover.exists()  # swept on open: its room is given back
    before = db_state(index_dir)
    engine.close()  # the last connection: SQLite removes its -wal and -shm files

    for name in derived_files(index_dir):  # to be rebuilt on open, with no room to save them
        (index_dir / name).unlink()
    assert sorted(p.name for p in index_dir.iterdir()) == ["rag.sqlite3"]
    fill(disk)  # to the byte: not even SQLite's shared-memory file fits
    engine = engines(index_dir)  # opening writes nothing: it opens
    assert not engine.store.writable
    assert sorted(engine.info()["rebuilt_on_load"]) == sorted(DERIVED)
    assert_same_results(results(engine), want)  # served from memory
    assert_consistent(engine)
    with pytest.raises(StorageFull) as exc:
        engine.ingest_bytes("delta_en.txt", ENGLISH.encode())
    assert "no space left" in str(exc.value)
    assert temp_files(index_dir) == [] and derived_files(index_dir) == []
    assert_same_results(results(engine), want)

    free(disk)
    assert db_state(index_dir) == before  # (read with room for SQLite's shared memory)
    assert engine.ingest_bytes("delta_en.txt", ENGLISH.encode()).status == "added"
    assert engine.store.writable
    assert engine.search(RAIL, 3).passages[0].source == "delta_en.txt"
    assert_consistent(engine)
    assert saved_current(engine)


def test_an_engine_opens_on_a_read_only_disk_and_serves(disk: Path, engines: Any) -> None:
    index_dir = disk / "idx"
    engine = engines(index_dir)
    two_documents(engine)
    want = results(engine)
    engine.close()
    (index_dir / MANIFEST_FILE).unlink()  # to be rebuilt, and not saved
    files = listing(index_dir)
    remount(disk, "ro")
    try:
        engine = engines(index_dir)
        assert engine.info()["rebuilt_on_load"] == [MANIFEST_FILE]
        assert_same_results(results(engine), want)
        with pytest.raises(ReadOnlyIndex) as exc:
            engine.ingest_bytes("delta_en.txt", ENGLISH.encode())
        assert exc.value.code == "read_only_index" and "read-only" in str(exc.value)
        with pytest.raises(ReadOnlyIndex):
            engine.delete(doc_id_for("demo.txt"))
        assert_same_results(results(engine), want)
        assert listing(index_dir) == files
    finally:
        remount(disk, "rw")
    # remounted writable: the same engine writes again
    assert engine.ingest_bytes("delta_en.txt", ENGLISH.encode()).status == "added"
    assert_consistent(engine)


def test_opening_an_index_writes_nothing(tmp_path: Path, engines: Any) -> None:
    """An index whose embedder is on record and whose derived files are current is opened
    without a single write (no transaction: SQLite's -wal stays empty)."""
    index_dir = tmp_path / "idx"
    engine = engines(index_dir)
    two_documents(engine)
    engine.close()
    files = listing(index_dir)
    engine = engines(index_dir)
    assert engine.info()["rebuilt_on_load"] == []
    assert (index_dir / "rag.sqlite3-wal").stat().st_size == 0
    assert_same_results(results(engine), results(engine))
    engine.close()
    assert listing(index_dir) == files


def test_an_embedder_that_cannot_be_recorded_at_open_is_recorded_by_the_next_write(
    disk: Path, engines: Any
) -> None:
    index_dir = disk / "idx"
    engine = engines(index_dir)
    two_documents(engine)
    engine.close()
    db = sqlite3.connect(index_dir / "rag.sqlite3")
    with db:  # as an index of an older version may be: chunks, but no dimension on record
        db.execute("DELETE FROM meta WHERE key='dim'")
    db.close()
    fill(disk)
    engine = engines(index_dir)  # the binding cannot be written now: it opens all the same
    assert not engine.store.writable and engine.store.manifest().dim == 0
    free(disk)
    assert engine.ingest_bytes("delta_en.txt", ENGLISH.encode()).status == "added"
    manifest = engine.store.manifest()
    assert (manifest.embedder, manifest.dim) == (engine.embedder.name, engine.embedder.dim)
