"""The fitting data of issue 13 (`benchmarks/data/answer_fit.jsonl`) is reproducible and sound.

The generator rewrites the committed file byte for byte; every changed constraint names a value
its paragraph lacks; the fit/check split is by article. No model: plain data checks.
"""

from __future__ import annotations

import importlib.util
import json
import random
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "make_answer_data", ROOT / "benchmarks" / "make_answer_data.py"
)
assert _spec is not None and _spec.loader is not None
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)  # benchmarks/ is scripts, not an installed package


def test_generator_reproduces_the_committed_file(tmp_path: Path) -> None:
    out = tmp_path / "fit.jsonl"
    gen.write(gen.build(gen.DEFAULT_SRC, gen.DEFAULT_EN), out)
    assert out.read_bytes() == gen.DEFAULT_OUT.read_bytes()


def test_fit_rows_are_sound() -> None:
    rows = [json.loads(line) for line in gen.DEFAULT_OUT.read_text("utf-8").splitlines()]
    texts = {}
    for article in json.loads(gen.DEFAULT_SRC.read_text("utf-8"))["data"]:
        for para in article["paragraphs"]:
            texts[f"{para['id']}.txt"] = f"{article.get('title', '')}\n{para['context']}"
    kinds = Counter(r["kind"] for r in rows)
    assert kinds["own_context"] == kinds["no_context"] > 900
    assert kinds["changed_constraint"] > 100 and kinds["english"] > 100
    splits: dict[str, set[str]] = {}
    for r in rows:
        splits.setdefault(r["article"], set()).add(r["split"])
        assert r["answerable"] == (r["kind"] in ("own_context", "english"))
        if r["kind"] == "no_context":
            assert r["exclude_doc"] == r["doc"]
        if r["kind"] == "changed_constraint":
            assert r["constraint"] in {"year", "quantity", "place", "org"}
            assert r["original"] in texts[r["doc"]] and r["changed"] not in texts[r["doc"]]
            assert r["changed"] in r["question"]
        if r["answerable"]:
            assert any(a in texts[r["doc"]] for a in r["answers"])
    assert all(len(s) == 1 for s in splits.values())  # an article is on one side only
    fit = sum(s == {"fit"} for s in splits.values()) / len(splits)
    assert 0.6 < fit < 0.8


def test_changed_constraint_examples() -> None:
    rnd = random.Random(0)
    text = "该楼于1998年落成，高3座，位于北京。"
    year = gen.change_constraint("1998年落成的是哪座楼？", text, rnd)
    assert year is not None and year["constraint"] == "year" and year["original"] == "1998年"
    assert year["changed"] not in text and year["question"].endswith("落成的是哪座楼？")
    assert gen.change_constraint("2000年代有什么变化？", "2000年代", rnd) is None  # a decade
    place = gen.change_constraint("北京有什么？", text, rnd)
    assert place is not None and place["changed"] in gen.PLACES[0]  # a city for a city
    assert gen.split_of("TRIAL_800") == gen.split_of("TRIAL_800")
