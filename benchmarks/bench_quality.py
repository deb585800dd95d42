"""Retrieval and answering quality on CMRC 2018 trial: this engine against simpler baselines.

The 256 CMRC contexts are the documents (ingested with the project's `Engine` into a temporary
index); each question's relevant document is its own context. A *hit* is a returned passage
from that document containing a gold answer, whitespace-insensitively (`rag.eval.is_hit`).
Every system runs in the same process with the same embedder (the configured default,
`use-multilingual`):

  ours        `engine.search(q, 20)`; answer-contains from `engine.ask(q)` (extractive: no LLM).
              Touching chunks of one document come back merged into one passage (at most 3
              chunks), so the mean passage length is printed too; "ours, touching chunks not
              merged" is the same ranking with one passage per chunk, as the peers return.
  langchain   RecursiveCharacterTextSplitter(400, overlap 50, Chinese separators) over each
              stored document text, the chunks embedded, FAISS IndexFlatIP dense search
  bm25        BM25 alone (bm25s, jieba tokens via `rag.index.tokenize`) over the project's chunks
  dense       dense alone (chunk vectors, no sentence vectors) over the project's chunks

A second pass asks every question converted to traditional Chinese (OpenCC s2t); those rows
are suffixed "(trad q)". Latency is the mean wall time of one retrieval call (query embedding
and/or tokenisation included), in ms.

    pip install -e '.[bench]'
    python benchmarks/bench_quality.py [--limit N] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import faiss
import numpy as np
import opencc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cmrc import DEFAULT_CMRC, export_cmrc

from rag.config import Settings
from rag.embed.registry import get_embedder
from rag.engine import Engine
from rag.eval import EvalQuestion, is_hit, matchable
from rag.index.segments import Hits
from rag.index.snapshot import Snapshot
from rag.index.tokenize import tokenize
from rag.retrieve.hybrid import analyse, retrieve
from rag.retrieve.lexicon import lexicon
from rag.retrieve.rerank import load_reranker
from rag.types import Passage

DEPTH = 20
SEPARATORS = ["\n\n", "\n", "。", "！", "？", "；", "，", " ", ""]

Retriever = Callable[[str], Sequence[Passage]]


def _passage(source: str, text: str, score: float, cid: str = "") -> Passage:
    return Passage(
        chunk_id=cid, doc_id="", source=source, title="", text=text, score=score, start=0, end=0
    )


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(scores))
    idx = np.argpartition(-scores, k - 1)[:k]
    return idx[np.argsort(-scores[idx], kind="stable")]


def ours(engine: Engine) -> Retriever:
    """The engine's hybrid search."""
    return lambda q: engine.search(q, DEPTH).passages


def ours_unmerged(engine: Engine) -> Retriever:
    """Our ranking without merging touching chunks: one passage per chunk, as the peers return."""
    snap = engine.snapshot
    reranker = load_reranker()

    def run(q: str) -> list[Passage]:
        lex = lexicon(snap.segments)
        hits = retrieve(snap, analyse(q, engine.embedder, lex), DEPTH, reranker=reranker)
        return [
            _passage(snap.sources[snap.doc_id(h.row)][0], snap.text(h.row), h.score) for h in hits
        ]

    return run


def _passages_of(snap: Snapshot, hits: Hits) -> list[Passage]:
    """Passages of segment hits (one per chunk)."""
    rows = snap.global_rows(hits.segments, hits.rows).tolist()
    return [
        _passage(snap.sources[snap.doc_id(r)][0], snap.text(r), float(s))
        for r, s in zip(rows, hits.scores.tolist(), strict=True)
    ]


def bm25_only(engine: Engine) -> Retriever:
    """BM25 alone over the project's chunks (segment postings over jieba tokens)."""
    snap = engine.snapshot

    def run(q: str) -> list[Passage]:
        return _passages_of(snap, snap.segments.search_lexical(tokenize(q), DEPTH))

    return run


def dense_only(engine: Engine) -> Retriever:
    """Dense alone over the project's chunk vectors."""
    snap = engine.snapshot
    emb = engine.embedder

    def run(q: str) -> list[Passage]:
        return _passages_of(snap, snap.segments.search_dense(emb.embed_query(q), DEPTH))

    return run


