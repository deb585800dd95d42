"""OpenAI-compatible chat completions over httpx: vLLM, Ollama's /v1, llama.cpp's server,
DeepSeek, Qwen's compatible mode and OpenAI itself speak this one protocol.

Retries with exponential backoff on 429, 5xx and connection errors (honouring `Retry-After`, capped),
before any text has been received (timeouts are not retried: the caller already waited); always streams from the server, so one code path serves both
streaming and whole answers.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from rag.llm.base import LLM, LLMBadResponse, LLMError, LLMRateLimited, LLMTimeout, Message, Usage

_RETRY_STATUSES = {429, 500, 502, 503, 504}
_MAX_RETRY_AFTER = 10.0


class OpenAIChat(LLM):
    """A chat model behind an OpenAI-compatible `/chat/completions` endpoint."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 2,
        backoff: float = 0.5,
        max_tokens: int = 512,
        temperature: float = 0.1,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Configure the client (no request is made here)."""
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.retries = retries
        self.backoff = backoff
        self.max_tokens = max_tokens
        self.temperature = temperature
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout), headers=headers, transport=transport
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _body(self, messages: Sequence[Message]) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }

    def stream(self, messages: Sequence[Message]) -> Iterator[str | Usage]:
        """Stream the reply; retry failures that happen before the first delta."""
        body = self._body(messages)
        for attempt in range(self.retries + 1):
            started = False
            try:
                with self._client.stream(
                    "POST", f"{self.base_url}/chat/completions", json=body
                ) as resp:
                    if resp.status_code in _RETRY_STATUSES and attempt < self.retries:
                        self._sleep(attempt, resp.headers.get("retry-after"))
                        continue
                    _raise_for_status(resp)
                    for item in _parse(resp):
                        started = True
                        yield item
                    return
            except httpx.TimeoutException as exc:
                # Not retried: the caller has already waited a whole timeout.
                raise LLMTimeout(
                    f"the LLM at {self.base_url} did not answer within the timeout"
                ) from exc
            except (httpx.TransportError, httpx.DecodingError) as exc:
                if started or attempt >= self.retries:
                    raise LLMError(f"cannot reach the LLM at {self.base_url}: {exc}") from exc
                self._sleep(attempt, None)

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff * (2**attempt)
        if retry_after:
            with contextlib.suppress(ValueError):
                delay = min(max(float(retry_after), 0.0), _MAX_RETRY_AFTER)
        time.sleep(delay)


def _raise_for_status(resp: httpx.Response) -> None:
    if resp.status_code == 200:
        return
    resp.read()
    detail = resp.text[:200]
    if resp.status_code == 429:
        raise LLMRateLimited(f"the LLM is rate-limiting requests (429): {detail}")
    raise LLMError(f"the LLM answered HTTP {resp.status_code}: {detail}")


def _parse(resp: httpx.Response) -> Iterator[str | Usage]:
    """OpenAI SSE (`data: {...}` … `data: [DONE]`), or a plain JSON completion from servers that
    ignore `stream`. Anything else is `LLMBadResponse`."""
    ctype = resp.headers.get("content-type", "")
    if "text/event-stream" not in ctype:
        resp.read()
        try:
            data = resp.json()
            text = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LLMBadResponse(f"not an OpenAI chat completion: {resp.text[:120]!r}") from exc
        if not isinstance(text, str):
            raise LLMBadResponse("the completion has no text content")
        yield text
        if isinstance(data.get("usage"), dict):
            yield _usage(data["usage"])
        return
    done = False
    for line in resp.iter_lines():
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            done = True
            break
        try:
            chunk = json.loads(payload)
        except ValueError as exc:
            raise LLMBadResponse(f"malformed stream chunk: {payload[:120]!r}") from exc
        if not isinstance(chunk, dict):
            raise LLMBadResponse(f"malformed stream chunk: {payload[:120]!r}")
        if isinstance(chunk.get("usage"), dict):
            yield _usage(chunk["usage"])
        for choice in chunk.get("choices") or []:
            delta = (choice or {}).get("delta") or {}
            if isinstance(delta.get("content"), str) and delta["content"]:
                yield delta["content"]
    if not done:
        raise LLMBadResponse("the stream ended before [DONE]")


def _usage(u: dict[str, Any]) -> Usage:
    return Usage(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0))
