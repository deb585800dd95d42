"""Shared helpers for the CMRC 2018 benchmark data (SQuAD format): contexts as documents, questions as JSONL."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from rag.config import Settings
from rag.engine import Engine
from rag.eval import EvalQuestion, load_questions

T = TypeVar("T")

DEFAULT_CMRC = Path(__file__).resolve().parent / "data" / "cmrc2018" / "cmrc2018_trial.json"


def export_cmrc(src: Path, docs_dir: Path) -> list[dict[str, object]]:
    """Write each context to `docs_dir/<id>.txt` (title line + context); return the eval questions."""
    docs_dir.mkdir(parents=True, exist_ok=True)
    questions: list[dict[str, object]] = []
    for article in json.loads(src.read_text(encoding="utf-8"))["data"]:
        for para in article["paragraphs"]:
            name = f"{para['id']}.txt"
            (docs_dir / name).write_text(
                f"{article.get('title', '')}\n{para['context']}", encoding="utf-8"
            )
            for qa in para["qas"]:
                if not qa["question"].strip():
                    continue  # the trial set has one empty question
                questions.append(
                    {
                        "id": qa["id"],
                        "question": qa["question"],
                        "doc": name,
                        "answerable": True,
                        "kind": "cmrc",
                        "answers": sorted({a["text"] for a in qa["answers"]}),
                    }
                )
    return questions


def write_jsonl(rows: list[dict[str, object]], path: Path) -> None:
    """Write rows as JSON lines."""
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )


def over_cmrc_index(
    cmrc: Path, english: Path | None, use: Callable[[Engine, list[EvalQuestion]], T]
) -> T:
    """Index the CMRC contexts in a temporary folder and return `use(engine, questions)`: the
    CMRC questions (their context's file as `doc`), then the English ones in `english` if given.
    The engine and its index are gone afterwards (the fitting scripts' shared set-up)."""
    with tempfile.TemporaryDirectory() as tmp:
        rows = export_cmrc(cmrc, Path(tmp) / "docs")
        questions = [
            EvalQuestion(
                str(r["id"]),
                str(r["question"]),
                tuple(str(a) for a in r["answers"]),  # type: ignore[attr-defined]
                str(r["doc"]),
                True,
                "cmrc",
            )
            for r in rows
        ]
        if english is not None:
            questions += load_questions(english)
        engine = Engine(Settings(index_dir=Path(tmp) / "idx", llm_base_url=None))
        try:
            engine.ingest_paths([Path(tmp) / "docs"])
            return use(engine, questions)
        finally:
            engine.close()
