"""Answer-sentence selection: which sentences of the retrieved passages answer the question.

Every sentence of the first passages is a candidate, described by features that need no extra
model: its cosine to the question (embedded at ingest), the share of the question's IDF-weighted
terms it holds, the same share weighted by how *few* candidate sentences hold each term (the
document's name occurs in every sentence of its article and tells them apart not at all; 叶柄
occurs in one), the share of the question's character bigrams it holds (robust to word-segmentation
differences), whether it holds the kind of thing asked (a number for 多少) in the unit asked,
whether its passage states what the question states (its year, places and quantities:
`rag.answer.constraints.unstated`; 松江那座高铁站 is answered from the passage naming 松江), how
much of it is *new* relative to the question (a line that only repeats the question's words, like
a title, answers nothing), the share of the question's *focus* terms it holds (those not in the passage's document
title: 体长 in 蓝线裸顶鲷的体长是多少, where the fish's name is only the topic), how well its
neighbours match (an answer often follows the sentence that names the subject), its length, and
its passage's retrieval score — not its rank: in CMRC, where it is fitted, the answering paragraph
is nearly always first and a rank feature learnt to keep every answer in passage 1, while in a
long document neighbouring chunks score nearly alike and the answer is often in the second.

A linear score over these features, turned into a probability over the candidates by a softmax,
is fitted, not hand-weighted: `python benchmarks/train_selector.py --write` fits it with a listwise
(softmax) loss, minimised to convergence (L-BFGS), on the CMRC 2018 trial questions and 120 English
versions of them (a sentence is positive when it holds a gold answer) and writes `select.json`
beside this file; it reports held-out accuracy on paraphrased versions of the questions too. The
dev sets are never used.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rag.answer.constraints import (
    UNSTATED,
    answers_type,
    asks_rank,
    holds_unit,
    unstated,
    wanted_unit,
)
from rag.answer.gazetteer import NO_GAZETTEER, Gazetteer
from rag.answer.qtype import answer_type
from rag.index.tokenize import bigram_share, bigrams, content_chars, fold, strip_question_words
from rag.retrieve.hybrid import Hit, Query
from rag.types import Passage

SELECT_FILE = Path(__file__).with_name("select.json")
FEATURES = (
    "cosine",
    "coverage",
    "local_coverage",
    "focus_coverage",
    "previous_local_coverage",
    "next_local_coverage",
    "bigrams",
    "focus_characters",
    "type_match",
    "unit_match",
    "stated",
    "novelty",
    "log_length",
    "passage_score",
    "document_offset",
)
PASSAGES_READ = 4
_STATED = tuple(k for k in UNSTATED if k != "unit_unmatched")  # what a passage states, not asks


@dataclass(frozen=True)
class Sentence:
    """A candidate sentence: which passage it is from, its document span, text and cosine."""

    passage: int  # index into the passages (citation marker - 1)
    start: int  # document offsets
    end: int
    text: str
    cosine: float


@dataclass(frozen=True)
class Scored:
    """A candidate sentence with the selector's probability that it is the one that answers."""

    sentence: Sentence
    score: float


def candidates(passages: Sequence[Passage], hits: Sequence[Hit]) -> list[Sentence]:
    """The distinct sentences of the first `PASSAGES_READ` passages (overlapping chunks share some)."""
    seen: set[tuple[str, int]] = set()
    out: list[Sentence] = []
    for i, (p, h) in enumerate(zip(passages[:PASSAGES_READ], hits, strict=False)):
        for start, end, cos in h.sentences:
            if (p.doc_id, start) in seen:
                continue
            seen.add((p.doc_id, start))
            out.append(Sentence(i, start, end, p.text[start - p.start : end - p.start], cos))
    return out


