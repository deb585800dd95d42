"""Finding and asking a running `rag serve` from the CLI, so that `rag ask`/`rag search` need not
load the embedding model for every question.

`rag serve`, once listening, records itself in `<index_dir>/serve.json` (host, port, pid, the
resolved index path, its embedder, whether it wants API keys); it removes the file when it shuts
down. A client uses that server only if the file is readable, names this index and embedder, its
pid is alive and `GET /readyz` answers 200 within half a second; anything else (a stale file, a
server that went away, a refused key, a 5xx) is `Unavailable`, and the caller answers in-process.
The standard library's HTTP client is used (no proxies: the server is local).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import InputError

log = logging.getLogger(__name__)

SERVE_FILE = "serve.json"
READY_TIMEOUT = 0.5
_WILDCARD = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


class Unavailable(Exception):
    """No usable server: answer in-process instead."""


def serve_file(index_dir: Path) -> Path:
    """Where a server on `index_dir` records itself."""
    return Path(index_dir) / SERVE_FILE


def write_serve_file(
    index_dir: Path, host: str, port: int, embedder: str, auth: bool
) -> Path | None:
    """Record this process as the server of `index_dir` (atomically: a temporary file renamed);
    None, with a log line, when it cannot be written (a read-only index still serves)."""
    path = serve_file(index_dir)
    record = {
        "host": host,
        "port": port,
        "pid": os.getpid(),
        "index_dir": str(Path(index_dir).resolve()),
        "embedder": embedder,
        "auth": auth,
    }
    # not `.<name>.<pid>.tmp`: the index cleans up such files when their writer holds no lock
    tmp = path.with_name(f"{SERVE_FILE}.{os.getpid()}.part")
    try:
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("could not write %s (CLI commands will not find this server): %s", path, exc)
        with contextlib.suppress(OSError):
            tmp.unlink()
        return None
    return path


def remove_serve_file(index_dir: Path) -> None:
    """Remove `serve.json` if this process wrote it (a later server's file is left alone)."""
    path = serve_file(index_dir)
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Server:
    """A live server on this index: its base URL and the key to send (if any)."""

    base: str
    key: str | None

    def post(self, path: str, body: dict[str, Any], timeout: float = 300.0) -> dict[str, Any]:
        """POST JSON, return the JSON answer. A 4xx other than 401/403/408/429 is the caller's
        mistake (`InputError` with the server's message); every other failure is `Unavailable`."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        request = urllib.request.Request(
            self.base + path,
            data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
            headers=headers,
            method="POST",
        )
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                data = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            if 400 <= exc.code < 500 and exc.code not in (401, 403, 408, 429):
                raise InputError(_message(exc)) from None
            raise Unavailable(f"{path}: HTTP {exc.code}") from None
        except (OSError, ValueError) as exc:  # URLError, timeouts, resets, bad JSON
            raise Unavailable(f"{path}: {exc}") from None
        if not isinstance(data, dict):
            raise Unavailable(f"{path}: unexpected answer")
        return data


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read().decode("utf-8"))["error"]["message"])
    except Exception:
        return f"HTTP {exc.code}"


def find_server(index_dir: Path, embedder: str, key: str | None) -> Server:
    """The live server of `index_dir` using `embedder`, or `Unavailable` saying why not."""
    try:
        record = json.loads(serve_file(index_dir).read_text(encoding="utf-8"))
        host, port, pid = str(record["host"]), int(record["port"]), record["pid"]
        served, served_embedder, auth = record["index_dir"], record["embedder"], record["auth"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise Unavailable(f"no usable {SERVE_FILE}: {exc}") from None
    if served != str(Path(index_dir).resolve()) or served_embedder != embedder:
        raise Unavailable("the server serves another index or embedder")
    if auth and not key:
        raise Unavailable("the server wants an API key and RAG_API_KEY is not set")
    if not _alive(pid):
        raise Unavailable(f"stale {SERVE_FILE}: process {pid} is gone")
    host = _WILDCARD.get(host, host)
    base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    try:
        with _OPENER.open(base + "/readyz", timeout=READY_TIMEOUT) as response:
            if response.status != 200:
                raise Unavailable(f"/readyz: HTTP {response.status}")
    except (OSError, ValueError) as exc:
        raise Unavailable(f"/readyz: {exc}") from None
    return Server(base, key if auth else None)
