"""Normalise extracted text: repair lines broken mid-sentence, unify character widths.

The result is the *stored* text that every chunk offset points into. The words are never
rewritten and the script is kept (traditional stays traditional; folding to simplified happens
only inside the lexical index). What changes:

* line endings → `\\n`; control characters dropped; tabs, NBSP and ideographic spaces → space;
  runs of spaces collapsed; each line trimmed;
* full-width ASCII letters and digits (`１２Ａ`) → half-width (`12A`); CJK punctuation is kept;
* a paragraph broken by PDF extraction (`…；区域` / blank line / `物流科技…`) is joined again,
  while headings and list items keep their own lines. A line is taken as broken when it stops
  mid-clause (`，`), leaves a bracket or quote open (`达成《…人民政府 上`), holds a comma and is
  followed by a line opening with a sentence's last word or two (`…，是…重大战略任` / `务。`),
  or, in Chinese, is long or already holds finished sentences. Paragraphs are separated by one
  `\\n`.
  Given the page's `line_width` (the measure of its full lines, `line_measure`), a line that fills
  it and ends mid-sentence is a wrapped one and is joined to the next even when it is short (an A4
  page of 三号 type holds 28 characters a line).

`normalize_lines` does the same for formats whose lines are known paragraphs (DOCX, HTML), without
the joining.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

# Sentence-final punctuation (optionally followed by closing quotes/brackets): a line ending so is complete.
_TERMINAL_END = re.compile(r"[。！？!?；;…:：][”’」』）)\]】\"']*$")
# So is a bracketed aside after a finished sentence, or one standing alone (`…。（作者：某某）`).
_ASIDE_END = re.compile(r"(?:^|[。！？!?；;…])[（(][^（）()]*[）)]$")
_TAIL = 256  # the end checks look at most this far back (paragraphs can be long)
# A line cannot start a paragraph with these: it continues the previous line.
_CONTINUATION_START = re.compile(r"^[，,。、；;：:！!？?）)」』”’】\]％%]")
# A line ending in these stops mid-clause.
_OPEN_END = re.compile(r"[，,、“‘「『（(《【—\-－]$")
# A line opening with the last word of a sentence (`务。上海在…`): no paragraph starts so.
_SENTENCE_TAIL_START = re.compile(r"^[^\s，,。、；;：:！!？?]{1,3}[。！？!?；;]")
_CLAUSE = re.compile(r"[，,、]")  # a line holding a clause mark is prose (or a two-part heading)
# Sentence punctuation inside a line marks it as running prose, not a heading.
_INNER_TERMINAL = re.compile(r"[。！？；]")
# List items and section markers start their own line.
_ENUMERATOR = re.compile(
    r"^(?:[一二三四五六七八九十]+[、.．]|[（(][一二三四五六七八九十\d]+[)）]|\d+(?:、|[.．)](?!\d))|"
    r"第[一二三四五六七八九十百\d]+[章节条部分]|[-•·●■◆*]\s)"
)
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef“”‘’《》]")
# Pairs a heading or title closes on its line: a line leaving one open goes on in the next.
_PAIRS = (
    ("《", "》"),
    ("“", "”"),
    ("（", "）"),
    ("(", ")"),
    ("「", "」"),
    ("【", "】"),
    ("‘", "’"),
)
_LONG_PROSE_LINE = 40  # characters; headings and titles are shorter, wrapped prose lines longer

# A line this close to the measure (in display width: CJK 1, Latin and digits ½) fills it.
_FULL_LINE_SLACK = 2.5
_MIN_MEASURE = 12  # narrower "full" lines are table cells or verse, not wrapped prose
_MIN_FULL_LINES = 2  # the measure must be seen on at least this many lines

# Full-width digits and Latin letters → ASCII, one character for one (`str.translate` table).
FULLWIDTH_ALNUM: dict[int, int] = {
    cp: cp - 0xFEE0
    for first, end in ((0xFF10, 0xFF1A), (0xFF21, 0xFF3B), (0xFF41, 0xFF5B))  # 0-9, A-Z, a-z
    for cp in range(first, end)
}
_WIDTH_TABLE: dict[int, int | None] = {
    **FULLWIDTH_ALNUM,
    **{0x3000: 0x20, 0x00A0: 0x20, 0x09: 0x20, 0x0B: 0x20, 0x0C: 0x20, 0xFEFF: None},
}
_SPACES = re.compile(r" {2,}")


def normalize_text(text: str, *, line_width: float | None = None) -> str:
    """Return the cleaned, paragraph-repaired text (see module docstring); `line_width` is the
    measure of the text's full lines when known (PDF pages: `line_measure`)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.translate(_WIDTH_TABLE)
    # Drop remaining control/format characters except newline (they break offsets and tokenizers).
    text = "".join(ch for ch in text if ch == "\n" or unicodedata.category(ch)[0] != "C")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    paragraphs: list[str] = []
    last = ""  # the last physical line
    for line in lines:
        if not line:
            continue
        # Judge against the whole paragraph so far, not its last physical line: the output holds
        # only paragraphs, so this is what makes normalize_text idempotent.
        if paragraphs and (
            _should_join(paragraphs[-1], line)
            or (line_width is not None and _wraps(last, paragraphs[-1], line, line_width))
        ):
            paragraphs[-1] += _joiner(paragraphs[-1], line) + line
        else:
            paragraphs.append(line)
        last = line
    return "\n".join(paragraphs)


