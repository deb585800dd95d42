"""Split text into sentences (Chinese and English), as `Span`s into the text.

Boundaries: after `。！？!?；;…` (and any closing quotes/brackets that follow), after `.` when a
space or the end follows (so `1.29万亿` and `2.4平方公里` stay whole), and at every newline. A `.`
after an initial or a common abbreviation (`Thomas R. Holtz`, `Blumea riparia var. ...`, `e.g.`,
`Dr.`) ends nothing.
Sentences longer than `max_len` are cut again at commas, then hard, so no span exceeds it.
"""

from __future__ import annotations

import re

from rag.types import Span

# Words after which a full stop is an abbreviation's, not a sentence end (lower-cased).
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "st",
        "prof",
        "jr",
        "sr",
        "vs",
        "var",
        "subsp",
        "ssp",
        "cf",
        "al",
        "e.g",
        "i.e",
        "no",
        "fig",
        "vol",
        "pp",
        "ca",
        "approx",
    ]
)
_BOUNDARY = re.compile(
    r"(?:[。！？!?；;]+|…+|\.{3,}|(?<!\d)\.(?=\s|$)|\.(?=\s+[A-Z\"“]))[”’」』）)\]】\"']*|\n"
)
_WORD_BEFORE = re.compile(r"(?:^|[^A-Za-z.])([A-Za-z](?:[A-Za-z.]*[A-Za-z])?)$")


def _abbreviation(text: str, dot: int) -> bool:
    """The `.` at `text[dot]` closes an initial (a single capital) or a known abbreviation."""
    if text[dot] != ".":
        return False
    m = _WORD_BEFORE.search(text, max(0, dot - 12), dot)
    if m is None:
        return False
    word = m.group(1)
    return (len(word) == 1 and word.isupper()) or word.lower() in _ABBREVIATIONS


_SOFT = re.compile(r"[，,、：:]")


def split_sentences(text: str, max_len: int = 1000) -> list[Span]:
    """Return the non-empty sentence spans of `text`, in order, whitespace trimmed off both ends."""
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    spans: list[Span] = []
    pos = 0
    for m in _BOUNDARY.finditer(text):
        if _abbreviation(text, m.start()):
            continue
        _emit(text, pos, m.end(), max_len, spans)
        pos = m.end()
    _emit(text, pos, len(text), max_len, spans)
    return spans


def _emit(text: str, start: int, end: int, max_len: int, out: list[Span]) -> None:
    """Append the trimmed span `[start, end)`, cut into pieces of at most `max_len`."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start >= end:
        return
    while end - start > max_len:
        # Prefer the last comma-like break in the window; else cut hard.
        window = text[start : start + max_len]
        cut = max((m.end() for m in _SOFT.finditer(window)), default=0)
        if cut == 0 or cut < max_len // 2:  # no comma, or too early: cut hard (0 would loop)
            cut = max_len
        piece_end = start + cut
        while text[piece_end - 1].isspace():  # a hard cut can land after a space
            piece_end -= 1
        out.append(Span(start, piece_end))
        start += cut
        while start < end and text[start].isspace():
            start += 1
    if start < end:
        out.append(Span(start, end))


SENTENCE_MAX = 300  # characters; longer sentences are cut (at commas where possible)
SENTENCE_MIN = 4  # shorter fragments are not embedded or quoted on their own


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """The `(start, end)` of each answer-sized sentence of a chunk, as embedded and quoted."""
    return [
        (s.start, s.end)
        for s in split_sentences(text, SENTENCE_MAX)
        if s.end - s.start >= SENTENCE_MIN
    ]
