"""Evaluation over a JSONL question file (format in DESIGN.md): retrieval and answer metrics.

A *hit* is a returned passage from the question's `doc` whose text contains one of its
`answers`, whitespace- and script-insensitively (`matchable`: a gold answer in simplified
characters matches a traditional document). Metrics: hit@1, hit@5, MRR@10, answer-contains (a
gold answer appears in the composed answer), abstention on unanswerable questions and false
abstention on answerable ones; overall and per `kind`.

For unanswerable questions two more (issue 13): `refused_or_caveated`, the share refused or
answered with a caveat — a `constraint_mismatch` warning (the answer says the documents give the
fact for another year, place, organisation… than the one asked) or a `low_confidence` one (the
documents may not answer this directly) — and `refused_unquoted`, the share refused without a
single citation — the only correct outcome for a `non_question` (a greeting, a lone letter or
punctuation mark). On answerable questions `caveated` is the share answered with such a warning
all the same (`low_confidence` alone: `low_confidence`).
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rag.errors import InputError
from rag.index.tokenize import fold_long
from rag.types import Answer, Passage

_WS = re.compile(r"\s+")

CONSTRAINT_MISMATCH = "constraint_mismatch"  # the warning codes of a caveated answer
LOW_CONFIDENCE = "low_confidence"
CAVEATS = (CONSTRAINT_MISMATCH, LOW_CONFIDENCE)


@dataclass(frozen=True)
class EvalQuestion:
    """One evaluation question."""

    id: str
    question: str
    answers: tuple[str, ...]
    doc: str | None
    answerable: bool
    kind: str


@dataclass(frozen=True)
class EvalRow:
    """What happened to one question."""

    id: str
    kind: str
    answerable: bool
    rank: int | None  # 1-based rank of the first hit within the top 10, else None
    contains: bool
    abstained: bool
    seconds: float
    caveated: bool = False  # a caveat warning (`CAVEATS`) came with the answer
    quoted: bool = False  # the answer cited at least one passage
    low_confidence: bool = False  # the caveat was (or included) `low_confidence`
    confidence: float = 0.0  # the answerability model's confidence


class Answerer(Protocol):
    """What the evaluator needs: `ask` returning an Answer whose passages are the top-10 ranking."""

    def ask(self, question: str, top_k: int | None = None) -> Answer:
        """Answer `question` from the top `top_k` passages."""
        ...


def load_questions(path: Path) -> list[EvalQuestion]:
    """Read a JSONL eval file; `InputError` naming the line on malformed input."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out.append(
                EvalQuestion(
                    id=str(row.get("id", n)),
                    question=str(row["question"]),
                    answers=tuple(str(a) for a in row.get("answers") or ()),
                    doc=row.get("doc"),
                    answerable=bool(row.get("answerable", True)),
                    kind=str(row.get("kind", "all")),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path}:{n}: not a valid eval line ({exc})") from exc
    if not out:
        raise InputError(f"{path}: no questions")
    return out


def squash(text: str) -> str:
    """Remove all whitespace (the matching is whitespace-insensitive)."""
    return _WS.sub("", text)


def matchable(text: str) -> str:
    """The form gold answers are matched in: whitespace removed and folded (`fold_long`:
    traditional → simplified, lower case), so a gold answer written in simplified characters is
    found in a traditional document's passage and in the answer quoting it."""
    return squash(fold_long(text))


def is_hit(p: Passage, q: EvalQuestion) -> bool:
    """A passage from the question's document that contains a gold answer."""
    if q.doc is not None and p.source != q.doc:
        return False
    text = matchable(p.text)
    return any(matchable(a) in text for a in q.answers)


def is_caveated(answer: Answer) -> bool:
    """The answer warns that the documents may not answer what was asked (`CAVEATS`)."""
    return any(w.code in CAVEATS for w in answer.warnings)


def evaluate_one(engine: Answerer, q: EvalQuestion, depth: int = 10) -> EvalRow:
    """Ask one question and judge it."""
    t0 = time.perf_counter()
    answer = engine.ask(q.question, top_k=depth)
    seconds = time.perf_counter() - t0
    rank = next((i + 1 for i, p in enumerate(answer.passages) if is_hit(p, q)), None)
    body = matchable(answer.answer)
    contains = answer.answerable and any(matchable(a) in body for a in q.answers)
    return EvalRow(
        q.id,
        q.kind,
        q.answerable,
        rank,
        contains,
        not answer.answerable,
        seconds,
        caveated=is_caveated(answer),
        quoted=bool(answer.citations),
        low_confidence=any(w.code == LOW_CONFIDENCE for w in answer.warnings),
        confidence=round(answer.confidence, 4),
    )


def summarize(rows: Iterable[EvalRow]) -> dict[str, float | int]:
    """Aggregate metrics for a set of rows."""
    rows = list(rows)
    ans = [r for r in rows if r.answerable]
    un = [r for r in rows if not r.answerable]
    out: dict[str, float | int] = {"n": len(rows), "answerable": len(ans), "unanswerable": len(un)}
    if ans:
        out["hit@1"] = sum(r.rank == 1 for r in ans) / len(ans)
        out["hit@5"] = sum(r.rank is not None and r.rank <= 5 for r in ans) / len(ans)
        out["mrr@10"] = sum(1.0 / r.rank for r in ans if r.rank) / len(ans)
        out["answer_contains"] = sum(r.contains for r in ans) / len(ans)
        out["false_abstention"] = sum(r.abstained for r in ans) / len(ans)
        out["caveated"] = sum(r.caveated and not r.abstained for r in ans) / len(ans)
        out["low_confidence"] = sum(r.low_confidence and not r.abstained for r in ans) / len(ans)
    if un:
        out["abstention"] = sum(r.abstained for r in un) / len(un)
        out["refused_or_caveated"] = sum(r.abstained or r.caveated for r in un) / len(un)
        out["refused_unquoted"] = sum(r.abstained and not r.quoted for r in un) / len(un)
    out["latency_ms_mean"] = 1000 * sum(r.seconds for r in rows) / max(1, len(rows))
    return out


def report(rows: list[EvalRow]) -> dict[str, Any]:
    """Overall metrics and metrics by kind."""
    by_kind: dict[str, list[EvalRow]] = defaultdict(list)
    for r in rows:
        by_kind[r.kind].append(r)
    return {
        "overall": summarize(rows),
        "by_kind": {k: summarize(v) for k, v in sorted(by_kind.items())},
    }


def run_eval(
    engine: Answerer, questions: list[EvalQuestion]
) -> tuple[dict[str, Any], list[EvalRow]]:
    """Evaluate every question; returns the report and the per-question rows."""
    rows = [evaluate_one(engine, q) for q in questions]
    return report(rows), rows