def display_width(line: str) -> float:
    """Width of a line in em: wide (CJK, full-width) characters 1, the others ½."""
    return sum(1.0 if unicodedata.east_asian_width(c) in "WF" else 0.5 for c in line)


def line_measure(lines: Iterable[str]) -> float | None:
    """The measure of wrapped prose in `lines` (a PDF's): the widest display width that at
    least `_MIN_FULL_LINES` lines reach within `_FULL_LINE_SLACK`; None when there is none."""
    widths = sorted((display_width(ln.strip()) for ln in lines), reverse=True)
    for i, w in enumerate(widths):
        if w < _MIN_MEASURE:
            break
        near = sum(1 for v in widths[i : i + _MIN_FULL_LINES] if w - v <= _FULL_LINE_SLACK)
        if near >= _MIN_FULL_LINES:
            return w
    return None


def _wraps(last: str, paragraph: str, nxt: str, line_width: float) -> bool:
    """`last` fills the measure and its paragraph stops mid-sentence: `nxt` goes on with it."""
    return (
        display_width(last) >= line_width - _FULL_LINE_SLACK
        and not _TERMINAL_END.search(paragraph, max(0, len(paragraph) - _TAIL))
        and not _ENUMERATOR.match(nxt)
    )


def normalize_lines(lines: Iterable[str]) -> str:
    """Normalise text whose line ends are real paragraph ends (DOCX paragraphs, HTML blocks, table
    rows): each line is cleaned on its own and never joined to the next one; blank ones go."""
    return "\n".join(p for p in (normalize_text(line) for line in lines) if p)


def _should_join(prev: str, nxt: str) -> bool:
    """Decide whether the line `nxt` continues the paragraph `prev`."""
    tail = max(0, len(prev) - _TAIL)  # `^` still means the paragraph's start, `$` its end
    if _TERMINAL_END.search(prev, tail) or _ASIDE_END.search(prev, tail):
        return False
    if _CONTINUATION_START.match(nxt):
        return True
    if _ENUMERATOR.match(nxt):
        return False
    if _OPEN_END.search(prev[-1]) or _unclosed(prev[tail:]):
        return True
    if _CJK.search(prev[-1]) and _SENTENCE_TAIL_START.match(nxt) and _CLAUSE.search(prev, tail):
        return True
    if _CJK.search(prev[-1]) or _CJK.search(nxt[0]):
        # Wrapped Chinese prose: a long paragraph, or one that already holds finished sentences.
        return len(prev) >= _LONG_PROSE_LINE or bool(_INNER_TERMINAL.search(prev))
    # Latin text wrapped mid-sentence: next line starts lower-case.
    return prev[-1].isalnum() and nxt[0].islower()


def _unclosed(text: str) -> bool:
    """`text` opens a bracket or quote it does not close (`达成《上海市松江区人民政府 上`)."""
    return any(text.count(a) > text.count(b) for a, b in _PAIRS)


def _joiner(prev: str, nxt: str) -> str:
    """Join CJK without a space; Latin words with one; a hyphenated break with none."""
    a, b = prev[-1], nxt[0]
    if a in "-－" or _CJK.match(a) or _CJK.match(b):
        return ""
    return " "
