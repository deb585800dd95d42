"""Shared helpers for the CMRC 2018 benchmark data (SQuAD format): contexts as documents, questions as JSONL."""

from __future__ import annotations

import json
from pathlib import Path

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
