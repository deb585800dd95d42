"""Constraint checking: does the quoted evidence state what the question specifically asks about?

A question often *states* specific values: a year (2024年…多少), a place or organisation (上海…),
a quantity (超过100亿元的企业…), the unit it wants the answer in (多少平方公里, how many km), a
superlative (最大的…, the first…). When the evidence an answer quotes states a *different value of
the same kind* and never the asked one (the question asks about 2024, the documents give the 2023
figure), the answer is kept but gets a `constraint_mismatch` warning whose message names what was
asked and what the documents give. An answer whose every sentence is cited has no place for an
uncited caveat sentence, so the caveat lives in the warning only (see docs/api.md).

Extraction (`extract`) is regular expressions plus jieba's part-of-speech tags (`ns` place, `nt`
organisation; the jieba the BM25 tokenizer already loads). Comparison (`check`) works per kind,
each with the scope that kind has in real text:

- **years** (2023年, 二〇二三年, 2023, '23, 2021—2023年, 2018年以来 = 2018 onward): a figure's year
  is often stated once, in a heading or an earlier sentence, and governs what follows. So the
  years of a quote are those it states itself; if it states none, those of the nearest earlier
  sentence of its passage that states any; if none, those of the passage's title. A quote with a
  relative year (今年, 去年, this year) is neutral: its year depends on the document's date.
- **places/organisations**: jieba's `ns`/`nt` words and the words CC-CEDICT glosses as a
  place, less those it glosses as common words (jieba tags 东西 `ns`, 嘉兴 `nr`). An asked one
  absent from the quote, the sentence before it and the title (folded, a suffix like 市/省
  ignored), while the quote names another: the quote gives the other place's figure, even when
  the passage names both (江苏 asked, a sentence on 浙江 quoted). An English question's places
  are its capitalised words that CC-CEDICT spells a Chinese place for (Jiaxing → 嘉兴), looked for
  in the pinyin of that same text (洋山港 spells Yangshan), and so are its stand-alone
  capitalised words CC-CEDICT glosses as a name (Huawei → 华为) and its runs of them it glosses as
  an organisation (Fudan University → 复旦大学), which count as missing also when
  no other place is quoted but the quotes' passages never name them. An asked place is held by a
  place CC-CEDICT puts within it (嘉善 "county in Jiaxing, Zhejiang" answers for 浙江: `within`).
- **units**: the unit the question asks for (多少家, 多少亿元, 多少小时, how many km), or when it
  names none the one its asked attribute implies (总投资多少 → money: `rag.answer.implied`), is
  compatible with the quote's quantities (same dimension: money, area, percent, duration…, or
  for counts a classifier of the same class: 个 matching any, 人/名/位 persons, 项/条/款/件
  items); the quote states quantities and none compatible → mismatch.
- **stated quantities**: a quantity the question states (超过100亿元) is absent from the passage,
  and the quote states another of the same dimension. A stated count is held by its number alone
  (Chinese drops the classifier: 九个城市 asked, 九城市 written); a number after 哪/几 is asked.
- **absent figure or rank**: the question asks for a figure (多少, how many: any number will do)
  or a rank (第几) and no quote states one at all (years are not figures): the quotes talk about
  the asked thing without answering it.
- **superlatives and ordinals** (最大, 首个, largest, first…; 第二大, second): the quote states a
  conflicting one (the opposite polarity or a later rank) and none of the asked group; so for
  another session or round of the same thing (第五轮 asked, 第四轮 quoted) and another financing
  round (B轮, Series B asked, A轮 quoted).
- **attribute** (Chinese): the asked attribute (成员 of 多少家成员) is named nowhere near the
  quotes, not even by one of its characters.
- **subject**: a figure asked in a unit is quoted from a sentence about something else — a quote
  without such a figure names more of the question than every quote with one (a longer run of
  its words, the asked attribute not counted; for an English question, more of its capitalised
  names, read in pinyin or through CC-CEDICT).

The answer is flagged when no quote holds the asked value and at least one states a different
one (or, for an absent figure, none states any): one supporting quote among several is enough.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import jieba.posseg

from rag.answer.gazetteer import (
    ADMINISTRATIVE,
    NO_GAZETTEER,
    PROPER,
    Gazetteer,
    TermTexts,
    learn,
)
from rag.answer.implied import COUNT, PEOPLE, implied_unit
from rag.answer.qtype import answer_type, is_chinese, states_share, type_match
from rag.index.tokenize import fold_long
from rag.ingest.split import sentence_spans
from rag.retrieve.crosslingual import (
    abbreviates_organisation,
    glossary,
    name_kind,
    place_names,
    place_spelled,
    spelled,
    within,
)
from rag.types import Answer, Citation, Passage, Warning_

CODE = "constraint_mismatch"
_POSSEG_LOCK = threading.Lock()  # jieba's lazy initialisation is not thread-safe
OPEN_END = 9999  # the upper bound of an open year range (2018年以来)

# --- years ----------------------------------------------------------------------------------
_YEAR_NUM = r"(?:1[89]\d{2}|20\d{2})"
_ZH_DIGIT = "〇零一二三四五六七八九"
_RANGE_SEP = r"\s*(?:-|—|–|~|～|至|到|to)\s*"
# 2021—2023年 / 2021年至2023年 / 2021-2023
_YEAR_RANGE = re.compile(
    rf"(?<![\d.,])({_YEAR_NUM})\s*年?{_RANGE_SEP}({_YEAR_NUM})(?![\d.,%])(?!\s*[-/.]\d)"
)
_YEAR_OPEN = re.compile(rf"(?<![\d.,])({_YEAR_NUM})\s*年?\s*(?:以来|至今|以后|之后|起|开始)")
# a decade or century is a range: 1960s, 1960年代, 19世纪, the 19th century
_DECADE = re.compile(r"(?<![\d.,])(1[89]\d0|20\d0)\s*(?:'?s\b|年代)")
_CENTURY = re.compile(r"(?<!\d)(1[89]|2[01])\s*(?:世纪|th\s+century)", re.I)
_YEAR_ZH = re.compile(f"([{_ZH_DIGIT}]{{4}})年")
_YEAR_SHORT = re.compile(r"(?:(?<=\s)|^)[’'‘]([0-9]{2})(?![\w’'])")
_RELATIVE_YEAR = re.compile(
    r"今年|去年|明年|前年|本年|上年|上一年|this year|last year|next year", re.I
)

# --- quantities -----------------------------------------------------------------------------
_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?"
_ZH_NUM = "零〇一二两三四五六七八九十百千万亿"
_ZH_NUM_START = "一二两三四五六七八九十百千"  # a numeral never starts with 万, 亿 or 零
_SCALE = {"十": 10.0, "百": 100.0, "千": 1e3, "万": 1e4, "亿": 1e8, "万亿": 1e12}
# unit → (dimension, factor); longest first in the pattern. Counts are dimension `count:<classifier>`.
_UNITS: dict[str, tuple[str, float]] = {
    "元": ("money", 1.0),
    "人民币": ("money", 1.0),
    "美元": ("usd", 1.0),
    "欧元": ("eur", 1.0),
    "%": ("percent", 1.0),
    "％": ("percent", 1.0),
    "个百分点": ("percent", 1.0),
    "平方公里": ("area", 1e6),
    "平方千米": ("area", 1e6),
    "平方米": ("area", 1.0),
    "公顷": ("area", 1e4),
    "亩": ("area", 666.67),
    "公里": ("length", 1e3),
    "海里": ("length", 1852.0),  # nautical miles: a shipping route's length
    "英里": ("length", 1609.344),
    "千米": ("length", 1e3),
    "米": ("length", 1.0),
    "厘米": ("length", 0.01),
    "毫米": ("length", 1e-3),
    "吨": ("mass", 1e3),
    "公斤": ("mass", 1.0),
    "千克": ("mass", 1.0),
    "倍": ("multiple", 1.0),
    # containers: a port's throughput and a train's load are counted in TEU (39个标箱, 5000万标箱)
    "个标箱": ("count:标箱", 1.0),
    "标箱": ("count:标箱", 1.0),
    "标准箱": ("count:标箱", 1.0),
    # durations (not 年 or 日: 2023年 and 8日 are dates far more often than spans)
    "小时": ("duration", 3600.0),
    "个小时": ("duration", 3600.0),
    "分钟": ("duration", 60.0),
    "秒": ("duration", 1.0),
    "天": ("duration", 86400.0),
    "周": ("duration", 7 * 86400.0),
    "个月": ("duration", 30 * 86400.0),
}
_CLASSIFIERS = [
    "家",
    "项",
    "个",
    "人次",
    "人",
    "座",
    "所",
    "台",
    "套",
    "件",
    "条",
    "位",
    "名",
    "种",
    "批",
    "辆",
    "架",
    "艘",
    "户",
    "栋",
    "层",  # floors of a building (东塔楼有多少层), not a height in 米
    "岁",  # an age (平均年龄是多少岁), not a share of the people of that age
    "篇",
    "部",
    "只",
    "处",
    "支",
    "款",
    "次",  # times something happened (预约了多少次); 人次, persons counted per visit, is a head count
]
# classifiers that count the same things: persons (五千名专家 answers 多少人), items of a list or
# a register (37项措施 answers 多少条, 12项专利 多少件)
_CLASSIFIER_CLASSES = (frozenset(["人", "名", "位", "人次"]), frozenset(["项", "条", "款", "件"]))
_EN_UNITS: dict[str, tuple[str, float]] = {
    "yuan": ("money", 1.0),
    "rmb": ("money", 1.0),
    "dollars": ("usd", 1.0),
    "euros": ("eur", 1.0),
    "percent": ("percent", 1.0),
    "per cent": ("percent", 1.0),
    "percentage points": ("percent", 1.0),
    "square kilometres": ("area", 1e6),
    "square kilometers": ("area", 1e6),
    "km2": ("area", 1e6),
    "km²": ("area", 1e6),
    "square metres": ("area", 1.0),
    "square meters": ("area", 1.0),
    "hectares": ("area", 1e4),
    "mu": ("area", 666.67),
    "kilometres": ("length", 1e3),
    "nautical miles": ("length", 1852.0),
    "miles": ("length", 1609.344),
    "kilometers": ("length", 1e3),
    "km": ("length", 1e3),
    "metres": ("length", 1.0),
    "meters": ("length", 1.0),
    "centimetres": ("length", 0.01),
    "centimeters": ("length", 0.01),
    "tons": ("mass", 1e3),
    "tonnes": ("mass", 1e3),
    "times": ("multiple", 1.0),
    "teus": ("count:标箱", 1.0),
    "teu": ("count:标箱", 1.0),
    "standard containers": ("count:标箱", 1.0),  # 标准箱, word for word
    "hours": ("duration", 3600.0),
    "minutes": ("duration", 60.0),
    "seconds": ("duration", 1.0),
    "days": ("duration", 86400.0),
    "weeks": ("duration", 7 * 86400.0),
    "months": ("duration", 30 * 86400.0),
}
_EN_SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_ZH_UNIT_ALT = "|".join(
    re.escape(u) for u in sorted([*_UNITS, *_CLASSIFIERS], key=len, reverse=True)
)
_EN_UNIT_ALT = "|".join(
    re.escape(u).replace(r"\ ", r"\s+") for u in sorted(_EN_UNITS, key=len, reverse=True)
)
# A four-digit year: followed by 年, by a date separator and month, or by nothing that makes it a
# quantity (an English "in 2023,", a title's "2024上海…指数"). `2023项`, `2000多家`, `2023.5` are
# quantities, never years.
_YEAR = re.compile(
    rf"(?<![\d.,])({_YEAR_NUM})(?:\s*年(?!代)|(?=[-/]\d{{1,2}}(?!\d))"
    rf"|(?![\d%]|[.,]\d|\s*-\d|\s*(?:[多余来几十百千万亿]|{_ZH_UNIT_ALT})))"
)
_QUANTITY_ZH = re.compile(
    rf"(?<![\d.])({_NUM}|[{_ZH_NUM_START}][{_ZH_NUM}]*)\s*[余多]?\s*(万亿|[十百千万亿])?\s*[余多]?\s*"
    rf"({_ZH_UNIT_ALT})?"
)
_QUANTITY_EN = re.compile(
    rf"(?<![\d.])({_NUM})\s*(thousand|million|billion|trillion)?\s*({_EN_UNIT_ALT})?\b", re.I
)
# How loosely a number is stated, read from the words around it (see `Quantity.approx`).
_MORE_AFTER = re.compile(r"[多余几]|-?odd\b", re.I)
_OVER_BEFORE = re.compile(r"(?:超过|超|逾|多于|高于|不少于|more\s+than|over|above)\s*$", re.I)
_ABOUT_BEFORE = re.compile(
    r"(?:将近|接近|近|约|大约|大概|差不多|about|around|nearly|roughly|approximately|almost|some)\s*$",
    re.I,
)
_ABOUT_AFTER = re.compile(r"^\s*(?:左右|上下)")
# a question asking for a person (作者, 主任是谁, who wrote): its answer names one. A bare 谁 or
# who may be answered by an organisation (谁牵头 → 发改委), and is not checked
_ASKS_PERSON = re.compile(
    r"作者|叫什么名字|哪位|(?:主任|书记|部长|局长|厅长|市长|区长|县长|院长|校长|所长|主席|会长|"
    r"董事长|总经理|总裁|负责人|创始人|创办人|发言人|专家|院士|教授|记者|委员)(?:是|叫)谁"
    r"|\bwho (?:wrote|said|spoke|founded|heads|leads|chairs|directs|(?:is|was) the (?:head|director|"
    r"author|chair|founder|leader|president|mayor|secretary))\b"
    r"|\bwhich (?:vice )?(?:minister|official|expert|scholar|professor|director|mayor|secretary)\b"
    r"|\bname of the\b[^?]*\b(?:secretary|director|head|mayor|governor|minister|chair(?:man)?"
    r"|president|author|founder|official|professor|expert|leader|spokesperson)\b",
    re.I,
)
# a question asking who wrote or proposed something, or which body did: a person or an
# organisation answers it, and a byline often does (see `names_author`)
_ASKS_AUTHOR = re.compile(
    r"作者|撰写|执笔|署名|由谁提出|谁提出|哪个(?:党派|组织|机构|单位|部门)[^？?]*(?:提出|建议|撰写)"
    r"|\bwho (?:wrote|proposed|suggested|authored|put forward)\b"
    r"|\bwhich (?:organi[sz]ation|party|body|institution|agency)\b[^?]*\b(?:propos|suggest|wr[io]t)",
    re.I,
)
# a question asking who took a photo (photo ③, 图②): its credit line under the caption answers it
_ASKS_PHOTOGRAPHER = re.compile(
    r"(?:谁|哪位)(?:拍摄|拍的|拍下|摄)|(?:照片|图片)是谁|摄影(?:师|者)|拍摄者|\bwho (?:took|shot|photographed)\b|\bphotographer\b"
    r"|\bphoto(?:graph)?\s*[①-⑩\d]*,?\s*(?:was\s+)?(?:taken|shot)\s+by\b"
    r"|\b(?:provided|supplied)\s+the\s+(?:photo|picture|image)\b|\bphoto credit\b"
    r"|供图|(?:照片|图片)(?:是)?由(?:谁|哪)",
    re.I,
)
# a credit line that credits what comes before it, not after: a photo's under its caption
# (肖本祥摄(人民视觉)) or an article's closing one (（作者：彭羽，…研究员）)
_PHOTO_CREDIT = re.compile(
    r"^[^。，,；;：:]{2,20}?\s*(?:摄|供图)\s*(?:[（(][^（()）]{1,12}[）)])?\s*$"
)
_PHOTO_BY = re.compile(r"^(?:摄影|图片|图)\s*[:：/]\s*\S{2,12}$")  # 摄影：王某
_CLOSING_CREDIT = re.compile(r"^[（(]\s*(?:作者|撰稿|撰文|执笔)\s*[:：]")
# "which place" asks a rank only as a finish (which place did it take), not a location (which
# places on the belt)
_ASKS_RANK = re.compile(
    r"第几|排名多少|what rank|which place (?:did|does|do|is|was)\b[^?]*\b(?:take|finish|come|rank)"
    r"|rank(?:s|ed)? where",
    re.I,
)
_HAS_RANK = re.compile(
    r"第\s*[一二三四五六七八九十百\d]+|首位|榜首|居首|冠军|前\s*[一二三四五六七八九十\d]+"
    r"|\b(?:first|second|third|top|\d+(?:st|nd|rd|th))\b",
    re.I,
)
_ASKING = ("哪", "几")  # a numeral after these is asked (哪两个), not stated
# a determiner or a direction and an administrative level: a place told relative to another
_RELATIVE_PLACE = re.compile(r"[外本各全该此他异邻][省市区县国地镇乡]{1,2}|[东南西北近远][郊]")
_WHICH_WORDS = frozenset(["哪", "哪个", "哪些", "哪一个", "哪家", "哪座", "什么", "何"])
_CAPITALISED = re.compile(r"\b[A-Z][a-z]{2,}\b")  # a name in an English question
_WORD_EN = re.compile(r"[A-Za-z]+")  # Shanghai's: Shanghai, s; Shanghai-Nantong: two
# capitalised English words CC-CEDICT glosses as names that name no entity (September → 九月)
_CALENDAR = re.compile(
    r"January|February|March|April|May|June|July|August|September|October|November|December"
    r"|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
)
_ASK_WORD = re.compile(r"多少|几|什么|哪|谁|何|怎样|如何")
_COUNT_WORD = re.compile(r"多少|几")
_NOUN_FLAGS = frozenset(["n", "vn", "an", "nl"])  # common nouns: what is asked, not who
# Nouns that name the kind of answer wanted, not an attribute of the subject: a quote answers
# 什么时候 with a date and 面积是多少 with 4.7平方公里, without either word.
_ANSWER_FRAMES = frozenset(
    [
        *("时候", "时间", "日期", "年份", "名字", "名称", "单位", "机构", "部门", "范围"),
        *("比例", "比重", "占比", "面积", "数量", "数目", "人数", "规模", "金额", "总额"),
        *("长度", "高度", "重量", "价格", "多少", "情况", "方面", "内容", "方式", "原因"),
        *("地方", "地点", "位置", "作用", "意义", "特点", "问题"),
        "作者",  # a byline never says so (湖州市政协委员 费震夏)
    ]
)
# Characters that name a measure rather than what is measured (召回率, 产值, 销售额, 总量).
_MEASURE_CHARS = frozenset("率额量值数总价比度")
_HAN = re.compile(r"[\u3400-\u9fff]+")
# the fewest characters of a question another quote must name for the figure's quote to be
# about something else (two are a common word: 上海, 企业)
_SUBJECT_RUN = 3
_SUBJECT_NAMES = 2  # an English question's names a quote must hold to name its subject
# an ordinal with what it counts: 第四轮, 第6届, 第150期 (not 第十四个五年规划's 个: a name's part)
_ORDINAL = re.compile(r"第\s*([0-9]+|[零〇一二两三四五六七八九十百]+)\s*([轮届期次批季场])")
_ORDINAL_AFTER = 8  # characters after an ordinal that say what it counts
# a financing round: A轮, B+轮, Pre-A轮; Series B, round C (folded: lower case)
_ROUND = re.compile(
    r"(?<![a-z])(pre-?a|[a-e]\+?)\s*轮|\b(?:series|round)\s+(pre-?a|[a-e]\+?)(?![a-z])"
)
_PARTICLES = "的之了在中和与及是"  # not part of a name at either end of a shared run
_OPENING_QUOTES = frozenset("“\"「『《‘'")
_CLOSING_QUOTES = frozenset("”\"」』》’'")
# What makes a span of time the question's frame rather than a stated figure (头三个月, 近五年).
_FRAME_BEFORE = re.compile(r"(?:头|前|近|过去|最近|未来|后|first|last|past|next)\s*$", re.I)
_PERCENT_ZH = re.compile(rf"百分之([{_ZH_NUM}]+|{_NUM})")
# What a question asks for: 多少亿元, 几家, 多少平方公里; how many km, how much (in) yuan. Not
# after 第: 第几位, 第几名 ask a rank (`asks_rank`), not a count of people; nor after 哪: 哪几个城市,
# 哪几个月 ask which ones (names, months), not how many
_ASKED_ZH = re.compile(rf"(?<![第哪])(?:多少|几)\s*(?:万亿|[十百千万亿])?\s*({_ZH_UNIT_ALT})")
_ASKED_EN = re.compile(
    rf"how\s+(?:many|much)\s+(?:(?:thousand|million|billion|trillion)\s+)?({_EN_UNIT_ALT})\b"
    rf"|in\s+(?:(?:thousand|million|billion|trillion)\s+)?({_EN_UNIT_ALT})\b(?=[^a-z]*$)",
    re.I,
)

# --- superlatives ---------------------------------------------------------------------------
_SUPERLATIVES: dict[str, str] = {
    "max": r"最大|最高|最多|最强|最长|最广|最快|largest|biggest|highest|greatest|most|longest|fastest",
    "min": r"最小|最低|最少|最短|最弱|最慢|smallest|lowest|least|fewest|shortest|slowest",
    "first": r"首个|首家|首次|首批|首台|首座|首条|首部|第一|最早|率先|first|earliest",
    "last": r"最后|最晚|最新|last|latest",
}
_OPPOSITE = {"max": "min", "min": "max", "first": "last", "last": "first"}
_EARLIEST = re.compile(r"最早|最晚|earliest|latest", re.I)  # a first or last in time, asked
_SUPERLATIVE_RE = {k: re.compile(v, re.I) for k, v in _SUPERLATIVES.items()}
# A later rank: 第二大, 第3届, second, third (not 第一, which is `first`); group 1 is what it ranks
# (大 in 第二大, 届 in 第三届), which must be what the question ranks: 第三场 is no answer to 第一届.
_LATER_RANK = re.compile(
    r"第\s*(?:[二三四五六七八九十]+|[2-9]|\d{2,})\s*([\u3400-\u9fff])?"
    r"|\b(?:second|third|fourth|fifth)\b",
    re.I,
)
# A top rank stated without a superlative word (居全国首位), and a question asking which one
_TOP_RANK = re.compile(r"最|首位|榜首|居首|冠军|top\s*\d*\b|\bleading\b", re.I)  # 最受欢迎, TOP5
_WHICH = re.compile(r"哪|什么|谁|\b(?:which|what|who)\b", re.I)
# What a question's first or largest ranks: 大 in 最大, 届 in 第一届, 家 in 首家
_RANKED = re.compile(r"(?:最|第\s*一|首)\s*([\u3400-\u9fff])")

# --- places and organisations ---------------------------------------------------------------
# names that stand for no particular place in these documents (the rest of jieba's `ns` words
# that name none, 全国, 城市, 当地…, CC-CEDICT glosses as common words: see `extract_places`)
_GENERIC_PLACES = frozenset(["中国"])
# an administrative unit, or an island (长兴岛 is named 长兴 in 长兴海洋实验室)
_PLACE_SUFFIX = re.compile(f"(?:{ADMINISTRATIVE}|岛)$")


@dataclass(frozen=True)
class Quantity:
    """A number with its unit: `value` in the dimension's base unit (元, m², %…)."""

    value: float
    dimension: str  # money, percent, area, length, mass, multiple, usd, count:<classifier>, bare
    text: str
    # how loosely it is stated: "" exactly, "more" (五十多个, 50-odd: up to the next step of its
    # last digit), "over" (超过50家, more than 50), "about" (近110亿元, about 50)
    approx: str = ""

    def bounds(self) -> tuple[float, float]:
        """The values this statement allows (inclusive)."""
        v = self.value
        if self.approx == "more":
            return v, v + _step(v)
        if self.approx == "over":
            return v, 1.5 * v
        if self.approx == "about":
            return 0.85 * v, 1.15 * v
        return v, v


