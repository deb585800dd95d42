"""`rag info` never writes: not the database, not SQLite's -wal/-shm files, not a derived file
(it reports them current, stale, missing or damaged instead of rebuilding them), not on a full
disk, not on a read-only one, not where there is no index at all."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import cli_env, index_state, rag
from smalldisk import fill, listing, remount, tmpfs

from rag.config import Settings
from rag.embed.base import Embedder
from rag.engine import Engine
from rag.index.segments import MANIFEST_FILE

DOCS = {
    "lake.txt": "紫藤湖实验站位于江南丘陵地带。2031年，该站培育了七百二十种耐盐水稻品种。",
    "port.txt": "上海港开通两条绿色航运走廊，连接洛杉矶和长滩。港口今年吞吐量增长百分之五。",
}
ALL_CURRENT = {MANIFEST_FILE: "current"}


def build(index_dir: Path, embedder: Embedder, docs: dict[str, str] = DOCS) -> None:
    engine = Engine(Settings(index_dir=index_dir), embedder=embedder)
    for source, text in docs.items():
        engine.ingest_bytes(source, text.encode())
    engine.close()


def info(index_dir: Path) -> dict[str, object]:
    proc = rag(["info", "--json"], cli_env(index_dir))
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, use_embedder: Embedder) -> Path:
    index_dir = tmp_path_factory.mktemp("info") / "idx"
    build(index_dir, use_embedder)
    return index_dir


def test_info_reports_and_writes_nothing(built: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "idx"
    shutil.copytree(built, index_dir)
    files = listing(index_dir)
    assert sorted(f for f in files if not f.endswith(".seg")) == ["rag.sqlite3", MANIFEST_FILE]
    assert any(f.endswith(".seg") for f in files)
    got = info(index_dir)
    text = rag(["info"], cli_env(index_dir))
    assert listing(index_dir) == files  # no -wal, no -shm, nothing touched
    assert text.returncode == 0 and f"derived_files    {MANIFEST_FILE} current" in text.stdout
    assert got["derived_files"] == ALL_CURRENT
    state = index_state(index_dir)  # (this read-only connection leaves SQLite's -wal and -shm)
    assert got["documents"] == state["documents"] == 2
    assert got["chunks"] == state["chunks"]
    assert got["generation"] == int(state["generation"])


def test_info_does_not_rebuild_derived_files(
    built: Path, tmp_path: Path, use_embedder: Embedder
) -> None:
    index_dir = tmp_path / "idx"
    shutil.copytree(built, index_dir)
    manifest = index_dir / MANIFEST_FILE
    old_manifest = manifest.read_bytes()
    build(
        index_dir,
        use_embedder,
        {"more.txt": "青石镇的杨梅种植已有三百多年历史，全镇杨梅园面积八千亩。"},
    )
    current = manifest.read_bytes()
    segment = next(p for p in index_dir.iterdir() if p.suffix == ".seg")
    intact_segment = segment.read_bytes()
    for state, damage in (
        ("stale", lambda: manifest.write_bytes(old_manifest)),  # another generation's
        ("damaged", lambda: manifest.write_bytes(current[:100])),  # cut short
        ("missing", manifest.unlink),
        ("damaged", lambda: segment.write_bytes(intact_segment[:200])),  # a listed segment
    ):
        manifest.write_bytes(current)
        segment.write_bytes(intact_segment)
        damage()
        files = listing(index_dir)
        got = info(index_dir)
        assert got["derived_files"] == {MANIFEST_FILE: state}
        assert got["documents"] == 3
        assert listing(index_dir) == files  # reported, not rebuilt


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "fs", "8m") as mountpoint:
        yield mountpoint


def test_info_on_a_full_and_on_a_read_only_disk(
    built: Path, small_disk: Path, use_embedder: Embedder
) -> None:
    index_dir = small_disk / "idx"
    shutil.copytree(built, index_dir)
    files = listing(index_dir)
    fill(small_disk)
    assert info(index_dir)["derived_files"] == ALL_CURRENT
    assert listing(index_dir) == files
    remount(small_disk, "ro")
    try:
        got = info(index_dir)
        assert got["documents"] == 2 and got["derived_files"] == ALL_CURRENT
    finally:
        remount(small_disk, "rw")
    assert listing(index_dir) == files


def test_info_without_an_index_creates_none(tmp_path: Path) -> None:
    proc = rag(["info"], cli_env(tmp_path / "nothing-here"))
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: no index at ") and "Traceback" not in proc.stderr
    assert not (tmp_path / "nothing-here").exists()
