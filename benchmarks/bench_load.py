"""HTTP load benchmark: the real server (uvicorn in a subprocess) under concurrent closed-loop clients.

The script builds an index from `corpus/` in a temporary directory with `rag ingest` (or reuses
one given by `--index-dir`), starts `python -m rag.cli serve` on a free loopback port with
`RAG_INDEX_DIR` pointing at it, waits for `GET /readyz`, then runs these scenarios:

1. `search1`  - one client, `POST /v1/search`, 10 s            target: p50 <= 15 ms
2. `search32` - 32 concurrent clients, `POST /v1/search`, 30 s  targets: no errors, >= 150 req/s,
                                                                         p99 <= 3 x p50
3. `ask32`    - the same against `POST /v1/ask`                 (reported only)
4. `ingest`   - `GET /healthz` polled every 20 ms by one client while `POST /v1/documents`
                ingests ~200 KB of Chinese text a few times     target: /healthz p99 <= 50 ms
                (skipped, and said so, while the route answers 404/405)
5. `english`  - 4 clients of English questions (`data/cmrc_en.jsonl`), 20 s without writes, then
                20 s while one client posts documents back to back   target: p50 <= 2 x

Clients are closed-loop (each sends its next request when the previous one has answered) and
cycle through all non-empty questions of the CMRC 2018 trial set, each starting at its own offset.
Latency is measured client-side with `time.perf_counter`, from just before the request is written
to the last byte of the response. Each scenario first runs a short unrecorded warm-up.

The default client is a minimal HTTP/1.1 keep-alive client on asyncio streams (one connection per
virtual client, request bodies encoded in advance), so the load generator costs as little CPU as
possible on a machine it shares with the server; `--client httpx` uses `httpx.AsyncClient` with a
pool of N connections instead (measured: ~0.13 ms of client CPU per request for the raw client,
~2.5 ms for httpx, which then takes most of a core). The CPU used by the client process
(`getrusage`), by the server process tree (`/proc/<pid>/stat`, split into the event-loop thread and
the others) and by every other process on the machine is reported per scenario: on a shared
machine a large "other processes" share means the figures are perturbed (`--wait-idle` waits for
a quiet moment first). `/healthz` is polled at a fixed rate; a poll slower than the period delays
the next one (no coordinated-omission correction).

    python benchmarks/bench_load.py                       # all four scenarios, defaults above
    python benchmarks/bench_load.py --scenarios search1,search32 --duration 15 --wait-idle 120
    python benchmarks/bench_load.py --index-dir index --clients 64 --json > load.json
    python benchmarks/bench_load.py --pause-before 5       # time to attach py-spy to the server pid
    python benchmarks/bench_load.py --workers 2            # rag serve --workers 2
    python benchmarks/bench_load.py --server-cmd \
        'uvicorn api.app:create_app --factory --host {host} --port {port} --workers 2'

(Beware that uvicorn `--workers N` binds its socket without IPPROTO_TCP, so accepted connections
lack TCP_NODELAY and every keep-alive response waits ~40 ms for a delayed ACK: Kludex/uvicorn#3149.)

The server subprocess (its whole process group) is always terminated on exit.
Exit status: 0, or 1 with `--strict` when a target fails; 2 when the server cannot start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CMRC = ROOT / "benchmarks" / "data" / "cmrc2018" / "cmrc2018_trial.json"
DEFAULT_CORPUS = ROOT / "corpus"
HOST = "127.0.0.1"
SCENARIOS = ("search1", "search32", "ask32", "ingest", "english")
ENGLISH = Path(__file__).resolve().parent / "data" / "cmrc_en.jsonl"
CLK_TCK = os.sysconf("SC_CLK_TCK")
TOOK_MS = re.compile(rb'"took_ms":\s*([0-9.eE+-]+)')


def log(msg: str) -> None:
    """Progress on stderr (stdout carries the report or the JSON)."""
    print(msg, file=sys.stderr, flush=True)


# --- questions and documents --------------------------------------------------------------------
def load_questions(path: Path) -> list[str]:
    """Every non-empty question of a SQuAD-format file, in file order."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return [
        qa["question"].strip()
        for article in data["data"]
        for para in article["paragraphs"]
        for qa in para["qas"]
        if qa.get("question", "").strip()
    ]


