"""Every citation points at text the service returned: marker → passage, span → exact quote."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.engine import Engine
from rag.eval import load_questions

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def engine(corpus_engine: Engine) -> Engine:
    return corpus_engine


QUESTIONS = [q.question for q in load_questions(ROOT / "benchmarks" / "data" / "own_dev_qa.jsonl")]


@pytest.mark.parametrize("question", QUESTIONS[::3])
def test_citations_quote_returned_passages(engine: Engine, question: str) -> None:
    answer = engine.ask(question)
    if not answer.answerable:
        assert answer.citations == ()
        return
    assert answer.citations, "an answerable answer cites something"
    for c in answer.citations:
        assert f"[{c.marker}]" in answer.answer
        passage = answer.passages[c.marker - 1]
        assert c.chunk_id == passage.chunk_id and c.source == passage.source
        assert passage.start <= c.start < c.end <= passage.end
        assert passage.text[c.start - passage.start : c.end - passage.start] == c.quote
        # and the span points at the stored document text too
        assert engine.store.document_text(passage.doc_id)[c.start : c.end] == c.quote
