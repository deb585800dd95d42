"""Touching chunks of one document come back as one passage of exact document text."""

from __future__ import annotations

import pytest

from rag.engine import Engine

QUESTIONS = [
    "长三角G60科创走廊九城市今年新开工项目总投资多少？",
    "上海港有哪些绿色航运走廊？",
    "What did the G60 corridor open with the China-Arab center?",
    "应届毕业生最喜欢在哪里租房？",
]


@pytest.mark.parametrize("question", QUESTIONS)
def test_passages_are_exact_document_text_and_never_overlap(
    corpus_engine: Engine, question: str
) -> None:
    passages = corpus_engine.search(question, 10).passages
    assert len(passages) == min(10, len(corpus_engine.snapshot))
    for p in passages:
        text = corpus_engine.store.document_text(p.doc_id)
        assert text[p.start : p.end] == p.text
    for i, a in enumerate(passages):
        for b in passages[i + 1 :]:
            if a.doc_id == b.doc_id:  # apart, not even touching: else they would be one passage
                assert a.end < b.start or b.end < a.start


def test_a_merged_passage_is_cited_within_its_span(corpus_engine: Engine) -> None:
    answer = corpus_engine.ask(QUESTIONS[0])
    spans = {p.chunk_id: p for p in answer.passages}
    for c in answer.citations:
        p = answer.passages[c.marker - 1]
        assert p.chunk_id in spans and p.start <= c.start < c.end <= p.end
        assert p.text[c.start - p.start : c.end - p.start] == c.quote
