"""A real `rag serve` on loopback whose index lives on a small tmpfs (skipped where mounting is
not permitted), filled to the byte or remounted read-only.

Writes that cannot be stored are refused with 507 (`insufficient_storage`) or, on a read-only
disk, 503 (`read_only_index`), and leave nothing behind; searches keep answering 200 from the
last good state; `/readyz` and `GET /v1/documents` agree throughout; no temporary file is left;
the server starts on a full and on a read-only disk; `rag info` works there and writes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
from smalldisk import fill, free, listing, remount, temp_files, tmpfs

DOCS = {
    "station.txt": "流动观测站设在东海岸，站内记录潮汐、风速与降水。观测站每天整点上传一次数据。",
    "library.txt": "城南图书馆藏书四十万册，周一闭馆。馆内设有少儿阅览室和古籍修复中心。",
}
NEW = ("meteor.txt", "The Marlow observatory recorded 4,812 meteors during the Perseid peak.")
QUERIES = ["流动观测站记录什么数据", "图书馆周几闭馆", "How many meteors were recorded?"]
MANIFEST = "segments.manifest"

Server = Callable[..., AbstractContextManager[Any]]


def upload(base: str, source: str, text: str) -> httpx.Response:
    return httpx.post(f"{base}/v1/documents", json={"source": source, "text": text}, timeout=120)


def searches(base: str) -> list[list[str]]:
    """The chunk ids each query finds; every search must answer 200."""
    out = []
    for q in QUERIES:
        r = httpx.post(f"{base}/v1/search", json={"query": q, "top_k": 3}, timeout=60)
        assert r.status_code == 200, r.text
        out.append([p["chunk_id"] for p in r.json()["results"]])
    return out


def tops(found: list[list[str]]) -> list[str]:
    """The best chunk of the two Chinese queries (other documents may come after it)."""
    return [ids[0] for ids in found[:2]]


def agreed_count(base: str) -> int:
    """The number of documents, which readiness and the list must agree on."""
    ready = httpx.get(f"{base}/readyz", timeout=30)
    listed = httpx.get(f"{base}/v1/documents", timeout=30)
    assert ready.status_code == 200 == listed.status_code
    assert ready.json()["documents"] == listed.json()["total"]
    return int(listed.json()["total"])


def rag_info(index_dir: Path) -> dict[str, Any]:
    """`rag info --json` in a subprocess, as an operator would run it beside the server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env["RAG_INDEX_DIR"] = str(index_dir)
    proc = subprocess.run(
        [sys.executable, "-m", "rag.cli", "info", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    info: dict[str, Any] = json.loads(proc.stdout)
    return info


def refused(reply: httpx.Response, status: int, code: str) -> None:
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]["code"] == code


def test_a_full_or_read_only_disk_over_http(tmp_path: Path, loopback_server: Server) -> None:
    logs = [tmp_path / f"server-{i}.log" for i in range(3)]
    with tmpfs(tmp_path / "fs", "8m") as disk:
        index_dir = disk / "idx"
        with loopback_server(index_dir, logs[0]) as server:
            for source, text in DOCS.items():
                assert upload(server.base, source, text).status_code == 201
            want = searches(server.base)
            fill(disk)

            refused(upload(server.base, *NEW), 507, "insufficient_storage")
            pair = (NEW, ("harbour.txt", "上海港开通两条绿色航运走廊，连接洛杉矶和长滩。"))
            two = [("file", (name, text.encode(), "text/plain")) for name, text in pair]
            reply = httpx.post(f"{server.base}/v1/documents", files=two, timeout=120)
            refused(reply, 507, "insufficient_storage")
            doc_id = httpx.get(f"{server.base}/v1/documents", timeout=30).json()["documents"][0]
            reply = httpx.delete(f"{server.base}/v1/documents/{doc_id['doc_id']}", timeout=30)
            refused(reply, 507, "insufficient_storage")
            assert searches(server.base) == want  # the last good state, never a 500
            assert agreed_count(server.base) == 2
            assert temp_files(index_dir) == []

            free(disk)
            assert upload(server.base, *NEW).status_code == 201
            assert agreed_count(server.base) == 3
            assert tops(searches(server.base)) == tops(want)

        # A restart on a full disk, with every derived file to rebuild and no room to save one.
        for path in index_dir.iterdir():
            if path.name == MANIFEST or path.suffix == ".seg":
                path.unlink()
        fill(disk)
        with loopback_server(index_dir, logs[1]) as server:
            assert agreed_count(server.base) == 3
            want = searches(server.base)
            refused(
                upload(server.base, "late.txt", "迟到的文件：今天没有新的观测数据。"),
                507,
                "insufficient_storage",
            )
            files = listing(index_dir)
            info = rag_info(index_dir)
            assert info["documents"] == 3 and info["derived_files"][MANIFEST] == "missing"
            assert listing(index_dir) == files  # `rag info` wrote nothing
            assert temp_files(index_dir) == []
            free(disk)  # room again: the running server takes writes
            assert (
                upload(server.base, "late.txt", "迟到的文件：今天没有新的观测数据。").status_code
                == 201
            )
            assert agreed_count(server.base) == 4
            assert tops(searches(server.base)) == tops(want)

        # A read-only disk: the server starts, serves, and refuses writes with 503.
        remount(disk, "ro")
        try:
            with loopback_server(index_dir, logs[2]) as server:
                assert agreed_count(server.base) == 4
                assert tops(searches(server.base)) == tops(want)
                refused(
                    upload(server.base, "ro.txt", "只读磁盘上的新文件。"), 503, "read_only_index"
                )
                reply = httpx.delete(f"{server.base}/v1/documents/{doc_id['doc_id']}", timeout=30)
                refused(reply, 503, "read_only_index")
                assert agreed_count(server.base) == 4
        finally:
            remount(disk, "rw")
    said = [log.read_text(errors="replace") for log in logs]
    assert not any("Traceback" in s for s in said)
    # the second and third servers did open their index read-only, as the disk required
    assert "served read-only" not in said[0]
    assert "served read-only" in said[1] and "SQLITE_IOERR_SHMSIZE" in said[1]
    assert "can be written again" in said[1]
    assert "served read-only" in said[2] and "SQLITE_CANTOPEN" in said[2]
