"""Property tests for the text path of ingestion: normalize → split into sentences → chunk.

The strategies mix what real documents contain (CJK and Latin text, digits, every sentence
terminator the splitter knows, closing quotes, newlines, full-width forms, list markers) with
what broken extractions contain (control and format characters, odd whitespace), plus plain
arbitrary Unicode.
"""

from __future__ import annotations

import itertools
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rag.ingest.chunk import chunk_spans, make_chunks
from rag.ingest.normalize import normalize_text
from rag.ingest.split import split_sentences
from rag.types import Span

CJK = "长三角区域物流科技创新联合攻关行动推動長三角更高質量一體化發展的是了在㐀"
LATIN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"
TERMINALS = "。！？；….!?;"
SOFT_BREAKS = "，,、：:"
CLOSERS = "”’」』）)]】\"'"
OPENERS = "“‘「『（(《【-—"
WHITESPACE = " \n\r\t\u3000\xa0\u2003"
FULL_WIDTH = "０１２９ＡＺａｚ＠％"
CONTROL = "\x00\x01\x07\x0b\x0c\x1b\x1c\x1f\x7f\x85\u200b\u200e\ufeff\u2028\U000e0001"

ALPHABET = (
    CJK
    + LATIN
    + DIGITS
    + TERMINALS
    + SOFT_BREAKS
    + CLOSERS
    + OPENERS
    + WHITESPACE
    + FULL_WIDTH
    + CONTROL
)
# Fragments that exercise the line-joining and splitting rules.
TOKENS = [
    "区域",
    "物流科技创新联合攻关行动，",
    "\n\n",
    "\n",
    "\r\n",
    "  ",
    "（一）",
    "一、",
    "1、",
    "2.",
    "第一章",
    "- ",
    "• ",
    "1.29万亿",
    "2.4平方公里",
    "Hello world",
    "wrapped\nline",
    "e.g. ",
    "Mr. Smith",
    "...",
    "……",
    "。”",
    "！」",
    "（作者：某某）",
    "https://example.com/a.b",
]

chars = st.sampled_from(ALPHABET)
mixed_text = st.lists(
    st.one_of(st.sampled_from(TOKENS), st.text(alphabet=chars, min_size=1, max_size=12)),
    max_size=40,
).map("".join)
# Long runs without any break force the hard cut in the splitter.
long_runs = st.lists(
    st.one_of(
        st.text(alphabet=CJK, min_size=20, max_size=120),
        st.sampled_from(TERMINALS + WHITESPACE),
    ),
    max_size=12,
).map("".join)
texts = st.one_of(
    st.text(max_size=300), st.text(alphabet=chars, max_size=300), mixed_text, long_runs
)
sizes = st.integers(min_value=1, max_value=80)

PROPERTY = settings(max_examples=300, deadline=None)


def _fold_width(ch: str) -> str:
    """Full-width ASCII letters and digits → half-width (an independent statement of the rule)."""
    cp = ord(ch)
    if 0xFF10 <= cp <= 0xFF19 or 0xFF21 <= cp <= 0xFF3A or 0xFF41 <= cp <= 0xFF5A:
        return chr(cp - 0xFEE0)
    return ch


def _visible(text: str) -> str:
    """What normalisation must keep: all but control/format characters and whitespace."""
    return "".join(
        _fold_width(ch) for ch in text if unicodedata.category(ch)[0] != "C" and not ch.isspace()
    )


def _uncovered(text: str, spans: list[Span]) -> list[int]:
    """Indices of non-whitespace characters of `text` that lie in none of `spans`."""
    covered = bytearray(len(text))
    for s in spans:
        covered[s.start : s.end] = b"\x01" * (s.end - s.start)
    return [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]


# --- normalize_text -------------------------------------------------------------------------


@PROPERTY
@given(texts)
# Found by this test: judged by its last physical line, a paragraph joined on a second pass.
@example("？-\n0\n㐀")
@example("中文，\n1、\n5")  # `1、` is a list item even when a digit follows on the next line
@example(
    "很长的一段文字，它被换行打断了所以这里没有标点符号结尾的情况下继续写\n结尾部分\n标题二\n正文。"
)
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once


@PROPERTY
@given(texts)
def test_normalize_output_is_clean(text: str) -> None:
    out = normalize_text(text)
    assert "\r" not in out
    assert all(ch == "\n" or unicodedata.category(ch)[0] != "C" for ch in out)
    assert not any(_fold_width(ch) != ch for ch in out), "full-width letters/digits left"
    assert "  " not in out
    for line in out.split("\n") if out else []:
        assert line, "empty line in output"
        assert line == line.strip(), f"untrimmed line {line!r}"


@PROPERTY
@given(texts)
def test_normalize_keeps_every_visible_character_in_order(text: str) -> None:
    out = normalize_text(text)
    assert "".join(ch for ch in out if not ch.isspace()) == _visible(text)


# --- split_sentences ------------------------------------------------------------------------


