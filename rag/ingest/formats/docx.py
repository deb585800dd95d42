"""Word (`.docx`): paragraphs, headings and tables in document order, read with python-docx.

Each paragraph or heading is one line; a table row is one line with its cells joined by ` | `
(a merged cell once). The title is the first `Title` or heading paragraph, else the first line.
Page headers, footers, comments and footnotes are left out: they are boilerplate or asides.

Refused with a named error: a password-protected `.docx` (Word stores it as an encrypted OLE2
file: `EncryptedDocument`), an old Word 97-2003 `.doc` renamed `.docx` (`UnsupportedFormat`),
anything else that is not a readable Office Open XML word-processing zip (`CorruptDocument`), and
a zip that would inflate past `RAG_MAX_EXPANDED_BYTES` or hold more text than
`RAG_MAX_DOCUMENT_CHARS` (`DocumentTooLarge`). The zip is checked before python-docx inflates
anything (`_check_package`): a 1 MB zip bomb would otherwise become a gigabyte of XML and several
gigabytes of parsed tree.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

from rag.errors import (
    CorruptDocument,
    DocumentTooLarge,
    EncryptedDocument,
    RagError,
    UnsupportedFormat,
)
from rag.ingest.formats.base import Loaded, brief_reason, first_line_title
from rag.ingest.limits import DEFAULT_LIMITS, ParseLimits
from rag.ingest.normalize import normalize_lines, normalize_text

if TYPE_CHECKING:
    from docx.document import Document as DocxDocument
    from docx.table import Table, _Cell

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the compound-file magic of .doc and encrypted .docx
_ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")
_CELL_SEPARATOR = " | "
_HEADING_STYLES = ("title", "heading", "标题")
# Compression methods Word writes. zipfile inflates bzip2 and LZMA members in one call, unbounded
# by the member's declared size, so a member using them could expand without limit.
_WORD_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_VERIFY_READ = 1 << 20  # bytes inflated per step while members are verified


def load(source: str, data: bytes, limits: ParseLimits = DEFAULT_LIMITS) -> Loaded:
    """Read the document body; the title is the first title/heading paragraph."""
    document = _open(source, data, limits)
    lines: list[tuple[str, bool]] = []
    chars = 0
    try:
        for line, heading in _lines(document):
            lines.append((line, heading))
            chars += len(line)
            limits.check_chars(source, chars)
    except RagError:
        raise
    except Exception as exc:  # malformed XML inside a valid zip makes python-docx raise anything
        raise CorruptDocument(f"{source}: the .docx file is damaged ({brief_reason(exc)})") from exc
    text = normalize_lines(line for line, _ in lines)
    title = next((normalize_text(line) for line, heading in lines if heading and line.strip()), "")
    return Loaded(text, title or first_line_title(text), "")


def _open(source: str, data: bytes, limits: ParseLimits) -> DocxDocument:
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
    _check_package(source, data, limits.max_expanded_bytes)
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


def _check_package(source: str, data: bytes, limit: int) -> None:
    """Refuse a zip whose members would inflate past `limit` bytes, before any is inflated.

    The sizes come from the zip's central directory, which the file itself writes, so they are
    verified too: zipfile stops each member at its declared size and then checks its CRC, so a
    member that understates its size fails here having inflated at most that much, a step at a
    time. python-docx reads whole members in one call, which would inflate such a member in full
    before zipfile cut it to size.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            members = package.infolist()
            declared = sum(m.file_size for m in members)
            if declared > limit:
                raise DocumentTooLarge(
                    f"{source}: the .docx expands to {declared} bytes, over the limit of {limit} "
                    "bytes (RAG_MAX_EXPANDED_BYTES)"
                )
            for m in members:
                if m.compress_type not in _WORD_METHODS:
                    raise CorruptDocument(
                        f"{source}: not a valid .docx file (member {m.filename} uses zip "
                        f"compression method {m.compress_type}; Word writes deflate)"
                    )
            for m in members:
                with package.open(m) as member:
                    while member.read(_VERIFY_READ):
                        pass
    except RagError:
        raise
    except Exception as exc:  # a bad CRC, a truncated member, an encrypted member…
        raise CorruptDocument(
            f"{source}: not a valid .docx file (a damaged zip: {brief_reason(exc)})"
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
