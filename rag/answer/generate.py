"""LLM answers: grounded prompt → streamed reply → citations checked sentence by sentence.

Any LLM failure (timeout, HTTP error, rate limit past the retries, malformed or empty reply) ends
in the extractive answer with a warning naming the failure; the caller never sees an error.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

from rag.answer.check import CitationChecker
from rag.answer.prompt import build_messages, is_not_found, not_found_text
from rag.answer.stream import AnswerEvent, DeltaEvent, FinalEvent, PassagesEvent
from rag.embed.base import Embedder
from rag.llm.base import LLM, LLMBadResponse, LLMError, Usage
from rag.types import Answer, Warning_


def warn(answer: Answer, code: str, message: str) -> Answer:
    """`answer` with one more warning."""
    return dataclasses.replace(answer, warnings=(*answer.warnings, Warning_(code, message)))


def generate(
    llm: LLM, extractive: Answer, embedder: Embedder | None, *, drop_unsupported: bool
) -> Iterator[AnswerEvent]:
    """Stream an LLM answer over `extractive.passages`, falling back to `extractive` on failure."""
    passages = extractive.passages
    yield PassagesEvent(passages)
    checker = CitationChecker(passages, embedder, drop_unsupported=drop_unsupported)
    usage = Usage()
    raw: list[str] = []
    sent_any = False
    t0 = time.perf_counter()
    try:
        for item in llm.stream(build_messages(extractive.question, passages)):
            if isinstance(item, Usage):
                usage = item
                continue
            raw.append(item)
            for sentence in checker.feed(item):
                sent_any = True
                yield DeltaEvent(sentence)
        tail, checked = checker.finish()
        if not "".join(raw).strip():
            raise LLMBadResponse("the LLM returned an empty answer")
    except LLMError as exc:
        fallback = warn(extractive, exc.code, f"{exc}; answered extractively")
        if sent_any:  # some checked LLM text already went out: say the final answer replaces it
            fallback = warn(
                fallback,
                "llm_stream_interrupted",
                "the LLM stream broke off; the final answer is extractive",
            )
        yield FinalEvent(fallback)
        return
    llm_ms = round(1000 * (time.perf_counter() - t0), 1)
    text = "".join(raw)
    common = Answer(
        question=extractive.question,
        answer="",
        answerable=True,
        mode="llm",
        citations=(),
        passages=passages,
        confidence=extractive.confidence,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        llm_ms=llm_ms,
    )
    if is_not_found(text) and not checked.citations:
        answer = dataclasses.replace(
            common, answer=not_found_text(extractive.question), answerable=False
        )
        yield DeltaEvent(answer.answer)
        yield FinalEvent(answer)
        return
    for sentence in tail:
        yield DeltaEvent(sentence)
    ran = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "llm_ms": llm_ms,
    }
    unverified = None
    if any(s.markers for s in checked.sentences) and not any(
        s.supported for s in checked.sentences
    ):
        # Every sentence cites something, none is borne out by it (e.g. the model echoed the prompt).
        unverified = (
            "llm_unsupported",
            "no sentence of the LLM answer is supported by its citations",
        )
    elif not checked.citations or not checked.text:
        unverified = ("llm_uncited", "the LLM answer cited no retrieved passage")
    if unverified:
        # Nothing verifiable: the extractive answer is the safe one; the LLM's cost is still reported.
        fallback = warn(extractive, unverified[0], f"{unverified[1]}; answered extractively")
        yield FinalEvent(dataclasses.replace(fallback, **ran))  # type: ignore[arg-type]
        return
    warnings: tuple[Warning_, ...] = ()
    if checked.dropped_citations:
        warnings += (
            Warning_(
                "citations_dropped",
                f"{checked.dropped_citations} citation(s) pointed at no retrieved passage and were removed",
            ),
        )
    if checked.unsupported:
        verb = "removed" if drop_unsupported else "flagged"
        warnings += (
            Warning_(
                "unsupported_sentences",
                f"{len(checked.unsupported)} sentence(s) not supported by the cited passages were {verb}",
            ),
        )
    yield FinalEvent(
        dataclasses.replace(
            common,
            answer=checked.text,
            citations=tuple(checked.citations),
            passages=tuple(checked.passages),
            warnings=warnings,
            dropped_citations=checked.dropped_citations,
            unsupported_sentences=tuple(checked.unsupported),
        )
    )
