"""Answerability: how likely it is that the retrieved passages answer the question (0..1).

The answer it decides is graded: below the refusal floor (0.5, `RAG_RELEVANCE_FLOOR`) "not found";
from there to the fitted `confident_floor` a cited answer with a `low_confidence` warning
(`caveat`: the documents may not answer this directly, the closest quote is given); above it a
cited answer.

One logistic model over signals of the first passages the answer reads (`PASSAGES_READ`) and of
the sentence the selector picks, so that a question whose meaning matches a sentence is answered
even when its words do not (a paraphrase, an English question over Chinese text):

- `dense`: the best blended (chunk and best sentence) cosine to the question;
- `sentence`: the best single sentence's cosine to the question (sentences embedded at ingest);
- `selected`: the selector's probability for the sentence it picks (how clearly one sentence
  answers, against its neighbours);
- `selected_cosine`: that sentence's cosine to the question;
- `type_missing`: 1 when the question asks for a number, a time or a rank (第几) and the picked
  sentence holds none;
- `coverage`: the largest share of the question's IDF-weighted evidence terms (its own matchable
  words and their translations) one passage holds; `picked_coverage`: the share the picked
  sentence's passage holds;
- `evidence`: the share of the question's own IDF mass that can match the collection at all (an
  English question over Chinese text matches little more than its numbers, so its low coverage
  says less); `sentence_unmatched`: `sentence` weighted by the share that cannot (meaning alone:
  an off-topic English question has neither words nor meaning in common with the documents);
- `year_unstated`, `name_unstated`, `quantity_unstated`, `unit_unmatched`: what the question
  states (a year, a place or organisation, a quantity, the unit it asks for) that the picked
  sentence's passage never does (`rag.answer.constraints.unstated`): a near-topic question.

The two signals left out were tried: the reranker's score of the top passage (the reranker is
fitted on these same CMRC questions, so on them it is optimistically sure) and `gap`, the dense
score above the collection's median (in a collection on one topic every question's gap is
small; without it the model did as well on the held-out `check` split). So was an asked
attribute (the question's last common noun) absent from the picked passage: it did not help.

The coefficients are fitted, not chosen: `python benchmarks/fit_answerability.py --write` runs the
engine over an index of the CMRC 2018 trial contexts for every question of
`benchmarks/data/answer_fit.jsonl` and of kinds generated from it (answerable: questions asked of
their own paragraph, English versions of them, synonym-swapped and described paraphrases;
unanswerable: the same with their paragraph left out, questions whose year/number/place was
changed, whose asked attribute was swapped or to which a year was added), fits an
L2-regularised logistic regression on the `fit` split (each class half the weight, each kind an
equal share of its class), moves its bias so that the refusal floor refuses at most 3% of each
answerable kind (own context, English, described) of `check` questions, sets `confident_floor`
so that at most 10% of the clean ones (own context, English) fall below it, and writes
`calibration.json` beside this file. `llm_floor` is the lower edge of the uncertain band: with an
LLM configured, a question whose confidence lies between it and the refusal floor goes to the
LLM, whose prompt tells it to say when the passages do not hold the answer, instead of being
refused before it. It is the lower of the confidence keeping 99% of each answerable kind of
`check` and odds of 1 to 4 (0.2): every generated answerable question scores 0.43 or more, so the
quantile alone sat at the refusal floor and left the band empty, while people's paraphrases are
refused far lower. No measured dev set is used.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rag.answer.constraints import answers_type, asks_rank, unstated
from rag.answer.gazetteer import NO_GAZETTEER, Gazetteer
from rag.answer.qtype import answer_type, is_chinese
from rag.answer.select import PASSAGES_READ, Scored
from rag.retrieve.hybrid import Hit
from rag.types import Answer, Passage, Warning_

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
TYPED = ("number", "time")  # answer types `type_match` can check
LOW_CONFIDENCE = "low_confidence"  # the warning code of an answer given below `confident_floor`
LOW_CONFIDENCE_ZH = "文档可能没有直接回答这个问题：引用的是找到的最接近的原文，请核对。"
LOW_CONFIDENCE_EN = (
    "The documents may not answer this directly: the quote is the closest text found; check it."
)


@dataclass(frozen=True)
class Logistic:
    """`σ(bias + Σ wᵢ·xᵢ)` over named features."""

    bias: float
    weights: dict[str, float]

    def __call__(self, features: dict[str, float]) -> float:
        """Probability for one feature vector."""
        z = self.bias + sum(w * features[name] for name, w in self.weights.items())
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


@dataclass(frozen=True)
class AbstainModel:
    """The fitted model and the lower edge of the band of uncertain confidences that an LLM may
    still answer."""

    model: Logistic
    llm_floor: float = 0.0
    confident_floor: float = 0.0

    def confidence(
        self,
        question: str,
        hits: Sequence[Hit],
        scored: Sequence[Scored],
        passages: Sequence[Passage] = (),
        places: Gazetteer = NO_GAZETTEER,
    ) -> float:
        """Probability that the hits answer the question; 0 without hits. `scored` is the
        selector's output for these hits (best first), `passages` their texts, `places` what
        the collection says lies within the question's places."""
        if not hits:
            return 0.0
        return self.model(features(question, hits, scored, passages, places))


