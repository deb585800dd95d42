"""Closing credits outside the passages: who wrote the article an answer quotes.

An essay in a collected volume often ends with its credit (（作者：彭羽，…研究员）), several
chunks below the paragraph a question about it retrieves. `rag.answer.extractive` quotes a credit
found in the passages it reads; when a question asks who wrote something
(`rag.answer.constraints.asks_author`) and no quote is a credit line, `with_closing_credit`
reads on in the best quote's document to the first closing credit below it and cites it from the
chunk that holds it, which joins the answer's passages (every citation points at a returned
passage). The credit of *this* article is the first one below its text: each closes the article
above it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from rag.answer.constraints import asks_author, asks_photographer, credit_after
from rag.answer.qtype import is_chinese
from rag.types import Answer, ChunkSpan, Citation, Passage

_LINE = re.compile(r"[^\n]+")


def closing_credit(text: str, after: int) -> tuple[int, int] | None:
    """The span of the first line of `text` starting at or after offset `after` that closes an
    article with its credit (`credit_after` reads it as `text`), stripped of its blanks."""
    for m in _LINE.finditer(text, after):
        line = m.group(0)
        if credit_after(line) == "text":
            lead = len(line) - len(line.lstrip())
            return m.start() + lead, m.start() + len(line.rstrip())
    return None


def with_closing_credit(
    answer: Answer,
    document_text: Callable[[str], str],
    chunk_at: Callable[[str, int], ChunkSpan | None],
) -> Answer:
    """`answer`, when it answers who wrote something and no quote is a credit line, with
    the closing credit below its first quote in that quote's document, cited from the chunk
    holding it (`document_text` and `chunk_at` read the store); else `answer` unchanged."""
    question = answer.question
    if not answer.answerable or not answer.citations or not asks_author(question):
        return answer
    # only a credit line already quoted answers: a byline-like title (从张江科学城剖析…, whose 张江
    # jieba reads as a person) or a sentence naming people does not say who wrote the article
    if asks_photographer(question) or any(
        credit_after(c.quote) is not None for c in answer.citations
    ):
        return answer
    first = answer.citations[0]
    passage = answer.passages[first.marker - 1]
    span = closing_credit(document_text(passage.doc_id), first.end)
    if span is None:
        return answer
    chunk = chunk_at(passage.doc_id, span[0])
    if chunk is None or chunk.end < span[1]:
        return answer
    chunk_id = f"{chunk.doc_id}:{chunk.ord}"
    passages = list(answer.passages)
    marker = next((i + 1 for i, p in enumerate(passages) if p.chunk_id == chunk_id), None)
    if marker is None:
        passages.append(
            Passage(
                chunk_id=chunk_id,
                doc_id=chunk.doc_id,
                source=passage.source,
                title=passage.title,
                text=chunk.text,
                score=0.0,  # not retrieved: read on from the quoted article
                start=chunk.start,
                end=chunk.end,
                metadata=passage.metadata,
            )
        )
        marker = len(passages)
    cited = passages[marker - 1]
    if not cited.start <= span[0] < span[1] <= cited.end:
        return answer
    quote = cited.text[span[0] - cited.start : span[1] - cited.start]
    credit = Citation(marker, chunk_id, cited.source, span[0], span[1], quote)
    joiner = "" if is_chinese(answer.answer) else " "
    return dataclasses.replace(
        answer,
        answer=f"{answer.answer}{joiner}{quote}[{marker}]",
        citations=(*answer.citations, credit),
        passages=tuple(passages),
    )
