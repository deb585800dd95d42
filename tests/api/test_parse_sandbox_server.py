"""The parse sandbox under a real `rag serve` on loopback: a file whose parse needs more memory
than allowed is refused while the server keeps answering and its own memory stays where it was;
a client that disconnects mid-parse stops the work and nothing is stored.

The server lets zips expand to 2 GiB (`RAG_MAX_EXPANDED_BYTES`), so that a zip bomb gets past the
expansion limit and into a parser, whose process may map 1 GiB (`RAG_PARSE_MEMORY_MB`).
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from ingest import bombs
from ingest.processes import (
    alive,
    busy_parse_process,
    cpu_ticks,
    parse_processes,
    status_kib,
    wait_until,
)

# a `tests.conftest.LoopbackServer` (base URL, log file, pid)
LoopbackServer = Any


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    loopback_server: Any,
) -> Iterator[LoopbackServer]:
    tmp = tmp_path_factory.mktemp("sandbox_server")
    with loopback_server(
        tmp / "index",
        tmp / "server.log",
        RAG_MAX_EXPANDED_BYTES=str(2 << 30),
        RAG_PARSE_MEMORY_MB="1024",
    ) as s:
        yield s


def documents(server: LoopbackServer) -> int:
    r = httpx.get(f"{server.base}/v1/documents", timeout=30)
    assert r.status_code == 200
    return int(r.json()["total"])


def test_parse_needing_too_much_memory_is_refused_while_the_server_answers(
    server: LoopbackServer,
) -> None:
    data = bombs.docx_of_paragraphs(350)  # ~1 MB; its XML tree needs several GB
    before = documents(server)
    peak_before = status_kib(server.pid, "VmHWM")
    latencies: list[float] = []
    statuses: set[int] = set()
    done = threading.Event()

    def poll() -> None:
        with httpx.Client(base_url=server.base, timeout=10) as c:
            while not done.is_set():
                start = time.monotonic()
                statuses.add(c.get("/healthz").status_code)
                latencies.append(time.monotonic() - start)
                time.sleep(0.05)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        r = httpx.post(
            f"{server.base}/v1/documents",
            files=[("file", ("bomb.docx", data, "application/octet-stream"))],
            timeout=120,
        )
    finally:
        done.set()
        poller.join()
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "document_too_complex"
    assert error["message"] == (
        "bomb.docx: parsing needed more memory than the limit of 1024 MiB (RAG_PARSE_MEMORY_MB); "
        "the file is too complex to read"
    )
    assert statuses == {200} and len(latencies) >= 5
    assert max(latencies) < 2.0, latencies
    # The server itself never held the inflated XML (350 MB), let alone its tree.
    assert status_kib(server.pid, "VmHWM") - peak_before < 150 * 1024
    assert documents(server) == before


def _multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    return body + data + f"\r\n--{boundary}--\r\n".encode(), boundary


def _send_and_hang_up(
    server: LoopbackServer, name: str, data: bytes, wait: Callable[[], Any]
) -> None:
    """POST an upload over a raw socket, call `wait()`, then close the connection unanswered."""
    body, boundary = _multipart(name, data)
    url = urlsplit(server.base)
    head = (
        f"POST /v1/documents HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(head + body)
        wait()


def test_client_disconnecting_mid_parse_stops_the_work_and_stores_nothing(
    server: LoopbackServer, tmp_path: Path
) -> None:
    data = bombs.slow_pdf(60_000)  # a few KB whose one page takes seconds to read
    # How long a complete upload of it takes here (parse, embed, store), for the wait below.
    start = time.monotonic()
    r = httpx.post(
        f"{server.base}/v1/documents",
        files=[("file", ("measured.pdf", data, "application/pdf"))],
        timeout=300,
    )
    assert r.status_code == 201, r.text
    full = time.monotonic() - start
    before = documents(server)

    baseline = {p: cpu_ticks(p) for p in parse_processes(server.pid)}
    parsing: list[int] = []

    def parse_started() -> None:
        def found() -> bool:
            worker = busy_parse_process(server.pid, baseline)
            return worker is not None and not parsing.append(worker)

        assert wait_until(found, 30), "no parse process was seen parsing"

    _send_and_hang_up(server, "abandoned.pdf", data, parse_started)
    # The parse process is killed as soon as the server sees the client gone …
    assert wait_until(lambda: not alive(parsing[0]), 5)
    # … and long after the upload would have been stored, nothing was.
    time.sleep(1.5 * full + 2)
    assert documents(server) == before
    assert all(d["source"] != "abandoned.pdf" for d in _listing(server))


def _listing(server: LoopbackServer) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = httpx.get(f"{server.base}/v1/documents", timeout=30).json()[
        "documents"
    ]
    return docs
