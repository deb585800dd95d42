"""Property-based fuzzing of every route and method against the app's own OpenAPI schema.

schemathesis generates valid and invalid requests for each operation of `/openapi.json` and runs
them in-process against an app over a fresh, small, real index. Every response must be a non-5xx,
documented status whose content type and body match what the schema declares.

Checks used: `not_a_server_error`, `status_code_conformance`, `content_type_conformance`,
`response_schema_conformance`. Not used, on purpose: `positive_data_acceptance` (the schema cannot
say that a chat needs a *user* message, or that an uploaded file needs a `.txt`/`.md` name, so
schema-valid requests are rightly refused with 415/422) and `negative_data_rejection` (pydantic's
lax mode accepts `0` for a boolean), nor `unsupported_method`'s exact `Allow` header (Starlette's
405 lists the methods of one matching route only). Multipart uploads and the SSE variants of `/v1/ask` and
`/v1/chat/completions` are fuzzed like everything else.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from rag.config import Settings
from rag.embed.base import Embedder
from rag.engine import Engine

DOCS = {
    "tunnel.txt": "翠屏山隧道全长四千六百米，于2030年建成通车。隧道设有两条应急疏散通道。",
    "notes/ferry.md": "# 渡口\n\n白鹭洲渡口每天清晨六点发出第一班渡船。",
    "meteor.txt": "The Marlow observatory recorded 4,812 meteors during the Perseid peak of 2029.",
}
READ_KEY = "fuzz-read-key-1"
ADMIN_KEY = "fuzz-admin-key-1"

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same requests on every run
    database=None,
)


@pytest.fixture(scope="module")
def fuzz_engine(
    tmp_path_factory: pytest.TempPathFactory, use_embedder: Embedder
) -> Iterator[Engine]:
    engine = Engine(
        Settings(index_dir=tmp_path_factory.mktemp("fuzz_idx"), max_request_bytes=256 * 1024),
        embedder=use_embedder,
    )
    for source, text in DOCS.items():
        engine.ingest_bytes(source, text.encode())
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def fuzz_app(fuzz_engine: Engine) -> FastAPI:
    return create_app(fuzz_engine.settings, engine=fuzz_engine)


@pytest.fixture(scope="module")
def keyed_app(fuzz_engine: Engine) -> FastAPI:
    settings = Settings(
        index_dir=fuzz_engine.settings.index_dir, api_keys=READ_KEY, admin_keys=ADMIN_KEY
    )
    return create_app(settings, engine=fuzz_engine)


def _openapi() -> dict[str, Any]:
    """The app's OpenAPI document, plus request examples (test-only) so that schemathesis also
    sends requests the service accepts: a random chat rarely has a user message with text."""
    doc = copy.deepcopy(create_app(Settings(index_dir=Path("unused-schema-only"))).openapi())
    schemas = doc["components"]["schemas"]
    schemas["ChatRequest"]["examples"] = [
        {"model": "rag-zh", "messages": [{"role": "user", "content": "翠屏山隧道有多长？"}]},
        {
            "messages": [
                {"role": "system", "content": "cite"},
                {"role": "user", "content": [{"type": "text", "text": "渡船几点发出？"}]},
            ],
            "stream": True,
        },
    ]
    schemas["AskRequest"]["examples"] = [
        {"question": "翠屏山隧道有多长？"},
        {"question": "How many meteors were recorded?", "stream": True, "top_k": 2},
    ]
    return doc


# The OpenAPI document does not depend on settings or on the engine, so it is taken at import
# time from an app that is never started (pytest parametrizes one test per operation from it);
# requests go to the app fixtures, which serve the fresh index. (`schemathesis.pytest.from_fixture`
# would load it lazily instead, but that integration fails on the installed pytest 9:
# `'Function' object has no attribute '_nodeid'`.)
schema = schemathesis.openapi.from_dict(_openapi())


@schema.parametrize()
@FUZZ
def test_every_operation_conforms(case: schemathesis.Case, fuzz_app: FastAPI) -> None:
    case.call_and_validate(checks=CHECKS, app=fuzz_app)


@schema.parametrize()
@settings(FUZZ, max_examples=8)
def test_every_operation_conforms_with_keys(case: schemathesis.Case, keyed_app: FastAPI) -> None:
    """With keys configured: no key → 401, a read key on a write → 403; all documented."""
    r = case.call_and_validate(checks=CHECKS, app=keyed_app)
    protected = case.path not in ("/healthz", "/readyz")
    if protected and r.status_code != 405:
        assert r.status_code == 401, (case.method, case.path, r.status_code)
    r = case.call_and_validate(
        checks=CHECKS, app=keyed_app, headers={"Authorization": f"Bearer {READ_KEY}"}
    )
    writes = case.path.startswith("/v1/documents") and case.method in ("POST", "DELETE")
    if writes and r.status_code != 405:
        assert r.status_code == 403, (case.method, case.path, r.status_code)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def test_openapi_document_is_self_contained_and_declares_error_bodies() -> None:
    """Every `$ref` resolves (schemathesis quietly skips a body whose schema it cannot resolve),
    and every declared 4xx/5xx is the `{"error": {code, message}}` envelope the app sends."""
    doc = create_app(Settings(index_dir=Path("unused-schema-only"))).openapi()
    for ref in set(_refs(doc)):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"], f"dangling {ref}"
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    ops = {(m.upper(), p): op for p, item in doc["paths"].items() for m, op in item.items()}
    assert "application/json" in ops["POST", "/v1/documents"]["requestBody"]["content"]
    for (method, path), op in ops.items():
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")) and path != "/readyz":
                schema_ = response["content"]["application/json"]["schema"]
                assert schema_ == {"$ref": "#/components/schemas/ErrorOut"}, (method, path, status)
        if path not in ("/healthz", "/readyz"):
            assert "401" in op["responses"], (method, path)
