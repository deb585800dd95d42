"""PDF (`.pdf`): the text layer of every page, cleaned, normalised and joined with page spans.

Text comes from pypdf (it maps CID fonts such as the Adobe-GB1 `STSong-Light` back to Unicode
exactly). Each page is cleaned (`rag.ingest.clean`: running headers/footers, page numbers,
hyphenated words) and normalised on its own — lines as wide as the document's measure that
stop mid-sentence are joined to the next (`line_measure`) — then the pages are joined by a blank line and
`metadata["pages"]` records each page's span of the stored text (`rag.ingest.pages`).

Refused with a named error: a password-protected PDF (`EncryptedDocument`; one that opens with an
empty password, as "protected" PDFs that only restrict printing or copying do, is read), a damaged
or truncated one (`CorruptDocument`), one whose pages hold no text (`NoTextLayer`: a scan), and
one with more pages or text than `ParseLimits` allow (`DocumentTooLarge`: the page count is read
from the page tree before any page is, and the text is counted page by page as it is extracted).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from rag.errors import (
    CorruptDocument,
    DocumentTooLarge,
    EncryptedDocument,
    NoTextLayer,
    RagError,
)
from rag.ingest.clean import clean_pages
from rag.ingest.formats.base import Loaded, brief_reason, first_line_title
from rag.ingest.limits import DEFAULT_LIMITS, ParseLimits
from rag.ingest.normalize import line_measure, normalize_text
from rag.ingest.pages import join_pages

if TYPE_CHECKING:
    from pypdf import PdfReader

_HEADER_WINDOW = 1024  # readers accept junk before `%PDF-` within the first kilobyte


def load(source: str, data: bytes, limits: ParseLimits = DEFAULT_LIMITS) -> Loaded:
    """Extract, clean and normalise every page; the title is the first line of the text."""
    raw = page_texts(source, data, limits)
    if not any(page.strip() for page in raw):
        raise _no_text(source, len(raw))
    pages = clean_pages(raw)
    # one measure for the document: a page of two lines cannot show its own
    width = line_measure(line for page in pages for line in page.split("\n"))
    text, spans = join_pages([normalize_text(page, line_width=width) for page in pages])
    if not text.strip():  # nothing but page numbers: the body is images
        raise _no_text(source, len(raw))
    return Loaded(text, first_line_title(text), "", {"pages": spans})


def page_texts(source: str, data: bytes, limits: ParseLimits = DEFAULT_LIMITS) -> list[str]:
    """The raw extracted text of each page, in page order."""
    if b"%PDF-" not in data[:_HEADER_WINDOW]:
        raise CorruptDocument(f"{source}: not a PDF file (no %PDF- header)")
    # Imported here, not at the top: pypdf costs ~0.3 s that commands reading no PDF should not pay.
    from pypdf import PasswordType, PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise EncryptedDocument(
                f"{source}: the PDF is encrypted (password-protected); decrypt it first, "
                "e.g. qpdf --decrypt --password=… in.pdf out.pdf"
            )
        # The page tree's own count first: listing 100,000 pages takes pypdf ~40 s, reading one
        # number ~1 s. A count that lies is caught by the length of the list.
        _check_pages(source, _declared_pages(reader), limits)
        pages = list(reader.pages)
        _check_pages(source, len(pages), limits)
    except RagError:
        raise
    except Exception as exc:  # a damaged file makes pypdf raise almost anything
        raise CorruptDocument(
            f"{source}: the PDF is damaged or truncated and cannot be read ({brief_reason(exc)})"
        ) from exc
    if not pages:
        raise CorruptDocument(f"{source}: the PDF has no pages")
    texts = []
    chars = 0
    for n, page in enumerate(pages, 1):
        try:
            texts.append(page.extract_text() or "")
        except Exception as exc:  # as above, for one page's content stream
            raise CorruptDocument(
                f"{source}: page {n} of the PDF is damaged and cannot be read ({brief_reason(exc)})"
            ) from exc
        # Counted as it comes: a few KB of compressed content can draw millions of characters.
        chars += len(texts[-1])
        limits.check_chars(source, chars)
    return texts


def _declared_pages(reader: PdfReader) -> int | None:
    """The page count the document's page tree states (None when it states none readable)."""
    try:
        pages: Any = reader.trailer["/Root"]["/Pages"]  # type: ignore[index]
        return int(pages["/Count"])
    except Exception:  # missing or malformed: the listed pages will be counted instead
        return None


def _check_pages(source: str, pages: int | None, limits: ParseLimits) -> None:
    if pages is not None and pages > limits.max_pdf_pages:
        raise DocumentTooLarge(
            f"{source}: the PDF has {pages} pages, over the limit of {limits.max_pdf_pages} "
            "pages (RAG_MAX_PDF_PAGES)"
        )


def _no_text(source: str, pages: int) -> NoTextLayer:
    return NoTextLayer(
        f"{source}: the PDF has no text layer (scanned?) on any of its {pages} page(s); "
        "run OCR first, e.g. ocrmypdf -l chi_sim in.pdf out.pdf"
    )
