"""`rag serve` with `RAG_WORKERS=2`: a real supervisor and two real worker processes on one
loopback socket, over a real index.

What must hold: both workers serve; a write through either is found by every later search,
whichever worker answers it; a worker that dies is started again; SIGTERM stops them all and
removes `serve.json`.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.config import Settings
from rag.embed.base import Embedder
from rag.engine import Engine
from rag.serving import SERVE_FILE

TEXT = "青石湾湿地观测站于2019年建成，记录到候鸟三百一十二种，其中国家一级保护鸟类九种。\n"
NEW = "白鹭洲数据港位于示范区东侧，2024年引进企业一百二十家，算力规模达到三千PFlops。\n"


def children(pid: int) -> set[int]:
    """The process ids of `pid`'s children (Linux /proc)."""
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text()
        out |= {int(x) for x in text.split()}
    return out


def wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll `predicate` until true, or fail naming `what`."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def index_dir(tmp_path: Path, use_embedder: Embedder) -> Path:
    """An index of one document."""
    engine = Engine(Settings(index_dir=tmp_path / "idx"), embedder=use_embedder)
    engine.ingest_bytes("wetland.txt", TEXT.encode())
    engine.close()
    return tmp_path / "idx"


def sources(base: str, query: str) -> list[str]:
    """The sources of a search's results, on a new connection (so any worker may answer)."""
    r = httpx.post(f"{base}/v1/search", json={"query": query, "top_k": 3}, timeout=60)
    assert r.status_code == 200, r.text
    return [hit["source"] for hit in r.json()["results"]]


def test_two_workers_serve_one_index(
    index_dir: Path, tmp_path: Path, loopback_server: Callable[..., Any]
) -> None:
    log = tmp_path / "serve.log"
    with loopback_server(index_dir, log, RAG_WORKERS="2") as server:
        wait_for(lambda: (index_dir / SERVE_FILE).exists(), 120, "serve.json")
        workers = children(server.pid)
        assert len(workers) >= 2  # (spawn's resource tracker may be a third)

        r = httpx.post(
            f"{server.base}/v1/documents", files={"file": ("port.txt", NEW.encode())}, timeout=120
        )
        assert r.status_code == 201 and r.json()["status"] == "added", r.text
        # every search after the write finds it, whichever worker answers: concurrent requests
        # on new connections, until both workers have answered some
        with ThreadPoolExecutor(8) as pool:
            for _ in range(10):
                found = list(pool.map(lambda _: sources(server.base, "数据港算力规模"), range(16)))
                assert all(hits and hits[0] == "port.txt" for hits in found), found
                served = set(
                    re.findall(r"\[worker (\d)\] rag.access: POST /v1/search", log.read_text())
                )
                if served == {"0", "1"}:
                    break
        assert served == {"0", "1"}, log.read_text()[-3000:]

        # a worker that dies is started again, and the service goes on answering
        victim = max(workers & set(int(x) for x in _worker_pids(log)))
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda: victim not in children(server.pid) and len(children(server.pid)) >= 2,
            60,
            "the worker to be started again",
        )
        wait_for(lambda: "starting it again" in log.read_text(), 10, "the restart log line")
        assert sources(server.base, "候鸟")[0] == "wetland.txt"
        supervisor = server.pid
    # the supervisor stops its workers and removes serve.json
    assert not (index_dir / SERVE_FILE).exists()
    assert not Path(f"/proc/{supervisor}").exists() or not children(supervisor)

    def gone(pid: int) -> bool:
        try:
            return "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
        except FileNotFoundError:
            return True

    # spawn's resource tracker (one of `workers`) exits when it sees its parent gone: allow it
    # a moment after the supervisor (it was once found still running, reparented to init)
    wait_for(lambda: all(gone(pid) for pid in workers), 10, "every worker process to end")


def _worker_pids(log: Path) -> list[str]:
    """The pids uvicorn logged for the worker processes it started."""
    return re.findall(r"Started server process \[(\d+)\]", log.read_text())
