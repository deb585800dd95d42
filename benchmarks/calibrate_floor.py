"""Fit the answerability model (rag/answer/calibration.json) on data, not by hand.

Positives: CMRC 2018 trial questions asked of an index of their own contexts. Negatives: the same
questions asked of the bundled corpus (Yangtze River Delta policy news), where they are off-topic.
English versions of 120 of those questions (benchmarks/data/cmrc_en.jsonl, written for this
project) are asked of both in the same way, so the model also sees cross-lingual questions.
Two class-balanced, L2-regularised logistic regressions are fitted: one on (dense, gap,
coverage) for questions with lexical evidence, one on (dense, gap) for those without. Refusing
an answerable question costs more than answering an off-topic one with cited (weak) passages,
so where a model's balanced boundary answers fewer than `--answer-rate` (default 97%) of the
training positives, its bias is lowered until it answers that many. The seed dev
set is never used here, so `rag eval` on it measures the result honestly.

    python benchmarks/calibrate_floor.py [--cmrc FILE] [--corpus corpus/] [--write]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cmrc import DEFAULT_CMRC, export_cmrc

from rag.answer.abstain import CALIBRATION_FILE, features
from rag.config import Settings
from rag.engine import Engine


def collect(engine: Engine, questions: list[str], label: int) -> list[tuple[dict[str, float], int]]:
    """Feature rows of the top-10 hits for each question."""
    return [(features(engine.search(q, 10).hits), label) for q in questions]


def fit(
    x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 5000, lr: float = 0.5
) -> tuple[float, np.ndarray]:
    """Class-balanced logistic regression by gradient descent on standardised features."""
    mu, sd = x.mean(0), x.std(0) + 1e-9
    xs = (x - mu) / sd
    w = np.zeros(x.shape[1])
    b = 0.0
    cw = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(xs @ w + b)))
        g = cw * (p - y) / len(y)
        w -= lr * (xs.T @ g + l2 * w)
        b -= lr * g.sum()
    # back to raw feature scale
    return float(b - (w * mu / sd).sum()), w / sd


def main() -> None:
    """Fit, report separation, optionally write calibration.json."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cmrc", type=Path, default=DEFAULT_CMRC)
    ap.add_argument("--corpus", type=Path, default=Path("corpus"))
    ap.add_argument(
        "--english", type=Path, default=Path(__file__).parent / "data" / "cmrc_en.jsonl"
    )
    ap.add_argument(
        "--answer-rate", type=float, default=0.97, help="share of training positives to answer"
    )
    ap.add_argument("--write", action="store_true", help=f"write {CALIBRATION_FILE}")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        qs = export_cmrc(args.cmrc, Path(tmp) / "docs")
        texts = [str(q["question"]) for q in qs]
        texts += [
            json.loads(line)["question"]
            for line in args.english.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        own = Engine(Settings(index_dir=Path(tmp) / "cmrc_index"))
        own.ingest_paths([Path(tmp) / "docs"])
        ours = Engine(Settings(index_dir=Path(tmp) / "corpus_index"))
        ours.ingest_paths([args.corpus])
        rows = collect(own, texts, 1) + collect(ours, texts, 0)
    out: dict[str, object] = {
        "fitted_on": f"{len(texts)} CMRC questions (zh + en) x (own contexts, {args.corpus})",
        "answer_rate": args.answer_rate,
    }
    for name, cols in (("lexical", ["dense", "gap", "coverage"]), ("dense_only", ["dense", "gap"])):
        x = np.array([[f[c] for c in cols] for f, _ in rows if all(c in f for c in cols)])
        y = np.array([label for f, label in rows if all(c in f for c in cols)], dtype=float)
        bias, w = fit(x, y)
        logits = x @ w + bias
        # Lower the boundary to the chosen quantile of the positives' logits if the balanced
        # boundary answers fewer than `answer_rate` of them (never raise it).
        bias -= min(0.0, float(np.quantile(logits[y == 1], 1.0 - args.answer_rate)))
        p = 1 / (1 + np.exp(-(x @ w + bias)))
        acc_pos = float(((p >= 0.5) & (y == 1)).sum() / (y == 1).sum())
        acc_neg = float(((p < 0.5) & (y == 0)).sum() / (y == 0).sum())
        print(
            f"{name:10s} n={len(y)} answered(pos)={acc_pos:.3f} refused(neg)={acc_neg:.3f} "
            f"bias={bias:.3f} " + " ".join(f"{c}={v:.3f}" for c, v in zip(cols, w, strict=True))
        )
        out[name] = {
            "bias": round(bias, 4),
            "weights": {c: round(float(v), 4) for c, v in zip(cols, w, strict=True)},
            "train_answered": round(acc_pos, 4),
            "train_refused": round(acc_neg, 4),
        }
    if args.write:
        CALIBRATION_FILE.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {CALIBRATION_FILE}")


if __name__ == "__main__":
    main()