@dataclass(frozen=True)
class Constraints:
    """The specific values a text states."""

    years: tuple[tuple[int, int], ...] = ()  # inclusive ranges; a single year is (y, y)
    relative_year: bool = False  # 今年, 去年…: a year that depends on the document's date
    quantities: tuple[Quantity, ...] = ()
    places: tuple[str, ...] = ()  # folded, suffix-stripped names (ns, nt)
    superlatives: frozenset[str] = frozenset()  # max, min, first, last
    later_rank: bool = False  # 第二大, second…


@dataclass(frozen=True)
class Mismatch:
    """One asked value the evidence does not hold, and what it holds instead."""

    # year, place, unit, quantity, superlative, attribute, absent (no figure, rank or superlative)
    kind: str
    asked: str
    found: str


# --- extraction -----------------------------------------------------------------------------
def _zh_number(text: str) -> float | None:
    """A Chinese numeral (十二, 二〇二三, 三百五十, 两千) as a number; None if it is not one."""
    digits = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "两": 2}
    if all(c in digits for c in text):
        return float("".join(str(digits[c]) for c in text)) if text else None
    total, section, current = 0.0, 0.0, 0.0
    for c in text:
        if c in digits:
            current = digits[c]
        elif c in ("十", "百", "千"):
            section += (current or 1) * _SCALE[c]
            current = 0
        elif c in ("万", "亿"):
            total = (total + section + current) * _SCALE[c]
            section, current = 0.0, 0.0
        else:
            return None
    return total + section + current


