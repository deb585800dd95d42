"""Generated question kinds for fitting answerability (issue 13): closer to real paraphrases and
real near-topic questions than a plain synonym swap or a changed year. Fitting data only.

From a CMRC 2018 question, its paragraph and its article's title (all seeded, reproducible):

- `describe` (answerable with the paragraph): a *described paraphrase*. The question's most
  specific name (the article title, else its longest person, place, organisation or other proper
  name the paragraph holds) is replaced by a description — its category for a name ending in one
  (`北京大学` → `那所大学`, `长江` → `那条江`), `那位人物` for a person, `那个地方` for a place,
  `那个机构` for an organisation (a name that says none of these is left alone: the question is
  skipped) — and its other words shared with the paragraph by CC-CEDICT synonyms the paragraph
  lacks; a time or place phrase leading the question moves behind its subject. It is kept only
  when it is a paraphrase by the measured sets' own rule (no run of 4 or more characters, digits
  not counted, shared with a paragraph sentence holding the answer) and still names something
  of its paragraph (a word of two or more characters), as a real paraphrase does.
- `attribute_swap` (unanswerable, the paragraph indexed): a near-topic question. The attribute the
  question asks about — its last common noun that the paragraph holds and the title does not
  (`税收` in `碳谷2023年的税收是多少`) — is replaced by the asked attribute of another question with
  the same answer type, one the paragraph never mentions and that shares no character with the
  one it replaces: the subject is the paragraph's, the attribute is not stated.
- `added_year` (unanswerable, the paragraph indexed): a question asking for a figure or a person
  (`多少`, `谁`) that names no year gets one (`2015年` in front) that its paragraph never states
  (nor one within two years of it): it asks about the paragraph's subject at a time the paragraph
  says nothing about.
"""

from __future__ import annotations

import random
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import jieba.posseg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_answers_dev import SHARED_RUN, longest_shared_run
from check_answers_dev import fold as fold_dev
from check_answers_dev import sentences as sentences_dev

from rag.answer.constraints import extract_years
from rag.answer.qtype import answer_type

# A name ending in one of these is described by it: (suffix, classifier), longest first.
CATEGORIES: tuple[tuple[str, str], ...] = tuple(
    sorted(
        [
            ("大学", "所"), ("学院", "所"), ("中学", "所"), ("小学", "所"), ("学校", "所"),
            ("医院", "家"), ("公司", "家"), ("集团", "家"), ("银行", "家"), ("酒店", "家"),
            ("工厂", "家"), ("电视台", "家"), ("出版社", "家"), ("报", "份"), ("杂志", "本"),
            ("博物馆", "座"), ("机场", "座"), ("车站", "座"), ("站", "座"), ("大桥", "座"),
            ("桥", "座"), ("寺", "座"), ("塔", "座"), ("楼", "座"), ("宫", "座"), ("城", "座"),
            ("山", "座"), ("岛", "座"), ("市", "座"), ("公园", "座"), ("体育场", "座"),
            ("河", "条"), ("江", "条"), ("路", "条"), ("街", "条"), ("铁路", "条"), ("公路", "条"),
            ("线", "条"), ("湖", "个"), ("省", "个"), ("县", "个"), ("区", "个"), ("国", "个"),
            ("州", "个"), ("镇", "个"), ("村", "个"), ("中心", "个"), ("协会", "个"),
            ("委员会", "个"), ("组织", "个"), ("联盟", "个"), ("园区", "个"), ("基地", "个"),
            ("电影", "部"), ("小说", "部"), ("剧", "部"), ("动画", "部"), ("漫画", "部"),
            ("游戏", "款"), ("专辑", "张"), ("歌曲", "首"), ("战争", "场"), ("战役", "场"),
            ("比赛", "场"), ("运动", "场"), ("奖", "个"), ("王朝", "个"), ("帝国", "个"),
            ("家族", "个"), ("党", "个"), ("军", "支"), ("队", "支"), ("乐队", "支"),
            ("科", "个"), ("属", "个"), ("系列", "个"), ("计划", "个"), ("系统", "个"),
            ("公约", "份"), ("条约", "份"), ("法", "部"), ("节", "个"), ("会", "个"),
        ],
        key=lambda sc: -len(sc[0]),
    )
)  # fmt: skip
NAME_FLAGS = {"nr": "那位人物", "ns": "那个地方", "nt": "那个机构"}
ATTRIBUTE_FLAGS = {"n", "vn", "an", "nl"}  # common nouns (not names)
ADDED_YEAR_TYPES = ("number", "who")  # a figure or an office holder changes with the year
_LEADING = re.compile(
    r"^((?:在|于)?[0-9一二三四五六七八九十〇零]{1,4}年(?:[0-9]{1,2}月)?|在[^，,、的]{2,6}?)[，,]?"
)


def description(name: str, flag: str) -> str | None:
    """How a paraphrase may refer to `name` (tagged `flag`) without naming it: by its category,
    or as a person, place or organisation; None when nothing says what it is (a bare `它` leaves
    a question no reader could place)."""
    for suffix, classifier in CATEGORIES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return f"那{classifier}{suffix}"
    return NAME_FLAGS.get(flag)