def langchain_style(engine: Engine) -> tuple[Retriever, int]:
    """RecursiveCharacterTextSplitter chunks of each stored document, embedded, FAISS flat IP."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=400, chunk_overlap=50, separators=SEPARATORS
    )
    sources: list[str] = []
    texts: list[str] = []
    for doc in engine.documents():
        for chunk in splitter.split_text(engine.store.document_text(doc.doc_id)):
            sources.append(doc.source)
            texts.append(chunk)
    emb = engine.embedder
    vecs = emb.embed(texts, kind="passage")
    index = faiss.IndexFlatIP(vecs.shape[1])
    index.add(vecs)

    def run(q: str) -> list[Passage]:
        scores, ids = index.search(emb.embed_query(q)[None, :].astype(np.float32), DEPTH)
        return [
            _passage(sources[i], texts[i], float(s))
            for s, i in zip(scores[0], ids[0], strict=True)
            if i >= 0
        ]

    return run, len(texts)


def measure(
    retrieve: Retriever, questions: list[EvalQuestion], ask: Engine | None = None
) -> dict[str, float | int]:
    """Hit@1/5/20, MRR@10, mean latency; answer-contains if `ask` (the engine) is given."""
    ranks: list[int | None] = []
    chars = 0
    seconds = 0.0
    contains = 0
    for q in questions:
        t0 = time.perf_counter()
        passages = retrieve(q.question)
        seconds += time.perf_counter() - t0
        ranks.append(next((i + 1 for i, p in enumerate(passages) if is_hit(p, q)), None))
        chars += sum(len(p.text) for p in passages[:5]) // max(1, len(passages[:5]))
        if ask is not None:
            answer = ask.ask(q.question)
            body = matchable(answer.answer)
            contains += answer.answerable and any(matchable(a) in body for a in q.answers)
    n = len(questions)
    out: dict[str, float | int] = {
        "n": n,
        "hit@1": sum(r == 1 for r in ranks) / n,
        "hit@5": sum(r is not None and r <= 5 for r in ranks) / n,
        "hit@20": sum(r is not None and r <= 20 for r in ranks) / n,
        "mrr@10": sum(1.0 / r for r in ranks if r is not None and r <= 10) / n,
        "latency_ms": 1000 * seconds / n,
        "passage_chars": chars / n,
    }
    if ask is not None:
        out["answer_contains"] = contains / n
    return out


def table(rows: dict[str, dict[str, float | int]]) -> str:
    """A Markdown table, one row per system."""
    cols = ["hit@1", "hit@5", "hit@20", "mrr@10", "answer_contains", "latency_ms", "passage_chars"]
    head = "| system | n | hit@1 | hit@5 | hit@20 | MRR@10 | answer-contains | latency (ms) | chars/passage |"
    lines = [head, "|" + "---|" * 9]
    for name, m in rows.items():
        cells = [
            f"{m[c]:.0f}"
            if c == "passage_chars"
            else f"{m[c]:.1f}"
            if c == "latency_ms"
            else (f"{m[c]:.3f}" if c in m else "—")
            for c in cols
        ]
        lines.append(f"| {name} | {m['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    """Build the index and the baselines, run both passes, print the table."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cmrc", type=Path, default=DEFAULT_CMRC)
    ap.add_argument("--limit", type=int, default=None, help="only the first N questions")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args()
    s2t = opencc.OpenCC("s2t")
    with tempfile.TemporaryDirectory() as tmp:
        raw = export_cmrc(args.cmrc, Path(tmp) / "docs")[: args.limit]
        questions = [
            EvalQuestion(
                id=str(r["id"]),
                question=str(r["question"]),
                answers=tuple(r["answers"]),  # type: ignore[arg-type]
                doc=str(r["doc"]),
                answerable=True,
                kind="cmrc",
            )
            for r in raw
        ]
        trad = [
            EvalQuestion(q.id, s2t.convert(q.question), q.answers, q.doc, True, "cmrc-trad")
            for q in questions
        ]
        # No LLM even if one is configured in the environment: answers are extractive.
        settings = Settings(index_dir=Path(tmp) / "index", llm_base_url=None)
        embedder = get_embedder(settings.embedder)
        t0 = time.perf_counter()
        engine = Engine(settings, embedder=embedder)
        engine.ingest_paths([Path(tmp) / "docs"])
        ingest_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        lc, lc_chunks = langchain_style(engine)
        lc_s = time.perf_counter() - t0
        systems: list[tuple[str, Retriever, Engine | None]] = [
            ("ours (hybrid)", ours(engine), engine),
            ("ours, touching chunks not merged", ours_unmerged(engine), None),
            ("(a) LangChain-style split + FAISS dense", lc, None),
            ("(b) BM25 only, our chunks", bm25_only(engine), None),
            ("(c) dense only, our chunks", dense_only(engine), None),
        ]
        for _name, run, _ in systems:  # warm up (first-call costs stay out of the latency)
            run(questions[0].question)
        rows: dict[str, dict[str, float | int]] = {}
        for suffix, qs in (("", questions), (" (trad q)", trad)):
            for name, run, ask in systems:
                rows[name + suffix] = measure(run, qs, ask)
                print(f"done: {name + suffix}", file=sys.stderr)
        meta = {
            "questions": len(questions),
            "documents": len(engine.documents()),
            "embedder": embedder.name,
            "our_chunks": len(engine.snapshot),
            "langchain_chunks": lc_chunks,
            "ingest_seconds": round(ingest_s, 1),
            "langchain_build_seconds": round(lc_s, 1),
        }
        engine.close()
    if args.json:
        print(json.dumps({"meta": meta, "systems": rows}, ensure_ascii=False, indent=2))
    else:
        print(table(rows))
        print("\n" + ", ".join(f"{k}={v}" for k, v in meta.items()))


if __name__ == "__main__":
    main()
