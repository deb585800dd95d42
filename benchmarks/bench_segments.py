"""Micro-benchmark of the segment core (rag/index/segment.py, segments.py) on synthetic data.

Rows: token ids drawn from a Zipf vocabulary (200k terms, ~80 tokens a row), 512-d clustered unit
vectors, a few float16 sentence vectors per row, ~300-character texts. Measures build / save /
load time and memory (RSS: anonymous vs file-backed, i.e. mapped segment files), size on disk,
single-query BM25 and dense latency (p50/p95) over one segment vs the same rows in 10 segments,
with tombstones and with a filter, and HNSW recall@10 against exact search.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_segments.py               # 100k rows
    PYTHONPATH=. .venv/bin/python benchmarks/bench_segments.py --rows 1000000 --sentences-per-row 2

(1M rows × 8 sentences × 512 dims × 2 bytes would be 8 GB of sentence vectors: pass a smaller
--sentences-per-row there.)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from rag.index.bm25 import EncodedTokens
from rag.index.segment import HNSW_EF_SEARCH, HNSW_M, Segment, SegmentRows
from rag.index.segments import SegmentSet

MB = 1 << 20


def status() -> dict[str, float]:
    """RSS figures of this process from /proc (MB)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) / 1024
    return out


_PEAK = [0.0]  # the highest VmHWM seen before a reset


def reset_peak() -> None:
    """Reset VmHWM (peak RSS) so the next phase's peak is its own (Linux ≥ 4.0)."""
    _PEAK[0] = max(_PEAK[0], status()["VmHWM"])
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def mem(label: str) -> None:
    s = status()
    print(
        f"  {label:<34} RSS {s['VmRSS']:8.0f} MB (anon {s['RssAnon']:7.0f}, file {s['RssFile']:7.0f})"
        f"  peak {s['VmHWM']:8.0f} MB"
    )


@contextlib.contextmanager
def timed(label: str) -> Iterator[None]:
    """Print the wall time of the block, then memory (peak: this block's own)."""
    reset_peak()
    t = time.perf_counter()
    yield
    print(f"{label:<36} {time.perf_counter() - t:8.2f} s")
    mem("after")


def zipf_tokens(rng: np.random.Generator, n: int, vocab: int, per_row: int) -> EncodedTokens:
    """Token ids with Zipf (s=1) frequencies over `vocab` terms; row lengths Poisson(per_row)."""
    lens = rng.poisson(per_row, n).astype(np.int64)
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=ptr[1:])
    cdf = np.cumsum(1.0 / np.arange(1, vocab + 1))
    cdf /= cdf[-1]
    ids = np.empty(int(ptr[-1]), dtype=np.int32)
    for lo in range(0, len(ids), 1 << 24):
        hi = min(lo + (1 << 24), len(ids))
        ids[lo:hi] = np.searchsorted(cdf, rng.random(hi - lo))
    return EncodedTokens(terms=[f"t{i}" for i in range(vocab)], ids=ids, ptr=ptr)


