"""The unit a question's asked attribute implies when the question names none.

`总投资多少` asks for an amount of money, `增速是多少` for a percentage, `规划面积多大` for an
area, "how many people are employed" for a count of persons, although none of them writes the
unit (`多少亿元`, `多少平方公里`) that `rag.answer.constraints.asked_unit` reads. The attribute
is a word of a small closed class (what an amount, a rate, an area, a head count or a span of
time is called), so a table of those words is the whole method: the constraint check then holds
a quote stating only `7.1平方公里` against `总投资多少` as it holds it against `多少亿元`.

Only a question that asks for a number (`qtype.answer_type`; in English any but who, where and
when, as "what was the total investment" is typed `other`) implies a unit: `哪个产业投资最多` and
"which sector gets the largest share" ask for a name.
"""

from __future__ import annotations

import re

from rag.answer.qtype import answer_type, is_chinese

COUNT = "count:个"  # counted by any classifier (个 matches them all in the constraint check)
PEOPLE = "count:人"  # 人, 名, 位 and 人次 count persons (see `rag.answer.constraints`)

# dimension → the Chinese words that name an attribute measured in it. A rate (增长率, 覆盖率)
# is a percentage; 份额 is a share, not an amount (额 alone is not read as money).
_ZH: dict[str, tuple[str, ...]] = {
    "money": (
        *("投资", "投入", "收入", "营收", "产值", "税收", "纳税", "缴税", "税款", "成交额"),
        *("交易额", "销售额", "营业额", "进出口额", "出口额", "进口额", "贸易额", "金额"),
        *("资金", "融资", "募资", "价格", "票价", "房价", "租金", "工资", "薪资", "费用"),
        *("成本", "利润", "生产总值", "经费", "预算", "GDP", "价值", "货值"),
    ),
    "percent": (
        *("增速", "增幅", "涨幅", "降幅", "比例", "比重", "占比", "份额", "百分比"),
        r"[\u3400-\u9fff]率",
    ),
    "area": ("面积", "占地"),
    # a head count, or the persons counted (多少球迷, 游客有多少): 人, 名, 位 or 人次 count them
    PEOPLE: (
        *("人数", "员工", "职工", "从业人员", "从业者", "雇员", "人口", "人才", "专家", "院士"),
        *("观众", "球迷", "游客", "旅客", "乘客", "访客", "居民", "学生", "志愿者", "患者"),
    ),
    "duration": ("时长", "多久", "多长时间", "工期"),
    "length": ("长度", "距离", "里程", "全长"),
}
_EN: dict[str, str] = {
    "money": (
        r"investment|revenue|income|output value|tax(?:es)?|turnover|sales|funding"
        r"|financing|price|cost|fare|gdp|profit|budget|value|rais(?:e|ed)|how much money"
    ),
    "percent": r"share|percentage|proportion|(?:growth )?rate",
    "area": r"area|how much land",
    PEOPLE: (
        r"people|persons|employees|workers|staff|residents|visitors|tourists|passengers"
        r"|spectators|fans|students|experts|patients|volunteers"
    ),
    "duration": r"how long (?:did|does|will|would|has|have|is|was)\b",
    "length": r"length|distance|how far",
}
_ZH_RE = {dim: re.compile("|".join(words)) for dim, words in _ZH.items()}
MODIFIER = 2  # characters of a modifier (one word) before the attribute after it: 多少专项资金
# the counted thing right after the question word, a modifier allowed before it
_ZH_AFTER = {
    dim: re.compile(rf"[\u3400-\u9fff]{{0,{MODIFIER}}}?(?:{'|'.join(words)})")
    for dim, words in _ZH.items()
}
_EN_RE = {dim: re.compile(rf"\b(?:{words})\b", re.I) for dim, words in _EN.items()}
_ASK_ZH = re.compile(r"多少|几|多大|多高|多长|多远|多久")
_ASK_EN = re.compile(r"\b(?:how|what)\b", re.I)  # not which: which sector has the largest share
_SPANS_EN = re.compile(r"(?:years?|decades?|centur(?:y|ies)|generations?)\b", re.I)
_HOW_MANY = re.compile(r"\bhow\s+many\s+((?:[\w-]+\s+){0,2}[\w-]+)", re.I)
# a change asked of the attribute (资金比上年涨了多少, by how much did revenue grow) may be
# answered by a percentage or by an amount: no unit implied
_CHANGE_ZH = re.compile(r"涨|增|减|降|升|提高|扩大|缩小|翻")
_CHANGE_EN = re.compile(
    r"\bby how much\b|\b(?:grow|grew|rise|rose|increase|decrease|fall|fell)", re.I
)
WINDOW = 8  # characters before a Chinese question word that may name its attribute
WINDOW_EN = 5  # words after an English question word that may name its attribute


def implied_unit(question: str) -> str | None:
    """The dimension the attribute a number question asks about implies (`money`, `percent`,
    `area`, `count:人`, `duration`, `length`), or None.

    Chinese: the attribute word right after the question word (多少员工), else the one ending
    nearest before it within `WINDOW` characters (`营收每年平均增速是多少` → the 增速, a
    percentage, not the 营收). English: the attribute
    word starting nearest after the question word, within `WINDOW_EN` words (`what share of
    funding` → a share); after `how many` only the counted thing itself (how many people).
    """
    if is_chinese(question):
        if answer_type(question) != "number":
            return None
        m = _ASK_ZH.search(question)
        if m is None:
            return None
        after = question[m.end() : m.end() + WINDOW]  # 多少员工: the counted thing itself
        for dim, rx in _ZH_AFTER.items():
            if rx.match(after) is not None:
                return dim
        window = question[max(0, m.start() - WINDOW) : m.start()]
        found = [(hit.end(), dim) for dim, rx in _ZH_RE.items() for hit in rx.finditer(window)]
        if not found:
            return None
        end, dim = max(found)
        return None if _CHANGE_ZH.search(window[end:]) else dim
    if answer_type(question) not in ("number", "other") or _CHANGE_EN.search(question):
        return None  # what was the revenue is typed `other`; who, where, when ask no figure
    many = _HOW_MANY.search(question)
    if many is not None:  # how many <things>: a count of those (persons, or any classifier)
        if _EN_RE[PEOPLE].search(many.group(1)):
            return PEOPLE
        # English has no classifiers: how many products is 45只, how many stations 1044座, not
        # an amount of money; a span of years is no counted thing (连续十五年)
        return None if _SPANS_EN.match(many.group(1)) else COUNT
    m = _ASK_EN.search(question)
    if m is None:
        return None
    tail = " ".join(question[m.start() :].split()[:WINDOW_EN])
    hits = [(hit.start(), dim) for dim, rx in _EN_RE.items() for hit in rx.finditer(tail)]
    return min(hits)[1] if hits else None