def _check_sentences(text: str, spans: list[Span], max_len: int) -> None:
    prev_end = 0
    for s in spans:
        assert 0 <= prev_end <= s.start < s.end <= len(text), (s, prev_end, len(text))
        assert s.end - s.start <= max_len
        assert not text[s.start].isspace() and not text[s.end - 1].isspace(), "untrimmed span"
        prev_end = s.end
    assert _uncovered(text, spans) == []


@PROPERTY
@given(texts, sizes)
# Found by this test: max_len=1 looped forever; a hard cut could end a sentence on a space.
@example("abc，d", 1)
@example("0" * 67 + " 0", 2)
def test_sentences_are_ordered_trimmed_bounded_and_cover_the_text(text: str, max_len: int) -> None:
    _check_sentences(text, split_sentences(text, max_len=max_len), max_len)
    normalized = normalize_text(text)
    _check_sentences(normalized, split_sentences(normalized, max_len=max_len), max_len)


@PROPERTY
@given(texts)
def test_sentences_with_default_max_len(text: str) -> None:
    _check_sentences(text, split_sentences(text), 1000)


# --- chunk_spans / make_chunks ----------------------------------------------------------------


def _check_chunks(text: str, chunks: list[Span], size: int, overlap: int) -> None:
    sentences = split_sentences(text, max_len=size)
    starts = {s.start for s in sentences}
    ends = {s.end for s in sentences}
    if not text.strip():
        assert chunks == []
        return
    assert chunks, "non-blank text gave no chunks"
    for c in chunks:
        assert 0 <= c.start < c.end <= len(text)
        assert c.end - c.start <= size, "chunk longer than size"
        assert c.start in starts and c.end in ends, (
            "chunk does not start/end on a sentence boundary"
        )
    for a, b in itertools.pairwise(chunks):
        assert b.start > a.start, "chunk does not advance"
        assert b.end > a.end, "chunk holds nothing new (it lies inside the previous one)"
        assert b.start <= a.end or text[a.end : b.start].isspace(), "gap between chunks"
        if overlap == 0:
            assert b.start >= a.end, "chunks overlap with overlap=0"
    assert _uncovered(text, chunks) == []


@PROPERTY
@given(texts, sizes, st.integers(min_value=0, max_value=3))
# Found by this test: the overlap sentence alone made a chunk inside the previous one.
@example("aaa。bbbb。cccccccccc。", 11, 1)
def test_chunk_spans_properties(text: str, size: int, overlap: int) -> None:
    _check_chunks(text, chunk_spans(text, size, overlap), size, overlap)
    normalized = normalize_text(text)
    _check_chunks(normalized, chunk_spans(normalized, size, overlap), size, overlap)


@PROPERTY
@given(texts, st.integers(min_value=20, max_value=500), st.integers(min_value=0, max_value=3))
@example("0" * 39 + "\r%", 20, 0)  # was a chunk with a trailing space
def test_make_chunks_slices_the_text_exactly(text: str, size: int, overlap: int) -> None:
    normalized = normalize_text(text)
    chunks = make_chunks("doc", normalized, size, overlap)
    assert [Span(c.start, c.end) for c in chunks] == chunk_spans(normalized, size, overlap)
    for n, c in enumerate(chunks):
        assert c.doc_id == "doc"
        assert c.ord == n
        assert c.chunk_id == f"doc:{n}"
        assert c.text == normalized[c.start : c.end]
        assert c.text.strip() == c.text


def test_blank_text_has_no_sentences_or_chunks() -> None:
    for blank in ["", " ", "\n\n", "\u3000\t\r\n"]:
        assert split_sentences(blank) == []
        assert chunk_spans(blank) == []
        assert make_chunks("d", blank) == []
        assert normalize_text(blank) == ""


def test_sizes_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="max_len must be at least 1"):
        split_sentences("正文。", max_len=0)
    with pytest.raises(ValueError, match="max_len must be at least 1"):
        chunk_spans("正文。", size=0)


def test_decimal_points_do_not_end_sentences() -> None:
    text = "贸易额达1.29万亿元。占地2.4平方公里！Prices rose 3.5 percent. Then fell."
    got = [text[s.start : s.end] for s in split_sentences(text)]
    assert got == [
        "贸易额达1.29万亿元。",
        "占地2.4平方公里！",
        "Prices rose 3.5 percent.",
        "Then fell.",
    ]


def test_overlong_sentence_is_cut_at_a_comma_then_hard() -> None:
    text = "甲" * 30 + "，" + "乙" * 30 + "。"
    spans = split_sentences(text, max_len=40)
    assert [text[s.start : s.end] for s in spans] == ["甲" * 30 + "，", "乙" * 30 + "。"]
    hard = "丙" * 95
    assert [s.end - s.start for s in split_sentences(hard, max_len=40)] == [40, 40, 15]


def test_chunks_overlap_by_one_sentence() -> None:
    sentences = [f"第{n}句内容写在这里。" for n in range(10)]  # 10 characters each
    text = "".join(sentences)
    chunks = make_chunks("d", text, size=30, overlap=1)
    assert [c.text for c in chunks[:2]] == ["".join(sentences[0:3]), "".join(sentences[2:5])]
    assert chunks[-1].end == len(text)
