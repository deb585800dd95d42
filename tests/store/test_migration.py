"""Older indexes open under the current schema with every row intact.

Version 1 (before near-duplicate signatures and file stats): the next ingest back-fills
signatures, so a copy of an old document is recognised, and records file stats, so the run after
is the fast one. Version 2 (before stored tokens, never-reused chunk ids and the change log, with
whole-collection derived files): the segments are rebuilt once, the tokens made then are written
back, the old derived files removed, and every later write is incremental."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from rag.config import Settings
from rag.embed.base import Embedder
from rag.engine import Engine
from rag.errors import IndexError_
from rag.index.segments import MANIFEST_FILE
from rag.index.tokenize import tokenize
from rag.store.sqlite import SCHEMA_VERSION, Store, doc_id_for

V1_DOCUMENT_COLUMNS = [
    "doc_id",
    "source",
    "title",
    "text",
    "content_hash",
    "encoding",
    "metadata",
    "updated_at",
]
ARTICLE = (
    "青石镇的杨梅种植已有三百多年历史，全镇杨梅园面积八千亩，年产鲜果九千吨。"
    "今年镇里新建了冷链物流中心，鲜果采摘后六小时内可送达上海和杭州的超市。"
    "镇政府还举办了首届杨梅文化节，吸引游客十二万人次，带动农家乐收入三千万元。"
    "镇党委书记表示，明年将扩建深加工车间，开发杨梅酒、杨梅干等产品，延长产业链。\n"
)
OTHER = (
    "紫藤湖实验站位于江南丘陵地带。2031年，该站培育了七百二十种耐盐水稻品种。"
    "研究人员计划在沿海滩涂推广这些品种。\n"
)
AN_HOUR_AGO = time.time_ns() - 3600 * 10**9
V2_CHUNK_COLUMNS = "id, doc_id, ord, start, end, text, hash, vector, sent_spans, sent_vectors"
V3_META = ("next_chunk_id", "changes_floor", "tokenizer_version")
OLD_DERIVED = ("dense.idx", "lexical.idx", "sentences.idx")


def rows(db_path: Path) -> dict[str, Any]:
    db = sqlite3.connect(db_path)
    try:
        cols = ", ".join(V1_DOCUMENT_COLUMNS)
        return {
            "documents": db.execute(f"SELECT {cols} FROM documents ORDER BY doc_id").fetchall(),
            "chunks": db.execute(f"SELECT {V2_CHUNK_COLUMNS} FROM chunks ORDER BY id").fetchall(),
            "meta": {
                k: v
                for k, v in db.execute("SELECT key, value FROM meta")
                if k not in ("schema_version", *V3_META)
            },
        }
    finally:
        db.close()


def downgrade_to_v2(db_path: Path) -> None:
    """Make the index exactly what version 2 wrote: no tokens, no change log, no id counter,
    version 2 recorded, the derived files of the time (whole-collection files, no segments)."""
    db = sqlite3.connect(db_path)
    try:
        db.execute("ALTER TABLE chunks DROP COLUMN tokens")
        db.execute("DROP TABLE changes")
        db.execute(f"DELETE FROM meta WHERE key IN {V3_META!r}")
        db.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
        db.commit()
    finally:
        db.close()
    for p in db_path.parent.iterdir():
        if p.name == MANIFEST_FILE or p.suffix == ".seg":
            p.unlink()
    for name in OLD_DERIVED:
        (db_path.parent / name).write_bytes(b"RAGIDX1\n" + b"\0" * 64)


def downgrade_to_v1(db_path: Path) -> None:
    """Make the index exactly what version 1 wrote: its documents table, version 1 recorded."""
    downgrade_to_v2(db_path)
    db = sqlite3.connect(db_path)
    try:
        for column in ("fingerprint", "file_size", "file_mtime_ns"):
            db.execute(f"ALTER TABLE documents DROP COLUMN {column}")
        db.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
        db.commit()
        assert [r[1] for r in db.execute("PRAGMA table_info(documents)")] == V1_DOCUMENT_COLUMNS
    finally:
        db.close()


def test_a_version_1_index_is_migrated_without_losing_anything(
    tmp_path: Path, use_embedder: Embedder
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name, text in (("yangmei.txt", ARTICLE), ("station.txt", OTHER)):
        (src / name).write_text(text, encoding="utf-8")
        os.utime(src / name, ns=(AN_HOUR_AGO, AN_HOUR_AGO))
    settings = Settings(index_dir=tmp_path / "idx")
    engine = Engine(settings, embedder=use_embedder)
    engine.ingest_paths([src])
    expected = engine.search("杨梅园面积多大？").passages
    engine.close()
    downgrade_to_v1(settings.db_path)
    before = rows(settings.db_path)

    store = Store(settings.db_path)
    assert store.manifest().schema_version == SCHEMA_VERSION == 3
    assert rows(settings.db_path) == before  # every document, chunk and vector, unchanged
    assert all(sig is None for _, _, sig, _ in store.fingerprints())
    assert all(s.size is None for s in store.file_states().values())
    store.close()

    engine = Engine(settings, embedder=use_embedder)
    try:
        assert engine.info()["rebuilt_on_load"] == [MANIFEST_FILE]  # no segments before v3
        assert engine.search("杨梅园面积多大？").passages == expected
        # No stats stored yet: both files are read and compared by hash (and stats recorded).
        assert [r.status for r in engine.ingest_paths([src])] == ["unchanged", "unchanged"]
        assert all(s.size is not None for s in engine.store.file_states().values())

        copy = tmp_path / "copy" / "yangmei-reprint.txt"
        copy.parent.mkdir()
        copy.write_text("转载自《浙南农业》\n" + ARTICLE.replace("，", "，\n"), encoding="utf-8")
        result = engine.ingest_paths([copy])[0]
        assert result.status == "added" and result.duplicate_of == "yangmei.txt"
        assert all(sig is not None for _, _, sig, _ in engine.store.fingerprints())
    finally:
        engine.close()


def test_an_index_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rag.sqlite3"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(IndexError_, match="newer"):
        Store(path)


def tokens_of(db_path: Path) -> list[tuple[str, str | None]]:
    db = sqlite3.connect(db_path)
    try:
        return db.execute("SELECT text, tokens FROM chunks ORDER BY id").fetchall()
    finally:
        db.close()


def test_a_version_2_index_is_migrated_and_then_grows_incrementally(
    tmp_path: Path, use_embedder: Embedder
) -> None:
    settings = Settings(index_dir=tmp_path / "idx")
    engine = Engine(settings, embedder=use_embedder)
    for name, text in (("yangmei.txt", ARTICLE), ("station.txt", OTHER)):
        engine.ingest_bytes(name, text.encode())
    expected = engine.search("杨梅园面积多大？").passages
    engine.close()
    downgrade_to_v2(settings.db_path)
    before = rows(settings.db_path)
    generation = int(before["meta"]["generation"])
    top_id = max(r[0] for r in before["chunks"])

    store = Store(settings.db_path)  # the migration alone: rows intact, nothing tokenised yet
    assert store.manifest().schema_version == SCHEMA_VERSION == 3
    assert rows(settings.db_path) == before
    assert all(tokens is None for _, tokens in tokens_of(settings.db_path))
    with store.read_view() as view:
        assert view.meta("next_chunk_id") == str(top_id + 1)
        assert view.changes_since(generation) is not None  # from now on, logged
        assert view.changes_since(generation - 1) is None  # before the log existed
    store.close()

    engine = Engine(settings, embedder=use_embedder)
    try:
        assert engine.info()["rebuilt_on_load"] == [MANIFEST_FILE]
        assert not any((settings.index_dir / n).exists() for n in OLD_DERIVED)  # removed
        assert engine.search("杨梅园面积多大？").passages == expected
        stored = tokens_of(settings.db_path)  # written back by the rebuild
        assert all(t is not None and t.split("\x1f") == tokenize(x) for x, t in stored)

        engine.delete(doc_id_for("station.txt"))  # the highest ids go; they are not reused
        engine.ingest_bytes(
            "third.txt", "青石镇今年新建冷链物流中心，杨梅六小时内送达上海。".encode()
        )
        db = sqlite3.connect(settings.db_path)
        new_ids = [
            r[0]
            for r in db.execute("SELECT id FROM chunks WHERE doc_id=?", (doc_id_for("third.txt"),))
        ]
        db.close()
        assert new_ids and min(new_ids) > top_id
        # the writes were applied to the segments (one added, a tombstone), nothing rebuilt
        assert engine.info()["segments"] == 2
        got = [(p.chunk_id, p.score) for p in engine.search("杨梅 冷链 上海", 5).passages]
    finally:
        engine.close()
    (settings.index_dir / MANIFEST_FILE).unlink()
    fresh = Engine(settings, embedder=use_embedder)  # everything rebuilt from SQLite
    try:
        want = [(p.chunk_id, p.score) for p in fresh.search("杨梅 冷链 上海", 5).passages]
    finally:
        fresh.close()
    assert [c for c, _ in got] == [c for c, _ in want]
    assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-5)