def _number(text: str) -> float | None:
    if text[0].isdigit():
        return float(text.replace(",", ""))
    return _zh_number(text)


def extract_years(text: str) -> tuple[tuple[tuple[int, int], ...], bool]:
    """Year ranges a text states (inclusive; 以来 ranges end at `OPEN_END`), and whether it uses a
    relative year (今年, last year)."""
    found: list[tuple[int, int]] = []
    taken: list[tuple[int, int]] = []  # spans already read as part of a range
    for m in _YEAR_RANGE.finditer(text):
        lo, hi = int(m.group(1)), int(m.group(2))
        if lo < hi <= lo + 50:
            found.append((lo, hi))
            taken.append(m.span())
    for m in _YEAR_OPEN.finditer(text):
        found.append((int(m.group(1)), OPEN_END))
        taken.append(m.span())
    for m in _DECADE.finditer(text):
        y = int(m.group(1))
        found.append((y, y + 9))
        taken.append(m.span())
    for m in _CENTURY.finditer(text):
        c = int(m.group(1))
        found.append((100 * (c - 1), 100 * c - 1))
    for m in _YEAR.finditer(text):
        if _quoted_name(text, m.start(1), m.end(1)):
            continue  # “1851”全民健身赛事体系: a number quoted on its own names something
        if not any(a <= m.start() < b for a, b in taken):
            y = int(m.group(1))
            found.append((y, y))
    for m in _YEAR_ZH.finditer(text):
        y = int(
            "".join(str("〇一二三四五六七八九".index("〇" if c == "零" else c)) for c in m.group(1))
        )
        if 1800 <= y <= 2099:
            found.append((y, y))
    for m in _YEAR_SHORT.finditer(text):
        found.append((2000 + int(m.group(1)),) * 2)
    return tuple(dict.fromkeys(found)), bool(_RELATIVE_YEAR.search(text))


def _quoted_name(text: str, start: int, end: int) -> bool:
    """`text[start:end]` stands alone inside quotation marks or title marks (“1851”, 《2035》)."""
    return (
        start > 0
        and end < len(text)
        and text[start - 1] in _OPENING_QUOTES
        and text[end] in _CLOSING_QUOTES
    )


