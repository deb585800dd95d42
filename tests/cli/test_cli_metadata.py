"""The real `rag` CLI in a subprocess: `ingest --meta`, `search`/`ask` with `--filter`,
`--date-from`, `--date-to` (shared by both), metadata shown with citations, and bad filters refused (exit 2)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from cli.helpers import cli_env, rag

SHANGHAI = """上海市人民政府关于促进人工智能产业发展的若干措施
沪府发〔2024〕12号
各区人民政府，市政府各委、办、局：
到2026年，本市人工智能产业规模力争达到4500亿元，建设10个人工智能创新应用先导区。
上海市人民政府
2024年10月15日
"""
STATE_COUNCIL = """国务院办公厅关于加快推进人工智能产业发展的意见
国办发〔2023〕5号
各省、自治区、直辖市人民政府，国务院各部委、各直属机构：
到2025年，全国人工智能核心产业规模超过5000亿元，培育50家人工智能领军企业。
国务院办公厅
2023年3月2日
"""


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--date-from", "2024/10/15"], ["date_from", "YYYY-MM-DD"]),
        (["--date-to", "2024-13-01"], ["date_to", "YYYY-MM-DD"]),
        (["--date-from", "2024-10-15", "--date-to", "2024-01-01"], ["after"]),
        (["--filter", "issuer"], ["--filter", "key=value"]),
    ],
)
def test_bad_filters_exit_2_before_opening_the_index(
    tmp_path: Path, args: list[str], words: list[str]
) -> None:
    for command in ("search", "ask"):
        r = rag([command, "人工智能", *args], cli_env(tmp_path / "idx"))
        assert r.returncode == 2, r.stderr
        assert r.stderr.startswith("error: ") and all(w in r.stderr for w in words), r.stderr
    assert not (tmp_path / "idx").exists()


def test_ingest_meta_then_filtered_ask(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "sh.txt").write_text(SHANGHAI, encoding="utf-8")
    (src / "gov.txt").write_text(STATE_COUNCIL, encoding="utf-8")
    idx = tmp_path / "idx"
    r = rag(["ingest", str(src), "--meta", "category=试点", "--quiet"], cli_env(idx))
    assert r.returncode == 0, r.stderr
    assert rag(["ingest", str(src), "--meta", "oops"], cli_env(idx)).returncode == 2

    db = sqlite3.connect(f"file:{idx / 'rag.sqlite3'}?mode=ro", uri=True)
    stored = dict(db.execute("SELECT source, metadata FROM documents").fetchall())
    db.close()
    assert json.loads(stored["gov.txt"]) == {
        "title": "国务院办公厅关于加快推进人工智能产业发展的意见",
        "doc_number": "国办发〔2023〕5号",
        "issuer": "国务院办公厅",
        "date": "2023-03-02",
        "category": "试点",  # from --meta
    }

    r = rag(
        ["ask", "本市人工智能产业规模力争达到多少？", "--filter", "category=试点",
         "--date-from", "2024-01-01"],
        cli_env(idx),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "4500亿元" in r.stdout
    assert "上海市人民政府 · 沪府发〔2024〕12号 · 2024-10-15" in r.stdout  # shown with the citation
    assert "国办发" not in r.stdout
