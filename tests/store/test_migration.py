"""An index written by schema version 1 (before near-duplicate signatures and file stats) opens
under version 2 with every row intact; the next ingest back-fills signatures, so a copy of an old
document is recognised, and records file stats, so the run after is the fast one."""

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
from rag.store.sqlite import SCHEMA_VERSION, Store

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


def rows(db_path: Path) -> dict[str, Any]:
    db = sqlite3.connect(db_path)
    try:
        cols = ", ".join(V1_DOCUMENT_COLUMNS)
        return {
            "documents": db.execute(f"SELECT {cols} FROM documents ORDER BY doc_id").fetchall(),
            "chunks": db.execute("SELECT * FROM chunks ORDER BY id").fetchall(),
            "meta": dict(db.execute("SELECT key, value FROM meta WHERE key != 'schema_version'")),
        }
    finally:
        db.close()


def downgrade_to_v1(db_path: Path) -> None:
    """Make the index exactly what version 1 wrote: its documents table, version 1 recorded."""
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
    assert store.manifest().schema_version == SCHEMA_VERSION == 2
    assert rows(settings.db_path) == before  # every document, chunk and vector, unchanged
    assert all(sig is None for _, _, sig, _ in store.fingerprints())
    assert all(s.size is None for s in store.file_states().values())
    store.close()

    engine = Engine(settings, embedder=use_embedder)
    try:
        assert engine.info()["rebuilt_on_load"] == []  # same generation: derived files still good
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