def extract_quantities(text: str) -> tuple[Quantity, ...]:
    """Numbers with a unit or a scale word (3800亿元, 12项, 2.4平方公里, 28.3%, 1.5 billion yuan).

    Years are not quantities; a bare number without unit or scale (a count in a list, a 文号) is
    left out, and one with a scale but no unit (2.3亿) has dimension `bare`, compatible with all.
    Read folded: a traditional text's 3.87億元 is money as 3.87亿元 is.
    """
    text = fold_long(text)
    out: list[Quantity] = []
    for m in _QUANTITY_ZH.finditer(text):
        num, scale, unit = m.group(1), m.group(2), m.group(3)
        before = text[max(0, m.start() - 1) : m.start()]
        if (not unit and not scale) or before in _ASKING or before == "第":
            continue  # 哪两个邻国, 几十家 ask a number, they state none; 第十四个 is an ordinal
        value = _number(num)
        if value is None or (num[0].isdigit() and _is_year_at(text, m.start(1))):
            continue
        if not num[0].isdigit() and value == 1 and not scale:
            continue  # 一个, 一项, 一批: an article, not a stated quantity
        if num in _SCALE and not scale and unit == "米":
            continue  # 千米, 百米: the unit word kilometre, no number stated
        if unit == "位" and text.startswith("一体", m.end()):
            continue  # 三位一体, 五位一体: "N in one", an idiom, no persons counted
        q = _quantity(value, scale, unit, m.group(0).strip())
        out.append(dataclasses.replace(q, approx=_approx(text, m.start(), m.end(), q.text)))
    for m in _PERCENT_ZH.finditer(text):
        value = _number(m.group(1))
        if value is not None:
            out.append(Quantity(value, "percent", m.group(0)))
    for m in _QUANTITY_EN.finditer(text):
        num, scale, unit = m.group(1), m.group(2), m.group(3)
        if not unit and not scale:
            continue
        value = float(num.replace(",", "")) * (_EN_SCALE[scale.lower()] if scale else 1.0)
        dim, factor = _EN_UNITS[_en_unit(unit)] if unit else ("bare", 1.0)
        text_ = m.group(0).strip()
        out.append(Quantity(value * factor, dim, text_, _approx(text, m.start(), m.end(), text_)))
    return tuple(out)


def _approx(text: str, start: int, end: int, stated: str) -> str:
    """How loosely the quantity `stated` at `text[start:end]` is given (`Quantity.approx`)."""
    before = text[max(0, start - 16) : start]
    if _MORE_AFTER.search(stated) or _MORE_AFTER.match(text, end):
        return "more"
    if _OVER_BEFORE.search(before):
        return "over"
    if _ABOUT_BEFORE.search(before) or _ABOUT_AFTER.match(text[end:]):
        return "about"
    return ""


def _step(value: float) -> float:
    """The place value of the last non-zero digit of a whole number (50 → 10, 2300 → 100): what
    五十多 or 2300余 may add."""
    if value < 1 or value != int(value):
        return 1.0
    step, v = 1.0, int(value)
    while v % 10 == 0:
        v //= 10
        step *= 10
    return step


def numbers(text: str) -> frozenset[float]:
    """Every number a text states, with or without a unit (九城市 holds 9), years left out."""
    out = set()
    for m in _QUANTITY_ZH.finditer(text):
        value = _number(m.group(1))
        if value is not None and not (m.group(1)[0].isdigit() and _is_year_at(text, m.start(1))):
            out.add(value * (_SCALE[m.group(2)] if m.group(2) else 1.0))
    return frozenset(out)


def _is_year_at(text: str, start: int) -> bool:
    return any(m.start(1) == start for m in _YEAR.finditer(text))


def _en_unit(unit: str) -> str:
    return " ".join(unit.lower().split())


def _quantity(value: float, scale: str | None, unit: str | None, text: str) -> Quantity:
    value *= _SCALE[scale] if scale else 1.0
    if not unit:
        return Quantity(value, "bare", text)
    if unit in _UNITS:
        dim, factor = _UNITS[unit]
        return Quantity(value * factor, dim, text)
    return Quantity(value, f"count:{unit}", text)


def wanted_unit(question: str) -> str | None:
    """The dimension a question wants its answer in: the unit it names (`asked_unit`), else the
    one its asked attribute implies (总投资多少 → money: `rag.answer.implied`); none when it asks
    a rank (人口流动中排第几 wants 第四, not a head count)."""
    if asks_rank(question):
        return None
    folded = fold_long(question)  # 多少億元 asks in 亿元
    return asked_unit(folded) or implied_unit(folded)


def holds_unit(dimension: str, text: str, *, strict: bool = False) -> bool:
    """`text` states a quantity in a unit compatible with `dimension` (a scale word alone, 2.3亿,
    does not count: it fits every unit). `strict`: a quantity counted by the generic classifier 个
    holds only an asked 个, as evidence *for* a sentence (五个城市 does not state a head count;
    多少个站点 is held by 187座), while a mismatch check keeps it lenient (五十多个 may count
    anything)."""
    return any(
        # a bare number counts things only when no particular classifier is asked (how many,
        # 多少个): 5 亿注册用户 answers how many registered users
        (x.dimension != "bare" or dimension == COUNT)
        and _compatible(dimension, x.dimension)
        and not (strict and x.dimension == "count:个" and dimension != "count:个")
        for x in extract_quantities(text)
    )


def asked_unit(question: str) -> str | None:
    """The dimension of the unit a question asks its answer in (多少家 → `count:家`), or None."""
    m = _ASKED_ZH.search(question)
    if m:
        unit = m.group(1)
        return _UNITS[unit][0] if unit in _UNITS else f"count:{unit}"
    m = _ASKED_EN.search(question)
    if m:
        return _EN_UNITS[_en_unit(m.group(1) or m.group(2))][0]
    return None


def _tagged(text: str, *, hmm: bool = True) -> list[tuple[str, str]]:
    """jieba's (word, part-of-speech) pairs of a folded text."""
    with _POSSEG_LOCK:
        return [(p.word, p.flag) for p in jieba.posseg.cut(text, HMM=hmm)]


def extract_places(text: str) -> tuple[str, ...]:
    """Places (ns) and organisations (nt) a Chinese text names: folded, suffix (市, 省…) removed.
    A proper noun CC-CEDICT glosses as a name (华为 "Huawei") counts as well, and one followed by
    an organisation word is named with it (张江集团, whose place 张江 says nothing of it).

    jieba tags some common nouns `ns` (东西, 大都市, 长度): a word CC-CEDICT glosses as a common
    word is left out. A word CC-CEDICT glosses as a place counts whatever jieba's tag (嘉兴 is
    `nr`, 珠三角 `nz`).
    """
    folded = fold_long(text)
    # dictionary words only: jieba's HMM guesses new "places" out of any unknown run (锦地罗不)
    pairs = _tagged(folded, hmm=False)
    # but an organisation's name is seldom a dictionary word (张江集团): read with the HMM, and
    # only where an organisation word follows it (a second cut, so only when one occurs at all)
    guessed = _tagged(folded) if any(h in folded for h in _ORG_HEADS) else []
    out = [
        word + head
        for (word, flag), (head, _) in itertools.pairwise(guessed)
        if head in _ORG_HEADS
        and len(word) >= 2
        and word not in _GENERIC_PLACES  # 中国公司: any Chinese company
        and not _RELATIVE_PLACE.fullmatch(word)  # 外省市公司: companies of other provinces
        and _proper_name(word, flag)
    ]
    for k, (word, flag) in enumerate(pairs):
        if len(word) < 2 or word in _GENERIC_PLACES or any(word in o for o in out):
            continue
        kind = name_kind(word)
        # 华为 (nr), 比亚迪, 中石化 (an organisation's abbreviation, j); not 春节 (t), 党委 (j)
        named = kind == "name" and (flag in PROPER or abbreviates_organisation(word))
        # a dictionary place jieba reads as an adjective or a common noun is none: 新兴 "emerging",
        # 资源 "resources" (Xinxing and Ziyuan counties)
        place = kind == "place" and flag.startswith("n") and flag != "n"
        if not ((flag in ("ns", "nt") and kind != "common") or place or named):
            continue
        if _split_from_name(word, pairs[k - 1][0] if k else ""):
            continue
        if k and pairs[k - 1][0] in _WHICH_WORDS:
            continue  # 哪个湾区: the kind of place asked, not one named
        if _RELATIVE_PLACE.fullmatch(word):
            continue  # 外省市, 本市, 各地, 南郊: a place told relative to another, none named
        if not _PLACE_SUFFIX.sub("", word):
            continue  # an administrative word alone (新区, 地区) names no place
        core = _place_core(word)
        if len(core) >= 2:
            out.append(core)
    return tuple(dict.fromkeys(out))


def _split_from_name(word: str, before: str) -> bool:
    """jieba cut a name out of a longer one: the lone character before `word` makes, with its
    first character, a name CC-CEDICT knows (中 + 东阿 of 中东阿语, the Middle East's Arabic:
    中东 is the name, 东阿 a county that is not there). Two names side by side (江苏南京) are
    no such cut, nor is a list of one-character names after a word (欧美 + 日)."""
    return len(before) == 1 and name_kind(before + word[0]) in ("name", "place")


def _proper_name(word: str, flag: str) -> bool:
    """A word before an organisation word (集团…) that names it: one read as a proper noun that
    CC-CEDICT does not call common (临港), or one it calls a name whatever jieba's tag (上汽,
    an abbreviation: `j`). Alone, such an abbreviation is too often generic (党委 "Party
    committee")."""
    kind = name_kind(word)
    return (flag in PROPER and kind != "common") or kind == "name"


def asks_author(question: str) -> bool:
    """The question asks who wrote or proposed something (作者, 谁提出, which organisation
    proposed…): a byline may answer it."""
    return _ASKS_AUTHOR.search(fold_long(question)) is not None  # 由誰提出 as 由谁提出


def asks_photographer(question: str) -> bool:
    """The question asks who took a photo (who took photo ③, 谁拍摄的): its credit line answers."""
    return _ASKS_PHOTOGRAPHER.search(fold_long(question)) is not None  # 誰拍攝 as 谁拍摄


def credit_after(text: str) -> str | None:
    """What `text` credits in the lines *before* it: `photo` for a photo credit under its
    caption (肖本祥摄(人民视觉)), `text` for an article's closing credit (（作者：彭羽，…）), None
    for any other line."""
    line = text.strip()
    if _PHOTO_CREDIT.match(line) or _PHOTO_BY.match(line):
        return "photo"
    if _CLOSING_CREDIT.match(line):
        return "text"
    return None


