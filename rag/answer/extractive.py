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
from rag.index.tokenize import fold
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
    *,
    idf: dict[str, float],
    floor: float,
) -> Answer:
    """Compose the cited extractive answer, or a 'not found' answer below the relevance `floor`."""
    conf = load_model().confidence(hits)
    if not passages or conf < floor:
        return Answer(
            question=query.text,
            answer=NOT_FOUND_ZH if is_chinese(query.text) else NOT_FOUND_EN,
            answerable=False,
            mode="extractive",
            citations=(),
            passages=tuple(passages),
            confidence=conf,
        )
    chosen = select_sentences(query, passages, hits, idf)
    parts, citations = [], []
    for c in chosen:
        marker = c.passage + 1
        parts.append(f"{c.text}[{marker}]")
        citations.append(
            Citation(
                marker=marker,
                chunk_id=passages[c.passage].chunk_id,
                source=passages[c.passage].source,
                start=c.start,
                end=c.end,
                quote=c.text,
            )
        )
    joiner = "" if is_chinese(" ".join(c.text for c in chosen)) else " "
    return Answer(
        question=query.text,
        answer=joiner.join(parts),
        answerable=True,
        mode="extractive",
        citations=tuple(citations),
        passages=tuple(passages),
        confidence=conf,
    )


def select_sentences(
    query: Query, passages: Sequence[Passage], hits: Sequence[Hit], idf: dict[str, float]
) -> list[Candidate]:
    """Score the sentences of the first passages and keep the best few, in passage/document order.

    Sentence cosines come with the hits (embedded at ingest), so answering embeds nothing.
    """
    total = sum(idf.values()) or 1.0
    kind = answer_type(query.text)
    top_score = max((h.score for h in hits), default=1.0) or 1.0
    seen: set[tuple[str, int]] = set()
    scored: list[Candidate] = []
    for i, (p, h) in enumerate(zip(passages[:PASSAGES_READ], hits, strict=False)):
        for start, end, cos in h.sentences:
            if (p.doc_id, start) in seen:  # overlapping chunks share sentences
                continue
            seen.add((p.doc_id, start))
            text = p.text[start - p.start : end - p.start]
            folded = fold(text)
            lex = sum(w for t, w in idf.items() if t in folded) / total
            s = (
                W_DENSE * cos
                + W_LEX * lex
                + W_TYPE * type_match(kind, text)
                + W_PASSAGE * h.score / top_score
            )
            scored.append(Candidate(i, start, end, text, s))
    if not scored:
        return []
    scored.sort(key=lambda c: -c.score)
    best = scored[0].score
    chosen: list[Candidate] = []
    length = 0
    for c in scored:
        if len(chosen) >= MAX_SENTENCES or c.score < MARGIN * best:
            break
        if chosen and length + len(c.text) > MAX_ANSWER_CHARS:
            continue
        chosen.append(c)
        length += len(c.text)
    return sorted(chosen, key=lambda c: (c.passage, c.start))
