"""Loaders: file name + bytes → `Document`. The one table from file suffix to format lives here;
each format's reading is its own module under `rag.ingest.formats`, and each format names the
packages it needs (`check_format_dependencies` finds a missing one when the engine opens, rather
than as an error on the first upload of that format)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath

from rag.errors import ConfigError, DocumentError, UnsupportedFormat
from rag.ingest.formats import docx, html, markdown, pdf, text
from rag.ingest.formats.base import Loaded
from rag.ingest.limits import DEFAULT_LIMITS, ParseLimits
from rag.types import Document


@dataclass(frozen=True)
class Format:
    """A file format: its name, its loader, whether it is text (then a JSON upload's text may be
    read as it; binary formats only come as files), and the modules it imports, each with the
    PyPI distribution that provides it."""

    name: str
    load: Callable[[str, bytes, ParseLimits], Loaded]
    is_text: bool
    needs: tuple[tuple[str, str], ...] = ()


# Every text format is decoded by rag.ingest.decode, which may ask charset-normalizer.
_DECODE = (("charset_normalizer", "charset-normalizer"),)
_TEXT = Format("plain text", text.load, True, _DECODE)
_MARKDOWN = Format("Markdown", markdown.load, True, _DECODE)
# trafilatura imports jusText, which imports lxml.html.clean: since lxml 5.2 that is the separate
# package lxml_html_clean (the `lxml[html_clean]` extra, which some pip versions skip when it is
# asked for by a dependency of a dependency).
_HTML = Format(
    "HTML",
    html.load,
    True,
    (
        *_DECODE,
        ("trafilatura", "trafilatura"),
        ("justext", "jusText"),
        ("lxml", "lxml"),
        ("lxml_html_clean", "lxml_html_clean"),
    ),
)

FORMATS: dict[str, Format] = {
    ".txt": _TEXT,
    ".text": _TEXT,
    ".md": _MARKDOWN,
    ".markdown": _MARKDOWN,
    ".html": _HTML,
    ".htm": _HTML,
    # cryptography: pypdf's AES, for encrypted PDFs that open without a password
    ".pdf": Format("PDF", pdf.load, False, (("pypdf", "pypdf"), ("cryptography", "cryptography"))),
    ".docx": Format("Word", docx.load, False, (("docx", "python-docx"), ("lxml", "lxml"))),
}


def supported_suffixes() -> list[str]:
    """The file suffixes ingestion accepts."""
    return sorted(FORMATS)


def text_suffixes() -> list[str]:
    """The suffixes of text formats (those a document sent as JSON text can be read as)."""
    return sorted(s for s, f in FORMATS.items() if f.is_text)


def check_format_dependencies() -> None:
    """Raise `ConfigError` naming every missing package a format needs, and the pip command that
    installs them. Only looks the modules up (no import: the parsers cost ~1 s to import, which
    commands that read no file should not pay)."""
    missing: dict[str, list[str]] = {}  # distribution → formats that need it
    for fmt in dict.fromkeys(FORMATS.values()):
        for module, distribution in fmt.needs:
            if _absent(module):
                missing.setdefault(distribution, []).append(fmt.name)
    if missing:
        names = "; ".join(f"{d} (for {', '.join(f)})" for d, f in missing.items())
        raise ConfigError(
            f"missing packages needed to read documents: {names}; install them with "
            f"pip install {' '.join(missing)}"
        )


def _absent(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):  # a broken parent package, or a module without a spec
        return True


def load_document(
    source: str,
    data: bytes,
    metadata: dict[str, object] | None = None,
    *,
    as_type: str | None = None,
    limits: ParseLimits = DEFAULT_LIMITS,
) -> tuple[Document, str]:
    """Parse `data` (named `source`) into a normalised `Document`; returns it and the detected
    encoding (`""` for binary formats).

    The format is picked by the file suffix, or by `as_type` (e.g. `.txt` for text sent as JSON).
    Metadata the format contributes (a PDF's `pages`) is added to the caller's `metadata`, and
    wins over a key of the same name there: offsets into the text must be the loader's. A file
    that expands past `limits` is refused with `DocumentTooLarge`.
    """
    suffix = (as_type or PurePath(source).suffix).lower()
    fmt = FORMATS.get(suffix)
    if fmt is None:
        raise UnsupportedFormat(
            f"{source}: unsupported file type '{suffix or '(none)'}'; supported: {', '.join(supported_suffixes())}"
        )
    if not data:
        raise DocumentError(f"{source}: the file is empty (0 bytes)")
    loaded = fmt.load(source, data, limits)
    limits.check_chars(source, len(loaded.text))
    if not loaded.text.strip():
        raise DocumentError(f"{source}: no text left after cleaning")
    document = Document(
        source=source,
        text=loaded.text,
        title=loaded.title,
        metadata={**(metadata or {}), **loaded.metadata},
    )
    return document, loaded.encoding
