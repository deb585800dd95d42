"""Fit the answer-sentence selector (rag/answer/select.json) on CMRC 2018, never on the dev sets.

For each CMRC trial question (and 120 English versions of them) the engine searches an index of
the 256 contexts; every candidate sentence of the first passages (`rag.answer.select.candidates`)
is labelled positive when it lies in the question's context and holds a gold answer (or is a
sizeable part of a multi-sentence one). An L2-regularised listwise (softmax) model on
standardised features is fitted to convergence (`fitting.fit_exact`) on the even-numbered
questions and reported on the odd ones (top-sentence accuracy: the best-scored sentence holds a
gold answer), then refitted on all and written. A question's English version falls in the half
of its Chinese original.

The CMRC questions mostly repeat their answer sentence's words; users paraphrase. So the report
also covers paraphrased versions of the held-out questions, made by the two seeded generators
`fit_answerability.py` uses (its words shared with its paragraph swapped for CC-CEDICT synonyms
the paragraph lacks: `paraphrase`; its most specific name described, `那所大学`, and kept only
when it shares no run of 4 characters with the answer's sentence: `described`).
`--fit-paraphrases` fits on them too (those of the even questions, then all); measured on both
halves this changed the held-out accuracy by no more than noise, so the shipped selector is
fitted without them.

    python benchmarks/train_selector.py [--write] [--fit-paraphrases]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import answer_kinds
from cmrc import DEFAULT_CMRC, over_cmrc_index
from fit_answerability import SEED, paraphrase, synonyms
from fitting import fit_exact, top_accuracy

from rag.answer.select import FEATURES, SELECT_FILE, candidates, features
from rag.engine import Engine
from rag.eval import EvalQuestion, squash

MIN_PART = 8  # a sentence inside a multi-sentence gold answer counts when at least this long
Rows = tuple[np.ndarray, np.ndarray, np.ndarray]


def positive(sentence: str, answers: tuple[str, ...]) -> bool:
    """The sentence holds a gold answer, or is a sizeable part of a longer one."""
    s = squash(sentence)
    return any(squash(a) in s or (len(s) >= MIN_PART and s in squash(a)) for a in answers)


def paraphrased(cmrc: Path, questions: list[EvalQuestion]) -> list[EvalQuestion]:
    """The `paraphrase` and `described` versions (see the module docstring) of the Chinese
    CMRC questions, with the same id, document and answers and their kind as `kind`."""
    paragraphs = contexts(cmrc)
    table = synonyms()
    out: list[EvalQuestion] = []
    chinese = [q for q in questions if q.kind == "cmrc" and q.doc in paragraphs]
    rng = random.Random(SEED)
    for q in chinese:
        context, title = paragraphs[str(q.doc)]
        text = paraphrase(q.question, context, title, table, rng)
        if text is not None:
            out.append(EvalQuestion(q.id, text, q.answers, q.doc, True, "paraphrase"))
    rng = random.Random(SEED)  # each generator its own stream: changing one changes no other
    for q in chinese:
        context, title = paragraphs[str(q.doc)]
        text = answer_kinds.describe(q.question, context, title, q.answers, table, rng)
        if text is not None:
            out.append(EvalQuestion(q.id, text, q.answers, q.doc, True, "described"))
    return out


def contexts(cmrc: Path) -> dict[str, tuple[str, str]]:
    """Each context's file name (`cmrc.export_cmrc`) → (context, article title)."""
    out: dict[str, tuple[str, str]] = {}
    for a in json.loads(cmrc.read_text(encoding="utf-8"))["data"]:
        for para in a["paragraphs"]:
            out[f"{para['id']}.txt"] = (para["context"], a.get("title", ""))
    return out


