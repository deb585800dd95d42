"""Extractive answers: pick the sentences of the retrieved passages that answer, cite each.

Each candidate sentence is scored by its cosine to the question, the share of the question's
IDF-weighted terms it contains, whether it holds the kind of thing asked (a number for 多少, a
date for 什么时候) and its passage's retrieval score. The best sentences (within a margin of the
top one) are composed in order, each followed by `[n]` for the passage it was quoted from.
Every citation's quote is `passage.text[start - passage.start : end - passage.start]` exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rag.answer.abstain import load_model
from rag.answer.qtype import answer_type, is_chinese, type_match
from rag.embed.base import Embedder
from rag.index.tokenize import fold
from rag.ingest.split import split_sentences
from rag.retrieve.hybrid import Hit, Query
from rag.types import Answer, Citation, Passage

NOT_FOUND_ZH = "文档中没有找到这个问题的答案。"
NOT_FOUND_EN = "The documents do not contain an answer to this question."

# Sentence score weights (dense, lexical coverage, answer type, passage rank) and selection limits.
W_DENSE, W_LEX, W_TYPE, W_PASSAGE = 0.45, 0.35, 0.10, 0.10
MARGIN = 0.85  # keep sentences scoring at least this share of the best one
MAX_SENTENCES = 3
MAX_ANSWER_CHARS = 400
PASSAGES_READ = 4


@dataclass(frozen=True)
class Candidate:
    """A sentence of a passage with its document span and score."""

    passage: int  # index into passages (marker - 1)
    start: int  # document offsets
    end: int
    text: str
    score: float


def compose_answer(
    query: Query,
    passages: Sequence[Passage],
    hits: Sequence[Hit],
    embedder: Embedder,
    *,
    idf: dict[str, float],
    floor: float,
) -> Answer:
    """Compose the cited extractive answer, or a 'not found' answer below the relevance `floor`."""
    conf = load_model().confidence(hits)
    if not passages or conf < floor:
        return Answer(
            question=query.text, answer=NOT_FOUND_ZH if is_chinese(query.text) else NOT_FOUND_EN,
            answerable=False, mode="extractive", citations=(), passages=tuple(passages), confidence=conf,
        )
    chosen = select_sentences(query, passages, hits, embedder, idf)
    parts, citations = [], []
    for c in chosen:
        marker = c.passage + 1
        parts.append(f"{c.text}[{marker}]")
        citations.append(Citation(marker=marker, chunk_id=passages[c.passage].chunk_id,
                                  source=passages[c.passage].source, start=c.start, end=c.end, quote=c.text))
    joiner = "" if is_chinese(" ".join(c.text for c in chosen)) else " "
    return Answer(question=query.text, answer=joiner.join(parts), answerable=True, mode="extractive",
                  citations=tuple(citations), passages=tuple(passages), confidence=conf)


def candidates(passages: Sequence[Passage], limit: int = PASSAGES_READ) -> list[Candidate]:
    """Distinct sentences of the first `limit` passages (a sentence shared by overlapping chunks once)."""
    out: list[Candidate] = []
    seen: set[tuple[str, int, int]] = set()
    for i, p in enumerate(passages[:limit]):
        for s in split_sentences(p.text, max_len=300):
            key = (p.doc_id, p.start + s.start, p.start + s.end)
            if key in seen or s.end - s.start < 4:
                continue
            seen.add(key)
            out.append(Candidate(i, p.start + s.start, p.start + s.end, p.text[s.start : s.end], 0.0))
    return out


def select_sentences(
    query: Query, passages: Sequence[Passage], hits: Sequence[Hit], embedder: Embedder, idf: dict[str, float]
) -> list[Candidate]:
    """Score every candidate sentence and keep the best few, in document order per passage."""
    cands = candidates(passages)
    if not cands:
        return []
    vecs = embedder.embed([c.text for c in cands], "passage")
    dense = vecs @ query.vector
    total = sum(idf.values()) or 1.0
    kind = answer_type(query.text)
    top_score = max((h.score for h in hits), default=1.0) or 1.0
    scored = []
    for c, d in zip(cands, dense, strict=True):
        folded = fold(c.text)
        lex = sum(w for t, w in idf.items() if t in folded) / total
        rank = hits[c.passage].score / top_score if c.passage < len(hits) else 0.0
        s = W_DENSE * float(d) + W_LEX * lex + W_TYPE * type_match(kind, c.text) + W_PASSAGE * rank
        scored.append(Candidate(c.passage, c.start, c.end, c.text, s))
    scored.sort(key=lambda c: -c.score)
    best = scored[0].score
    chosen, length = [], 0
    for c in scored:
        if len(chosen) >= MAX_SENTENCES or c.score < MARGIN * best:
            break
        if chosen and length + len(c.text) > MAX_ANSWER_CHARS:
            continue
        chosen.append(c)
        length += len(c.text)
    return sorted(chosen, key=lambda c: (c.passage, c.start))