def names_author(text: str, *, besides: str = "") -> bool:
    """`text` is a byline: a short line, no sentence, naming a person or an organisation that
    `besides` (the question) does not (湖州市政协经济界委员 费震夏; 民进杭州市委会). A credit
    line (`credit_after`: 龙巍摄) credits what comes before it, and is no byline of what follows."""
    line = text.strip()
    if not line or len(line) > _BYLINE_CHARS or _SENTENCE_MARK.search(line):
        return False
    if credit_after(line) is not None:
        return False
    pairs = _tagged(fold_long(line))
    folded = fold_long(besides)
    return _person_in(pairs, folded) or any(
        flag == "nt" and word not in folded for word, flag in pairs
    )


_BYLINE_CHARS = 30
_SENTENCE_MARK = re.compile(r"[。！？；!?;：:，,]")


def names_person(text: str, *, besides: str = "") -> bool:
    """`text` names a person `besides` does not (the question: 张江 of 张江的负责人 is no answer).

    A person: a word jieba tags `nr` that CC-CEDICT does not know (a byline's 费震夏) or that
    starts with a common surname (a famous name it glosses; not 阿拉伯, "Arabic", nor 嘉兴, a
    place), or a surname jieba tags `nr` alone before a short word (吴 + 朝晖: it splits names
    it does not know)."""
    return _person_in(_tagged(fold_long(text)), fold_long(besides))


def _person_in(pairs: list[tuple[str, str]], besides: str) -> bool:
    # an English `besides` names a word by its pinyin (Zhangjiang: 张江, which jieba tags `nr`)
    letters = "".join(_WORD_EN.findall(besides)).lower()
    for (word, flag), (after, after_flag) in itertools.pairwise([*pairs, ("", "x")]):
        if flag != "nr" or len(word) > 4 or word + after[:1] in besides or word in besides:
            continue
        if letters and len(word) >= 2 and spelled(word) in letters:
            continue
        if name_kind(word) == "place":  # jieba tags 张家港, 吴江, 金山 (places) `nr`
            continue
        if len(word) == 1:
            if word in _SURNAMES and 1 <= len(after) <= 2 and after_flag != "x":
                return True
        elif name_kind(word) is None or word[0] in _SURNAMES:
            return True
    return False


# the commonest Chinese surnames (most of the population): a dictionary word jieba tags as a
# person is one when it starts with one of them (a famous name CC-CEDICT glosses)
_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛"
    "郝龚邵万钱严覃武戴莫孔向汤费习"
)
# words that make a name before them an organisation's (张江 + 集团 is not 张江)
_ORG_HEADS = frozenset(["集团", "公司", "银行", "大学", "医院", "研究院", "研究所"])


def _place_core(word: str) -> str:
    core = _PLACE_SUFFIX.sub("", word)
    return core if len(core) >= 2 else word


def extract_superlatives(text: str) -> tuple[frozenset[str], bool]:
    """The superlative groups a text states (max, min, first, last) and whether it states a later
    rank (第二, second)."""
    groups = frozenset(k for k, rx in _SUPERLATIVE_RE.items() if rx.search(text))
    return groups, bool(_LATER_RANK.search(text))


def extract(text: str, *, places: bool = True) -> Constraints:
    """Every constraint `text` states (`places=False` skips the part-of-speech tagging)."""
    years, relative = extract_years(text)
    sup, later = extract_superlatives(text)
    return Constraints(
        years=years,
        relative_year=relative,
        quantities=tuple(x for x in extract_quantities(text) if not _time_frame(text, x)),
        places=extract_places(text) if places else (),
        superlatives=sup,
        later_rank=later,
    )


def _time_frame(text: str, quantity: Quantity) -> bool:
    """A span of time that frames the question (今年头三个月, over the past five years), not a
    figure it states of its subject: the passage says 一季度, not 三个月."""
    if quantity.dimension != "duration":
        return False
    text = fold_long(text)  # the quantity's text is folded (`extract_quantities`)
    at = text.find(quantity.text)
    return at > 0 and _FRAME_BEFORE.search(text, max(0, at - 12), at) is not None


# --- comparison -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Evidence:
    """One quote of an answer with the context that governs it."""

    quote: str
    passage_text: str  # the whole passage (merged chunks) the quote is from
    title: str
    preceding: str  # the passage's text before the quote


def evidence_for(citations: Sequence[Citation], passages: Sequence[Passage]) -> list[Evidence]:
    """The evidence of each citation: its quote, passage, title and the passage text before it."""
    out = []
    for c in citations:
        if not 1 <= c.marker <= len(passages):
            continue
        p = passages[c.marker - 1]
        before = p.text[: max(0, c.start - p.start)]
        out.append(Evidence(c.quote, p.text, p.title, before))
    return out


def _governing_years(ev: Evidence) -> tuple[tuple[int, int], ...] | None:
    """The years that govern a quote (see the module docstring); None when it is relative."""
    years, relative = extract_years(ev.quote)
    if years:
        return years
    if relative:
        return None
    spans = sentence_spans(ev.preceding)
    for s, e in reversed(spans):
        prev, prev_relative = extract_years(ev.preceding[s:e])
        if prev:
            return prev
        if prev_relative:
            return None
    return extract_years(ev.title)[0]


def _covers(asked: tuple[int, int], stated: Iterable[tuple[int, int]]) -> bool:
    """A text stating the years `stated` speaks of the `asked` ones. A period asked (2019至2023年)
    is spoken of by any year within it; a single year is not spoken of by the inside of a closed
    period (从2019年到2023年增长至…, 2021—2023年累计… give the ends or the total, not 2021's
    figure), only by its ends, a period open to now (2018年以来) or a decade or century."""
    lo, hi = asked
    for a, b in stated:
        if not (lo <= b and a <= hi):
            continue
        if lo != hi or a == b or b == OPEN_END or lo in (a, b) or _is_era(a, b):
            return True
    return False


def _is_era(lo: int, hi: int) -> bool:
    return (lo % 10 == 0 and hi == lo + 9) or (lo % 100 == 0 and hi == lo + 99)


def _year_text(years: Iterable[tuple[int, int]], zh: bool) -> str:
    parts = []
    for lo, hi in years:
        if hi == OPEN_END:
            parts.append(f"{lo}年以来" if zh else f"since {lo}")
        elif lo == hi:
            parts.append(f"{lo}年" if zh else str(lo))
        else:
            parts.append(f"{lo}—{hi}年" if zh else f"{lo}–{hi}")
    return ("、" if zh else ", ").join(parts)


def _compatible(asked: str, found: str) -> bool:
    if "bare" in (asked, found) or asked == found:
        return True
    if asked.startswith("count:") and found.startswith("count:"):
        a, f = asked[6:], found[6:]
        if any(a in c and f in c for c in _CLASSIFIER_CLASSES):
            return True
        return "个" in (a, f) or a.startswith(f) or f.startswith(a)  # 人 ~ 人次
    return False


def _held(x: Quantity, quantities: Sequence[Quantity], values: frozenset[float]) -> bool:
    """A stated quantity is held by a text with these quantities and `numbers`: the same value in
    a compatible unit, or, for a count, the same number at all (Chinese drops the classifier: a
    question's 九个城市 is a text's 九城市)."""
    lo, hi = x.bounds()
    if x.dimension.startswith("count:") and any(lo <= v <= hi for v in values):
        return True
    if x.approx:
        return any(
            _compatible(x.dimension, y.dimension) and lo <= y.value <= hi for y in quantities
        )
    return any(_same_value(x, y) for y in quantities)


def _same_value(a: Quantity, b: Quantity) -> bool:
    return _compatible(a.dimension, b.dimension) and abs(a.value - b.value) <= 1e-6 * max(
        1.0, abs(a.value)
    )


def _check_years(q: Constraints, evidence: Sequence[Evidence], zh: bool) -> Mismatch | None:
    if not q.years:
        return None
    # A question naming several years asks about the period they span (2019年和2023年相比,
    # from the 19th century until the 1960s): any year within it is the asked one.
    asked = [(min(lo for lo, _ in q.years), max(hi for _, hi in q.years))]
    found: list[tuple[int, int]] = []
    for ev in evidence:
        years = _governing_years(ev)
        if years is None or not years:
            continue
        if _covers(asked[0], years):
            return None  # one quote about the asked year is enough
        found.extend(years)
    if not found:
        return None
    return Mismatch("year", _year_text(q.years, zh), _year_text(dict.fromkeys(found), zh))


def _check_places(
    q: Constraints, evidence: Sequence[Evidence], places: Gazetteer
) -> Mismatch | None:
    if not q.places:
        return None
    # The scope of a place is the quote, the sentence before it and the title (该区… after a
    # sentence naming 松江区): an asked place outside it while the quote names another is the
    # other place's figure (江苏's asked, 浙江's quoted), even if the passage names both.
    near = _near(evidence)
    missing = _not_within([p for p in q.places if p not in near], near, places)
    if not missing:
        return None
    others = [
        p
        for ev in evidence
        for p in _quote_places(ev)
        if not any(p in a or a in p for a in q.places)  # 张江 within 张江科学城
    ]
    if not others:
        return None
    return Mismatch("place", "、".join(missing), "、".join(dict.fromkeys(others)))


def _whole(evidence: Sequence[Evidence]) -> str:
    """The quotes' passages and titles, folded."""
    return fold_long(" ".join(f"{ev.title} {ev.passage_text}" for ev in evidence))


