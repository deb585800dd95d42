"""Remove the noise PDF text extraction leaves on every page, before the pages are normalised.

* running headers and footers: a line among the first or last `EDGE_LINES` lines of a page that
  recurs there on most pages (or on most odd or most even pages, at least three, for books that
  alternate them).
  Lines are compared with their digits masked, so `上海市人民政府公报 第3期` matches on every page
  and a page number inside a header does not hide it;
* page numbers standing alone on a line at a page's top or bottom: `- 12 -`, `第12页`,
  `第12页 共30页`, `12/30`, `Page 12 of 30`; a bare `12` only when it recurs there (the running
  line `#`) or the document has a single page, because a bare number can also be a table cell;
* a Latin word hyphenated across a line break (`infor-` / `mation`) is joined again.

Only whole lines are removed (and the hyphen of a split word); no word is ever rewritten.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

EDGE_LINES = 3  # how deep into a page's top and bottom headers, footers and numbers are looked for
_MOST = 0.6  # share of pages a line must recur on to be a running header/footer

_NUM = r"(?:\d{1,4}|[一二三四五六七八九十百零〇]{1,5})"
_DECORATED_PAGE_NUMBER = re.compile(
    rf"^(?:[-–—~·•]+\d{{1,4}}[-–—~·•]+"  # -12-, — 12 —
    rf"|第{_NUM}页(?:[,，/]?共{_NUM}页)?"  # 第12页, 第12页共30页
    rf"|共{_NUM}页[,，/]?第{_NUM}页"  # 共30页第12页
    r"|\d{1,4}/\d{1,4}"  # 12/30
    r"|(?:page|p\.)\d{1,4}(?:(?:of|/)\d{1,4})?"  # Page 12, Page 12 of 30, p.12
    r")$",
    re.IGNORECASE,
)
_BARE_NUMBER = re.compile(r"^\d{1,4}$")
_DIGITS = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")
# A Latin word split at a line end by a hyphen (or soft hyphen) and continued in lower case.
_HYPHENATED = re.compile(r"(?<=[A-Za-z])[-\u00ad]\n(?=[a-z])")


def clean_pages(pages: Sequence[str]) -> list[str]:
    """Each page's text without running headers/footers and page numbers, split words rejoined.

    Blank lines are dropped (normalisation ignores them anyway); the other lines are kept as
    extracted, so the result still needs `normalize_text`.
    """
    lines = [[ln for ln in page.split("\n") if ln.strip()] for page in pages]
    headers = _running([page[:EDGE_LINES] for page in lines])
    footers = _running([page[-EDGE_LINES:] for page in lines])
    single = len(pages) == 1
    out = []
    for page in lines:
        top, bottom = 0, len(page)
        while top < min(EDGE_LINES, bottom) and _is_noise(page[top], headers, single):
            top += 1
        while bottom > max(top, len(page) - EDGE_LINES) and _is_noise(
            page[bottom - 1], footers, single
        ):
            bottom -= 1
        out.append(join_hyphenated("\n".join(page[top:bottom])))
    return out


def join_hyphenated(text: str) -> str:
    """Join Latin words hyphenated across a line break: `infor-\\nmation` → `information`."""
    return _HYPHENATED.sub("", text)


def is_page_number(line: str) -> bool:
    """A line that is only a decorated page number (`- 12 -`, `第12页`, `12/30`, `Page 12`)."""
    return bool(_DECORATED_PAGE_NUMBER.match(_key_text(line)))


def _key_text(line: str) -> str:
    """The line with widths unified (NFKC: `１２` → `12`) and every space removed."""
    return _SPACE.sub("", unicodedata.normalize("NFKC", line))


def _key(line: str) -> str:
    """What running lines are compared by: spaces gone, digits masked, case folded."""
    return _DIGITS.sub("#", _key_text(line)).casefold()


def _running(edges: list[list[str]]) -> set[str]:
    """Keys of lines that recur in the given edge (top or bottom lines) of most pages."""
    if len(edges) < 2:
        return set()
    found: set[str] = set()
    # All pages, then odd and even pages alone (books alternate their running heads). A line on
    # two pages of the same parity is too weak a sign on its own: parity needs three.
    for group, least in ((edges, 2), (edges[0::2], 3), (edges[1::2], 3)):
        counts = Counter(k for edge in group for k in {_key(ln) for ln in edge})
        need = max(least, math.ceil(_MOST * len(group)))
        found |= {k for k, c in counts.items() if c >= need}
    return found


def _is_noise(line: str, running: set[str], single_page: bool) -> bool:
    """A header/footer line or a page number (the line is at a page's top or bottom)."""
    if _key(line) in running or is_page_number(line):
        return True
    return single_page and bool(_BARE_NUMBER.match(_key_text(line)))
