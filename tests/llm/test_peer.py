"""The scripted OpenAI-compatible peer (tests/llm/peer.py) speaks the real wire protocol: the official
`openai` client and plain httpx, over loopback, get what a real chat-completions server would send."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from llm.peer import MODEL_ID, Peer, Reply
from openai import OpenAI

MESSAGES = [
    {"role": "system", "content": "只根据给定的资料回答。"},
    {"role": "user", "content": "碳谷2023年的税收是多少？"},
]


@pytest.fixture
def peer(llm_peer: Peer) -> Iterator[Peer]:
    yield llm_peer
    assert llm_peer.errors == []  # no handler crashed (clients hanging up do not count)


@pytest.fixture
def client(peer: Peer) -> Iterator[OpenAI]:
    with OpenAI(base_url=peer.base_url, api_key="sk-peer-test", max_retries=0, timeout=5) as c:
        yield c


def _sse_events(lines: Iterator[str]) -> list[str]:
    return [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]


# -- the official client ---------------------------------------------------------------------


def test_non_stream_returns_scripted_text_and_usage(peer: Peer, client: OpenAI) -> None:
    peer.script(Reply("碳谷2023年税收为12亿元。", usage=(31, 9)))
    resp = client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert resp.object == "chat.completion"
    assert resp.model == "gpt-test"
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.content == "碳谷2023年税收为12亿元。"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (31, 9)
    assert resp.usage.total_tokens == 40


def test_default_usage_is_computed_from_lengths(peer: Peer, client: OpenAI) -> None:
    peer.script(Reply("x" * 10))
    resp = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "y" * 8}]
    )
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (2, 3)


def test_script_is_consumed_in_order_then_default(peer: Peer, client: OpenAI) -> None:
    peer.default = Reply("fallback")
    peer.script("one", Reply("two"))
    texts = [
        client.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content
        for _ in range(4)
    ]
    assert texts == ["one", "two", "fallback", "fallback"]
    assert peer.pending == 0


def test_stream_deltas_concatenate_to_text(peer: Peer, client: OpenAI) -> None:
    text = "碳谷2023年的税收为12亿元，同比增长8%。[1]"
    peer.script(Reply(text))
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert len(chunks) > 2  # split into several deltas
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert all(c.usage is None for c in chunks)
    assert peer.last.stream


def test_stream_uses_the_given_chunks(peer: Peer, client: OpenAI) -> None:
    peer.script(Reply.chunked("碳谷", "税收", "12亿元"))
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    deltas = [
        c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content
    ]
    assert deltas == ["碳谷", "税收", "12亿元"]


def test_stream_include_usage_sends_a_usage_chunk(peer: Peer, client: OpenAI) -> None:
    peer.script(Reply("abcdefghijklmnopqrst", usage=(12, 5)))
    stream = client.chat.completions.create(
        model="m",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (
        12,
        5,
        17,
    )
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "abcdefghijklmnopqrst"
    )


@pytest.mark.parametrize(
    ("status", "exc"),
    [
        (500, openai.InternalServerError),
        (429, openai.RateLimitError),
        (401, openai.AuthenticationError),
        (400, openai.BadRequestError),
        (503, openai.InternalServerError),
    ],
)
def test_error_statuses_raise_the_matching_exception(
    peer: Peer, client: OpenAI, status: int, exc: type[openai.APIStatusError]
) -> None:
    peer.script(Reply.error(status, retry_after=0, message="scripted failure"))
    with pytest.raises(exc) as info:
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == status
    assert "scripted failure" in info.value.message
    assert isinstance(info.value.body, dict)
    assert info.value.body["message"] == "scripted failure"
    assert info.value.response.headers["retry-after"] == "0"


def test_error_on_a_stream_request(peer: Peer, client: OpenAI) -> None:
    peer.script(Reply.error(500))
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m", messages=MESSAGES, stream=True)


def test_client_retries_after_429_honouring_retry_after(peer: Peer) -> None:
    peer.script(Reply.error(429, retry_after=0.01), Reply("after retry"))
    with OpenAI(base_url=peer.base_url, api_key="k", max_retries=1) as c:
        resp = c.chat.completions.create(model="m", messages=MESSAGES)
    assert resp.choices[0].message.content == "after retry"
    assert len(peer.chat_requests) == 2


def test_slow_reply_times_out(peer: Peer, client: OpenAI) -> None:
    peer.script(Reply.slow("too late", delay=3.0))
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="m", messages=MESSAGES, timeout=0.3)
    assert time.monotonic() - started < 2.0
    assert len(peer.chat_requests) == 1  # recorded on arrival, before the delay
    # the peer keeps serving other connections while that handler sleeps
    peer.script(Reply("on time"))
    resp = client.chat.completions.create(model="m", messages=MESSAGES)
    assert resp.choices[0].message.content == "on time"


def test_slow_reply_within_timeout_succeeds(peer: Peer, client: OpenAI) -> None:
    peer.script(Reply.slow("worth the wait", delay=0.2))
    resp = client.chat.completions.create(model="m", messages=MESSAGES, timeout=3)
    assert resp.choices[0].message.content == "worth the wait"


def test_stalled_stream_times_out_while_reading(peer: Peer) -> None:
    peer.script(Reply.stalled_stream("slow tokens", chunk_delay=3.0))
    with OpenAI(base_url=peer.base_url, api_key="k", max_retries=0, timeout=0.3) as c:
        stream = c.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        assert stream.response.status_code == 200  # headers arrive at once; the events do not
        with pytest.raises(openai.APITimeoutError):
            list(stream)


def test_malformed_json_is_not_accepted(peer: Peer, client: OpenAI) -> None:
    peer.script(Reply.malformed())
    with pytest.raises((openai.APIError, json.JSONDecodeError, ValueError)):
        resp = client.chat.completions.create(model="m", messages=MESSAGES)
        # should it come back at all, it must not carry an answer
        assert not (resp.choices and resp.choices[0].message.content), resp


def test_broken_stream_raises_mid_stream(peer: Peer, client: OpenAI) -> None:
    peer.script(Reply.broken_stream("0123456789abcdefghijklmnop", after=2))
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    got: list[str] = []
    with pytest.raises(openai.APIConnectionError) as info:
        for c in stream:
            got.append(c.choices[0].delta.content or "")
    assert not isinstance(info.value, openai.APITimeoutError)
    assert got == ["01234567", "89abcdef"]


def test_requests_are_recorded(peer: Peer, client: OpenAI) -> None:
    peer.script("ok")
    client.chat.completions.create(model="gpt-x", messages=MESSAGES, temperature=0.1)
    (rec,) = peer.chat_requests
    assert rec.method == "POST"
    assert rec.path == "/v1/chat/completions"
    assert rec.body["model"] == "gpt-x"
    assert rec.body["temperature"] == 0.1
    assert rec.messages == MESSAGES
    assert rec.system == "只根据给定的资料回答。"
    assert rec.user == "碳谷2023年的税收是多少？"
    assert "12亿元" not in rec.system
    assert rec.authorization == "Bearer sk-peer-test"
    assert rec.headers["content-type"] == "application/json"
    assert not rec.stream


def test_models_endpoint(peer: Peer, client: OpenAI) -> None:
    peer.script("unused")
    assert [m.id for m in client.models.list()] == [MODEL_ID]
    assert peer.pending == 1  # listing models consumes no scripted reply
    assert peer.last.path == "/v1/models"


def test_unknown_route_is_an_openai_style_404(peer: Peer) -> None:
    r = httpx.post(f"{peer.base_url}/embeddings", json={"input": "x"})
    assert r.status_code == 404
    assert set(r.json()["error"]) >= {"message", "type", "code"}


# -- the wire, below the client ---------------------------------------------------------------


def test_httpx_stream_is_chunked_sse(peer: Peer) -> None:
    peer.script(Reply.chunked("你好", "，世界"))
    body = {"model": "m", "messages": MESSAGES, "stream": True, "stream_options": {}}
    with httpx.stream("POST", f"{peer.base_url}/chat/completions", json=body) as r:
        assert r.status_code == 200
        assert r.http_version == "HTTP/1.1"
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in r.headers
        events = _sse_events(r.iter_lines())
    assert events[-1] == "[DONE]"
    objs = [json.loads(e) for e in events[:-1]]
    assert [o["choices"][0]["delta"] for o in objs] == [
        {"role": "assistant", "content": "你好"},
        {"content": "，世界"},
        {},
    ]
    assert [o["choices"][0]["finish_reason"] for o in objs] == [None, None, "stop"]
    assert len({o["id"] for o in objs}) == 1


def test_raw_socket_chunk_framing(peer: Peer) -> None:
    """One SSE event per HTTP chunk, a proper `0` terminator, and the connection kept alive."""
    peer.script(Reply.chunked("ab", "cd"))
    payload = json.dumps({"model": "m", "messages": MESSAGES, "stream": True}).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{peer.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", peer.port), timeout=5) as sock:
        sock.sendall(head + payload)
        f = sock.makefile("rb")
        assert f.readline().startswith(b"HTTP/1.1 200")
        headers = {}
        while (line := f.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        assert headers["transfer-encoding"] == "chunked"
        chunks = []
        while True:
            size = int(f.readline().strip(), 16)
            data = f.read(size)
            assert f.read(2) == b"\r\n"
            if size == 0:
                break
            chunks.append(data)
        assert all(c.startswith(b"data: ") and c.endswith(b"\n\n") for c in chunks)
        assert chunks[-1] == b"data: [DONE]\n\n"
        assert len(chunks) == 4  # two deltas, the finish chunk, [DONE]
        # keep-alive: a second request on the same connection is answered
        sock.sendall(
            (
                f"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:{peer.port}\r\n"
                "Authorization: Bearer abc\r\n\r\n"
            ).encode()
        )
        assert f.readline().startswith(b"HTTP/1.1 200")
    assert peer.last.authorization == "Bearer abc"


def test_raw_stream_bytes_are_sent_verbatim(peer: Peer) -> None:
    raw = b"data: {not json\n\n: comment\n\ndata: [DONE]\n\n"
    peer.script(Reply.raw_sse(raw))
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", f"{peer.base_url}/chat/completions", json=body) as r:
        assert r.read() == raw


def test_malformed_stream_fails_the_client(peer: Peer, client: OpenAI) -> None:
    peer.script(Reply.raw_sse(b"data: {not json\n\n"))
    with pytest.raises(ValueError):
        list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))


def test_broken_stream_is_an_incomplete_chunked_body_to_httpx(peer: Peer) -> None:
    peer.script(Reply.broken_stream("0123456789abcdef", after=1))
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    seen: list[str] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("POST", f"{peer.base_url}/chat/completions", json=body) as r,
    ):
        for line in r.iter_lines():
            seen.append(line)
    assert _sse_events(iter(seen)) and "[DONE]" not in seen


def test_stop_cuts_a_pending_delay_short() -> None:
    peer = Peer().start()
    peer.script(Reply.slow("never", delay=30))
    with httpx.Client(timeout=10) as c:
        errors: list[BaseException] = []

        def call() -> None:
            try:
                c.post(f"{peer.base_url}/chat/completions", json={"model": "m", "messages": []})
            except httpx.HTTPError as e:
                errors.append(e)

        t = threading.Thread(target=call)
        t.start()
        deadline = time.monotonic() + 5
        while not peer.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        peer.stop()
        t.join(timeout=5)
    assert time.monotonic() - started < 2
    assert not t.is_alive()
    assert errors  # the client saw the connection drop, not an answer
    assert peer.errors == []
