"""Concurrent uploads of one source, to a real `rag serve` on loopback: whether an upload added,
updated or left the document unchanged is decided when it is stored, from what is stored then.
Of eight simultaneous uploads, exactly one adds the document; the others update it (another
text) or find it unchanged (the same text)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx

UPLOADS = 8


def text(i: int) -> str:
    return (
        f"第{i}版：临时观测站设在东海岸第{i}号码头，记录潮汐、风速与降水，"
        f"今年共上传{100 + i}条整点数据，观测员{3 + i}人轮班值守。"
    )


def upload_all(base: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    """POST every body at once (released together by a barrier)."""
    start = threading.Barrier(len(bodies))

    def post(body: dict[str, Any]) -> httpx.Response:
        with httpx.Client(timeout=120) as client:
            start.wait()
            return client.post(f"{base}/v1/documents", json=body)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))


def test_concurrent_uploads_of_one_source(
    tmp_path: Path, loopback_server: Callable[..., AbstractContextManager[Any]]
) -> None:
    with loopback_server(tmp_path / "idx", tmp_path / "server.log") as server:
        texts = [text(i) for i in range(UPLOADS)]
        replies = upload_all(server.base, [{"source": "same.txt", "text": t} for t in texts])
        assert [r.status_code for r in replies] == [201] * UPLOADS, [r.text for r in replies]
        statuses = sorted(r.json()["status"] for r in replies)
        assert statuses == ["added"] + ["updated"] * (UPLOADS - 1)
        listed = httpx.get(f"{server.base}/v1/documents", timeout=30).json()
        assert [d["source"] for d in listed["documents"]] == ["same.txt"]

        # The same text eight times: one adds it, the others find it stored, unchanged.
        replies = upload_all(
            server.base, [{"source": "twin.txt", "text": text(99)} for _ in range(UPLOADS)]
        )
        statuses = sorted(r.json()["status"] for r in replies)
        assert statuses == ["added"] + ["unchanged"] * (UPLOADS - 1), [r.text for r in replies]
        assert sorted(r.status_code for r in replies) == [200] * (UPLOADS - 1) + [201]
        chunks = {r.json()["chunks"] for r in replies}
        assert len(chunks) == 1 and chunks != {0}
        listed = httpx.get(f"{server.base}/v1/documents", timeout=30).json()
        assert listed["total"] == 2
        ready = httpx.get(f"{server.base}/readyz", timeout=30).json()
        assert ready["documents"] == 2
