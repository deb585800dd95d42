"""API keys: Bearer tokens, kept only as SHA-256 digests and compared in constant time.

`RAG_API_KEYS` guards every route except health checks; `RAG_ADMIN_KEYS`, when set, is required
for writes (an API key alone can then only read). Keys in the query string are refused outright
(they end up in logs and browser histories); keys are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request

from rag.config import Settings
from rag.errors import RagError

_QUERY_KEY_NAMES = {"api_key", "apikey", "key", "token", "access_token"}


class Unauthorized(RagError):
    """Missing or wrong credentials (401)."""

    code = "unauthorized"


class Forbidden(RagError):
    """Valid credentials that may not do this (403)."""

    code = "forbidden"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def digests(keys: str | None) -> tuple[bytes, ...]:
    """Digests of a comma-separated key list (blank entries ignored)."""
    return tuple(_digest(k.strip()) for k in (keys or "").split(",") if k.strip())


class KeyRing:
    """The configured keys, as digests only."""

    def __init__(self, settings: Settings) -> None:
        """Hash the keys from `settings`; the plain keys are not kept."""
        self.read = digests(settings.api_keys)
        self.admin = digests(settings.admin_keys)

    @staticmethod
    def _matches(presented: bytes, ring: tuple[bytes, ...]) -> bool:
        # Compare against every key (no early exit) so timing says nothing about which matched.
        found = False
        for d in ring:
            found |= hmac.compare_digest(presented, d)
        return found

    def check(self, request: Request, write: bool) -> None:
        """Raise `Unauthorized`/`Forbidden` unless the request may read (or write)."""
        if _QUERY_KEY_NAMES & {k.lower() for k in request.query_params}:
            raise Unauthorized(
                "API keys are accepted only in the Authorization header, not the URL"
            )
        needed = self.admin if (write and self.admin) else self.read + self.admin
        if not needed:
            return  # no keys configured for this kind of route: open
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        presented = _digest(token.strip())
        if self._matches(presented, needed):
            return
        if write and self._matches(presented, self.read):
            raise Forbidden("this key may read but not write; writes need an admin key")
        raise Unauthorized("invalid API key")


def _ring(request: Request) -> KeyRing:
    return request.app.state.keys


def require_read(request: Request, ring: Annotated[KeyRing, Depends(_ring)]) -> None:
    """Dependency for read routes."""
    ring.check(request, write=False)


def require_write(request: Request, ring: Annotated[KeyRing, Depends(_ring)]) -> None:
    """Dependency for write routes."""
    ring.check(request, write=True)