def clustered(
    rng: np.random.Generator, n: int, dim: int, centres: np.ndarray, dtype: type
) -> np.ndarray:
    """Unit vectors around gaussian centres (spread 2.0: cosine to the centre ≈ 0.45)."""
    out = np.empty((n, dim), dtype=dtype)
    for lo in range(0, n, 65536):
        hi = min(lo + 65536, n)
        x = centres[rng.integers(0, len(centres), hi - lo)]
        x = x + 2.0 * rng.standard_normal((hi - lo, dim)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[lo:hi] = x
    return out


def make_rows(args: argparse.Namespace, rng: np.random.Generator) -> SegmentRows:
    n, dim = args.rows, args.dim
    centres = rng.standard_normal((1000, dim)).astype(
        np.float32
    )  # rng's first draw: see search_phase
    tokens = zipf_tokens(rng, n, args.vocab, args.tokens_per_row)
    pool = "".join(chr(c) for c in rng.integers(0x4E00, 0x9FA5, 1 << 20))
    starts = rng.integers(0, len(pool) - 400, n)
    texts = [pool[s : s + 300] for s in starts.tolist()]
    m = n * args.sentences_per_row
    owner = np.repeat(np.arange(n, dtype=np.int64), args.sentences_per_row)
    rows = SegmentRows(
        chunk_ids=np.arange(1, n + 1, dtype=np.int64),
        doc_ids=[f"doc{i // 20}" for i in range(n)],
        ords=np.arange(n, dtype=np.int64) % 20,
        starts=np.zeros(n, np.int64),
        ends=np.full(n, 300, np.int64),
        texts=texts,
        tokens=tokens,
        vectors=clustered(rng, n, dim, centres, np.float32),
        sent_vectors=clustered(rng, m, dim, centres, np.float16),
        sent_owner=owner,
        sent_starts=np.zeros(m, np.int64),
        sent_ends=np.ones(m, np.int64),
    )
    return rows


def slice_rows(rows: SegmentRows, lo: int, hi: int) -> SegmentRows:
    """Rows [lo, hi) as their own `SegmentRows` (token ids shared, vocabulary compacted on build)."""
    t = rows.tokens
    assert isinstance(t, EncodedTokens)
    s0, s1 = np.searchsorted(rows.sent_owner, [lo, hi])
    return SegmentRows(
        chunk_ids=rows.chunk_ids[lo:hi],
        doc_ids=rows.doc_ids[lo:hi],
        ords=rows.ords[lo:hi],
        starts=rows.starts[lo:hi],
        ends=rows.ends[lo:hi],
        texts=rows.texts[lo:hi],
        tokens=EncodedTokens(t.terms, t.ids[t.ptr[lo] : t.ptr[hi]], t.ptr[lo : hi + 1] - t.ptr[lo]),
        vectors=rows.vectors[lo:hi],
        sent_vectors=rows.sent_vectors[s0:s1],
        sent_owner=rows.sent_owner[s0:s1] - lo,
        sent_starts=rows.sent_starts[s0:s1],
        sent_ends=rows.sent_ends[s0:s1],
    )


def latency(fn: Callable[[int], object], count: int) -> str:
    fn(0)  # warm-up: vocabularies decoded, pages touched
    times = []
    for i in range(count):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    ms = np.array(times) * 1e3
    return f"p50 {np.percentile(ms, 50):7.2f} ms  p95 {np.percentile(ms, 95):7.2f} ms"


def queries_bm25(rng: np.random.Generator, vocab: int, count: int) -> list[list[str]]:
    """3-6 terms a query: half from the 2k most common terms, half from the rest."""
    out = []
    for _ in range(count):
        k = int(rng.integers(3, 7))
        common = rng.integers(0, 2000, k // 2)
        rare = rng.integers(2000, vocab, k - k // 2)
        out.append([f"t{i}" for i in np.concatenate([common, rare]).tolist()])
    return out


def bench_set(label: str, sset: SegmentSet, qv: np.ndarray, qt: list[list[str]], k: int) -> None:
    print(
        f"{label}: {len(sset.entries)} segment(s), {len(sset)} live rows, "
        f"{sum(e.segment.is_hnsw for e in sset.entries)} HNSW"
    )
    n = len(qt)
    print(f"  BM25 top-{k}             {latency(lambda i: sset.search_lexical(qt[i], k), n)}")
    print(f"  dense top-{k}            {latency(lambda i: sset.search_dense(qv[i], k), n)}")
    print(
        f"  dense top-{k} exact      {latency(lambda i: sset.search_dense(qv[i], k, exact=True), min(n, 50))}"
    )
    masks = [np.asarray(e.segment.doc_idx % 10 == 0) for e in sset.entries]
    print(
        f"  BM25 top-{k}, 10% filter {latency(lambda i: sset.search_lexical(qt[i], k, masks), n)}"
    )
    print(f"  dense top-{k}, 10% filter{latency(lambda i: sset.search_dense(qv[i], k, masks), n)}")


def recall_at_10(sset: SegmentSet, qv: np.ndarray) -> float:
    found = 0
    for q in qv:
        got = sset.search_dense(q, 10).chunk_ids
        want = sset.search_dense(q, 10, exact=True).chunk_ids
        found += len(set(got.tolist()) & set(want.tolist()))
    return found / (10 * len(qv))


def disk(path: Path) -> float:
    return sum(p.stat().st_size for p in path.glob("*")) / MB


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--segments", type=int, default=10)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--vocab", type=int, default=200_000)
    ap.add_argument("--tokens-per-row", type=int, default=80)
    ap.add_argument("--sentences-per-row", type=int, default=8)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=50, help="hits per search (the engine's candidates)")
    ap.add_argument("--dir", type=Path, default=None, help="where to save (default: a temp dir)")
    ap.add_argument("--search-only", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.search_only is not None:
        search_phase(args, args.search_only)
        return
    rng = np.random.default_rng(0)
    root = args.dir or Path(tempfile.mkdtemp(prefix="bench_segments_"))
    root.mkdir(parents=True, exist_ok=True)
    print(
        f"{args.rows} rows, {args.dim}-d, {args.sentences_per_row} sentences/row, vocab {args.vocab}, "
        f"~{args.tokens_per_row} tokens/row; HNSW M={HNSW_M}, efSearch={HNSW_EF_SEARCH}; dir {root}"
    )
    mem("start")
    with timed("generate data"):
        rows = make_rows(args, rng)

    with timed(f"build 1 segment of {args.rows}"):
        one = Segment.build(rows, args.dim)
    one_dir = root / "one"
    one_dir.mkdir(exist_ok=True)
    with timed("save it"):
        SegmentSet().with_added(one, "all").save(one_dir, 1)
    print(f"  on disk {disk(one_dir):9.0f} MB")
    del one
    per = -(-args.rows // args.segments)
    with timed(f"build {args.segments} segments of {per}"):
        parts = [
            Segment.build(slice_rows(rows, lo, min(lo + per, args.rows)), args.dim)
            for lo in range(0, args.rows, per)
        ]
    many = SegmentSet()
    for i, seg in enumerate(parts):
        many = many.with_added(seg, f"p{i}")
    many_dir = root / "many"
    many_dir.mkdir(exist_ok=True)
    with timed("save them"):
        many.save(many_dir, 1)
    print(f"  on disk {disk(many_dir):9.0f} MB")
    del rows, parts, many, seg
    # searching runs in a fresh process: its RSS is the loaded (mapped) segments', not the build's
    print(f"peak RSS of the build process: {peak_rss():.0f} MB")
    cmd = [sys.executable, __file__, "--search-only", str(root), *sys.argv[1:]]
    subprocess.run(cmd, check=True)
    if args.dir is None:
        shutil.rmtree(root)


def search_phase(args: argparse.Namespace, root: Path) -> None:
    """Load the saved sets (memory-mapped) and time searches over them."""
    rng = np.random.default_rng(1)
    # the build's centres (its generator's first draw), so queries look like the data
    centres = np.random.default_rng(0).standard_normal((1000, args.dim)).astype(np.float32)
    qv = clustered(rng, args.queries, args.dim, centres, np.float32)
    qt = queries_bm25(rng, args.vocab, args.queries)
    # as `rag serve` does: one BLAS thread per product (requests already use the cores; a second
    # thread per small product only spins, and under load costs 10-100x)
    threadpool_limits(1, user_api="blas")
    print(f"--- search process (pid {os.getpid()}), BLAS limited to 1 thread as in `rag serve`")
    mem("start")
    with timed("load 1 segment (verify + map)"):
        one_set = SegmentSet.load(root / "one", 1)
    with timed(f"load {args.segments} segments (verify + map)"):
        many_set = SegmentSet.load(root / "many", 1)
    reset_peak()
    bench_set("one segment", one_set, qv, qt, args.k)
    mem("after searching it")
    bench_set(f"{args.segments} segments", many_set, qv, qt, args.k)
    mem("after searching them")
    dead = np.random.default_rng(1).choice(
        np.arange(1, args.rows + 1), args.rows // 100, replace=False
    )
    bench_set(
        f"{args.segments} segments, 1% tombstoned", many_set.with_deleted(dead), qv, qt, args.k
    )
    print(f"recall@10 (approx vs exact), one segment:  {recall_at_10(one_set, qv[:100]):.4f}")
    print(
        f"recall@10 (approx vs exact), {args.segments} segments: {recall_at_10(many_set, qv[:100]):.4f}"
    )
    with timed(f"merge 2 of the {args.segments} segments"):
        merged = many_set.merged_segment(many_set.seg_ids[:2])
    print(f"  ({len(merged)} rows, {'HNSW' if merged.is_hnsw else 'flat'})")
    print(f"peak RSS of the search process: {peak_rss():.0f} MB")


def peak_rss() -> float:
    """Peak RSS of this process (VmHWM, not ru_maxrss: that one survives exec from the parent)."""
    return max(_PEAK[0], status()["VmHWM"])


if __name__ == "__main__":
    main()
