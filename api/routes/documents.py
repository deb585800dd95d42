"""Documents: upload (multipart files or JSON text), list, fetch, delete."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from dataclasses import asdict
from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.deps import EngineDep, MetricsDep, SettingsDep
from api.schemas import (
    Deleted,
    DocumentIn,
    DocumentInfoOut,
    DocumentList,
    DocumentOut,
    DocumentTextOut,
    IngestResponse,
    PageSpanOut,
    error_responses,
)
from rag.engine import Upload
from rag.errors import Cancelled, DocumentError, DocumentTooLarge, InputError, UnsupportedFormat
from rag.ingest.loaders import text_suffixes
from rag.ingest.metadata import MAX_METADATA_BYTES
from rag.ingest.pages import page_spans
from rag.types import DocumentInfo

router = APIRouter(prefix="/v1/documents", tags=["documents"])

_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
_MAX_FILES = 100
# Ids are 16 hex digits; the cap only keeps absurd ones (and their echo in a 404) out.
DocId = Annotated[str, Path(max_length=128, description="The document's id")]

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "metadata": {
                            "type": "string",
                            "description": "a JSON object applied to every file (at most 64 "
                            "keys, 16 KiB); its keys win over the metadata extracted from the text",
                        },
                    },
                    "required": ["file"],
                }
            },
            # Inline: the route reads the body itself, so FastAPI would not add a
            # `components/schemas/DocumentIn` for a `$ref` to point at.
            "application/json": {"schema": DocumentIn.model_json_schema()},
        },
    }
}


def safe_source(name: str | None) -> str:
    """A stored source name from an uploaded file name; refuses paths that climb or are absolute."""
    if not name or not name.strip():
        raise InputError("the upload has no file name")
    name = name.strip().replace("\\", "/")
    path = PurePosixPath(name)
    if _UNSAFE.search(name) or path.is_absolute() or ".." in path.parts or len(name) > 512:
        raise InputError(f"unsafe file name '{name[:100]}': use a relative name without '..'")
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts:
        raise InputError(f"unsafe file name '{name[:100]}'")
    return "/".join(parts)


def _metadata(raw: Any) -> dict[str, Any]:
    """The multipart `metadata` field: a JSON object (limits are checked by ingestion)."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str) and len(raw.encode("utf-8")) > MAX_METADATA_BYTES:
        raise InputError(f"metadata is over the limit of {MAX_METADATA_BYTES} bytes as JSON")
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise InputError("metadata must be a JSON object") from exc
    if not isinstance(value, dict):
        raise InputError("metadata must be a JSON object")
    return value


async def _read_upload(f: UploadFile, limit: int) -> bytes:
    data = await f.read(limit + 1)
    if len(data) > limit:
        raise DocumentTooLarge(
            f"{f.filename}: over the limit of {limit} bytes (RAG_MAX_FILE_BYTES)"
        )
    return data


