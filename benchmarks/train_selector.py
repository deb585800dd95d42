"""Fit the answer-sentence selector (rag/answer/select.json) on CMRC 2018, never on the dev sets.

For each CMRC trial question (and 120 English versions of them) the engine searches an index of
the 256 contexts; every candidate sentence of the first passages (`rag.answer.select.candidates`)
is labelled positive when it comes from the question's context and holds a gold answer (or is a
sizeable part of a multi-sentence one). An L2-regularised listwise (softmax) model on standardised
features is fitted on even-numbered questions and reported on odd ones (top-sentence accuracy:
the best-scored sentence holds a gold answer), then refitted on all and written.

    python benchmarks/train_selector.py [--write]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cmrc import DEFAULT_CMRC, over_cmrc_index
from fitting import fit, top_accuracy

from rag.answer.select import FEATURES, SELECT_FILE, candidates, features
from rag.engine import Engine
from rag.eval import EvalQuestion, squash

MIN_PART = 8  # a sentence inside a multi-sentence gold answer counts when at least this long


def positive(sentence: str, answers: tuple[str, ...]) -> bool:
    """The sentence holds a gold answer, or is a sizeable part of a longer one."""
    s = squash(sentence)
    return any(squash(a) in s or (len(s) >= MIN_PART and s in squash(a)) for a in answers)


def collect(
    engine: Engine, questions: list[EvalQuestion]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels and question ids of every candidate sentence."""
    xs, ys, gs = [], [], []
    for gi, q in enumerate(questions):
        r = engine.search(q.question)
        sents = candidates(r.passages, r.hits)
        rows = features(r.analysed, sents, r.passages, r.hits, r.idf)
        for s, f in zip(sents, rows, strict=True):
            xs.append([f[name] for name in FEATURES])
            ys.append(int(r.passages[s.passage].source == q.doc and positive(s.text, q.answers)))
            gs.append(gi)
    return np.array(xs), np.array(ys), np.array(gs)


def main() -> None:
    """Fit on even-numbered questions, report on odd ones, then fit on all and optionally write."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cmrc", type=Path, default=DEFAULT_CMRC)
    ap.add_argument(
        "--english", type=Path, default=Path(__file__).parent / "data" / "cmrc_en.jsonl"
    )
    ap.add_argument("--write", action="store_true", help=f"write {SELECT_FILE}")
    args = ap.parse_args()
    # English versions of 120 of the questions (written for this project): cross-lingual pairs.
    (x, y, g), n_questions = over_cmrc_index(
        args.cmrc, args.english, lambda engine, qs: (collect(engine, qs), len(qs))
    )
    train, test = g % 2 == 0, g % 2 == 1
    w = fit(x[train], y[train], g[train])
    base = x[test][:, FEATURES.index("cosine")]
    print(
        f"held-out half: top sentence holds the answer, cosine alone {top_accuracy(y[test], g[test], base):.3f}"
        f" -> fitted {top_accuracy(y[test], g[test], x[test] @ w):.3f}"
        f" (ceiling {float(np.mean([y[g == q].max() for q in np.unique(g[test])])):.3f})"
    )
    w = fit(x, y, g)
    print("weights:", dict(zip(FEATURES, np.round(w, 3).tolist(), strict=True)))
    if args.write:
        SELECT_FILE.write_text(
            json.dumps(
                {
                    "weights": dict(zip(FEATURES, np.round(w, 4).tolist(), strict=True)),
                    "fitted_on": f"{n_questions} CMRC 2018 trial questions (120 also in English), candidate sentences",
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        print(f"wrote {SELECT_FILE}")


if __name__ == "__main__":
    main()