def features(
    question: str,
    hits: Sequence[Hit],
    scored: Sequence[Scored],
    passages: Sequence[Passage] = (),
    places: Gazetteer = NO_GAZETTEER,
) -> dict[str, float]:
    """The signals the models read (see the module docstring), from the first passages."""
    head = hits[:PASSAGES_READ]
    cosines = [cos for h in head for _, _, cos in h.sentences]
    best = scored[0] if scored else None
    f = {
        "dense": max(h.dense for h in head),
        "sentence": max(cosines, default=max(h.dense for h in head)),
        "selected": best.score if best else 0.0,
        "selected_cosine": best.sentence.cosine if best else 0.0,
        "type_missing": 0.0,
    }
    kind, rank = answer_type(question), asks_rank(question)
    if best is not None and (rank or kind in TYPED):  # 排到第几: answered by 世界第三
        f["type_missing"] = 1.0 - answers_type(kind, rank, best.sentence.text)
    covs = [h.coverage for h in head if h.coverage is not None]
    f["coverage"] = max(covs, default=0.0)
    f["evidence"] = head[0].evidence
    # meaning alone: the sentence cosine where the question cannot match lexically (an English
    # question's low coverage says little, a low cosine then says much)
    f["sentence_unmatched"] = (1.0 - f["evidence"]) * f["sentence"]
    at = best.sentence.passage if best is not None else 0
    picked = hits[at].coverage if at < len(hits) else None
    f["picked_coverage"] = picked if picked is not None else 0.0
    if at < len(passages):
        p = passages[at]
        f |= unstated(question, f"{p.title}\n{p.text}", best.sentence.text if best else "", places)
    else:
        f |= unstated(question, "", "")
    return f


def caveat(answer: Answer, model: AbstainModel | None = None) -> Answer:
    """`answer` with a `low_confidence` warning when it was given (cited) with a confidence below
    the model's `confident_floor`: the quote is the closest the documents hold, and may not
    answer the question directly. Refusals and answers already warned are returned unchanged."""
    model = model if model is not None else load_model()
    if not answer.answerable or not answer.citations or answer.confidence >= model.confident_floor:
        return answer
    if any(w.code == LOW_CONFIDENCE for w in answer.warnings):
        return answer
    text = LOW_CONFIDENCE_ZH if is_chinese(answer.question) else LOW_CONFIDENCE_EN
    return dataclasses.replace(answer, warnings=(*answer.warnings, Warning_(LOW_CONFIDENCE, text)))


@lru_cache(maxsize=1)
def load_model(path: Path = CALIBRATION_FILE) -> AbstainModel:
    """The fitted model shipped with the package."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return AbstainModel(
        Logistic(data["model"]["bias"], data["model"]["weights"]),
        llm_floor=float(data["llm_floor"]),
        confident_floor=float(data.get("confident_floor", 0.0)),
    )
