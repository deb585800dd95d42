"""What an embedder alone does on the dev sets: dense-only ranking and the scale of its cosines.

Over an index of the bundled corpus made with the embedder
(`RAG_EMBEDDER=NAME RAG_INDEX_DIR=DIR rag ingest corpus --quiet`), it prints:

- dense only: for the answerable questions of each dev set (and per kind), hit@1 and hit@5 of the
  chunk vectors alone (no sentence vectors, BM25, fusion or reranker): a chunk of the question's
  document holding a gold answer (`rag.eval.is_hit`), as `rag eval` counts hits;
- cosine scale: for the answerable questions of the seed and own sets, the cosine of the question
  to the best sentence of its document holding a gold answer, and to 20 sentences drawn (seeded)
  from the other documents; and the share of those unrelated pairs at or above 0.5, the
  `SUPPORT_MIN` over which an LLM sentence counts as supported by meaning (rag/answer/check.py).
  The answerability model and the reranker take raw cosines as features, fitted on USE's scale.

    python benchmarks/bench_embedders.py --embedder e5-small --index-dir /tmp/e5idx [--json]

docs/quality.md ("Embedders") has the figures for `use-multilingual` and `e5-small`.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import Settings
from rag.engine import Engine
from rag.eval import EvalQuestion, is_hit, load_questions
from rag.ingest.split import sentence_spans
from rag.types import Passage

DATA = Path(__file__).resolve().parent / "data"
DEV_SETS = ("seed_dev_qa", "own_dev_qa", "answers_dev")
SCALE_SETS = ("seed_dev_qa", "own_dev_qa")  # their `doc` names a file of corpus/
UNRELATED_PER_QUESTION = 20
SUPPORT_MIN = 0.5  # rag/answer/check.py


def _answerable(name: str) -> list[EvalQuestion]:
    return [q for q in load_questions(DATA / f"{name}.jsonl") if q.answerable]


def dense_only(engine: Engine, depth: int = 5) -> dict[str, dict[str, dict[str, float]]]:
    """hit@1 / hit@5 of the chunk vectors alone, per dev set and per kind (`all`: the set)."""
    snap = engine.snapshot
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name in DEV_SETS:
        ranks: dict[str, list[int | None]] = defaultdict(list)
        for q in _answerable(name):
            hits = snap.segments.search_dense(engine.embedder.embed_query(q.question), depth)
            rows = snap.global_rows(hits.segments, hits.rows).tolist()
            passages = [
                Passage(
                    chunk_id="",
                    doc_id="",
                    source=snap.sources[snap.doc_id(r)][0],
                    title="",
                    text=snap.text(r),
                    score=0.0,
                    start=0,
                    end=0,
                )
                for r in rows
            ]
            rank = next((i + 1 for i, p in enumerate(passages) if is_hit(p, q)), None)
            ranks["all"].append(rank)
            ranks[q.kind].append(rank)
        out[name] = {
            kind: {
                "n": len(rs),
                "hit@1": sum(r == 1 for r in rs) / len(rs),
                "hit@5": sum(r is not None for r in rs) / len(rs),
            }
            for kind, rs in ranks.items()
        }
    return out


def cosine_scale(engine: Engine, corpus: Path) -> dict[str, float]:
    """Cosines of questions to their answer sentence and to other documents' sentences."""
    rng = random.Random(0)
    texts = {p.name: p.read_text(encoding="utf-8") for p in sorted(corpus.iterdir())}
    sentences = {n: [t[a:b] for a, b in sentence_spans(t) if b - a >= 10] for n, t in texts.items()}
    emb = engine.embedder
    gold: list[float] = []
    other: list[float] = []
    for name in SCALE_SETS:
        for q in _answerable(name):
            if q.doc not in sentences or not q.answers:
                continue
            v = emb.embed_query(q.question)
            own = [s for s in sentences[q.doc] if any(a in s for a in q.answers)]
            gold.append(float((emb.embed(own or sentences[q.doc][:1]) @ v).max()))
            pool = [s for n, ss in sentences.items() if n != q.doc for s in ss]
            other += (emb.embed(rng.sample(pool, UNRELATED_PER_QUESTION)) @ v).tolist()
    g, o = np.array(gold), np.array(other)
    return {
        "questions": len(g),
        "answer_sentence_median": float(np.median(g)),
        "answer_sentence_p10": float(np.percentile(g, 10)),
        "unrelated_median": float(np.median(o)),
        "unrelated_p90": float(np.percentile(o, 90)),
        "unrelated_at_support_min": float(np.mean(o >= SUPPORT_MIN)),
    }


def main() -> None:
    """Open the index with the embedder, measure, print."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--embedder", required=True, help="as RAG_EMBEDDER; the index's own")
    ap.add_argument("--index-dir", type=Path, required=True, help="an index of --corpus")
    ap.add_argument("--corpus", type=Path, default=Path("corpus"))
    ap.add_argument("--json", action="store_true", help="print JSON")
    args = ap.parse_args()
    engine = Engine(Settings(index_dir=args.index_dir, embedder=args.embedder, llm_base_url=None))
    try:
        result: dict[str, Any] = {
            "embedder": engine.embedder.name,
            "dense_only": dense_only(engine),
            "cosine_scale": cosine_scale(engine, args.corpus),
        }
    finally:
        engine.close()
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"embedder: {result['embedder']}")
    for name, kinds in result["dense_only"].items():
        cells = ", ".join(
            f"{k} (n={m['n']}) {m['hit@1']:.3f}/{m['hit@5']:.3f}" for k, m in kinds.items()
        )
        print(f"dense only, hit@1/hit@5, {name}: {cells}")
    s = result["cosine_scale"]
    print(
        f"cosines over {s['questions']} questions: answer sentence median "
        f"{s['answer_sentence_median']:.3f} (p10 {s['answer_sentence_p10']:.3f}); other "
        f"documents' sentences median {s['unrelated_median']:.3f} (p90 {s['unrelated_p90']:.3f}); "
        f"unrelated pairs >= {SUPPORT_MIN}: {s['unrelated_at_support_min']:.3f}"
    )


if __name__ == "__main__":
    main()