_NAME_RUN = re.compile(r"\b[A-Z][a-z]+(?:\s+(?:(?:of|and|for|the)\s+)*[A-Z][a-z]+)+\b")


@functools.lru_cache(maxsize=1)
def _organisation_glosses() -> dict[str, tuple[str, ...]]:
    """CC-CEDICT's glosses of organisations of several words, lower case, less what follows a
    comma (`fudan university, shanghai` → `fudan university`) → their headwords (复旦大学)."""
    out: dict[str, tuple[str, ...]] = {}
    for gloss, heads in glossary().items():
        name = gloss.split(",")[0].strip()
        orgs = tuple(h for h in heads if any(h.endswith(o) for o in _ORG_HEADS))
        if " " in name and orgs:
            out.setdefault(name, orgs)
    return out


def english_names(question: str) -> dict[str, tuple[str, ...]]:
    """The names an English question states that CC-CEDICT knows, lower case → the Chinese
    headwords they stand for: a capitalised word it spells a place for (`Jiaxing` → 嘉兴), one
    standing alone (not in a run of capitalised words: Robot Valley, Chen Hao) that it glosses
    as a name (`Huawei` → 华为), or a run of them it glosses as an organisation (`Fudan
    University` → 复旦大学: a university, company, bank, hospital or institute)."""
    words = _WORD_EN.findall(question)
    out: dict[str, tuple[str, ...]] = {}
    organisations = _organisation_glosses()
    for m in _NAME_RUN.finditer(question):
        # the whole run, or its end (Which Peking University): never a part of a longer name
        # (Shanghai University of Finance and Economics is no Shanghai University)
        run = m.group(0).lower().split()
        parts = (" ".join(run[i:]) for i in range(len(run) - 1))
        name = next((p for p in parts if p in organisations), None)
        if name is not None:
            out[name] = organisations[name]
    for i, w in enumerate(words):
        if not _CAPITALISED.fullmatch(w):
            continue
        if place_spelled(w):
            if not _GENERIC_PLACES.intersection(place_spelled(w)):
                out[w.lower()] = place_spelled(w)
            continue
        alone = not any(
            0 < j < len(words) and words[j][:1].isupper() for j in (i - 1, i + 1)
        )  # the question's first word (Which Huawei…) is no part of a name
        if i > 0 and alone and not _CALENDAR.fullmatch(w):
            heads = tuple(h for h in glossary().get(w.lower(), ()) if name_kind(h) == "name")
            if heads and not _GENERIC_PLACES.intersection(heads):  # China
                out[w.lower()] = heads
    return out


def _check_places_en(
    question: str, evidence: Sequence[Evidence], places: Gazetteer
) -> Mismatch | None:
    """`_check_places` for an English question, over its `english_names`. One is missing when
    the quote, the sentence before it and the title name none of its headwords and their pinyin
    never spells it (洋山港 spells Yangshan, a name no dictionary tags), and the quote or the
    sentence before it names another place (its pinyin not an asked word's), or, for a name that
    is no place, the quotes' passages do not name it either. A headword is held as well by a
    place the collection puts within it (`places`)."""
    asked = english_names(question)
    if not asked:
        return None

    def held(text: str) -> list[str]:
        pinyin = spelled(text)
        inside = [within(x) for x in extract_places(text)]
        return [
            w
            for w, heads in asked.items()
            if w not in pinyin
            and not any(h in text for h in heads)
            and not any(w in x for x in inside)
            and not any(places.held(h, text) for h in heads)
        ]

    missing = held(_near(evidence))
    if not missing:
        return None
    others = [
        p
        for ev in evidence
        for p in _quote_places(ev)
        if not any(w in spelled(p) or spelled(p) in w for w in asked)  # 上海浦东, Pudong
    ]
    if others:
        return Mismatch(
            "place", ", ".join(w.title() for w in sorted(missing)), "、".join(dict.fromkeys(others))
        )
    # no other place quoted, and a name that is no place (Huawei) is not even in the quotes'
    # passages: they are about something else (a place may contain them: Pudong, 张江)
    unnamed = [w for w in held(_whole(evidence)) if w in missing and not place_spelled(w)]
    return Mismatch("place", ", ".join(w.title() for w in sorted(unnamed)), "") if unnamed else None


def _not_within(asked: list[str], text: str, places: Gazetteer) -> list[str]:
    """The `asked` places (Chinese) that no place `text` names lies in, as CC-CEDICT tells
    (浙江 asked, 嘉善 named: "Jiashan county in Jiaxing, Zhejiang"; 荷兰 "Holland/the
    Netherlands", 鹿特丹 "port city in the Netherlands") or the collection does (`places`: 浦东
    asked, 张江 named, where a document says `张江所在的上海浦东新区`): a quote about a county
    answers a question about its province."""
    if not asked:
        return asked
    inside = [within(x) for x in extract_places(text)]
    return [
        p
        for p in asked
        if not any(place_names(p) & held for held in inside) and not places.held(p, text)
    ]


def _near(evidence: Sequence[Evidence]) -> str:
    """What a quote's subject is named by (folded): its title, the sentence before it and the
    quote itself (该区… after a sentence naming 松江区)."""
    return fold_long(" ".join(f"{ev.title} {_sentence_before(ev)} {ev.quote}" for ev in evidence))


def _quote_places(ev: Evidence) -> tuple[str, ...]:
    """The places a quote names, the sentence before it counted as it is for the asked place: a
    quote inside a speaker's words (湖州市委书记陈浩说：…56家) gives the speaker's place's figure."""
    return extract_places(f"{_sentence_before(ev)} {ev.quote}")


def _sentence_before(ev: Evidence) -> str:
    spans = sentence_spans(ev.preceding)
    return ev.preceding[spans[-1][0] : spans[-1][1]] if spans else ""


def _check_unit(question: str, evidence: Sequence[Evidence], zh: bool) -> Mismatch | None:
    asked = wanted_unit(question)
    if asked is None:
        return None
    found: list[Quantity] = []
    for ev in evidence:
        qs = extract_quantities(ev.quote)
        if any(_compatible(asked, x.dimension) for x in qs):
            return None
        found += qs
    if not found:  # the quotes state no quantity at all: the asked one is not there either
        return Mismatch("absent", _dimension_text(asked, zh), "")
    return Mismatch("unit", _dimension_text(asked, zh), "、".join(x.text for x in found[:3]))


def _dimension_text(dim: str, zh: bool) -> str:
    names_zh = {
        "money": "金额（元）",
        "usd": "美元金额",
        "eur": "欧元金额",
        "percent": "百分比",
        "area": "面积",
        "length": "长度",
        "mass": "重量",
        "multiple": "倍数",
        "duration": "时长",
    }
    names_en = {
        "money": "an amount of money",
        "usd": "an amount in dollars",
        "eur": "an amount in euros",
        "percent": "a percentage",
        "area": "an area",
        "length": "a length",
        "mass": "a weight",
        "multiple": "a multiple",
        "duration": "a duration",
    }
    if dim == PEOPLE:
        return "人数" if zh else "a number of people"
    if dim.startswith("count:"):
        return f"以“{dim[6:]}”计的数量" if zh else f"a count of '{dim[6:]}'"
    return (names_zh if zh else names_en).get(dim, dim)


def _check_quantities(q: Constraints, evidence: Sequence[Evidence]) -> Mismatch | None:
    stated = [x for x in q.quantities if x.dimension != "bare"]
    if not stated:
        return None
    contexts = [f"{ev.title} {ev.passage_text}" for ev in evidence]
    held = [(extract_quantities(c), numbers(c)) for c in contexts]
    missing = [x for x in stated if not any(_held(x, qs, values) for qs, values in held)]
    if not missing:
        return None
    others = [
        y
        for ev in evidence
        for y in extract_quantities(ev.quote)
        for x in missing
        if y.dimension != "bare" and _compatible(x.dimension, y.dimension) and not _same_value(x, y)
    ]
    if not others:
        return None
    return Mismatch(
        "quantity",
        "、".join(x.text for x in missing),
        "、".join(dict.fromkeys(y.text for y in others[:3])),
    )


def asks_rank(question: str) -> bool:
    """The question asks for a rank (第几, 排名多少, what rank)."""
    return _ASKS_RANK.search(fold_long(question)) is not None  # 第幾 as 第几


def states_rank(text: str) -> bool:
    """The text states a rank (第八, 首位, top 3)."""
    return _HAS_RANK.search(text) is not None


def answers_type(kind: str, rank: bool, text: str) -> float:
    """How well `text` holds the kind of answer asked (`type_match` of the question's
    `answer_type`), a rank asked (`asks_rank`: 第几位) being held only by a stated rank (第八,
    世界第三), not by any number: the selector's feature and the answerability model's."""
    return float(states_rank(text)) if rank else type_match(kind, text)


def _check_absent(question: str, evidence: Sequence[Evidence], zh: bool) -> Mismatch | None:
    """The question asks for a figure (多少, how many), a rank (第几), a person (主任是谁) or a
    date (哪一年, when) and no quote gives one: the quotes are about the asked thing, not its
    answer (成员 asked, only the founding told)."""
    if asks_rank(question):
        if any(states_rank(ev.quote) for ev in evidence):
            return None
        return Mismatch("absent", "名次" if zh else "a rank", "")
    if _ASKS_PERSON.search(fold_long(question)):  # 主任是誰 as 主任是谁
        if any(names_person(ev.quote, besides=question) for ev in evidence):
            return None
        return Mismatch("absent", "人名" if zh else "a person's name", "")
    kind = answer_type(question)
    if kind == "time":  # 哪一年, 什么时候, when: some quote must date something
        if any(type_match(kind, ev.quote) for ev in evidence):
            return None
        return Mismatch("absent", "时间" if zh else "a date", "")
    if kind != "number" or wanted_unit(question) is not None:
        return None  # no figure asked, or one in a unit, which `_check_unit` checks
    if any(numbers(ev.quote) or states_share(ev.quote) for ev in evidence):
        return None  # 全国近半数 gives a share without a digit
    return Mismatch("absent", "数字" if zh else "a figure", "")