def ingest_text(corpus: Path, target_bytes: int, tag: str) -> str:
    """~`target_bytes` of Chinese text: the corpus files concatenated with a marker line.

    Every sentence end also carries `tag`, so no chunk or sentence of one post equals one already
    stored: the engine's chunk-hash vector cache cannot skip the embedding work.
    """
    files = sorted(p for p in corpus.rglob("*") if p.suffix.lower() in {".txt", ".md"})
    if not files:
        raise SystemExit(f"no .txt/.md files under {corpus}")
    parts: list[str] = []
    size = 0
    i = 0
    while size < target_bytes:
        text = files[i % len(files)].read_text(encoding="utf-8", errors="replace")
        text = text.replace("。", f"。〔{tag}〕")
        block = f"\n\n—— 负载测试 {tag} 第{i + 1}篇 ——\n\n{text}"
        room = target_bytes - size
        encoded = block.encode("utf-8")
        if len(encoded) > room:
            cut = encoded[:room].decode("utf-8", errors="ignore")
            block = cut[: cut.rfind("。") + 1] or cut
            encoded = block.encode("utf-8")
        parts.append(block)
        size += len(encoded)
        i += 1
        if len(encoded) == 0:
            break
    return "".join(parts).strip()


# --- a minimal HTTP/1.1 keep-alive client ---------------------------------------------------------
class HttpError(Exception):
    """A malformed response."""


