"""`rag ingest DIR` over a folder mixing good, near-duplicate, empty, binary and wrongly-encoded
files: every good file is stored, each bad one fails alone with its reason, the duplicate is
reported; a second run skips every unchanged file by its size and mtime, without reading it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cli.helpers import cli_env, index_state, rag
from cli.test_cli_bad_input import NEW_DOCS, PNG_BYTES, undecodable_bytes

from rag.config import Settings
from rag.embed.base import Embedder
from rag.engine import Engine
from rag.ingest import batch

ARTICLE = (
    "长三角生态绿色一体化发展示范区于2019年11月1日正式揭牌，范围包括上海市青浦区、江苏省苏州市"
    "吴江区和浙江省嘉兴市嘉善县，面积约2413平方公里。示范区的先行启动区面积约660平方公里。"
    "示范区坚持生态优先、绿色发展，探索跨行政区域共建共享的新机制。五年来，示范区累计推出"
    "制度创新成果136项，其中38项面向全国复制推广。示范区执委会表示，下一步将聚焦规划管理、"
    "生态保护、土地管理、项目管理、要素流动、财税分享、公共服务和公共信用等八个方面，"
    "继续深化一体化制度创新，加快建设水乡客厅、西岑科创中心等重点项目，打造世界级滨水人居文明典范。\n"
)
# The same article as a news site reprinted it: a header line, full-width digits, hard line breaks.
REPRINT = "来源：嘉兴日报 2024-11-02\n" + ARTICLE.translate(
    str.maketrans("0123456789", "０１２３４５６７８９")
).replace("。", "。\n")

AN_HOUR_AGO = time.time_ns() - 3600 * 10**9


def make_folder(folder: Path) -> dict[str, bytes]:
    """Good, duplicate and bad files, all last modified an hour ago (saved a while back)."""
    files = {
        "rail.txt": NEW_DOCS["rail.txt"].encode(),
        "news/demo.txt": ARTICLE.encode(),
        "news/reprint-of-demo.txt": REPRINT.encode("gb18030"),  # another encoding, too
        "empty.txt": b"",
        "image.txt": PNG_BYTES,
        "garbled.txt": undecodable_bytes(),
    }
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, ns=(AN_HOUR_AGO, AN_HOUR_AGO))
    return files


def test_a_mixed_folder_then_a_second_run(tmp_path: Path) -> None:
    folder, index = tmp_path / "docs", tmp_path / "idx"
    make_folder(folder)

    proc = rag(["ingest", str(folder), "--json"], cli_env(index))

    assert proc.returncode == 1, proc.stderr  # some files failed
    report = json.loads(proc.stdout)
    assert report["summary"] == {"added": 3, "duplicate": 1, "failed": 3}
    by_source = {r["source"]: r for r in report["results"]}
    assert {s: r["status"] for s, r in by_source.items()} == {
        "rail.txt": "added",
        "news/demo.txt": "added",
        "news/reprint-of-demo.txt": "added",
        "empty.txt": "failed",
        "image.txt": "failed",
        "garbled.txt": "failed",
    }
    assert by_source["news/reprint-of-demo.txt"]["duplicate_of"] == "news/demo.txt"
    assert by_source["news/demo.txt"]["duplicate_of"] == "" == by_source["rail.txt"]["duplicate_of"]
    assert "empty" in by_source["empty.txt"]["reason"]
    assert "binary" in by_source["image.txt"]["reason"]
    assert "decode" in by_source["garbled.txt"]["reason"]
    assert index_state(index)["documents"] == 3

    info = json.loads(rag(["info", "--json"], cli_env(index)).stdout)
    metadata = {d["source"]: d["metadata"] for d in info["documents_list"]}
    assert metadata["news/reprint-of-demo.txt"] == {"duplicate_of": "news/demo.txt"}
    assert metadata["news/demo.txt"] == {}

    # Second run, text output: the good files are unchanged, the bad ones fail again.
    before = index_state(index)
    proc = rag(["ingest", str(folder)], cli_env(index))
    assert proc.returncode == 1
    assert "0 added, 0 updated, 3 unchanged, 0 duplicate, 3 failed" in proc.stdout
    assert "3 documents" in proc.stdout
    for name in ("empty.txt", "image.txt", "garbled.txt"):
        assert f"failed: {name}: " in proc.stderr
    assert index_state(index) == before


def test_the_fast_path_trusts_size_and_mtime(tmp_path: Path) -> None:
    """Shown from outside: after a same-size edit that restores the mtime the file is still
    reported unchanged (it was not read); a new mtime makes it read and updated."""
    folder, index = tmp_path / "docs", tmp_path / "idx"
    make_folder(folder)
    assert rag(["ingest", str(folder), "--json"], cli_env(index)).returncode == 1

    rail = folder / "rail.txt"
    edited = NEW_DOCS["rail.txt"].replace("350公里", "380公里").encode()
    assert len(edited) == rail.stat().st_size
    rail.write_bytes(edited)
    os.utime(rail, ns=(AN_HOUR_AGO, AN_HOUR_AGO))
    proc = rag(["ingest", str(folder), "--json"], cli_env(index))
    assert json.loads(proc.stdout)["summary"] == {"unchanged": 3, "failed": 3}

    os.utime(rail, ns=(AN_HOUR_AGO + 10**9, AN_HOUR_AGO + 10**9))
    proc = rag(["ingest", str(folder), "--json"], cli_env(index))
    assert json.loads(proc.stdout)["summary"] == {"updated": 1, "unchanged": 2, "failed": 3}


@pytest.fixture
def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file read by ingestion (in-process: no worker pool), in order."""
    reads: list[Path] = []
    real: Callable[[Path, int], bytes] = batch.read_file

    def reading(path: Path, max_bytes: int) -> bytes:
        reads.append(path)
        return real(path, max_bytes)

    monkeypatch.setattr(batch, "read_file", reading)
    return reads


