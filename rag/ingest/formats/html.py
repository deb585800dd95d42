"""HTML (`.html`, `.htm`): the page's main content, without navigation, menus and footers.

The bytes are decoded by `rag.ingest.decode`, told the page's own `<meta charset>` (or XML
declaration). trafilatura finds the main content (paragraphs, headings, lists and tables; one
line each, table rows as `| a | b |`) and the title (`og:title`, `<title>` without the site name,
or the `<h1>`). A page where it finds no main content is kept whole (all visible text), so a
short page is not lost. Each line is a real paragraph, so lines are normalised one by one and
never joined (`normalize_lines`).
"""

from __future__ import annotations

import re

from rag.ingest.decode import decode_bytes
from rag.ingest.formats.base import Loaded, first_line_title
from rag.ingest.limits import DEFAULT_LIMITS, ParseLimits
from rag.ingest.normalize import normalize_lines

_SNIFF = 4096  # the declaration is in the head; look no further
_META_CHARSET = re.compile(rb"<meta\b[^>]*?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.I)
_XML_ENCODING = re.compile(rb"^\s*<\?xml\b[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9_.:-]+)", re.I)
# The separator row trafilatura writes under a table's header row (`|---|---|`).
_TABLE_RULE = re.compile(r"^\s*\|?(?:\s*:?-+:?\s*\|)+\s*:?-*:?\s*$")


def load(source: str, data: bytes, limits: ParseLimits = DEFAULT_LIMITS) -> Loaded:
    """Decode the page and extract its main content and title."""
    html, encoding = decode_bytes(data, source, declared_charset(data))
    text, title = _extract(html)
    lines = [ln for ln in text.split("\n") if not _TABLE_RULE.match(ln)]
    body = normalize_lines(lines)
    return Loaded(body, (title or "").strip() or first_line_title(body), encoding)


def declared_charset(data: bytes) -> str | None:
    """The encoding named by the page's `<meta charset>` / `http-equiv` or XML declaration."""
    head = data[:_SNIFF]
    m = _XML_ENCODING.match(head) or _META_CHARSET.search(head)
    return m.group(1).decode("ascii") if m else None


def _extract(html: str) -> tuple[str, str | None]:
    """(main text, title); all visible text when no main content is found."""
    # Imported here, not at the top: trafilatura costs ~0.3 s that commands reading no HTML should
    # not pay.
    from trafilatura import bare_extraction, html2txt

    doc = bare_extraction(html, include_comments=False, include_tables=True, with_metadata=True)
    text = getattr(doc, "text", None) or ""
    title = getattr(doc, "title", None)
    if not text.strip():
        text = html2txt(html) or ""
    return text, title