class RawConnection:
    """One keep-alive HTTP/1.1 connection on asyncio streams; reconnects after any failure."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self._host_header = f"{host}:{port}"
        self.last_head = b""  # the head (status line and headers) of the last response

    async def _connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(
            self.host, self.port, limit=1 << 20
        )
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    def encode(self, method: str, path: str, body: bytes | None = None) -> bytes:
        """The request bytes (encode once, send many times)."""
        head = f"{method} {path} HTTP/1.1\r\nHost: {self._host_header}\r\n"
        if body is None:
            return (head + "\r\n").encode("ascii")
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        return head.encode("ascii") + body

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Send pre-encoded request bytes; `(status, body)`."""
        try:
            if self.writer is None:
                await self._connect()
            assert self.reader is not None and self.writer is not None
            self.writer.write(request)
            if len(request) > 65536:
                await self.writer.drain()
            head = self.last_head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            parts = lines[0].split(b" ", 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
                raise HttpError(f"bad status line {lines[0][:80]!r}")
            status = int(parts[1])
            length = None
            chunked = close = False
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
                elif name == b"connection" and b"close" in value.lower():
                    close = True
            if chunked:
                chunks = []
                while True:
                    size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    if size == 0:
                        await self.reader.readuntil(b"\r\n")
                        break
                    chunks.append(await self.reader.readexactly(size + 2))
                body = b"".join(c[:-2] for c in chunks)
            elif length is not None:
                body = await self.reader.readexactly(length)
            else:
                body = await self.reader.read(-1)
                close = True
            if close:
                self.close()
            return status, body
        except BaseException:
            self.close()
            raise


class HttpxConnection:
    """The same interface over a shared `httpx.AsyncClient` (pooled keep-alive connections)."""

    def __init__(self, client: Any, base: str) -> None:
        self.client, self.base = client, base

    def encode(
        self, method: str, path: str, body: bytes | None = None
    ) -> tuple[str, str, bytes | None]:
        return (method, self.base + path, body)

    async def send(self, request: tuple[str, str, bytes | None]) -> tuple[int, bytes]:
        method, url, body = request
        headers = {"content-type": "application/json"} if body is not None else None
        r = await self.client.request(method, url, content=body, headers=headers)
        return r.status_code, r.content

    def close(self) -> None:
        pass


# --- measurement ------------------------------------------------------------------------------
def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(-(-q * len(sorted_values) // 100)) - 1))
    return sorted_values[k]


def proc_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (uvicorn `--workers` children, multiprocessing helpers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def proc_cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes, in seconds (processes that exited count as 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        rest = fields[fields.rfind(")") + 2 :].split()
        total += int(rest[11]) + int(rest[12])  # fields 14 and 15 of proc(5)
    return total / CLK_TCK


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds of every thread of `pid`, by thread id."""
    out: dict[int, float] = {}
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
                rest = stat[stat.rfind(")") + 2 :].split()
                out[int(tid)] = (int(rest[11]) + int(rest[12])) / CLK_TCK
    return out


def self_cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return total - idle, total


@dataclass
class CpuMeter:
    """CPU used by this process and by the server tree over a window."""

    server_pid: int
    t0: float = 0.0
    client0: float = 0.0
    server0: float = 0.0
    machine0: tuple[int, int] = (0, 0)
    pids: list[int] = field(default_factory=list)
    threads0: dict[int, float] = field(default_factory=dict)

    def start(self) -> None:
        self.pids = proc_tree(self.server_pid)
        self.t0 = time.perf_counter()
        self.client0 = self_cpu_seconds()
        self.server0 = proc_cpu_seconds(self.pids)
        self.machine0 = machine_ticks()
        self.threads0 = thread_cpu_seconds(self.server_pid)

    def stop(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.t0
        client = self_cpu_seconds() - self.client0
        server = proc_cpu_seconds(self.pids) - self.server0
        busy, total = machine_ticks()
        cores = os.cpu_count() or 1
        threads = thread_cpu_seconds(self.server_pid)
        per_thread = sorted(
            (
                t - self.threads0.get(tid, 0.0)
                for tid, t in threads.items()
                if tid != self.server_pid
            ),
            reverse=True,
        )
        main_thread = threads.get(self.server_pid, 0.0) - self.threads0.get(self.server_pid, 0.0)
        d_busy, d_total = busy - self.machine0[0], total - self.machine0[1]
        return {
            "wall_s": round(wall, 3),
            "client_cpu_s": round(client, 3),
            "server_cpu_s": round(server, 3),
            "client_cpu_pct_of_core": round(100 * client / wall, 1),
            "server_cpu_pct_of_core": round(100 * server / wall, 1),
            "client_share_of_used_cpu_pct": round(100 * client / (client + server), 1)
            if client + server > 0
            else 0.0,
            "machine_busy_pct": round(100 * d_busy / d_total, 1) if d_total else 0.0,
            # CPU used by everything else on the machine (other processes: noise), % of a core.
            "other_cpu_pct_of_core": round(
                max(0.0, 100 * cores * d_busy / d_total - 100 * (client + server) / wall), 1
            )
            if d_total
            else 0.0,
            "cores": cores,
            # The server's main thread runs the event loop (HTTP parsing, routing, validation,
            # serialisation); the others are the threadpool workers and native BLAS/OpenMP threads.
            "server_main_thread_cpu_pct_of_core": round(100 * main_thread / wall, 1),
            "server_other_threads_cpu_pct_of_core": round(100 * sum(per_thread) / wall, 1),
            "server_busiest_threads_cpu_pct_of_core": [
                round(100 * t / wall, 1) for t in per_thread[:6]
            ],
            "server_threads": len(threads),
        }


@dataclass
class Samples:
    """Latencies (seconds) of successful requests, error kinds, server-reported took_ms."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    took_ms: list[float] = field(default_factory=list)

    def summary(self, window_s: float) -> dict[str, Any]:
        lat = sorted(self.latencies)
        n = len(lat) + sum(self.errors.values())
        ms = [1000 * x for x in lat]
        took = sorted(self.took_ms)
        return {
            "requests": n,
            "ok": len(lat),
            "window_s": round(window_s, 3),
            "throughput_rps": round(n / window_s, 1) if window_s > 0 else 0.0,
            "p50_ms": round(percentile(ms, 50), 2),
            "p95_ms": round(percentile(ms, 95), 2),
            "p99_ms": round(percentile(ms, 99), 2),
            "max_ms": round(ms[-1], 2) if ms else float("nan"),
            "mean_ms": round(sum(ms) / len(ms), 2) if ms else float("nan"),
            "errors": sum(self.errors.values()),
            "errors_by_kind": dict(self.errors.most_common()),
            "server_took_ms_p50": round(percentile(took, 50), 2) if took else None,
        }


async def timed(
    conn: Any, request: Any, samples: Samples | None, timeout: float
) -> tuple[int, bytes] | None:
    """Send one request; record its latency or its error kind into `samples` (if recording)."""
    t0 = time.perf_counter()
    try:
        status, body = await asyncio.wait_for(conn.send(request), timeout)
    except Exception as exc:  # every failure is a counted error kind
        if samples is not None:
            kind = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            samples.errors[kind] += 1
        return None
    dt = time.perf_counter() - t0
    if samples is not None:
        if 200 <= status < 300:
            samples.latencies.append(dt)
            m = TOOK_MS.search(body, max(0, len(body) - 64))
            if m:
                samples.took_ms.append(float(m.group(1)))
        else:
            samples.errors[f"http_{status}"] += 1
    return status, body


# --- scenarios ----------------------------------------------------------------------------------
@dataclass
class Ctx:
    """What every scenario needs."""

    args: argparse.Namespace
    port: int
    server_pid: int
    questions: list[str]

    def connections(self, n: int) -> tuple[list[Any], Callable[[], Awaitable[None]]]:
        """`n` connections of the chosen client kind, and an async closer."""
        if self.args.client == "httpx":
            import httpx

            client = httpx.AsyncClient(
                limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
                timeout=self.args.timeout,
            )
            base = f"http://{HOST}:{self.port}"

            async def close_httpx() -> None:
                await client.aclose()

            return [HttpxConnection(client, base) for _ in range(n)], close_httpx
        conns = [RawConnection(HOST, self.port) for _ in range(n)]

        async def close_raw() -> None:
            for c in conns:
                c.close()

        return conns, close_raw


def request_bodies(questions: list[str], route: str, top_k: int) -> list[bytes]:
    """JSON bodies for every question, encoded once."""
    key = "query" if route == "/v1/search" else "question"
    return [
        json.dumps({key: q, "top_k": top_k}, ensure_ascii=False).encode("utf-8") for q in questions
    ]


async def closed_loop(ctx: Ctx, route: str, clients: int, duration: float) -> dict[str, Any]:
    """`clients` closed-loop clients on `route` for warm-up + `duration` seconds."""
    args = ctx.args
    bodies = request_bodies(ctx.questions, route, args.top_k)
    conns, close = ctx.connections(clients)
    requests = [conns[0].encode("POST", route, b) for b in bodies]  # the same for every connection
    samples = Samples()
    n = len(requests)
    warm_until = time.perf_counter() + args.warmup
    end = warm_until + duration
    recording = False
    meter = CpuMeter(ctx.server_pid)

    async def client(i: int) -> None:
        conn = conns[i]
        j = (i * n) // clients  # each client starts at its own offset in the question list
        max_requests = int(duration * 20000) + 1000  # a hard bound on the loop, far above reality
        for _ in range(max_requests):
            now = time.perf_counter()
            if now >= end:
                return
            rec = samples if now >= warm_until else None
            await timed(conn, requests[j % n], rec, args.timeout)
            j += 1

    async def start_meter() -> None:
        nonlocal recording
        await asyncio.sleep(max(0.0, warm_until - time.perf_counter()))
        meter.start()
        recording = True

    try:
        await asyncio.gather(start_meter(), *(client(i) for i in range(clients)))
    finally:
        await close()
    cpu = meter.stop() if recording else {}
    window = cpu.get("wall_s", duration)
    out = {"route": route, "clients": clients, "duration_s": duration, **samples.summary(window)}
    out["cpu"] = cpu
    return out


def ingest_probe_status(status: int) -> bool:
    """The route does not exist (yet)."""
    return status in (404, 405)


async def ingest_scenario(ctx: Ctx) -> dict[str, Any]:
    """Poll /healthz every `--health-interval` s, idle first, then while documents are posted."""
    args = ctx.args
    conns, close = ctx.connections(2)
    health_conn, ingest_conn = conns
    health_req = health_conn.encode("GET", "/healthz")
    run_tag = f"{os.getpid() % 10000}"
    posts = [
        (
            f"bench-load-{run_tag}-{p}.txt",
            ingest_text(args.corpus, args.ingest_bytes, f"{run_tag}-{p}"),
        )
        for p in range(args.ingest_posts)
    ]
    out: dict[str, Any] = {
        "route": "/v1/documents",
        "posts": len(posts),
        "bytes_per_post": [len(t.encode("utf-8")) for _, t in posts],
        "chars_per_post": [len(t) for _, t in posts],
    }

    async def poll(samples: Samples, stop: asyncio.Event, limit_s: float) -> None:
        t_start = time.perf_counter()
        interval = args.health_interval
        for k in range(int(limit_s / interval) + 1):  # bounded by the time limit
            if stop.is_set():
                return
            await timed(health_conn, health_req, samples, args.timeout)
            delay = t_start + (k + 1) * interval - time.perf_counter()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)

    try:
        # Baseline: /healthz with the server idle.
        idle = Samples()
        stop = asyncio.Event()
        meter = CpuMeter(ctx.server_pid)
        meter.start()
        poller = asyncio.create_task(poll(idle, stop, args.health_idle + 5))
        await asyncio.sleep(args.health_idle)
        stop.set()
        await poller
        out["healthz_idle"] = {**idle.summary(meter.stop()["wall_s"])}

        # Does the route exist? Post the first document and look at the answer.
        busy = Samples()
        stop = asyncio.Event()
        meter = CpuMeter(ctx.server_pid)
        meter.start()
        poller = asyncio.create_task(poll(busy, stop, args.ingest_timeout * len(posts) + 5))
        results: list[dict[str, Any]] = []
        t_ingest = time.perf_counter()
        try:
            for source, text in posts:
                body = json.dumps({"source": source, "text": text}, ensure_ascii=False).encode()
                t0 = time.perf_counter()
                try:
                    resp = await asyncio.wait_for(
                        ingest_conn.send(ingest_conn.encode("POST", "/v1/documents", body)),
                        args.ingest_timeout,
                    )
                except Exception as exc:
                    results.append({"source": source, "error": type(exc).__name__})
                    continue
                status, payload = resp
                if ingest_probe_status(status):
                    out["skipped"] = (
                        f"POST /v1/documents answered {status}: the ingest route does not "
                        "exist yet, so the scenario is skipped"
                    )
                    break
                entry: dict[str, Any] = {
                    "source": source,
                    "status": status,
                    "seconds": round(time.perf_counter() - t0, 2),
                }
                with contextlib.suppress(ValueError):
                    data = json.loads(payload)
                    if isinstance(data, dict):
                        for key in ("status", "chunks", "doc_id", "error"):
                            if key in data:
                                entry["result_" + key] = data[key]
                results.append(entry)
        finally:
            stop.set()
            await poller
        ingest_s = time.perf_counter() - t_ingest
        cpu = meter.stop()
        out["results"] = results
        if "skipped" not in out:
            out["ingest_s"] = round(ingest_s, 2)
            ok = [r for r in results if 200 <= r.get("status", 0) < 300]
            out["ingest_errors"] = len(results) - len(ok)
            out["healthz_during_ingest"] = busy.summary(cpu["wall_s"])
            out["cpu"] = cpu
    finally:
        await close()
    return out


async def english_scenario(ctx: Ctx) -> dict[str, Any]:
    """English questions (the cross-lingual path: dictionary and pinyin terms) from
    `--english-clients` closed-loop clients, first with no writes, then while one client posts
    documents back to back; the issue's target is p50 during writes <= 2 x without."""
    args = ctx.args
    questions = [
        json.loads(line)["question"] for line in ENGLISH.read_text(encoding="utf-8").splitlines()
    ]
    bodies = request_bodies(questions, "/v1/search", args.top_k)
    run_tag = f"{os.getpid() % 10000}"

    async def phase(writing: bool) -> dict[str, Any]:
        conns, close = ctx.connections(args.english_clients + 1)
        writer_conn, readers = conns[0], conns[1:]
        requests = [writer_conn.encode("POST", "/v1/search", b) for b in bodies]
        samples = Samples()
        end = time.perf_counter() + args.english_duration
        posts = 0

        async def reader(i: int) -> None:
            j = i * 17
            for _ in range(int(args.english_duration * 20000) + 1000):  # bound, far above reality
                if time.perf_counter() >= end:
                    return
                await timed(readers[i], requests[j % len(requests)], samples, args.timeout)
                j += 1

        async def writer() -> None:
            nonlocal posts
            while writing and time.perf_counter() < end:
                text = ingest_text(args.corpus, 20_000, f"{run_tag}-en-{posts}")
                body = json.dumps(
                    {"source": f"bench-en-{run_tag}-{posts}.txt", "text": text},
                    ensure_ascii=False,
                ).encode()
                await writer_conn.send(writer_conn.encode("POST", "/v1/documents", body))
                posts += 1

        meter = CpuMeter(ctx.server_pid)
        meter.start()
        try:
            await asyncio.gather(writer(), *(reader(i) for i in range(len(readers))))
        finally:
            await close()
        return {**samples.summary(meter.stop()["wall_s"]), "posts": posts}

    idle = await phase(False)
    busy = await phase(True)
    ratio = busy["p50_ms"] / idle["p50_ms"] if idle["p50_ms"] else float("inf")
    return {"without_writes": idle, "during_writes": busy, "p50_ratio": round(ratio, 2)}


# --- the server ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def build_index(corpus: Path, index_dir: Path) -> float:
    """`rag ingest corpus --index-dir index_dir`; seconds taken."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "rag.cli", "ingest", str(corpus), "--index-dir", str(index_dir)]
    cmd.append("--quiet")
    log(f"building the index: {shlex.join(cmd)}")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"rag ingest failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    log(proc.stdout.strip())
    return time.perf_counter() - t0


@contextlib.contextmanager
def server(args: argparse.Namespace, index_dir: Path, log_path: Path) -> Iterator[tuple[int, int]]:
    """Start the server, wait for /readyz, yield (port, pid); always terminate it."""
    port = args.port or free_port()
    if args.server_cmd:
        cmd = shlex.split(args.server_cmd.format(host=HOST, port=port))
    else:
        cmd = [sys.executable, "-m", "rag.cli", "serve", "--host", HOST, "--port", str(port)]
        cmd += ["--workers", str(args.workers)]
    env = dict(os.environ, RAG_INDEX_DIR=str(index_dir))
    env.pop("RAG_API_KEYS", None)  # the benchmark drives an open server
    env.setdefault("HF_HUB_OFFLINE", "1")
    log(f"starting the server: {shlex.join(cmd)} (log: {log_path})")
    with log_path.open("wb") as logf:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_ready(proc, port, args.ready_timeout, log_path)
        yield port, proc.pid
    finally:
        stop_server(proc)


def wait_ready(proc: subprocess.Popen[bytes], port: int, timeout: float, log_path: Path) -> None:
    """Poll GET /readyz until 200; fail if the process exits or the time runs out."""
    t0 = time.perf_counter()
    deadline = t0 + timeout
    req = f"GET /readyz HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode()
    last = "no answer"
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise ServerFailed(f"the server exited with {proc.returncode}:\n{tail}")
        try:
            with socket.create_connection((HOST, port), timeout=2) as s:
                s.sendall(req)
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
            status = int(data.split(b" ", 2)[1])
            if status == 200:
                body = data.split(b"\r\n\r\n", 1)[1].decode(errors="replace")
                log(f"ready after {time.perf_counter() - t0:.1f} s: {body}")
                return
            last = f"status {status}"
        except (OSError, IndexError, ValueError) as exc:
            last = type(exc).__name__
        time.sleep(0.1)
    raise ServerFailed(f"the server was not ready after {timeout:.0f} s ({last})")


class ServerFailed(Exception):
    """The server did not start."""


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (it is its own session), then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


# --- report -------------------------------------------------------------------------------------
def targets(results: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Pass/fail rows against the issue's targets (None = not run or skipped)."""
    rows: list[dict[str, Any]] = []

    def row(scenario: str, target: str, value: Any, ok: bool | None) -> None:
        rows.append({"scenario": scenario, "target": target, "value": value, "pass": ok})

    s1 = results.get("search1")
    if s1:
        row(
            "search1",
            f"p50 <= {args.target_p50_ms:g} ms",
            s1["p50_ms"],
            s1["p50_ms"] <= args.target_p50_ms,
        )
    s32 = results.get("search32")
    if s32:
        row("search32", "zero errors", s32["errors"], s32["errors"] == 0)
        row(
            "search32",
            f">= {args.target_rps:g} req/s",
            s32["throughput_rps"],
            s32["throughput_rps"] >= args.target_rps,
        )
        ratio = s32["p99_ms"] / s32["p50_ms"] if s32["p50_ms"] else float("inf")
        row(
            "search32",
            f"p99 <= {args.target_tail:g} x p50",
            round(ratio, 2),
            ratio <= args.target_tail,
        )
    a32 = results.get("ask32")
    if a32:
        row(
            "ask32", "(report only)", f"{a32['throughput_rps']} req/s, p50 {a32['p50_ms']} ms", None
        )
    en = results.get("english")
    if en:
        row(
            "english",
            "p50 during writes <= 2 x",
            f"{en['during_writes']['p50_ms']} vs {en['without_writes']['p50_ms']} ms "
            f"({en['p50_ratio']}x, {en['during_writes']['posts']} posts)",
            en["p50_ratio"] <= 2.0,
        )
    ing = results.get("ingest")
    if ing:
        if "skipped" in ing:
            row("ingest", f"/healthz p99 <= {args.target_health_ms:g} ms", "skipped", None)
        else:
            h = ing["healthz_during_ingest"]
            ok = h["p99_ms"] <= args.target_health_ms and ing["ingest_errors"] == 0
            row("ingest", f"/healthz p99 <= {args.target_health_ms:g} ms", h["p99_ms"], ok)
    return rows


def print_report(results: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    cols = ("requests", "throughput_rps", "p50_ms", "p95_ms", "p99_ms", "max_ms", "errors")
    heads = ("requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors")
    print()
    print(
        f"{'scenario':26s}"
        + "".join(f"{h:>10s}" for h in heads)
        + "   client/server CPU (% of a core)"
    )
    lines: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for name in ("search1", "search32", "ask32"):
        if name in results:
            r = results[name]
            lines.append((f"{name} ({r['route']})", r, r.get("cpu", {})))
    ing = results.get("ingest")
    if ing and "healthz_idle" in ing:
        lines.append(("ingest: /healthz idle", ing["healthz_idle"], {}))
    if ing and "healthz_during_ingest" in ing:
        lines.append(("ingest: /healthz busy", ing["healthz_during_ingest"], ing.get("cpu", {})))
    for label, r, cpu in lines:
        cells = "".join(f"{r[c]!s:>10s}" for c in cols)
        cpu_s = (
            f"   {cpu['client_cpu_pct_of_core']:.0f}% / {cpu['server_cpu_pct_of_core']:.0f}%"
            f" (machine {cpu['machine_busy_pct']:.0f}% busy; other processes"
            f" {cpu['other_cpu_pct_of_core']:.0f}%)"
            if cpu
            else ""
        )
        print(f"{label:26s}{cells}{cpu_s}")
        if cpu and cpu["other_cpu_pct_of_core"] > 25:
            print(
                f"{'':26s}warning: other processes used {cpu['other_cpu_pct_of_core']:.0f}% of a"
                " core meanwhile; these figures are perturbed"
            )
        if r["errors_by_kind"]:
            print(f"{'':26s}errors by kind: {r['errors_by_kind']}")
        if r.get("server_took_ms_p50") is not None:
            print(f"{'':26s}server-side took_ms p50: {r['server_took_ms_p50']}")
    if ing:
        if "skipped" in ing:
            print(f"ingest: {ing['skipped']}")
        else:
            for r in ing["results"]:
                print(f"ingest post: {r}")
    print()
    print(f"{'scenario':12s}{'target':28s}{'measured':>34s}  result")
    for r in rows:
        verdict = {True: "PASS", False: "FAIL", None: "-"}[r["pass"]]
        print(f"{r['scenario']:12s}{r['target']:28s}{r['value']!s:>34s}  {verdict}")


# --- main ---------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)}",
    )
    p.add_argument(
        "--index-dir",
        type=Path,
        help="reuse this index (copied to a temp dir first when the ingest scenario runs)",
    )
    p.add_argument(
        "--corpus",
        type=Path,
        default=DEFAULT_CORPUS,
        help="documents to index and to post (default corpus/)",
    )
    p.add_argument(
        "--questions", type=Path, default=DEFAULT_CMRC, help="SQuAD-format question file"
    )
    p.add_argument("--clients", type=int, default=32, help="concurrent clients of search32/ask32")
    p.add_argument("--workers", type=int, default=1, help="server processes (rag serve --workers)")
    p.add_argument("--english-clients", type=int, default=4, help="English readers (english)")
    p.add_argument(
        "--english-duration", type=float, default=20.0, help="seconds of each english phase"
    )
    p.add_argument("--single-duration", type=float, default=10.0, help="seconds of search1")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of search32 and ask32")
    p.add_argument(
        "--warmup", type=float, default=2.0, help="unrecorded seconds before each load scenario"
    )
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--timeout", type=float, default=10.0, help="per-request timeout (s)")
    p.add_argument(
        "--client", choices=("raw", "httpx"), default="raw", help="load-generator HTTP client"
    )
    p.add_argument(
        "--health-interval", type=float, default=0.02, help="/healthz polling period (s)"
    )
    p.add_argument(
        "--health-idle", type=float, default=3.0, help="seconds of idle /healthz baseline"
    )
    p.add_argument("--ingest-posts", type=int, default=3)
    p.add_argument(
        "--ingest-bytes", type=int, default=200_000, help="UTF-8 bytes per posted document"
    )
    p.add_argument("--ingest-timeout", type=float, default=300.0, help="per-post timeout (s)")
    p.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    p.add_argument("--ready-timeout", type=float, default=180.0)
    p.add_argument("--server-cmd", help="custom server command; {host} and {port} are substituted")
    p.add_argument(
        "--pause-before",
        type=float,
        default=0.0,
        help="sleep this long (s) after readiness, e.g. to attach a profiler",
    )
    p.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        help="before the scenarios, wait up to this long (s) for the machine to be < 25%% busy",
    )
    p.add_argument("--keep-logs", action="store_true", help="keep the temp dir with the server log")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    p.add_argument("--target-p50-ms", type=float, default=15.0)
    p.add_argument("--target-rps", type=float, default=150.0)
    p.add_argument("--target-tail", type=float, default=3.0, help="max p99/p50 ratio")
    p.add_argument("--target-health-ms", type=float, default=50.0)
    args = p.parse_args(argv)
    args.scenario_list = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(args.scenario_list) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if args.clients < 1 or args.duration <= 0 or args.single_duration <= 0:
        p.error("--clients must be >= 1 and durations > 0")
    return args


async def run_scenarios(ctx: Ctx) -> dict[str, Any]:
    args = ctx.args
    results: dict[str, Any] = {}
    plan: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
        "search1": lambda: closed_loop(ctx, "/v1/search", 1, args.single_duration),
        "search32": lambda: closed_loop(ctx, "/v1/search", args.clients, args.duration),
        "ask32": lambda: closed_loop(ctx, "/v1/ask", args.clients, args.duration),
        "ingest": lambda: ingest_scenario(ctx),
        "english": lambda: english_scenario(ctx),
    }
    for name in SCENARIOS:
        if name in args.scenario_list:
            log(f"scenario {name} ...")
            results[name] = await plan[name]()
            r = results[name]
            if "p50_ms" in r:
                log(
                    f"  {r['requests']} requests, {r['throughput_rps']} req/s, p50 {r['p50_ms']} ms, "
                    f"p99 {r['p99_ms']} ms, errors {r['errors']}"
                )
            elif "skipped" in r:
                log(f"  {r['skipped']}")
    return results


def wait_idle(max_wait: float, busy_below: float = 25.0) -> float | None:
    """Wait (at most `max_wait` s) until the machine is < `busy_below`% busy over 2 s; last reading."""
    deadline = time.perf_counter() + max_wait
    pct = None
    while True:
        b0, t0 = machine_ticks()
        time.sleep(2.0)
        b1, t1 = machine_ticks()
        pct = 100 * (b1 - b0) / max(1, t1 - t0)
        if pct < busy_below or time.perf_counter() >= deadline:
            return pct
        log(f"machine {pct:.0f}% busy (other processes); waiting for it to calm down")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    questions = load_questions(args.questions)
    if not questions:
        raise SystemExit(f"no questions in {args.questions}")
    tmp = Path(tempfile.mkdtemp(prefix="bench_load_"))
    report: dict[str, Any] = {
        "config": {
            "scenarios": args.scenario_list,
            "clients": args.clients,
            "duration_s": args.duration,
            "single_duration_s": args.single_duration,
            "warmup_s": args.warmup,
            "client": args.client,
            "questions": len(questions),
            "question_file": str(args.questions),
            "server_cmd": args.server_cmd or "python -m rag.cli serve",
            "cores": os.cpu_count(),
        }
    }
    try:
        if args.index_dir is None:
            index_dir = tmp / "index"
            report["config"]["index_build_s"] = round(build_index(args.corpus, index_dir), 2)
        elif {"ingest", "english"} & set(
            args.scenario_list
        ):  # do not write benchmark documents into a real index
            index_dir = tmp / "index"
            shutil.copytree(args.index_dir, index_dir)
        else:
            index_dir = args.index_dir
        report["config"]["index_dir"] = str(index_dir)
        try:
            with server(args, index_dir, tmp / "server.log") as (port, pid):
                report["config"]["server_pid"] = pid
                if args.pause_before > 0:
                    log(f"server pid {pid}; pausing {args.pause_before:g} s")
                    time.sleep(args.pause_before)
                if args.wait_idle > 0:
                    pct = wait_idle(args.wait_idle)
                    report["config"]["machine_busy_before_pct"] = round(pct or 0.0, 1)
                ctx = Ctx(args=args, port=port, server_pid=pid, questions=questions)
                results = asyncio.run(run_scenarios(ctx))
        except ServerFailed as exc:
            log(f"error: {exc}")
            return 2
        except KeyboardInterrupt:
            log("interrupted; the server was stopped")
            return 130
        rows = targets(results, args)
        report["scenarios"] = results
        report["targets"] = rows
        if args.json:
            print(json.dumps(report, ensure_ascii=False, indent=2))
        else:
            print_report(results, rows)
        failed = any(r["pass"] is False for r in rows)
        return 1 if (failed and args.strict) else 0
    finally:
        if args.keep_logs:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