def asked_attribute(question: str) -> str | None:
    """The common noun a Chinese question asks the value of: the one right after a counting
    question word (多少家成员 → 成员), else the nearest before its question word (女性有多少人 →
    女性); None if neither. A noun after 哪/什么 is the kind of answer (哪个港口), not asked of.
    A measure character jieba cuts off its word (召回 率) is read with it (召回率)."""
    words = _tagged(fold_long(question), hmm=False)
    at = next((i for i, (w, _) in enumerate(words) if _ASK_WORD.search(w)), None)
    if at is None:
        return None

    def noun(i: int) -> bool:
        w, flag = words[i]
        return (
            flag in _NOUN_FLAGS
            and len(w) >= 2
            and w not in _ANSWER_FRAMES
            and name_kind(w) != "place"
        )

    def measured(i: int) -> bool:  # 召回 率: a rate jieba cuts off its word
        return (
            i > 0
            and words[i][0] in _MEASURE_CHARS
            and len(words[i - 1][0]) >= 2
            and _HAN.fullmatch(words[i - 1][0]) is not None
        )

    counting = _COUNT_WORD.search(words[at][0]) is not None
    after = [i for i in range(at + 1, min(at + 3, len(words))) if counting and noun(i)]
    before = [i for i in range(at - 1, max(-1, at - 4), -1) if noun(i) or measured(i)]
    pick = after[:1] or before[:1]
    if not pick:
        return None
    i = pick[0]
    return words[i - 1][0] + words[i][0] if measured(i) else words[i][0]


def _check_attribute(question: str, evidence: Sequence[Evidence]) -> Mismatch | None:
    """A Chinese question asks the value of something (成员, 女性) that neither the quotes, the
    sentence before them nor the title mention, not even one of its characters (增幅 is held by
    增长, 比赛 by 半决赛) that names what is measured rather than the measure (率, 额, 值…:
    召回率 is not held by 准确率): the quotes give another attribute of the same subject."""
    attribute = asked_attribute(question)
    if attribute is None:
        return None
    near = _near(evidence)
    # what is measured, not the measure: 召回率 is not held by 准确率, nor 产值 by 税额
    told = [c for c in attribute if c not in _MEASURE_CHARS] or list(attribute)
    if any(c in near for c in told):
        return None
    return Mismatch("attribute", attribute, "")


def _ordinals(text: str) -> list[tuple[float, str, str]]:
    """The ordinals a text states, with what they count and the words after them: 第四轮六场比赛
    → (4, 轮, 六场比赛…), 第6届 → (6, 届, …)."""
    out = []
    for m in _ORDINAL.finditer(text):
        value = _number(m.group(1))
        if value is not None:
            out.append((value, m.group(2), text[m.end() : m.end() + _ORDINAL_AFTER]))
    return out


def _check_ordinals(question: str, evidence: Sequence[Evidence]) -> Mismatch | None:
    """The question names an ordinal of something (第五轮, 第六届) and the quotes (with the
    sentence before each and its title) state another of the same (第四轮) and never the asked
    one. "The same" when the words after them share two characters, if the question's give two:
    第七届长三角…论坛 is another session of 第六届长三角…论坛, 第六届上证…评选 says nothing of it."""
    stated = _ordinals(_near(evidence))
    # 第一届 is a first, which the superlative check reads (第二届 is a later rank of it)
    for value, counted, after in _ordinals(fold_long(question)):
        if value == 1:
            continue
        # two Chinese characters after it say what it counts (第五轮比赛; not 第4轮，)
        named = any(len(run) >= 2 for run in _HAN.findall(after))
        same = [
            v
            for v, c, a in stated
            if c == counted and (not named or len(_shared_run(after, a)) >= 2)
        ]
        if same and value not in same:
            return Mismatch("ordinal", f"第{value:g}{counted}", f"第{min(same):g}{counted}")
    return None


def _rounds(text: str) -> set[str]:
    """The financing rounds a text names, upper case: A轮, B+轮, Pre-A轮, Series B → A, B+,
    PRE-A, B."""
    return {
        (m.group(1) or m.group(2)).upper().replace(" ", "")
        for m in _ROUND.finditer(fold_long(text))
    }


def _check_rounds(question: str, evidence: Sequence[Evidence]) -> Mismatch | None:
    """The question asks of one financing round (B轮, Series B) and the quotes (with the
    sentence before each) name another (A轮) and never the asked one: the 4000万元 quoted were
    raised in round A, not B."""
    asked = _rounds(question)
    stated = _rounds(_near(evidence))
    if not asked or not stated or asked & stated:
        return None
    zh = is_chinese(question)
    fmt = "{}轮".format if zh else "round {}".format
    return Mismatch(
        "ordinal",
        "、".join(fmt(r) for r in sorted(asked)),
        "、".join(fmt(r) for r in sorted(stated)),
    )


def _shared_run(question: str, text: str) -> str:
    """The longest run of Chinese characters `question` and `text` share (both folded)."""
    best = ""
    for run in _HAN.findall(question):
        for i in range(len(run)):
            j = i + len(best) + 1  # only a longer run can replace the best
            while j <= len(run) and run[i:j] in text:
                best = run[i:j]
                j += 1
    return best


def _check_subject(question: str, evidence: Sequence[Evidence]) -> Mismatch | None:
    """A Chinese question asks a figure in a unit, and a quote without one names more of what it
    is asked of than any quote giving one (read with the sentence before it and its title: 该园区…
    after a sentence naming it): the figure is of another subject (碳谷绿湾 asked and named by a
    quote, but the 家 come from a sentence on 奉贤's 化妆品企业). What is asked of it before the
    question word (`asked_attribute`: 建筑面积是多少) names no subject: a figure quote on another
    building's 建筑面积 shares it, and must not outdo the quote naming 西岸智塔 with it."""
    unit = wanted_unit(question)
    if unit is None:
        return None
    folded = fold_long(question)
    attribute = asked_attribute(question)
    asking = _ASK_WORD.search(folded)
    # an attribute before the question word (建筑面积是多少) is measured of the subject; the
    # thing counted after it (多少个平台) may name the subject itself (工业互联网平台)
    if attribute is not None and asking is not None and attribute not in folded[asking.end() :]:
        folded = folded.replace(attribute, "|")  # a break: no run spans it
    figures, others = _split_by_figure(unit, evidence)
    told = [len(_shared_run(folded, _near([ev]))) for ev in figures]
    other = max(
        (_shared_run(folded, fold_long(ev.quote)).strip(_PARTICLES) for ev in others),
        key=len,
        default="",
    )
    if not told or len(other) < _SUBJECT_RUN or len(other) <= max(told):
        return None
    return Mismatch("subject", other, "")


def _split_by_figure(
    unit: str, evidence: Sequence[Evidence]
) -> tuple[list[Evidence], list[Evidence]]:
    """The quotes stating a quantity in (a unit compatible with) `unit`, and the others: what
    the subject checks weigh against each other."""
    figures: list[Evidence] = []
    others: list[Evidence] = []
    for ev in evidence:
        held = any(_compatible(unit, x.dimension) for x in extract_quantities(ev.quote))
        (figures if held else others).append(ev)
    return figures, others


def _capitalised_words(question: str) -> list[str]:
    """An English question's capitalised words past its first (which any sentence capitalises)
    and not a month or weekday, lower case: the names it states (Zhengxu, Zhangjiang, Robot)."""
    words = _WORD_EN.findall(question)[1:]
    named = (w for w in words if _CAPITALISED.fullmatch(w) and not _CALENDAR.fullmatch(w))
    return list(dict.fromkeys(w.lower() for w in named))


def _names_held(names: Sequence[str], text: str) -> int:
    """How many of an English question's `names` a Chinese `text` (folded) names: spelled in
    its pinyin (正序 spells zhengxu) or by a headword CC-CEDICT glosses it with (机器人, robot)."""
    pinyin = spelled(text)
    return sum(w in pinyin or any(h in text for h in glossary().get(w, ())) for w in names)


def _check_subject_en(question: str, evidence: Sequence[Evidence]) -> Mismatch | None:
    """`_check_subject` for an English question, over its capitalised words: a quote without a
    figure in the asked unit names at least `_SUBJECT_NAMES` of them, more than any quote with
    one (read with the sentence before it and its title) — the figure is of another subject
    (Zhengxu Biotech's staff asked, 张江生物医药企业's 从业人员 quoted beside 正序生物落户张江)."""
    unit = wanted_unit(question)
    names = _capitalised_words(question)
    if unit is None or len(names) < _SUBJECT_NAMES:
        return None
    figures, others = _split_by_figure(unit, evidence)
    told = [_names_held(names, _near([ev])) for ev in figures]
    other = max((_names_held(names, fold_long(ev.quote)) for ev in others), default=0)
    if not told or other < _SUBJECT_NAMES or other <= max(told):
        return None
    return Mismatch("subject", " ".join(w.title() for w in names), "")


