"""Server-sent events: encoding, and streaming a blocking event iterator without blocking the loop."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

T = TypeVar("T")

# Every character `str.splitlines` breaks a line at, besides \r and \n. SSE itself ends lines only
# at CR/LF, but clients that split a stream with splitlines (httpx's `iter_lines()`, many Python
# readers) would see a document's U+2028 as the end of a `data:` line: broken JSON, and text after
# it such as "data: [DONE]" taken for an event. json.dumps escapes the C0 ones already; the rest it
# leaves raw with ensure_ascii=False, so they are written as JSON escapes, which decode to the same
# string.
_LINE_BREAKS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_ESCAPES = str.maketrans({c: f"\\u{ord(c):04x}" for c in _LINE_BREAKS})
_ANY_BREAK = frozenset("\r\n" + _LINE_BREAKS)


def sse(data: Any, event: str | None = None) -> bytes:
    """One SSE message. `data` is JSON-encoded (no line break of any kind survives raw) unless it
    is already a string, which is sent as is and must be one line (e.g. `[DONE]`)."""
    if isinstance(data, str):
        if _ANY_BREAK.intersection(data):
            raise ValueError("a string SSE payload must be a single line")
        payload = data
    else:
        payload = json.dumps(data, ensure_ascii=False).translate(_ESCAPES)
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
