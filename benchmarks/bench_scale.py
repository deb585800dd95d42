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
* **peak RSS** of the measuring process and **size on disk** of the index (SQLite + segments).

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
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
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

from rag.config import Settings  # noqa: E402

CMRC = ROOT / "benchmarks" / "data" / "cmrc2018" / "cmrc2018_trial.json"
CORPUS = ROOT / "corpus"
DOC_CHUNKS = 10  # chunks per synthetic document
SENTENCES = 4  # real sentences drawn at random make one synthetic chunk (~250 characters)
NEW_DOC = (
    "滨江数据港位于示范区东侧，2024年引进企业一百二十家，算力规模达到三千PFlops。"
    "数据港设立了公共算力调度中心，为中小企业提供按需租用的算力服务。"
    "园区计划在2026年前建成三座绿色数据中心，年用电量中可再生能源占比超过六成。"
) * 3  # ~1 KB of UTF-8 text, four or five chunks


def settings(index_dir: Path) -> Settings:
    """Benchmark settings: parsing in-process (the sandbox's worker start is not index cost)."""
    return Settings(index_dir=index_dir, parse_sandbox=False, rerank=True)


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


def measure(index_dir: Path, seconds: float) -> dict[str, Any]:
    """Open, add, delete, search and recall figures over the index at `index_dir`."""
    from threadpoolctl import threadpool_limits

    from rag.engine import Engine, Upload

    threadpool_limits(1, user_api="blas")  # as `rag serve` does
    engine, second_open = timed(lambda: Engine(settings(index_dir)))
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
    segments = engine.snapshot.segments
    recalls = []
    for q in qs[:200]:
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


def row(n: int, f: dict[str, Any], m: dict[str, Any], disk: float) -> str:
    """One line of the results table."""
    return (
        f"| {n:>9,} | {m['add_s'] * 1000:7.0f} ms | {m['delete_s'] * 1000:6.0f} ms | "
        f"{m['search_p50_ms']:5.1f} / {m['search_p95_ms']:5.1f} ms | {m['rps_32']:5.0f} | "
        f"{m['peak_rss_mib']:6.0f} MiB ({m['anon_mib']:.0f} anon + {m['mapped_mib']:.0f} "
        f"mapped) | {disk:7.0f} MiB | {m['recall_at_10']:.3f} | "
        f"{m['segments']} ({m['hnsw_segments']} HNSW) | {f['build_s']:6.1f} s, "
        f"{f['build_rss_mib']:5.0f} MiB | {m['open_s']:4.1f} s |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sizes asked for and print the table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--seconds", type=float, default=15.0, help="of the 32-thread run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", type=Path, help="keep the indexes under this folder")
    p.add_argument(
        "--reuse-fill",
        action="store_true",
        help="with --keep: reuse a filled store found there (its segment files are removed, so "
        "the build is still measured from SQLite)",
    )
    p.add_argument("--phase", choices=["fill", "build", "measure"], help=argparse.SUPPRESS)
    p.add_argument("--index-dir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.phase == "fill":
        print(json.dumps(fill(args.index_dir, args.sizes[0], args.seed)))
        return 0
    if args.phase == "build":
        print(json.dumps(build(args.index_dir)))
        return 0
    if args.phase == "measure":
        print(json.dumps(measure(args.index_dir, args.seconds)))
        return 0
    print(
        "chunks of four real sentences drawn at random; sentences, questions and the added "
        "document embedded by the default embedder, a chunk's vector the normalised sum of its "
        "sentences' (a stand-in: index cost is measured, not the model's)",
        file=sys.stderr,
    )
    results = []
    root = args.keep or Path(tempfile.mkdtemp(prefix="rag-scale-"))
    lines = [
        "| chunks | add until searchable | delete | search p50 / p95 | req/s (32 threads) | "
        "peak RSS serving (now: anonymous + mapped segment pages) | on disk | dense recall@10 | segments | build (first open), its peak RSS | open |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
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
            f |= child(["--phase", "build", "--index-dir", str(index_dir)])
            m = child(
                [
                    "--phase",
                    "measure",
                    "--index-dir",
                    str(index_dir),
                    "--seconds",
                    str(args.seconds),
                ]
            )
            disk = disk_mib(index_dir)
            results.append({"chunks": n, "fill": f, "measure": m, "disk_mib": disk})
            lines.append(row(n, f, m, disk))
            print(lines[-1], file=sys.stderr, flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print("\n".join(lines))
        for r in results:
            ok = r["measure"]["add_found"] and r["measure"]["delete_gone"]
            print(
                f"{r['chunks']:,} chunks: filled in {r['fill']['fill_s']:.0f} s; after the "
                f"build, {r['fill']['merges']} merges took {r['fill']['merge_s']:.0f} s (peak RSS "
                f"{r['fill']['merge_rss_mib']:.0f} MiB); "
                f"added document found {r['measure']['add_found']}, deleted one gone "
                f"{r['measure']['delete_gone']}; the first write after opening took "
                f"{r['measure']['first_write_s']:.1f} s{'' if ok else '  <-- FAILED'}"
            )
    return (
        0 if all(r["measure"]["add_found"] and r["measure"]["delete_gone"] for r in results) else 1
    )


if __name__ == "__main__":
    sys.exit(main())
