"""Streaming and OpenAI compatibility against a real `rag serve` (uvicorn) on loopback.

The servers read the session's corpus index (built once by `corpus_engine`, never written): one
open server, and one started with `RAG_API_KEYS`. Server output goes to a file, checked at the end
for leaked keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from sse_client import sse_events

from rag.engine import Engine

Server = Any  # conftest's LoopbackServer: .base (URL) and .log (its output file)
MODEL = "rag-zh"
SERVER_KEY = "sk-live-0d9e8f7a6b5c4d3e"

ANSWERABLE = [
    "碳谷2023年的税收是多少？",
    "湖州有几大新兴产业？",
    "How much tax did the Carbon Valley collect in 2023?",
]
UNANSWERABLE = "2024年诺贝尔物理学奖授予了谁？"


@pytest.fixture(scope="module")
def server(
    corpus_engine: Engine, tmp_path_factory: pytest.TempPathFactory, loopback_server: Any
) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("serve_open") / "server.log"
    with loopback_server(corpus_engine.settings.index_dir, log) as s:
        yield s


@pytest.fixture(scope="module")
def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base}/v1", api_key="x", max_retries=0, timeout=30)


# --- SSE helpers --------------------------------------------------------------------------------
def stream_ask(base: str, question: str, **extra: Any) -> tuple[httpx.Response, list[Any]]:
    with httpx.stream(
        "POST",
        f"{base}/v1/ask",
        json={"question": question, "stream": True, **extra},
        timeout=30,
    ) as r:
        assert r.status_code == 200, r.read()
        events = [(name, json.loads(data)) for name, data in sse_events(r.iter_lines())]
    return r, events


def assert_quotes_are_exact(
    citations: list[dict[str, Any]], passages: list[dict[str, Any]]
) -> None:
    for c in citations:
        p = passages[c["marker"] - 1]
        assert c["chunk_id"] == p["chunk_id"] and c["source"] == p["source"]
        assert p["start"] <= c["start"] < c["end"] <= p["end"]
        assert p["text"][c["start"] - p["start"] : c["end"] - p["start"]] == c["quote"]
        assert c["quote"].strip()


def assert_quotes_match_stored_text(engine: Engine, citations: list[dict[str, Any]]) -> None:
    """Each quote is the exact slice of its document as stored (read-only lookup)."""
    for c in citations:
        doc_id = c["chunk_id"].split(":")[0]
        assert engine.store.document(doc_id).source == c["source"]
        assert engine.store.document_text(doc_id)[c["start"] : c["end"]] == c["quote"]


# --- /v1/ask stream -----------------------------------------------------------------------------
@pytest.mark.parametrize("question", ANSWERABLE)
def test_ask_stream_event_order_and_content(
    server: Server, corpus_engine: Engine, question: str
) -> None:
    r, events = stream_ask(server.base, question)
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache"
    names = [n for n, _ in events]
    assert names[0] == "passages" and names[-2:] == ["citations", "done"]
    assert names[1:-2] and set(names[1:-2]) == {"delta"}

    passages = events[0][1]["passages"]
    streamed = "".join(d["text"] for n, d in events if n == "delta")
    final = events[-2][1]
    assert final["answerable"] is True and final["citations"] and final["warnings"] == []
    assert events[-1][1]["took_ms"] >= 0

    plain = httpx.post(f"{server.base}/v1/ask", json={"question": question}, timeout=30).json()
    assert streamed == plain["answer"]
    assert passages == plain["passages"]
    assert final["citations"] == plain["citations"] and final["mode"] == plain["mode"]
    assert "[1]" in streamed
    assert_quotes_are_exact(final["citations"], passages)
    assert_quotes_match_stored_text(corpus_engine, final["citations"])
    for c in final["citations"]:
        assert f"[{c['marker']}]" in streamed


def test_ask_stream_unanswerable(server: Server) -> None:
    _, events = stream_ask(server.base, UNANSWERABLE)
    names = [n for n, _ in events]
    assert names[0] == "passages" and names[-2:] == ["citations", "done"]
    final = events[-2][1]
    assert final["answerable"] is False and final["citations"] == []
    plain = httpx.post(f"{server.base}/v1/ask", json={"question": UNANSWERABLE}, timeout=30).json()
    assert "".join(d["text"] for n, d in events if n == "delta") == plain["answer"]


def test_ask_stream_warns_when_llm_mode_is_not_available(server: Server) -> None:
    _, events = stream_ask(server.base, ANSWERABLE[0], mode="llm")
    final = dict(events)["citations"]
    assert [w["code"] for w in final["warnings"]] == ["llm_not_configured"]


def test_ask_stream_bad_request_is_a_plain_json_error(server: Server) -> None:
    r = httpx.post(f"{server.base}/v1/ask", json={"question": "", "stream": True}, timeout=30)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["code"] == "invalid_request"


def test_ask_stream_wire_format(server: Server) -> None:
    """Plain SSE framing: each message is `event: <name>` then one `data: <json>` line, then a blank
    line; the first message can be read before the body is complete."""
    with httpx.stream(
        "POST", f"{server.base}/v1/ask", json={"question": ANSWERABLE[1], "stream": True}
    ) as r:
        lines = r.iter_lines()
        assert next(lines) == "event: passages"
        assert next(lines).startswith('data: {"passages": [')
        assert next(lines) == ""
        raw = "\n".join(lines)
    blocks = [b for b in raw.strip("\n").split("\n\n") if b]
    for block in blocks:
        event, data = block.split("\n")
        assert event.startswith("event: ") and data.startswith("data: ")
        json.loads(data[6:])
    assert blocks[-1].startswith("event: done")


# --- OpenAI client ------------------------------------------------------------------------------
@pytest.mark.parametrize("question", ANSWERABLE)
def test_openai_client_non_stream(
    server: Server, client: openai.OpenAI, corpus_engine: Engine, question: str
) -> None:
    resp = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Answer from the documents."},
            {"role": "user", "content": question},
        ],
    )
    assert resp.object == "chat.completion" and resp.model == MODEL
    assert len(resp.choices) == 1
    choice = resp.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    content = choice.message.content or ""
    assert "[1]" in content
    extra = resp.model_extra or {}
    assert extra["answerable"] is True
    citations = extra["citations"]
    assert citations == resp.to_dict()["citations"]
    assert citations
    for c in citations:
        assert c["quote"].strip() and f"[{c['marker']}]" in content
        # a text whose first line is a sentence has no title (002_… opens with its lead): ""
        assert c["source"].endswith(".txt") and isinstance(c["title"], str)
    assert_quotes_match_stored_text(corpus_engine, citations)
    # the same answer /v1/ask gives, quoting the same passages
    plain = httpx.post(f"{server.base}/v1/ask", json={"question": question}, timeout=30).json()
    assert content == plain["answer"]
    assert [c["quote"] for c in citations] == [c["quote"] for c in plain["citations"]]
    assert_quotes_are_exact(citations, plain["passages"])


@pytest.mark.parametrize("question", ANSWERABLE[:2])
def test_openai_client_stream(client: openai.OpenAI, corpus_engine: Engine, question: str) -> None:
    messages: Any = [{"role": "user", "content": question}]
    chunks = list(client.chat.completions.create(model=MODEL, messages=messages, stream=True))
    assert len(chunks) >= 3
    assert len({c.id for c in chunks}) == 1 and all(
        c.object == "chat.completion.chunk" for c in chunks
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    extra = last.model_extra or {}
    assert extra["answerable"] is True and extra["citations"]
    for c in chunks[:-1]:
        assert "citations" not in (c.model_extra or {})

    whole = client.chat.completions.create(model=MODEL, messages=messages)
    assert streamed == whole.choices[0].message.content
    assert extra["citations"] == (whole.model_extra or {})["citations"]
    assert_quotes_match_stored_text(corpus_engine, extra["citations"])


def test_openai_client_stream_with_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": ANSWERABLE[0]}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_openai_client_unanswerable(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": UNANSWERABLE}]
    )
    extra = resp.model_extra or {}
    assert extra["answerable"] is False and extra["citations"] == []
    assert resp.choices[0].message.content and "[1]" not in resp.choices[0].message.content
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": UNANSWERABLE}], stream=True
        )
    )
    final = chunks[-1].model_extra or {}
    assert final["answerable"] is False and final["citations"] == []


def test_openai_client_models(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert MODEL in ids


def test_openai_client_multipart_content_and_last_user_message(client: openai.OpenAI) -> None:
    messages: Any = [
        {"role": "user", "content": UNANSWERABLE},
        {"role": "assistant", "content": "不知道。"},
        {"role": "user", "content": [{"type": "text", "text": ANSWERABLE[0]}]},
    ]
    resp = client.chat.completions.create(model=MODEL, messages=messages)
    assert (resp.model_extra or {})["answerable"] is True
    assert "43.58亿元" in (resp.choices[0].message.content or "")


def test_openai_client_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as info:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "system", "content": "no user message"}]
        )
    assert info.value.status_code == 422
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model=MODEL, messages=[])


# --- with an API key ----------------------------------------------------------------------------
def test_server_with_api_key(corpus_engine: Engine, tmp_path: Path, loopback_server: Any) -> None:
    log = tmp_path / "server.log"
    with loopback_server(corpus_engine.settings.index_dir, log, RAG_API_KEYS=SERVER_KEY) as s:
        good = openai.OpenAI(base_url=f"{s.base}/v1", api_key=SERVER_KEY, max_retries=0)
        resp = good.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": ANSWERABLE[0]}]
        )
        assert (resp.model_extra or {})["citations"]
        streamed = "".join(
            c.choices[0].delta.content or ""
            for c in good.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": ANSWERABLE[0]}], stream=True
            )
            if c.choices
        )
        assert streamed == resp.choices[0].message.content
        assert MODEL in [m.id for m in good.models.list()]

        bad = openai.OpenAI(base_url=f"{s.base}/v1", api_key="sk-wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as info:
            bad.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": ANSWERABLE[0]}]
            )
        assert info.value.status_code == 401
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
        with pytest.raises(openai.AuthenticationError):
            list(
                bad.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True
                )
            )

        # over plain HTTP: no key, and a key in the URL (refused even with the right header)
        assert httpx.get(f"{s.base}/v1/models").status_code == 401
        r = httpx.get(
            f"{s.base}/v1/models",
            params={"api_key": SERVER_KEY},
            headers={"Authorization": f"Bearer {SERVER_KEY}"},
        )
        assert r.status_code == 401
        assert httpx.get(f"{s.base}/healthz").status_code == 200
        r = httpx.post(
            f"{s.base}/v1/ask",
            json={"question": ANSWERABLE[0], "stream": True},
            headers={"Authorization": f"Bearer {SERVER_KEY}"},
        )
        assert r.status_code == 200 and "event: done" in r.text
    server_output = log.read_text(errors="replace")
    assert "/v1/models 401" in server_output  # the access log was written ...
    assert SERVER_KEY not in server_output  # ... without the key
