"""Word (`.docx`): paragraphs, headings and tables in document order, read with python-docx.

Each paragraph or heading is one line; a table row is one line with its cells joined by ` | `
(a merged cell once). The title is the first `Title` or heading paragraph, else the first line.
Page headers, footers, comments and footnotes are left out: they are boilerplate or asides.

Refused with a named error: a password-protected `.docx` (Word stores it as an encrypted OLE2
file: `EncryptedDocument`), an old Word 97-2003 `.doc` renamed `.docx` (`UnsupportedFormat`), and
anything else that is not a readable Office Open XML word-processing zip (`CorruptDocument`).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

from rag.errors import CorruptDocument, EncryptedDocument, UnsupportedFormat
from rag.ingest.formats.base import Loaded, brief_reason, first_line_title
from rag.ingest.normalize import normalize_lines, normalize_text

if TYPE_CHECKING:
    from docx.document import Document as DocxDocument
    from docx.table import Table, _Cell

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the compound-file magic of .doc and encrypted .docx
_ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")
_CELL_SEPARATOR = " | "
_HEADING_STYLES = ("title", "heading", "标题")


def load(source: str, data: bytes) -> Loaded:
    """Read the document body; the title is the first title/heading paragraph."""
    document = _open(source, data)
    try:
        lines = list(_lines(document))
    except Exception as exc:  # malformed XML inside a valid zip makes python-docx raise anything
        raise CorruptDocument(f"{source}: the .docx file is damaged ({brief_reason(exc)})") from exc
    text = normalize_lines(line for line, _ in lines)
    title = next((normalize_text(line) for line, heading in lines if heading and line.strip()), "")
    return Loaded(text, title or first_line_title(text), "")


def _open(source: str, data: bytes) -> DocxDocument:
    """Open the package, turning each way it can be unreadable into its own clear error."""
    if data.startswith(_OLE2):
        if _ENCRYPTED_STREAM in data:
            raise EncryptedDocument(
                f"{source}: the .docx file is encrypted (password-protected); decrypt it first "
                "(save a copy without a password in Word or WPS)"
            )
        raise UnsupportedFormat(
            f"{source}: this is an old Word 97-2003 .doc file, not .docx; save it as .docx first"
        )
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise CorruptDocument(
            f"{source}: not a valid .docx file (not a zip archive, or a truncated one)"
        )
    # Imported here, not at the top: python-docx costs ~0.2 s that commands reading no .docx should
    # not pay.
    from docx import Document as open_document

    try:
        return open_document(io.BytesIO(data))
    except Exception as exc:  # a zip that is no Word package: python-docx raises KeyError etc.
        reason = brief_reason(exc)
        if "word/document.xml" not in reason:
            reason += "; a Word document needs word/document.xml"
        raise CorruptDocument(
            f"{source}: a zip archive but not a valid .docx file ({reason})"
        ) from exc


def _lines(document: DocxDocument) -> Iterator[tuple[str, bool]]:
    """`(text, is_heading)` for each paragraph and table row of the body, in order."""
    from docx.text.paragraph import Paragraph

    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            style = (getattr(block.style, "name", "") or "").lower()
            yield block.text, style.startswith(_HEADING_STYLES)
        else:
            for row in _rows(block):
                yield row, False


def _rows(table: Table) -> Iterator[str]:
    """One line per table row: the cells' texts joined, a cell spanning columns once."""
    for row in table.rows:
        cells = []
        previous = None
        for cell in row.cells:
            if cell._tc is previous:  # a merged cell is returned once per grid column it spans
                continue
            previous = cell._tc
            cells.append(" ".join(_cell_texts(cell)))
        if any(c.strip() for c in cells):
            yield _CELL_SEPARATOR.join(c.strip() for c in cells)


def _cell_texts(cell: _Cell) -> Iterator[str]:
    """The paragraphs of a cell, and the rows of tables nested in it, as flat text."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for block in cell.iter_inner_content():
        if isinstance(block, Paragraph):
            yield block.text.replace("\n", " ")
        elif isinstance(block, Table):
            yield from _rows(block)
