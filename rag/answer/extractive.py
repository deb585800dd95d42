"""Extractive answers: pick the sentences of the retrieved passages that answer, cite each.

The fitted selector (`rag.answer.select`) gives each candidate sentence a probability of being
the answering one. The answer takes the most probable sentences until they hold `ANSWER_MASS` of
that probability (at most `MAX_SENTENCES`), in passage and document order; a sentence whose folded
text is already taken (from another copy of the article) is skipped. Sentences that touch in the
document become one quote, each quote followed by `[n]` for the passage it came from. Every
citation's quote is `passage.text[start - passage.start : end - passage.start]` exactly.

A question asking who took a photo or wrote or proposed something
(`rag.answer.constraints.asks_photographer`, `asks_author`) also quotes the line crediting the best
sentence: the credit under a photo's caption or an article's last paragraph, or the byline above a
section (`_credited`). A credit shares no words with the question, so no overlap or meaning
feature ranks it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rag.answer.abstain import load_model
from rag.answer.constraints import asks_author, asks_photographer, credit_after, names_author
from rag.answer.gazetteer import NO_GAZETTEER, Gazetteer
from rag.answer.qtype import is_chinese
from rag.answer.select import Scored, Sentence, load_selector
from rag.ingest.dedup import fold_text
from rag.ingest.pages import page_at
from rag.retrieve.hybrid import Hit, Query
from rag.types import Answer, Citation, Passage

NOT_FOUND_ZH = "文档中没有找到这个问题的答案。"
NOT_FOUND_EN = "The documents do not contain an answer to this question."

ANSWER_MASS = 0.8  # take sentences until they hold this share of the selector's probability
MAX_SENTENCES = 3
MAX_ANSWER_CHARS = 400
PHOTO_CREDIT_GAP = 2  # a photo's credit is the line under its caption, or the one after


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
    places: Gazetteer = NO_GAZETTEER,
) -> Answer:
    """Compose the cited extractive answer, or a 'not found' answer below the relevance `floor`
    (`places`: what the collection says lies within the question's places, `question_places`)."""
    scored = load_selector().score(query, passages, hits, idf, places)
    conf = load_model().confidence(query.text, hits, scored, passages, places)
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
    chosen = select_sentences(query, passages, hits, idf, scored=scored)
    parts, citations = [], []
    for c in chosen:
        marker = c.passage + 1
        p = passages[c.passage]
        parts.append(f"{c.text}[{marker}]")
        citations.append(
            Citation(
                marker=marker,
                chunk_id=p.chunk_id,
                source=p.source,
                start=c.start,
                end=c.end,
                quote=c.text,
                page=page_at(p.page_spans, c.start),
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
    query: Query,
    passages: Sequence[Passage],
    hits: Sequence[Hit],
    idf: dict[str, float],
    *,
    scored: Sequence[Scored] | None = None,
) -> list[Candidate]:
    """The answering sentences, in passage/document order, touching ones merged into one quote.

    Sentence cosines come with the hits (embedded at ingest), so answering embeds nothing;
    `scored` is the selector's output when the caller already has it.
    """
    if scored is None:
        scored = load_selector().score(query, passages, hits, idf)
    chosen: list[Candidate] = []
    seen: set[str] = set()  # folded texts chosen: a sentence two copies share is quoted once
    mass, length = 0.0, 0
    for c in scored:
        if len(chosen) >= MAX_SENTENCES or mass >= ANSWER_MASS:
            break
        s = c.sentence
        if chosen and length + len(s.text) > MAX_ANSWER_CHARS:
            continue
        folded = fold_text(s.text)
        if folded in seen:
            continue
        seen.add(folded)
        chosen.append(Candidate(s.passage, s.start, s.end, s.text, c.score))
        mass += c.score
        length += len(s.text)
    chosen = _credited(query.text, scored, chosen)
    return _merge(sorted(chosen, key=lambda c: (c.passage, c.start)), passages)


def _credited(question: str, scored: Sequence[Scored], chosen: list[Candidate]) -> list[Candidate]:
    """`chosen`, for a question asking who took a photo or wrote something, with the line that
    credits the best sentence. A credit line shares no words with the question, so the selector
    never ranks it for what it is; its place says what it credits:

    - a credit *under* the best sentence, the nearest of the kind asked in its passage
      (`credit_after`): a photo's under its caption (图③:… then 肖本祥摄), an article's closing
      one (（作者：…）); other credits of that kind the selector chose credit other captions and
      are dropped (the credit above 图③ is 图②'s);
    - else, for who wrote or proposed (`asks_author`) when no chosen sentence names anyone, the
      byline *above* it: the nearest line before it, in its passage, naming a person or an
      organisation (a proposal's 民进杭州市委会 under its title).
    """
    if not scored:
        return chosen
    photo = asks_photographer(question)
    if not photo and not asks_author(question):
        return chosen
    top = scored[0].sentence
    kind = "photo" if photo else "text"
    s = _credit_under(scored, kind)
    if s is not None:
        kept = [c for c in chosen if credit_after(c.text) != kind]
        return [*kept, Candidate(s.passage, s.start, s.end, s.text, 0.0)]
    if photo or any(names_author(c.text, besides=question) for c in chosen):
        return chosen
    above = [
        c.sentence
        for c in scored
        if c.sentence.passage == top.passage
        and c.sentence.start < top.start
        and names_author(c.sentence.text, besides=question)
    ]
    if not above:
        return chosen
    s = max(above, key=lambda x: x.start)
    return [*chosen, Candidate(s.passage, s.start, s.end, s.text, 0.0)]


def _credit_under(scored: Sequence[Scored], kind: str) -> Sentence | None:
    """The credit line of `kind` under the best sentence that has one: for an article's closing
    credit, the nearest under the best sentence in its passage; for a photo's, the line right
    under a caption (`PHOTO_CREDIT_GAP`), the caption being the best chosen sentence that has
    one (an English question's best sentence is often a neighbour of the caption it asks of)."""
    order = sorted((c.sentence for c in scored), key=lambda x: (x.passage, x.start))
    heads = (
        [c.sentence for c in scored[:MAX_SENTENCES]] if kind == "photo" else [scored[0].sentence]
    )
    for head in heads:
        after = [x for x in order if x.passage == head.passage and x.start > head.start]
        if kind == "photo":
            after = after[:PHOTO_CREDIT_GAP]
        found = next((x for x in after if credit_after(x.text) == kind), None)
        if found is not None:
            return found
    return None


def _merge(chosen: list[Candidate], passages: Sequence[Passage]) -> list[Candidate]:
    """Join sentences of one passage that only whitespace separates into one quote."""
    out: list[Candidate] = []
    for c in chosen:
        prev = out[-1] if out else None
        if prev is not None and prev.passage == c.passage and c.start >= prev.end:
            p = passages[c.passage]
            between = p.text[prev.end - p.start : c.start - p.start]
            if not between.strip():
                text = p.text[prev.start - p.start : c.end - p.start]
                out[-1] = Candidate(c.passage, prev.start, c.end, text, prev.score + c.score)
                continue
        out.append(c)
    return out