@router.post(
    "",
    status_code=201,
    response_model=IngestResponse,
    openapi_extra=_UPLOAD_BODY,
    responses={
        200: {
            "model": IngestResponse,
            "description": "every document was already indexed unchanged",
        },
        **error_responses(400, 401, 403, 408, 413, 415, 422, 429, 503, 507),
    },
)
async def upload(
    request: Request, engine: EngineDep, settings: SettingsDep, metrics: MetricsDep
) -> JSONResponse:
    """Add or update documents: multipart `file` field(s) or JSON `{source, text, metadata?}`.

    Files: `.txt`/`.text`, `.md`/`.markdown`, `.html`/`.htm`, `.pdf` (text layer; citations give
    the page) and `.docx`. JSON text is read as its source's format when that is a text format
    (`.md`, `.html`, …), else as plain text.

    All documents of one request are validated before any is stored: one bad file fails the request
    and changes nothing (415 unsupported type, 413 too large or expanding past a limit, 422 empty,
    undecodable, encrypted, corrupt, a PDF without a text layer, or too complex to parse within
    the parse time and memory limits). 201 when something was added or updated, 200 when all
    were unchanged. A client that disconnects before the documents are stored stops the work
    (parsing is killed, embedding stops) and nothing is stored.
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        # `async with`: the form's spooled temporary files are closed however the request ends
        # (left to the garbage collector, every upload would hold a file until it ran)
        async with request.form(max_files=_MAX_FILES, max_fields=_MAX_FILES + 10) as form:
            files = [
                f
                for key in ("file", "files")
                for f in form.getlist(key)
                if isinstance(f, UploadFile)
            ]
            if not files:
                raise InputError("no file in the upload: send multipart field 'file'")
            meta = _metadata(form.get("metadata"))
            uploads = [
                Upload(
                    safe_source(f.filename), await _read_upload(f, settings.max_file_bytes), meta
                )
                for f in files
            ]
    elif ctype == "application/json":
        try:
            doc = DocumentIn.model_validate_json(await request.body())
        except ValidationError as exc:
            raise InputError(
                "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            ) from exc
        source = safe_source(doc.source)
        # Text sent as JSON is text: a name like `report.pdf` (text a client extracted itself)
        # is stored as plain text, not handed to the PDF reader.
        known = PurePosixPath(source).suffix.lower() in text_suffixes()
        uploads = [
            Upload(
                source,
                doc.text.encode("utf-8"),
                dict(doc.metadata or {}),
                None if known else ".txt",
            )
        ]
    else:
        raise UnsupportedFormat(
            f"unsupported content type '{ctype or '(none)'}': use multipart/form-data or application/json"
        )
    gone = threading.Event()
    watcher = asyncio.create_task(_watch_disconnect(request, gone))
    try:
        results = await run_in_threadpool(
            lambda: engine.ingest_documents(uploads, cancelled=gone.is_set)
        )
    except DocumentError:
        metrics.ingests.labels("failed").inc()
        raise
    except Cancelled:
        metrics.ingests.labels("cancelled").inc()
        raise
    finally:
        watcher.cancel()
    for r in results:
        metrics.ingests.labels(r.status).inc()
    docs = [
        DocumentOut(
            doc_id=r.doc_id,
            source=r.source,
            chunks=r.chunks,
            status=r.status,
            duplicate_of=r.duplicate_of or None,
        )
        for r in results
    ]
    body = IngestResponse(**docs[0].model_dump(), documents=docs)
    changed = any(r.status != "unchanged" for r in results)
    return JSONResponse(body.model_dump(), status_code=201 if changed else 200)


async def _watch_disconnect(request: Request, gone: threading.Event) -> None:
    """Set `gone` when the client disconnects. Called once the body has been read: the server's
    next message is then `http.disconnect`, sent when the connection closes (or the response
    is complete, by which time this task is cancelled)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return


@router.get(
    "",
    response_model=DocumentList,
    responses=error_responses(401, 429, 503),
)
async def list_documents(engine: EngineDep) -> DocumentList:
    """Every stored document."""
    docs = await run_in_threadpool(engine.documents)
    return DocumentList(documents=[DocumentInfoOut(**asdict(d)) for d in docs], total=len(docs))


@router.get(
    "/{doc_id}",
    response_model=DocumentInfoOut,
    responses=error_responses(401, 404, 422, 429, 503),
)
async def get_document(doc_id: DocId, engine: EngineDep) -> DocumentInfoOut:
    """One document's summary (404 if absent)."""
    info = await run_in_threadpool(engine.document, doc_id)
    return DocumentInfoOut(**asdict(info))


@router.get(
    "/{doc_id}/text",
    response_model=DocumentTextOut,
    responses=error_responses(401, 404, 422, 429, 503),
)
async def get_document_text(doc_id: DocId, engine: EngineDep) -> DocumentTextOut:
    """One document's stored text, metadata and page spans (404 if absent): what a citation's
    `start`/`end` point into, so that a client can show the quoted span in its document.

    `text[start:end]` of a citation is its `quote` and of a passage its `text` (offsets count
    Unicode code points). Needs a read key (`Authorization: Bearer <key>`) when keys are
    configured, like every read.
    """

    def read() -> tuple[DocumentInfo, str]:
        # Two reads: an update landing between them is seen as a text of another length or
        # hash; read again (a document replaced over and over is given as it was last read).
        for _ in range(3):
            info = engine.document(doc_id)
            text = engine.document_text(doc_id)
            if len(text) == info.chars and engine.document(doc_id) == info:
                break
        return info, text

    info, text = await run_in_threadpool(read)
    return DocumentTextOut(
        doc_id=info.doc_id,
        source=info.source,
        title=info.title,
        content_hash=info.content_hash,
        metadata=info.metadata,
        text=text,
        pages=[
            PageSpanOut(page=p.page, start=p.start, end=p.end) for p in page_spans(info.metadata)
        ],
    )


@router.delete(
    "/{doc_id}",
    response_model=Deleted,
    responses=error_responses(401, 403, 404, 422, 429, 503, 507),
)
async def delete_document(doc_id: DocId, engine: EngineDep) -> Deleted:
    """Remove a document and its chunks (404 if absent)."""
    await run_in_threadpool(engine.delete, doc_id)
    return Deleted(deleted=doc_id)
