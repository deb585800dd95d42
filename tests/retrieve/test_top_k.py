"""A passage, and the answer read from it, do not depend on how many passages the caller asks
for (`rag.retrieve.search.MERGE_PASSAGES`): at top_k 5 a passage once lacked the touching chunks
ranked 11th to 20th that it had at 10, and a question the evaluation (top_k 10) found answered
was refused at the service's default."""

from __future__ import annotations

import json
from pathlib import Path

from rag.engine import Engine

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data"


def _questions() -> list[str]:
    lines = (DATA / "answers_fresh.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def test_first_passages_and_answer_are_the_same_at_any_top_k(corpus_engine: Engine) -> None:
    for q in _questions():
        wide = corpus_engine.search(q, 10).passages
        for k in (1, 3, 5):
            assert corpus_engine.search(q, k).passages == wide[:k], (q, k)
        at5, at10 = corpus_engine.ask(q, top_k=5), corpus_engine.ask(q, top_k=10)
        assert (at5.answer, at5.confidence, at5.warnings) == (
            at10.answer,
            at10.confidence,
            at10.warnings,
        ), q
