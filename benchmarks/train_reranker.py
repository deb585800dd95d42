"""Fit the feature reranker (rag/retrieve/rerank.json) on CMRC 2018, never on the dev sets.

For each CMRC trial question (and 120 English versions of them), the top-20 fused candidates from an index of the 256 contexts are
labelled (a candidate answers when it is from the question's context and contains a gold answer).
A listwise (softmax) loss puts each question's probability mass on its answering candidates;
L2-regularised, on standardised features, then mapped back to raw scale.

    python benchmarks/train_reranker.py [--write]
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

from rag.engine import Engine
from rag.eval import EvalQuestion, is_hit
from rag.retrieve.hybrid import analyse, candidates_of, evidence_idf, retrieve
from rag.retrieve.lexicon import lexicon
from rag.retrieve.rerank import FEATURES, WEIGHTS_FILE, features
from rag.types import Passage


def collect(
    engine: Engine, questions: list[EvalQuestion]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels and question ids of the top-20 fused candidates (no reranking)."""
    snap = engine.snapshot
    xs, ys, gs = [], [], []
    for gi, q in enumerate(questions):
        lex = lexicon(snap.segments)
        a = analyse(q.question, engine.embedder, lex)
        hits = retrieve(snap, a, 20)
        idf = evidence_idf(lex, a)
        for h, f in zip(hits, features(candidates_of(snap, hits), idf, q.question), strict=True):
            p = Passage("", "", snap.sources[snap.doc_id(h.row)][0], "", snap.text(h.row), 0, 0, 0)
            xs.append(f)
            ys.append(1 if is_hit(p, q) else 0)
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
    ap.add_argument("--write", action="store_true", help=f"write {WEIGHTS_FILE}")
    args = ap.parse_args()
    # English versions of 120 of the questions (written for this project): cross-lingual pairs.
    (x, y, g), n_questions = over_cmrc_index(
        args.cmrc, args.english, lambda engine, qs: (collect(engine, qs), len(qs))
    )
    train, test = g % 2 == 0, g % 2 == 1
    w = fit(x[train], y[train], g[train])
    xt, yt, gt = x[test], y[test], g[test]
    print(
        f"held-out half: hit@1 fused {top_accuracy(yt, gt, xt[:, 0]):.3f} -> reranked {top_accuracy(yt, gt, xt @ w):.3f}"
    )
    w = fit(x, y, g)
    bias = -float(np.mean(x @ w))  # centre the scores: (0, 1) stays informative, order is unchanged
    print("weights:", dict(zip(FEATURES, np.round(w, 3).tolist(), strict=True)))
    if args.write:
        WEIGHTS_FILE.write_text(
            json.dumps(
                {
                    "features": list(FEATURES),
                    "weights": np.round(w, 4).tolist(),
                    "bias": round(bias, 4),
                    "fitted_on": f"{n_questions} CMRC 2018 trial questions, top-20 fused candidates",
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        print(f"wrote {WEIGHTS_FILE}")


if __name__ == "__main__":
    main()