def test_unchanged_files_are_not_read_again(
    tmp_path: Path, use_embedder: Embedder, count_reads: list[Path]
) -> None:
    folder = tmp_path / "docs"
    make_folder(folder)
    engine = Engine(Settings(index_dir=tmp_path / "idx"), embedder=use_embedder)
    try:
        first = engine.ingest_paths([folder])
        assert sorted(r.status for r in first) == ["added"] * 3 + ["failed"] * 3
        assert len(count_reads) == 6

        count_reads.clear()
        again = engine.ingest_paths([folder])
        assert [r.status for r in again] == [r.status.replace("added", "unchanged") for r in first]
        assert [r.chunks for r in again] == [r.chunks for r in first]
        # only the three bad files (never stored, so nothing to compare with) are read again
        assert sorted(p.name for p in count_reads) == ["empty.txt", "garbled.txt", "image.txt"]

        # A copy or checkout changes the mtime, not the content: read once, compared by hash,
        # still unchanged; its new mtime is recorded, so the next run does not read it.
        rail = folder / "rail.txt"
        os.utime(rail, ns=(AN_HOUR_AGO + 5 * 10**9, AN_HOUR_AGO + 5 * 10**9))
        count_reads.clear()
        statuses = {r.source: r.status for r in engine.ingest_paths([folder])}
        assert statuses["rail.txt"] == "unchanged" and rail in count_reads
        count_reads.clear()
        engine.ingest_paths([folder])
        assert rail not in count_reads

        # A file modified just now is not trusted by its mtime yet (it could change again within
        # the same timestamp tick): compared by content until its mtime is safely in the past.
        rail.write_text(
            NEW_DOCS["rail.txt"] + "沿线城市将同步建设综合交通枢纽。\n", encoding="utf-8"
        )
        assert {r.source: r.status for r in engine.ingest_paths([folder])}["rail.txt"] == "updated"
        count_reads.clear()
        assert {r.source: r.status for r in engine.ingest_paths([folder])}["rail.txt"] == (
            "unchanged"
        )
        assert rail in count_reads
    finally:
        engine.close()


def test_parsing_in_worker_processes_gives_the_same_results(
    tmp_path: Path, use_embedder: Embedder
) -> None:
    folder = tmp_path / "docs"
    files = make_folder(folder)
    serial = Engine(Settings(index_dir=tmp_path / "serial"), embedder=use_embedder)
    pooled = Engine(
        Settings(index_dir=tmp_path / "pooled", ingest_workers=2), embedder=use_embedder
    )
    try:
        a, b = serial.ingest_paths([folder]), pooled.ingest_paths([folder])
        assert a == b and len(a) == len(files)
        assert [d.content_hash for d in serial.documents()] == [
            d.content_hash for d in pooled.documents()
        ]
        assert serial.store.count_chunks() == pooled.store.count_chunks()
    finally:
        serial.close()
        pooled.close()
