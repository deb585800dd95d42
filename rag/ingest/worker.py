"""A parse worker: `python -m rag.ingest.worker FD`, started by `rag.ingest.sandbox`, never
imported by the service.

A fresh interpreter that imports nothing of the program that started it (multiprocessing's
children import the program's main module again: seconds for a script that loads the whole
engine, and a script without an `if __name__ == "__main__"` guard would run again in every one).
It reads `(sys.path, memory limit)` from the connection on file descriptor FD, imports every
parser and runs each once on a tiny document (so its first real parse pays no first-call set-up),
then serves calls (`rag.ingest.sandbox.serve`) until the connection closes.
"""

from __future__ import annotations

import contextlib
import io
import sys


def main(argv: list[str]) -> int:
    """Serve the sandbox on the connection whose file descriptor is `argv[0]`."""
    from multiprocessing.connection import Connection

    connection = Connection(int(argv[0]))
    try:
        sys_path, memory_bytes = connection.recv()
    except EOFError:  # the sandbox went away before it needed us
        return 0
    sys.path[:] = sys_path  # the caller's: what its calls need to unpickle
    warm_up()
    from rag.ingest.sandbox import serve

    serve(connection, memory_bytes)
    return 0


def warm_up() -> None:
    """Parse one tiny document of every format (errors ignored: a parse that needs what failed
    fails on its own, with its own error)."""
    from rag.ingest.pipeline import prepare

    for name, make in (
        ("warm.txt", lambda: "第一句。第二句。\n".encode()),
        ("warm.html", _html),
        ("warm.docx", _docx),
        ("warm.pdf", _pdf),
    ):
        with contextlib.suppress(Exception):
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
