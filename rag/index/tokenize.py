"""Lexical tokens for BM25: traditional folded to simplified (OpenCC), jieba search mode.

Both the index and the query side go through `tokenize`, so a simplified question matches a
traditional passage and vice versa. Punctuation, whitespace and function words are dropped;
Latin words are lower-cased.
"""

from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache

import jieba
import opencc

jieba.setLogLevel(logging.WARNING)
_JIEBA_LOCK = threading.Lock()
_WORD = re.compile(r"[0-9a-z\u3400-\u9fff\uf900-\ufaff]", re.IGNORECASE)

# Function words and question words: they carry no topic, and question words never occur in
# the answering passage. Kept small on purpose: BM25's IDF handles the rest.
STOPWORDS = frozenset(
    [
        "的",
        "了",
        "是",
        "在",
        "和",
        "与",
        "及",
        "也",
        "都",
        "就",
        "而",
        "或",
        "等",
        "对",
        "把",
        "被",
        "让",
        "从",
        "于",
        "以",
        "之",
        "其",
        "这",
        "那",
        "个",
        "着",
        "过",
        "吗",
        "呢",
        "吧",
        "啊",
        "什么",
        "多少",
        "哪些",
        "哪个",
        "哪里",
        "哪儿",
        "哪",
        "谁",
        "几",
        "怎么",
        "怎样",
        "如何",
        "为什么",
        "是否",
        "有没有",
        "是不是",
        "the",
        "a",
        "an",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "by",
        "with",
        "as",
        "from",
        "that",
        "this",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "did",
        "do",
        "does",
        "has",
        "have",
        "had",
        "it",
        "its",
    ]
)

_t2s = opencc.OpenCC("t2s")


@lru_cache(maxsize=4096)
def fold(text: str) -> str:
    """Fold traditional Chinese to simplified and Latin to lower case (used for matching only)."""
    return str(_t2s.convert(text)).lower()


def fold_long(text: str) -> str:
    """`fold` without the cache, for chunk-sized texts."""
    return str(_t2s.convert(text)).lower()


_CONTENT = re.compile(r"[0-9a-z\u3400-\u9fff\uf900-\ufaff]")
# Question words and particles as a pattern (longest first): never in an answering sentence.
_QUESTION_WORDS = re.compile(
    "|".join(sorted((w for w in STOPWORDS if _CONTENT.search(w)), key=len, reverse=True))
)


def content_chars(folded: str) -> list[str]:
    """The letters, digits and CJK characters of a folded text, in order."""
    return _CONTENT.findall(folded)


def strip_question_words(folded: str) -> str:
    """A folded question with its question words and particles blanked out."""
    return _QUESTION_WORDS.sub(" ", folded)


def bigrams(folded: str) -> set[str]:
    """Character bigrams of a folded text's content characters (segmentation-free matching)."""
    chars = "".join(_CONTENT.findall(folded))
    return {chars[i : i + 2] for i in range(len(chars) - 1)}


def bigram_share(wanted: set[str], folded: str) -> float:
    """Share of the `wanted` bigrams (a question's) that occur in a folded text."""
    return sum(b in folded for b in wanted) / len(wanted) if wanted else 0.0


def tokenize(text: str) -> list[str]:
    """The BM25 tokens of `text`."""
    folded = fold(text) if len(text) < 512 else fold_long(text)
    with _JIEBA_LOCK:  # jieba's lazy initialisation is not thread-safe
        words = list(jieba.cut_for_search(folded))
    return [w for w in (w.strip() for w in words) if w and _WORD.search(w) and w not in STOPWORDS]


def warm_up() -> None:
    """Load jieba's dictionary now rather than on the first query."""
    tokenize("预热")
