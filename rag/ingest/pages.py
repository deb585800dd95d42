"""Page spans of paged documents (PDF): which character range of the stored text each page covers.

A paged document's text is its pages' (normalised) texts joined by a blank line, and its
`metadata["pages"]` is `[[start, end], ...]`, one half-open span per page, in page order, into that
stored text. A page with no text has an empty span at the position where it would be.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import Any

from rag.types import PageSpan

PAGE_SEPARATOR = "\n\n"


def join_pages(pages: Sequence[str]) -> tuple[str, list[list[int]]]:
    """Join page texts into one text; return it and each page's `[start, end]` offsets into it.

    Blank pages add no separator (no run of empty lines), but keep their place in the list.
    """
    text = ""
    spans: list[list[int]] = []
    for page in pages:
        if page.strip():
            if text:
                text += PAGE_SEPARATOR
            spans.append([len(text), len(text) + len(page)])
            text += page
        else:
            spans.append([len(text), len(text)])
    return text, spans


def page_spans(metadata: Mapping[str, Any]) -> tuple[PageSpan, ...]:
    """The page spans recorded in a document's metadata; `()` when it has none.

    The `pages` key can come from a caller's own metadata too (e.g. a page count), so anything
    that is not a well-formed list of ordered spans counts as no pages rather than wrong ones.
    """
    raw = metadata.get("pages")
    if not isinstance(raw, list | tuple) or not raw:
        return ()
    out: list[PageSpan] = []
    last = 0
    for n, span in enumerate(raw, 1):
        if (
            not isinstance(span, list | tuple)
            or len(span) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in span)
            or not last <= span[0] <= span[1]
        ):
            return ()
        out.append(PageSpan(n, span[0], span[1]))
        last = span[1]
    return tuple(out)


def page_at(spans: Sequence[PageSpan], offset: int) -> int | None:
    """The (1-based) page holding character `offset`, or None (no pages, or outside them all).

    An offset in the separator between two pages counts to the page before it.
    """
    filled = [s for s in spans if s.end > s.start]
    i = bisect.bisect_right([s.start for s in filled], offset) - 1
    if i < 0 or offset >= filled[-1].end:
        return None
    return filled[i].page


def page_of(metadata: Mapping[str, Any], offset: int) -> int | None:
    """The (1-based) page of a document (given its metadata) that holds character `offset`."""
    return page_at(page_spans(metadata), offset)


def pages_within(spans: Sequence[PageSpan], start: int, end: int) -> tuple[PageSpan, ...]:
    """The non-empty pages that overlap `[start, end)`."""
    return tuple(s for s in spans if s.end > s.start and s.start < end and start < s.end)
