"""API keys: Bearer tokens, kept only as SHA-256 digests and compared in constant time.

`RAG_API_KEYS` guards every route except health checks and the docs; `RAG_ADMIN_KEYS`, when set,
is required for writes (an API key alone can then only read). Keys in the query string are refused
outright (they end up in logs and browser histories); keys are never logged. The check runs in a
pure ASGI middleware (`api.middleware.Authenticate`) from the method and path alone, before any
body is read, so a missing key is a 401 whatever the body holds.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from starlette.datastructures import Headers

from rag.config import Settings
from rag.errors import RagError

_QUERY_KEY_NAMES = {"api_key", "apikey", "key", "token", "access_token"}
_DOCUMENTS = "/v1/documents"


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


def bearer_digest(headers: Headers) -> bytes | None:
    """Digest of the `Authorization: Bearer <key>` token, or None when there is none."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return _digest(token.strip())


def is_write(method: str, path: str) -> bool:
    """Uploads and deletes: POST or DELETE on `/v1/documents` or below it."""
    on_documents = path == _DOCUMENTS or path.startswith(_DOCUMENTS + "/")
    return on_documents and method in ("POST", "DELETE")


class KeyRing:
    """The configured keys, as digests only."""

    def __init__(self, settings: Settings) -> None:
        """Hash the keys from `settings`; the plain keys are not kept."""
        self.read = digests(settings.api_keys)
        self.admin = digests(settings.admin_keys)

    @property
    def configured(self) -> bool:
        """Whether any key is configured (otherwise every route is open)."""
        return bool(self.read or self.admin)

    @staticmethod
    def _matches(presented: bytes, ring: tuple[bytes, ...]) -> bool:
        # Compare against every key (no early exit) so timing says nothing about which matched.
        found = False
        for d in ring:
            found |= hmac.compare_digest(presented, d)
        return found

    def check(self, headers: Headers, query_names: Iterable[str], write: bool) -> None:
        """Raise `Unauthorized`/`Forbidden` unless the request may read (or write)."""
        if _QUERY_KEY_NAMES & {k.lower() for k in query_names}:
            raise Unauthorized(
                "API keys are accepted only in the Authorization header, not the URL"
            )
        needed = self.admin if (write and self.admin) else self.read + self.admin
        if not needed:
            return  # no keys configured for this kind of route: open
        presented = bearer_digest(headers)
        if presented is None:
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        if self._matches(presented, needed):
            return
        if write and self._matches(presented, self.read):
            raise Forbidden("this key may read but not write; writes need an admin key")
        raise Unauthorized("invalid API key")
