"""Server-sent events: encoding, and streaming a blocking event iterator without blocking the loop."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

T = TypeVar("T")


def sse(data: Any, event: str | None = None) -> bytes:
    """One SSE message; `data` is JSON-encoded unless it is already a string."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


async def start_stream(make: Callable[[], Iterator[T]]) -> tuple[T, AsyncIterator[T]]:
    """Run `make()` and take its first item in a worker thread (errors surface here, before any
    response is sent, so they become ordinary 4xx answers); the rest streams from the threadpool."""

    def first() -> tuple[T, Iterator[T]]:
        it = make()
        return next(it), it

    head, rest = await run_in_threadpool(first)
    return head, iterate_in_threadpool(rest)


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
