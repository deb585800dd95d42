"""How far a file may expand while it is parsed: the limits every format loader enforces.

`RAG_MAX_FILE_BYTES` bounds what is sent, not what it becomes: a 1 MB `.docx` can inflate to a
gigabyte of XML, an 18 KB PDF to millions of characters, a 16 MB PDF can hold 100,000 pages. These
limits bound what parsing may build, each checked as early as the format allows (a zip's
directory before anything is inflated, a PDF's page count before its pages are read, the text
while it is extracted), and each refused with `DocumentTooLarge` (413) naming its setting.
Memory and time are bounded separately, by parsing in a limited process (`rag.ingest.sandbox`).

The defaults (also those of `rag.config.Settings`) let every legitimate document through:

- `max_expanded_bytes` 256 MiB, over 12× `RAG_MAX_FILE_BYTES`: Office XML deflates 3-8× (Chinese
  prose measured 3.4×) and images not at all, so any real `.docx` under the file limit expands to
  less; zip bombs deflate 350× (repeated paragraphs) to 1000× (one text node).
- `max_document_chars` 25 M: more than the 21 M characters of the largest text file the 20 MiB
  file limit admits (ASCII), so it bites only on formats that expand (PDF streams, zips).
- `max_pdf_pages` 10,000: ten times a long report or law book; a 100,000-page PDF is refused
  from its page tree's count, before its pages are read (reading them took minutes).
- `max_chunks_per_document` 100,000: 25 M characters in 400-character chunks are ~70,000; the
  limit bounds embedding work when `RAG_CHUNK_SIZE` is small.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.errors import DocumentTooLarge


@dataclass(frozen=True)
class ParseLimits:
    """What one document may expand to while it is parsed (see the module docstring)."""

    max_expanded_bytes: int = 256 * 1024 * 1024
    max_document_chars: int = 25_000_000
    max_pdf_pages: int = 10_000
    max_chunks_per_document: int = 100_000

    def check_chars(self, source: str, chars: int) -> None:
        """Refuse a text of more than `max_document_chars` characters (`chars` may be a running
        count: the extraction stops as soon as it is over)."""
        if chars > self.max_document_chars:
            raise DocumentTooLarge(
                f"{source}: the text is over the limit of {self.max_document_chars} characters "
                "(RAG_MAX_DOCUMENT_CHARS)"
            )


DEFAULT_LIMITS = ParseLimits()
