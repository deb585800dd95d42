"""Loaders: file name + bytes → `Document`. The one table from file suffix to format lives here;
each format's reading is its own module under `rag.ingest.formats`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath

from rag.errors import DocumentError, UnsupportedFormat
from rag.ingest.formats import docx, html, markdown, pdf, text
from rag.ingest.formats.base import Loaded
from rag.types import Document


@dataclass(frozen=True)
class Format:
    """A file format: its name, its loader, and whether it is text (then a JSON upload's text
    may be read as it; binary formats only come as files)."""

    name: str
    load: Callable[[str, bytes], Loaded]
    is_text: bool


_TEXT = Format("plain text", text.load, True)
_MARKDOWN = Format("Markdown", markdown.load, True)
_HTML = Format("HTML", html.load, True)

FORMATS: dict[str, Format] = {
    ".txt": _TEXT,
    ".text": _TEXT,
    ".md": _MARKDOWN,
    ".markdown": _MARKDOWN,
    ".html": _HTML,
    ".htm": _HTML,
    ".pdf": Format("PDF", pdf.load, False),
    ".docx": Format("Word", docx.load, False),
}


def supported_suffixes() -> list[str]:
    """The file suffixes ingestion accepts."""
    return sorted(FORMATS)


def text_suffixes() -> list[str]:
    """The suffixes of text formats (those a document sent as JSON text can be read as)."""
    return sorted(s for s, f in FORMATS.items() if f.is_text)


def load_document(
    source: str,
    data: bytes,
    metadata: dict[str, object] | None = None,
    *,
    as_type: str | None = None,
) -> tuple[Document, str]:
    """Parse `data` (named `source`) into a normalised `Document`; returns it and the detected
    encoding (`""` for binary formats).

    The format is picked by the file suffix, or by `as_type` (e.g. `.txt` for text sent as JSON).
    Metadata the format contributes (a PDF's `pages`) is added to the caller's `metadata`, and
    wins over a key of the same name there: offsets into the text must be the loader's.
    """
    suffix = (as_type or PurePath(source).suffix).lower()
    fmt = FORMATS.get(suffix)
    if fmt is None:
        raise UnsupportedFormat(
            f"{source}: unsupported file type '{suffix or '(none)'}'; supported: {', '.join(supported_suffixes())}"
        )
    if not data:
        raise DocumentError(f"{source}: the file is empty (0 bytes)")
    loaded = fmt.load(source, data)
    if not loaded.text.strip():
        raise DocumentError(f"{source}: no text left after cleaning")
    document = Document(
        source=source,
        text=loaded.text,
        title=loaded.title,
        metadata={**(metadata or {}), **loaded.metadata},
    )
    return document, loaded.encoding