def features(
    query: Query,
    sentences: Sequence[Sentence],
    passages: Sequence[Passage],
    hits: Sequence[Hit],
    idf: dict[str, float],
    places: Gazetteer = NO_GAZETTEER,
) -> list[dict[str, float]]:
    """The feature dict (keys `FEATURES`) of every candidate sentence (`places`: what the
    collection says lies within the question's places, `question_places`)."""
    folded = [fold(s.text) for s in sentences]
    n = len(sentences)
    holds = {t: sum(t in f for f in folded) for t in idf}
    # A term's weight for telling candidate sentences apart: its IDF times its rarity among them.
    local = {t: w * math.log((n + 1) / (holds[t] + 1)) for t, w in idf.items()}
    question = fold(query.text)
    asked = strip_question_words(question)
    q_bigrams = bigrams(asked)
    q_chars = set(content_chars(question))
    q_focus = set(content_chars(asked))
    kind = answer_type(query.text)
    unit = wanted_unit(query.text)
    rank = asks_rank(query.text)
    top = max((h.score for h in hits), default=1.0) or 1.0
    # how much of what the question states (its year, places, quantities) each passage states
    stated = {
        i: 1.0 - max(unstated(query.text, f"{p.title}\n{p.text}", "", places)[k] for k in _STATED)
        for i, p in enumerate(passages[:PASSAGES_READ])
    }

    def share(weights: dict[str, float], text: str) -> float:
        mass = sum(weights.values())
        return sum(w for t, w in weights.items() if t in text) / mass if mass > 0 else 0.0

    local_cov = [share(local, f) for f in folded]
    rows = []
    for j, (s, f) in enumerate(zip(sentences, folded, strict=True)):
        chars = content_chars(f)
        new = sum(c not in q_chars for c in chars)
        title = fold(passages[s.passage].title)
        # A question naming only what the title names is all focus (and so is one whose
        # "title" is a whole first paragraph).
        focus = {t: w for t, w in idf.items() if t not in title} or idf
        focus_chars = {c for c in q_focus if c not in title} or q_focus
        same = [k for k in (j - 1, j + 1) if 0 <= k < n and sentences[k].passage == s.passage]
        rows.append(
            {
                "cosine": s.cosine,
                "coverage": share(idf, f),
                "local_coverage": local_cov[j],
                "focus_coverage": share(focus, f),
                "previous_local_coverage": local_cov[j - 1] if j - 1 in same else 0.0,
                "next_local_coverage": local_cov[j + 1] if j + 1 in same else 0.0,
                "bigrams": bigram_share(q_bigrams, f),
                "focus_characters": (
                    sum(c in f for c in focus_chars) / len(focus_chars) if focus_chars else 0.0
                ),
                "type_match": answers_type(kind, rank, s.text),
                "unit_match": float(unit is not None and holds_unit(unit, s.text, strict=True)),
                "stated": stated[s.passage],
                "novelty": new / len(chars) if chars else 0.0,
                "log_length": math.log1p(len(chars)),
                "passage_score": hits[s.passage].score / top,
                "document_offset": math.log1p(s.start),
            }
        )
    return rows


@dataclass(frozen=True)
class Selector:
    """The fitted sentence scorer: linear weights over `FEATURES`."""

    weights: dict[str, float]

    def score(
        self,
        query: Query,
        passages: Sequence[Passage],
        hits: Sequence[Hit],
        idf: dict[str, float],
        places: Gazetteer = NO_GAZETTEER,
    ) -> list[Scored]:
        """Every candidate sentence with its probability of being the answer, best first."""
        sents = candidates(passages, hits)
        if not sents:
            return []
        rows = features(query, sents, passages, hits, idf, places)
        z = [sum(w * f[name] for name, w in self.weights.items()) for f in rows]
        top = max(z)
        e = [math.exp(v - top) for v in z]
        total = sum(e)
        scored = [Scored(s, v / total) for s, v in zip(sents, e, strict=True)]
        return sorted(scored, key=lambda c: -c.score)


@lru_cache(maxsize=1)
def load_selector(path: Path = SELECT_FILE) -> Selector:
    """The fitted selector shipped with the package."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if tuple(data["weights"]) != FEATURES:
        raise ValueError(
            f"{path}: fitted for features {list(data['weights'])}, code has {FEATURES}"
        )
    return Selector({k: float(v) for k, v in data["weights"].items()})