def _words(text: str) -> list[tuple[str, str]]:
    return [(p.word, p.flag) for p in jieba.posseg.cut(text)]


def is_paraphrase(question: str, paragraph: str, answers: Sequence[str]) -> bool:
    """The measured sets' rule: no run of `SHARED_RUN`+ characters (digits not counted) shared with
    any paragraph sentence holding an answer (the answer itself blanked out)."""
    q = fold_dev(question)
    held = False
    for answer in (fold_dev(a) for a in answers if a.strip()):
        for s in (s for s in sentences_dev(paragraph) if answer in s):
            held = True
            run = longest_shared_run(q, s.replace(answer, "\0"))
            if len(re.sub(r"[0-9.%]", "", run)) >= SHARED_RUN:
                return False
    return held


def describe(
    question: str,
    paragraph: str,
    title: str,
    answers: Sequence[str],
    synonyms: dict[str, list[str]],
    rng: random.Random,
) -> str | None:
    """A described paraphrase of `question` (see the module docstring), or None."""
    words = _words(question)
    names = [
        (i, w, f)
        for i, (w, f) in enumerate(words)
        if len(w) >= 2 and w in paragraph and (f in NAME_FLAGS or (title and w in title))
    ]
    target, target_flag = None, "nz"
    if title and title in question:
        target = title
        out = question.replace(title, "\0")
        words = [("\0", "x") if w == "\0" else (w, f) for w, f in _words(out)]
        target_flag = next((f for w, f in _words(title) if w == title), "nz")
    elif names:
        _, target, target_flag = max(names, key=lambda n: (len(n[1]), -n[0]))
    else:
        return None  # nothing specific to describe: a plain synonym swap is `paraphrase`
    described = description(target or "", target_flag)
    if described is None:
        return None
    out_words: list[str] = []
    replaced = False
    for w, _ in words:
        if w == "\0" or (w == target and not replaced):
            out_words.append(described)
            replaced = True
            continue
        if len(w) >= 2 and w in paragraph:
            options = [x for x in synonyms.get(w, ()) if x not in paragraph and not set(x) & set(w)]
            if options:
                w = rng.choice(options)
        out_words.append(w)
    text = "".join(out_words)
    lead = _LEADING.match(text)
    if lead and rng.random() < 0.5:  # word order: 在上海，X… → X在上海…
        rest = text[lead.end() :]
        m = re.search(r"[的是有在]", rest[1:])
        if m:
            cut = m.start() + 1
            text = rest[:cut] + lead.group(1) + rest[cut:]
    if text == question or not is_paraphrase(text, paragraph, answers):
        return None
    # A real paraphrase still names something of its context (奉贤那个美妆园区): one that names
    # nothing the paragraph holds is a riddle, not a paraphrase.
    if not any(len(w) >= 2 and w in paragraph for w, _ in _words(text)):
        return None
    return text


def asked_attribute(question: str, paragraph: str, title: str) -> str | None:
    """The question's last common noun that its paragraph holds and its title does not."""
    words = _words(question)
    found = [
        w
        for i, (w, f) in enumerate(words)
        if f in ATTRIBUTE_FLAGS
        and len(w) >= 2
        and w in paragraph
        and w not in title
        and "·"
        not in (words[i - 1][0] if i else "") + (words[i + 1][0] if i + 1 < len(words) else "")
    ]
    return found[-1] if found else None


def attribute_pool(
    items: Sequence[tuple[str, str, str]],
) -> dict[str, list[str]]:
    """Answer type → the asked attributes of `items` (question, paragraph, title), sorted."""
    pool: dict[str, set[str]] = {}
    for question, paragraph, title in items:
        a = asked_attribute(question, paragraph, title)
        if a:
            pool.setdefault(answer_type(question), set()).add(a)
    return {k: sorted(v) for k, v in pool.items()}


def swap_attribute(
    question: str,
    paragraph: str,
    title: str,
    pool: dict[str, list[str]],
    rng: random.Random,
) -> tuple[str, str, str] | None:
    """(question, original attribute, new attribute): the asked attribute swapped for another
    question's that the paragraph never mentions; None when there is none to swap."""
    old = asked_attribute(question, paragraph, title)
    if old is None:
        return None
    options = [
        a
        for a in pool.get(answer_type(question), ())
        if a != old and a not in paragraph and a not in title and not set(a) & set(old)
    ]
    if not options:
        return None
    new = rng.choice(options)
    at = question.rfind(old)
    return question[:at] + new + question[at + len(old) :], old, new


def add_year(question: str, paragraph: str, rng: random.Random) -> tuple[str, str] | None:
    """(question, year): a year the paragraph never states put in front of a question that names
    none and does not ask for a time; None otherwise."""
    years, relative = extract_years(question)
    if years or relative or answer_type(question) not in ADDED_YEAR_TYPES:
        return None
    stated, _ = extract_years(paragraph)
    options = [
        y
        for y in range(1980, 2025)
        if str(y) not in paragraph and not any(lo - 2 <= y <= hi + 2 for lo, hi in stated)
    ]
    if not options:
        return None
    year = f"{rng.choice(options)}年"
    return year + question, year
