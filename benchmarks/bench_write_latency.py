"""Time from one small document's upload until it is searchable, in an index of N chunks.

Builds an index of about `--chunks` chunks from the bundled corpus (sentences shuffled per
document, so every chunk is new), with a stand-in embedder (hashed character bigrams, 512-d)
so that building takes seconds and the measurement is the index's cost, not the model's. Then it
times `ingest_bytes` of a ~1 KB document (the call returns once the document is searchable: the
new snapshot is swapped in) and checks a search finds it; repeated `--repeat` times.

Runs against whichever `rag` is first on PYTHONPATH (this branch, or another checkout), so the
same script measures before and after:

    PYTHONPATH=. python benchmarks/bench_write_latency.py --chunks 10000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.config import Settings
from rag.embed.base import Embedder, Kind, normalize
from rag.engine import Engine

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
DIM = 512


class HashEmbedder(Embedder):
    """Hashed character bigrams (a fast, model-free stand-in)."""

    name = "bench-hash-512"
    dim = DIM

    def embed_batch(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        """One vector per text."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, t in enumerate(texts):
            codes = np.frombuffer(t.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
            if len(codes) > 1:
                h = (codes[:-1] * np.uint64(1_000_003) + codes[1:]) % np.uint64(DIM)
                np.add.at(out[i], h.astype(np.int64), 1.0)
            out[i, 0] += 0.01
        return normalize(out)


def sentences() -> list[str]:
    """Every sentence of the bundled corpus."""
    text = "".join(p.read_text(encoding="utf-8") for p in sorted(CORPUS.glob("*.txt")))
    return [s for s in re.split(r"(?<=[。！？])", text.replace("\n", "")) if len(s) > 8]


def build(folder: Path, chunks: int) -> None:
    """Documents of ~20 chunks (≈ 8000 characters) until about `chunks` chunks."""
    pool = sentences()
    rng = random.Random(0)
    n_docs = max(1, chunks // 20)
    folder.mkdir(parents=True)
    for d in range(n_docs):
        picked, size = [], 0
        while size < 8000:
            s = rng.choice(pool)
            picked.append(s)
            size += len(s)
        (folder / f"doc{d:05d}.txt").write_text(f"第{d}号文件。" + "".join(picked), "utf-8")


def main() -> None:
    """Build, then time small uploads until searchable."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--chunks", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-write-"))
    build(root / "docs", args.chunks)
    settings = Settings(index_dir=root / "idx", parse_sandbox=False)
    t0 = time.perf_counter()
    engine = Engine(settings, embedder=HashEmbedder())
    engine.ingest_paths([root / "docs"])
    built = time.perf_counter() - t0
    chunks = engine.store.count_chunks()
    pool = sentences()
    times = []
    for i in range(args.repeat):
        marker = f"试验标记{hashlib.sha1(str(i).encode()).hexdigest()[:6]}"
        body = marker + "。" + "".join(random.Random(i).sample(pool, 12))
        body = body[:340]  # ~1 KB of UTF-8
        t = time.perf_counter()
        engine.ingest_bytes(f"small{i}.txt", body.encode())
        times.append(time.perf_counter() - t)
        hits = engine.search(marker, 3).passages
        assert hits and hits[0].source == f"small{i}.txt", hits
    engine.close()
    print(
        json.dumps(
            {
                "chunks": chunks,
                "build_s": round(built, 1),
                "add_until_searchable_s": [round(x, 3) for x in times],
                "median_s": round(statistics.median(times), 3),
            }
        )
    )


if __name__ == "__main__":
    main()