def collect(
    engine: Engine,
    questions: list[EvalQuestion],
    home: Callable[[str], tuple[str, str]],
) -> Rows:
    """Features, labels and question index (into `questions`) of every candidate sentence.

    `home(doc)` is (the indexed file holding the context `doc`, that context's squashed text):
    a sentence is positive when it is from that file, lies in that context and holds a gold
    answer."""
    xs, ys, gs = [], [], []
    for gi, q in enumerate(questions):
        source, context = home(str(q.doc))
        r = engine.search(q.question)
        sents = candidates(r.passages, r.hits)
        rows = features(r.analysed, sents, r.passages, r.hits, r.idf, engine.places(q.question))
        for s, f in zip(sents, rows, strict=True):
            xs.append([f[name] for name in FEATURES])
            ys.append(
                int(
                    r.passages[s.passage].source == source
                    and squash(s.text) in context
                    and positive(s.text, q.answers)
                )
            )
            gs.append(gi)
    return np.array(xs), np.array(ys), np.array(gs)


def main() -> None:
    """Fit on the even half, report on the odd one, then fit on all and optionally write."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cmrc", type=Path, default=DEFAULT_CMRC)
    ap.add_argument(
        "--english", type=Path, default=Path(__file__).parent / "data" / "cmrc_en.jsonl"
    )
    ap.add_argument(
        "--fit-paraphrases",
        action="store_true",
        help="fit on the generated paraphrases too (by default they are only measured)",
    )
    ap.add_argument("--write", action="store_true", help=f"write {SELECT_FILE}")
    args = ap.parse_args()
    paragraphs = contexts(args.cmrc)

    def own(doc: str) -> tuple[str, str]:
        context, title = paragraphs[doc]
        return doc, squash(f"{title}\n{context}")

    def use(engine: Engine, qs: list[EvalQuestion]) -> tuple[Rows, list[EvalQuestion]]:
        # English versions of 120 of the questions (written for this project): cross-lingual
        # pairs; then the generated paraphrases
        qs = qs + paraphrased(args.cmrc, qs)
        return collect(engine, qs, own), qs

    (x, y, g), questions = over_cmrc_index(args.cmrc, args.english, use)
    # Every version of a CMRC question falls in the half of the original (by its position).
    origin = {q.id: i for i, q in enumerate(questions) if q.kind == "cmrc"}
    half = np.array([origin.get(q.id, i) % 2 for i, q in enumerate(questions)])[g]
    kinds = np.array([q.kind for q in questions])[g]
    fitted = np.isin(kinds, ["cmrc", "crosslingual"]) | args.fit_paraphrases
    train, test = (half == 0) & fitted, half == 1
    w = fit_exact(x[train], y[train], g[train])
    base = x[:, FEATURES.index("cosine")]
    print("held-out half: top sentence holds the answer, cosine alone -> fitted (ceiling)")
    for kind in ["all", *dict.fromkeys(q.kind for q in questions)]:
        m = test & ((kinds == kind) if kind != "all" else True)
        ceiling = float(np.mean([y[g == q].max() for q in np.unique(g[m])]))
        print(
            f"  {kind:12s} {len(np.unique(g[m])):5d} questions"
            f"  {top_accuracy(y[m], g[m], base[m]):.3f}"
            f" -> {top_accuracy(y[m], g[m], x[m] @ w):.3f} ({ceiling:.3f})"
        )
    w = fit_exact(x[fitted], y[fitted], g[fitted])
    print("weights:", dict(zip(FEATURES, np.round(w, 3).tolist(), strict=True)))
    if args.write:
        counts = {
            k: sum(q.kind == k for q in questions) for k in dict.fromkeys(kinds[fitted].tolist())
        }
        SELECT_FILE.write_text(
            json.dumps(
                {
                    "weights": dict(zip(FEATURES, np.round(w, 4).tolist(), strict=True)),
                    "fitted_on": "CMRC 2018 trial questions, candidate sentences: "
                    + ", ".join(f"{c} {k}" for k, c in counts.items()),
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        print(f"wrote {SELECT_FILE}")


if __name__ == "__main__":
    main()