def _check_superlatives(
    question: str, q: Constraints, evidence: Sequence[Evidence]
) -> Mismatch | None:
    if not q.superlatives:
        return None
    conflicting: list[str] = []
    ranked_any = False  # some quote states a superlative or a top rank at all
    timed_any = False  # some quote states a first or a last (首家, 最早, 率先)
    for ev in evidence:
        groups, later = extract_superlatives(ev.quote)
        if groups & q.superlatives:
            return None
        timed_any |= bool(groups & {"first", "last"})
        # 最早一批 or 首个 single nothing out by size: a largest/smallest, or a top rank
        # stated otherwise (居首, 最受欢迎), does
        unranked = ev.quote
        for g in ("first", "last"):
            unranked = _SUPERLATIVE_RE[g].sub(" ", unranked)
        ranked_any |= bool(groups & {"max", "min"}) or _TOP_RANK.search(unranked) is not None
        opposite = {_OPPOSITE[g] for g in q.superlatives} & groups
        if opposite:
            conflicting += [
                m.group(0) for g in opposite for m in _SUPERLATIVE_RE[g].finditer(ev.quote)
            ]
        elif later and q.superlatives & {"first", "max"}:  # 第二大 is not 最大, second not first
            ranked = set(_RANKED.findall(question))
            # an English question does not say what it ranks (first season, first match…): only a
            # Chinese one that does (第一届, 最大) is held against a later rank
            conflicting += [
                m.group(0) for m in _LATER_RANK.finditer(ev.quote) if m.group(1) in ranked
            ]
    asked = [
        m.group(0) for g in sorted(q.superlatives) for m in _SUPERLATIVE_RE[g].finditer(question)
    ]
    if not conflicting:
        # 哪一个…最高: the quotes must single one out; an aggregate (55个园区…近110亿元) does not
        # (largest and smallest only: 第一届, 首次 name the subject more often than they ask)
        if q.superlatives & {"max", "min"} and _WHICH.search(question) and not ranked_any:
            return Mismatch("absent", "、".join(dict.fromkeys(asked)), "")
        # 哪个最早挂牌 asks which came first: some quote must say what did (not 第一届, 首次,
        # which name the subject more often than they ask)
        if (
            _WHICH.search(question)
            and _EARLIEST.search(question)
            and answer_type(question) != "time"  # 哪一年最早: any date answers
            and not timed_any
        ):
            return Mismatch("absent", "、".join(dict.fromkeys(asked)), "")
        return None
    return Mismatch(
        "superlative", "、".join(dict.fromkeys(asked)), "、".join(dict.fromkeys(conflicting))
    )


def mismatches(
    question: str, evidence: Sequence[Evidence], places: Gazetteer = NO_GAZETTEER
) -> list[Mismatch]:
    """Every kind of constraint the question states that the evidence contradicts (`places`:
    what the collection says lies within the places it names, `question_places`)."""
    if not evidence:
        return []
    zh = is_chinese(question)
    q = extract(question, places=zh)
    found = [
        _check_years(q, evidence, zh),
        _check_places(q, evidence, places) if zh else _check_places_en(question, evidence, places),
        _check_unit(question, evidence, zh),
        _check_quantities(q, evidence),
        _check_superlatives(question, q, evidence),
        _check_absent(question, evidence, zh),
        _check_attribute(question, evidence) if zh else None,
        _check_subject(question, evidence) if zh else _check_subject_en(question, evidence),
        _check_ordinals(question, evidence) if zh else None,
        _check_rounds(question, evidence),
    ]
    return [m for m in found if m is not None]


def message(found: Sequence[Mismatch], zh: bool) -> str:
    """One message naming, for each mismatch, what was asked and what the documents give."""
    parts = []
    for m in found:
        if zh:
            if m.kind == "year":
                parts.append(f"问题问的是{m.asked}，文档只给出{m.found}的数据")
            elif m.kind in ("unit", "ordinal"):
                parts.append(f"问题问的是{m.asked}，文档给出的是{m.found}")
            elif m.kind == "absent":
                parts.append(f"问题问的是{m.asked}，引用的原文没有给出")
            elif m.kind == "subject":
                parts.append(f"问题问的是“{m.asked}”的数字，引用中给出数字的原文说的不是它")
            elif m.kind == "attribute" or (m.kind == "place" and not m.found):
                parts.append(f"问题问的是“{m.asked}”，引用的原文没有提到")
            else:
                parts.append(f"问题说的是“{m.asked}”，文档给出的是“{m.found}”")
        elif m.kind == "year":
            parts.append(
                f"the question asks about {m.asked}; the documents only give figures for {m.found}"
            )
        elif m.kind == "unit":
            parts.append(f"the question asks for {m.asked}; the documents give {m.found}")
        elif m.kind == "absent":
            parts.append(f"the question asks for {m.asked}; the quoted text gives none")
        elif m.kind == "place" and not m.found:
            parts.append(f"the question is about {m.asked}; the quoted text does not name it")
        elif m.kind == "subject":
            parts.append(
                f"the question asks for a figure of {m.asked}; the quoted figures are not of it"
            )
        else:
            parts.append(f"the question says '{m.asked}'; the documents say '{m.found}'")
    text = ("；" if zh else "; ").join(parts)
    return text + ("。" if zh else ".")


def check_answer(answer: Answer, places: Gazetteer = NO_GAZETTEER) -> Answer:
    """`answer` with a `constraint_mismatch` warning when its quotes contradict the question
    (`places`: as for `mismatches`)."""
    if not answer.answerable or not answer.citations:
        return answer
    if any(w.code == CODE for w in answer.warnings):
        return answer
    found = mismatches(answer.question, evidence_for(answer.citations, answer.passages), places)
    if not found:
        return answer
    warning = Warning_(CODE, message(found, is_chinese(answer.question)))
    return dataclasses.replace(answer, warnings=(*answer.warnings, warning))


# --- what a question states that a passage never does (answerability signals) ---------------
UNSTATED = ("year_unstated", "name_unstated", "quantity_unstated", "unit_unmatched")


def question_places(question: str, lookup: TermTexts | None) -> Gazetteer:
    """What the question itself (浙中金华) and the chunks `lookup` returns for each place it names
    (its `english_names`' headwords, for an English question) say lies within those places."""
    if is_chinese(question):
        asked: Iterable[str] = extract_places(question)
    else:
        asked = [h for heads in english_names(question).values() for h in heads]
    learned = learn(asked, [question], lookup, _name_tags)
    return Gazetteer(
        {
            p: frozenset(_place_core(n) for n in names if _may_lie_in(n, p))  # 南浔区 → 南浔
            for p, names in learned.inside.items()
        }
    )


# runs around a place recur from question to question (上海 is followed by the same words)
_NAME_TAGS_CACHED = 8192


@functools.lru_cache(maxsize=_NAME_TAGS_CACHED)
def _name_tags(text: str) -> tuple[tuple[str, str], ...]:
    """jieba's tags of `text` (with its HMM: 张江 is in no dictionary), a word CC-CEDICT glosses
    as a common one (城市, 海洋) or a generic place (中国) tagged `x`: it names no place."""
    return tuple(
        (w, "x" if name_kind(w) == "common" or w in _GENERIC_PLACES else f)
        for w, f in _tagged(text)
    )


def _may_lie_in(name: str, place: str) -> bool:
    """CC-CEDICT does not contradict that `name` lies in `place`: it glosses one of them as no
    place, or puts `name` in `place` (上海市长三角… says nothing of 长三角 being in 上海)."""
    if name_kind(name) != "place" or name_kind(place) != "place":
        return True
    return bool(place_names(place) & within(name))


def unstated(
    question: str, context: str, sentence: str, places: Gazetteer = NO_GAZETTEER
) -> dict[str, float]:
    """How much of what `question` specifically states its answer's `context` (the passage the
    picked `sentence` is from, with its title) never states: signals for the answerability model
    (`rag.answer.abstain`), which tell a near-topic question (another year, place or
    organisation, quantity or unit than the documents give) from an answerable one.

    - `year_unstated`: the question names a year (or period) and the context does not speak of it
      (`_covers`): 1, or 0.5 when the context uses a relative year (今年), whose value it does not say,
      or states a period around it;
    - `name_unstated`: the share of the question's places and organisations (Chinese questions
      only, as in the check) the context never names, nor a place within them (CC-CEDICT's or
      the collection's: `places`);
    - `quantity_unstated`: the share of the question's stated quantities (超过100亿元) the context
      does not hold;
    - `unit_unmatched`: 1 when the question asks for a unit (多少小时, how many km) and the
      sentence states quantities, none in a compatible unit.
    """
    zh = is_chinese(question)
    q = extract(question, places=zh)
    out = dict.fromkeys(UNSTATED, 0.0)
    if q.years:
        years, relative = extract_years(context)
        asked = (min(lo for lo, _ in q.years), max(hi for _, hi in q.years))
        if not _covers(asked, years):
            # half for a year the context may hold without saying: a relative one (今年), or one
            # inside a period it gives the ends of
            inside = any(a < asked[0] and asked[1] < b for a, b in years)
            out["year_unstated"] = 0.5 if relative or inside else 1.0
    if q.places:
        folded = fold_long(context)
        absent = _not_within([p for p in q.places if p not in folded], folded, places)
        out["name_unstated"] = len(absent) / len(q.places)
    stated = [x for x in q.quantities if x.dimension != "bare"]
    if stated:
        held, values = extract_quantities(context), numbers(context)
        out["quantity_unstated"] = sum(not _held(x, held, values) for x in stated) / len(stated)
    unit = wanted_unit(question)
    if unit is not None:
        found = extract_quantities(sentence)
        if found and not any(_compatible(unit, x.dimension) for x in found):
            out["unit_unmatched"] = 1.0
    return out
