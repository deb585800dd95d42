"""Imported once by the parse sandbox's fork server (`rag.ingest.sandbox.PRELOAD`), never by the
service itself: it imports every parser and runs each once on a tiny document, so that every
parse process forked from the server starts warm (~15 ms) instead of paying ~1.5 s of imports and
first-call set-up (numpy's lazy modules, trafilatura's and jusText's tables).

Failures are ignored here: a parse that needs what failed fails in its own process, with its own
error (and a missing package is reported when the engine opens, by
`rag.ingest.loaders.check_format_dependencies`).
"""

from __future__ import annotations

import contextlib
import gc
import io
import os

# Before numpy is imported: a fork copies only the calling thread, so the fork server must not
# start BLAS worker threads (parse processes do no large matrix work).
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"


def warm_up() -> None:
    """Parse one tiny document of every format (errors ignored)."""
    # Imported here, after the variables above are set.
    from rag.ingest.pipeline import prepare

    for name, make in (
        ("warm.txt", lambda: "第一句。第二句。\n".encode()),
        ("warm.html", _html),
        ("warm.docx", _docx),
        ("warm.pdf", _pdf),
    ):
        with contextlib.suppress(Exception):  # best effort: see the module docstring
            prepare(name, make(), chunk_size=400, chunk_overlap=1, max_bytes=1 << 20)


def _html() -> bytes:
    paragraph = "<p>长三角港航物流一体化的实施意见，现就推进港航物流一体化提出如下意见。</p>"
    return f"<html><head><title>t</title></head><body><article>{paragraph * 3}</article></body></html>".encode()


def _docx() -> bytes:
    from docx import Document

    document = Document()
    document.add_heading("标题", 1)
    document.add_paragraph("正文。")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(100, 100)  # no text: refused, but pypdf has read a file
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


warm_up()
# Everything loaded so far lives as long as the fork server: keep the collector away from it, so a
# collection in a forked child does not write to (and so copy) every page it shares with the server.
gc.freeze()
