"""A scriptable OpenAI-compatible chat-completions server on loopback, for tests.

`Peer` is a real HTTP/1.1 server (stdlib `ThreadingHTTPServer` in a daemon thread, bound to
127.0.0.1 on a free port) speaking the OpenAI wire protocol, so the code under test goes through its
real HTTP client, connection pool, timeouts, retries and SSE parsing. Tests script its replies:

    with Peer() as peer:
        peer.script(Reply("第一个回答"), Reply.error(429, retry_after=0), Reply.slow("late", 2.0))
        client = OpenAI(base_url=peer.base_url, api_key="sk-test", max_retries=0)
        ...
        assert "passage text" not in peer.chat_requests[0].system

Endpoints (under `/v1`):

- `POST /v1/chat/completions` consumes one scripted `Reply` per request (in order; `peer.default`
  once the queue is empty) and honours `stream` / `stream_options.include_usage` in the body.
  Streams are `text/event-stream` with `Transfer-Encoding: chunked`, one SSE event per HTTP chunk.
- `GET /v1/models` lists one model, `peer-model` (it does not consume a reply).

No auth is required; every request (any path) is recorded in `peer.requests`, headers included.
"""

from __future__ import annotations

import contextlib
import json
import math
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

MODEL_ID = "peer-model"

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    408: ("timeout", None),
    409: ("conflict", None),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "service_unavailable"),
    504: ("server_error", "gateway_timeout"),
}


def approx_tokens(text: str) -> int:
    """The peer's token count: about four characters per token (0 for empty text)."""
    return math.ceil(len(text) / 4)


@dataclass
class Reply:
    """One scripted answer to a chat-completions request.

    - `text`: the assistant content (for an error status: the error message, if given).
    - `status`: HTTP status; anything but 200 sends an OpenAI-style error JSON
      `{"error": {"message", "type", "param", "code"}}`, for stream requests too.
    - `delay`: seconds to wait before the response starts (status line and all); for a stream,
      that is also the wait before the first chunk. Interrupted when the peer stops.
    - `chunk_delay`: seconds to wait before each SSE event of a stream (after the headers went out).
    - `body`: raw bytes to send instead of anything generated (status `status`, content type
      `application/json` unless `headers` says otherwise), e.g. malformed JSON.
    - `headers`: extra response headers, e.g. `{"Retry-After": "0"}`.
    - `usage`: `(prompt_tokens, completion_tokens)`; default `None` computes them with
      `approx_tokens` from the request's message contents and from `text`.
    - `chunks`: how `text` is split into stream deltas; default pieces of 8 characters. Given
      without `text`, `text` becomes their concatenation.
    - `break_stream_after`: close the connection after this many content deltas, with no final
      chunk, no `[DONE]` and no chunked-encoding terminator (a mid-stream failure).
    - `raw_stream`: for stream requests, send these bytes verbatim as the (chunked) SSE body.
    - `finish_reason`: of the completion (`"stop"`; `"length"` for a truncated answer).
    - `model`: the model named in the response; default: the request's `model`.
    """

    text: str = ""
    status: int = 200
    delay: float = 0.0
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    usage: tuple[int, int] | None = None
    chunks: list[str] | None = None
    break_stream_after: int | None = None
    raw_stream: bytes | None = None
    chunk_delay: float = 0.0
    finish_reason: str = "stop"
    model: str | None = None

    def __post_init__(self) -> None:
        if self.chunks is not None and not self.text:
            self.text = "".join(self.chunks)

    # -- builders ----------------------------------------------------------------------------

    @classmethod
    def error(
        cls, status: int = 500, retry_after: float | str | None = None, message: str = ""
    ) -> Reply:
        """An OpenAI-style error response; `retry_after` sets the `Retry-After` header."""
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        return cls(text=message, status=status, headers=headers)

    @classmethod
    def slow(cls, text: str, delay: float) -> Reply:
        """`text`, after `delay` seconds of silence (nothing sent, not even headers)."""
        return cls(text=text, delay=delay)

    @classmethod
    def stalled_stream(cls, text: str, chunk_delay: float) -> Reply:
        """For a stream: headers at once, then `chunk_delay` seconds before every SSE event."""
        return cls(text=text, chunk_delay=chunk_delay)

    @classmethod
    def malformed(cls, status: int = 200) -> Reply:
        """A JSON body cut short mid-array (`{"choices": [` and garbage)."""
        return cls(status=status, body=b'{"choices": [{"index": 0, "mess\x00garbage')

    @classmethod
    def chunked(cls, *chunks: str) -> Reply:
        """Text streamed as exactly these deltas."""
        return cls(chunks=list(chunks))

    @classmethod
    def broken_stream(cls, text: str, after: int = 1) -> Reply:
        """A stream whose connection drops after `after` content deltas."""
        return cls(text=text, break_stream_after=after)

    @classmethod
    def raw_sse(cls, data: bytes | str) -> Reply:
        """A stream whose SSE body is exactly `data`."""
        return cls(raw_stream=data.encode() if isinstance(data, str) else data)

    @classmethod
    def truncated(cls, text: str) -> Reply:
        """An answer cut off by the token limit (`finish_reason: "length"`)."""
        return cls(text=text, finish_reason="length")

    def stream_pieces(self) -> list[str]:
        """The content deltas a stream of this reply carries."""
        if self.chunks is not None:
            return list(self.chunks)
        return [self.text[i : i + 8] for i in range(0, len(self.text), 8)]


