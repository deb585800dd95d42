"""Fitting data for answerability and constraint checking (issue 13), made from CMRC 2018 trial.

NOT for measuring: the held-out sets are `benchmarks/data/answers_dev.jsonl` and friends. Every
line is an eval line (`rag.eval.load_questions` reads it; extra fields are for the fitting
scripts) of one kind:

- `own_context`: the original question, asked of the index holding its own paragraph
  (answerable);
- `no_context`: the same question with its own paragraph left out of the index (`exclude_doc`):
  what is retrieved looks relevant but does not hold the answer (unanswerable);
- `changed_constraint`: a question whose year (`1998年`), number with unit (`3座`) or place /
  organisation name, found in its paragraph, is changed to a value that occurs nowhere in the
  paragraph (`constraint`, `original`, `changed`); the paragraph stays indexed, so the passages
  answer a neighbouring question, not this one (unanswerable);
- `english`: the English versions of trial questions in `benchmarks/data/cmrc_en.jsonl`
  (answerable, answers are the Chinese spans).

`split` is `fit` or `check`, decided per CMRC article by a hash of its id (about 70/30), so a
later fit/measure split never puts one article on both sides. The values chosen for changed
constraints come from a `random.Random(seed)`: `python benchmarks/make_answer_data.py` rewrites
`benchmarks/data/answer_fit.jsonl` byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"
DEFAULT_SRC = DATA / "cmrc2018" / "cmrc2018_trial.json"
DEFAULT_EN = DATA / "cmrc_en.jsonl"
DEFAULT_OUT = DATA / "answer_fit.jsonl"
SEED = 13
FIT_SHARE = 70  # percent of articles in the `fit` split

# Places and organisations a changed question may name instead of the one in its paragraph,
# swapped only within their group (a city for a city, a university for a university…).
PLACES = (
    (
        "北京", "上海", "天津", "重庆", "广州", "深圳", "杭州", "南京", "武汉", "成都", "西安",
        "长沙", "郑州", "沈阳", "哈尔滨", "昆明", "厦门", "青岛", "苏州", "合肥", "福州",
        "济南", "台北", "高雄", "东京", "大阪", "首尔", "纽约", "伦敦", "巴黎", "柏林", "罗马",
        "莫斯科", "悉尼", "洛杉矶", "芝加哥",
    ),
    (
        "广东", "江苏", "浙江", "四川", "湖南", "湖北", "山东", "河南", "云南", "福建", "香港",
        "澳门", "台湾",
    ),
    (
        "中国", "日本", "韩国", "美国", "英国", "法国", "德国", "意大利", "西班牙", "俄罗斯",
        "加拿大", "澳大利亚", "印度", "巴西", "新加坡", "葡萄牙", "荷兰", "瑞典",
    ),
)  # fmt: skip
ORGS = (
    (
        "北京大学", "清华大学", "复旦大学", "浙江大学", "南京大学", "武汉大学", "中山大学",
        "四川大学", "香港大学", "台湾大学", "东京大学", "哈佛大学", "牛津大学", "剑桥大学",
        "斯坦福大学",
    ),
    ("联合国", "世界银行", "世界卫生组织", "国际奥委会", "欧盟", "北约"),
    ("国民党", "共产党", "民进党", "工党", "保守党"),
)  # fmt: skip

_YEAR = re.compile(r"(?<![0-9.])([0-9]{3,4})年(?!代)")  # not a decade (2000年代)
_UNITS = (
    "平方公里|公里|千米|厘米|毫米|米|万人|万元|亿元|万|亿|个|人|名|位|元|美元|吨|公斤|千克|次|岁"
    "|倍|座|家|所|部|集|届|场|条|项|种|层|辆|架|艘|首|本|张|分钟|小时|天|周|个月|%"
)
_NUMBER = re.compile(rf"(?<![0-9.])([0-9]+(?:\.[0-9]+)?)({_UNITS})")


def split_of(article_id: str, fit_share: int = FIT_SHARE) -> str:
    """`fit` or `check` for an article, from a hash of its id (stable across runs and machines)."""
    bucket = int(hashlib.sha256(article_id.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "fit" if bucket < fit_share else "check"


Change = tuple[int, str, str]  # where in the question, the value there, the value put instead


def _changed_year(question: str, text: str, rnd: random.Random) -> Change | None:
    """A year of the question that its paragraph holds, and a nearby year the paragraph lacks."""
    for m in _YEAR.finditer(question):
        year = int(m.group(1))
        if m.group(0) not in text:
            continue
        offsets = [d for d in range(-6, 7) if d and str(year + d) not in text and year + d > 0]
        if offsets:
            return m.start(), m.group(0), f"{year + rnd.choice(offsets)}年"
    return None


def _changed_number(question: str, text: str, rnd: random.Random) -> Change | None:
    """A number with unit of the question that its paragraph holds, scaled to one it lacks."""
    for m in _NUMBER.finditer(question):
        if m.group(0) not in text or m.group(2) == "年":
            continue
        digits, unit = m.group(1), m.group(2)
        value = float(digits)
        candidates = []
        for factor in (2, 3, 5, 10, 0.5):
            new = value * factor
            new_text = f"{new:g}" if "." in digits or not new.is_integer() else str(int(new))
            if new_text != digits and new_text not in text:
                candidates.append(f"{new_text}{unit}")
        if candidates:
            return m.start(), m.group(0), rnd.choice(candidates)
    return None


def _changed_name(
    groups: tuple[tuple[str, ...], ...],
) -> Callable[[str, str, random.Random], Change | None]:
    """A changer swapping a name of `groups` found in question and paragraph for one of the same
    group that is in neither."""

    def change(question: str, text: str, rnd: random.Random) -> Change | None:
        found = [(n, g) for g in groups for n in g if n in question and n in text]
        if not found:
            return None
        old, group = max(found, key=lambda f: (len(f[0]), -question.find(f[0])))  # 北京大学 > 北京
        others = [n for n in group if n not in text and n not in question and old not in n]
        return (question.find(old), old, rnd.choice(others)) if others else None

    return change


CHANGERS: tuple[tuple[str, Callable[[str, str, random.Random], Change | None]], ...] = (
    ("org", _changed_name(ORGS)),
    ("year", _changed_year),
    ("quantity", _changed_number),
    ("place", _changed_name(PLACES)),
)


def change_constraint(question: str, text: str, rnd: random.Random) -> dict[str, str] | None:
    """The first constraint (organisation, year, quantity, place) of `question` found in `text`,
    changed to a value `text` does not hold: `{constraint, original, changed, question}`."""
    for kind, changer in CHANGERS:
        got = changer(question, text, rnd)
        if got:
            at, old, new = got
            return {
                "constraint": kind,
                "original": old,
                "changed": new,
                "question": question[:at] + new + question[at + len(old) :],
            }
    return None


def build(src: Path, english: Path, seed: int = SEED) -> list[dict[str, Any]]:
    """Every fitting line from the CMRC file `src` and the English questions in `english`."""
    rnd = random.Random(seed)
    rows: list[dict[str, Any]] = []
    article_of: dict[str, str] = {}
    for article in json.loads(src.read_text(encoding="utf-8"))["data"]:
        split = split_of(article["id"])
        for para in article["paragraphs"]:
            doc = f"{para['id']}.txt"  # the file name benchmarks/cmrc.py gives the paragraph
            article_of[doc] = article["id"]
            text = f"{article.get('title', '')}\n{para['context']}"
            for qa in para["qas"]:
                question = qa["question"].strip()
                if not question:
                    continue  # the trial set has one empty question
                answers = sorted({a["text"] for a in qa["answers"]})
                common = {"lang": "zh", "doc": doc, "article": article["id"], "split": split}
                rows.append(
                    {"id": qa["id"], "question": question, "kind": "own_context"}
                    | {"answerable": True, "answers": answers}
                    | common
                )
                rows.append(
                    {"id": f"{qa['id']}#no_context", "question": question, "kind": "no_context"}
                    | {"answerable": False, "answers": [], "exclude_doc": doc}
                    | common
                )
                changed = change_constraint(question, text, rnd)
                if changed:
                    rows.append(
                        {"id": f"{qa['id']}#changed", "question": changed["question"]}
                        | {"kind": "changed_constraint", "answerable": False, "answers": []}
                        | {k: changed[k] for k in ("constraint", "original", "changed")}
                        | common
                    )
    for line in english.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        q = json.loads(line)
        art = article_of.get(q["doc"], q["doc"].removesuffix(".txt"))
        rows.append(
            {"id": f"{q['id']}#en", "question": q["question"], "kind": "english"}
            | {"answerable": True, "answers": q["answers"], "lang": "en", "doc": q["doc"]}
            | {"article": art, "split": split_of(art)}
        )
    return rows


def write(rows: list[dict[str, Any]], out: Path) -> None:
    """Write rows as JSON lines (UTF-8, one object per line)."""
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


def main(argv: list[str] | None = None) -> int:
    """Write the fitting file and print its counts by kind and split."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC)
    ap.add_argument("--english", type=Path, default=DEFAULT_EN)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)
    rows = build(args.src, args.english, args.seed)
    write(rows, args.out)
    counts = Counter((r["kind"], r["split"]) for r in rows)
    for (kind, split), n in sorted(counts.items()):
        print(f"{kind:20s}{split:7s}{n:6d}")
    print(f"{len(rows)} lines -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