@dataclass
class Recorded:
    """One request the peer received. Header names are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    body: Any  # the parsed JSON body; None when empty or not JSON
    at: float  # time.monotonic() when it was received

    @property
    def messages(self) -> list[dict[str, Any]]:
        if isinstance(self.body, dict) and isinstance(self.body.get("messages"), list):
            return list(self.body["messages"])
        return []

    def contents(self, role: str) -> list[str]:
        """The text of every message with this role (content parts joined)."""
        return [_content_text(m.get("content")) for m in self.messages if m.get("role") == role]

    @property
    def system(self) -> str:
        """All system (and developer) message text, joined by newlines."""
        return "\n".join(self.contents("system") + self.contents("developer"))

    @property
    def user(self) -> str:
        """All user message text, joined by newlines."""
        return "\n".join(self.contents("user"))

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and bool(self.body.get("stream"))

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


class Peer:
    """A scripted OpenAI-compatible server on 127.0.0.1; use as a context manager.

    `script(*replies)` queues replies for chat-completions requests, consumed one per request in
    order; once the queue is empty `default` answers. `requests` records every request received
    (`chat_requests` just the chat completions). Handler exceptions other than a client hanging
    up are kept in `errors`.
    """

    def __init__(self, default: Reply | None = None, *, model: str = MODEL_ID) -> None:
        self.default: Reply = default if default is not None else Reply("peer reply")
        self.model = model
        self.requests: list[Recorded] = []
        self.errors: list[BaseException] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._ids = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("peer already started")
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.peer = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name="llm-peer",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # cuts scripted delays short
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("peer not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT` (no path)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT/v1`, what an OpenAI client takes as `base_url`."""
        return f"{self.url}/v1"

    # -- scripting and inspection ------------------------------------------------------------

    def script(self, *replies: Reply | str) -> Self:
        """Queue replies (a plain string means `Reply(text)`)."""
        with self._lock:
            self._queue.extend(Reply(r) if isinstance(r, str) else r for r in replies)
        return self

    @property
    def pending(self) -> int:
        """How many scripted replies have not been used yet."""
        with self._lock:
            return len(self._queue)

    @property
    def chat_requests(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def last(self) -> Recorded:
        with self._lock:
            return self.requests[-1]

    def clear(self) -> None:
        """Forget recorded requests, errors and scripted replies."""
        with self._lock:
            self.requests.clear()
            self.errors.clear()
            self._queue.clear()

    # -- internals ---------------------------------------------------------------------------

    def _record(self, rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)

    def _next_reply(self) -> tuple[Reply, str]:
        with self._lock:
            reply = self._queue.popleft() if self._queue else self.default
            self._ids += 1
            return reply, f"chatcmpl-peer{self._ids:06d}"

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    peer: Peer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up on every open connection (idle keep-alive ones included)."""
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if exc is not None and not isinstance(exc, ConnectionError | TimeoutError):
            self.peer.errors.append(exc)


class _Hangup(Exception):
    """Raised inside the handler to drop the connection on purpose."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "llm-peer/1"
    sys_version = ""
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- request handling --------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        peer = self.server.peer
        raw = self._read_body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        rec = Recorded(
            method=self.command,
            path=self.path.split("?", 1)[0],
            headers={k.lower(): v for k, v in self.headers.items()},
            raw=raw,
            body=body,
            at=time.monotonic(),
        )
        peer._record(rec)
        try:
            if rec.path.rstrip("/") == "/v1/chat/completions" and self.command == "POST":
                self._chat(peer, rec)
            elif rec.path.rstrip("/") == "/v1/models" and self.command == "GET":
                self._json(200, _models_body(peer.model))
            else:
                self._json(404, _error_body(404, f"peer: no route {self.command} {rec.path}"))
        except (_Hangup, ConnectionError, TimeoutError):
            self.close_connection = True

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _chat(self, peer: Peer, rec: Recorded) -> None:
        reply, cid = peer._next_reply()
        peer._sleep(reply.delay)
        if peer._stopping.is_set():
            raise _Hangup
        req = rec.body if isinstance(rec.body, dict) else {}
        if reply.body is not None:
            self._send(reply.status, reply.body, reply.headers)
            return
        if reply.status != 200:
            message = reply.text or f"peer: scripted error {reply.status}"
            self._json(reply.status, _error_body(reply.status, message), reply.headers)
            return
        model = reply.model or str(req.get("model") or peer.model)
        prompt_tokens, completion_tokens = reply.usage or (
            sum(approx_tokens(_content_text(m.get("content"))) for m in rec.messages),
            approx_tokens(reply.text),
        )
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        created = int(time.time())
        if not req.get("stream"):
            self._json(
                200,
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply.text},
                            "logprobs": None,
                            "finish_reason": reply.finish_reason,
                        }
                    ],
                    "usage": usage,
                },
                reply.headers,
            )
            return
        opts = req.get("stream_options")
        include_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
        self._stream(peer, reply, cid, created, model, usage if include_usage else None)

    def _stream(
        self,
        peer: Peer,
        reply: Reply,
        cid: str,
        created: int,
        model: str,
        usage: dict[str, int] | None,
    ) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("X-Request-Id", cid)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()

        if reply.raw_stream is not None:
            if reply.raw_stream:
                self._chunk(reply.raw_stream)
            self._end_chunks()
            return

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            obj: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if usage is not None:
                obj["usage"] = None
            return obj

        def event(obj: Any) -> None:
            peer._sleep(reply.chunk_delay)
            if peer._stopping.is_set():
                raise _Hangup
            data = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
            self._chunk(f"data: {data}\n\n".encode())

        pieces = reply.stream_pieces() or [""]
        for i, piece in enumerate(pieces):
            if reply.break_stream_after is not None and i >= reply.break_stream_after:
                raise _Hangup
            delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
            event(chunk(delta, None))
        if reply.break_stream_after is not None and reply.break_stream_after <= len(pieces):
            raise _Hangup
        event(chunk({}, reply.finish_reason))
        if usage is not None:
            event(
                {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
            )
        event("[DONE]")
        self._end_chunks()

    # -- response writing --------------------------------------------------------------------

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False).encode(), headers or {})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        if not any(k.lower() == "content-type" for k in headers):
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def _models_body(model: str) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": model, "object": "model", "created": 0, "owned_by": "peer"}],
    }


def _error_body(status: int, message: str) -> dict[str, Any]:
    etype, code = _ERROR_TYPES.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    return {"error": {"message": message, "type": etype, "param": None, "code": code}}


__all__ = ["MODEL_ID", "Peer", "Recorded", "Reply", "approx_tokens"]
