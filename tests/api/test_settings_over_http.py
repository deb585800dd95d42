"""The settings the README documents apply over HTTP: `RAG_TOP_K` is the default top_k and
`RAG_MAX_TOP_K` the limit (either way), against a real `rag serve`; `make serve` listens where
`RAG_HOST` / `RAG_PORT` say."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.engine import Engine

ROOT = Path(__file__).resolve().parents[2]


def test_top_k_settings_apply_over_http(
    corpus_engine: Engine, tmp_path: Path, loopback_server: Any
) -> None:
    env = {"RAG_TOP_K": "3", "RAG_MAX_TOP_K": "100"}
    with (
        loopback_server(corpus_engine.settings.index_dir, tmp_path / "server.log", **env) as s,
        httpx.Client(base_url=s.base, timeout=60) as c,
    ):
        r = c.post("/v1/search", json={"query": "长三角一体化"})
        assert r.status_code == 200 and len(r.json()["results"]) == 3
        chat = {"messages": [{"role": "user", "content": "湖州有几大新兴产业？"}]}
        assert c.post("/v1/chat/completions", json=chat).status_code == 200
        # over the old hard-coded 50 (the bundled corpus holds fewer passages than 80)
        r = c.post("/v1/search", json={"query": "长三角一体化", "top_k": 80})
        assert r.status_code == 200 and len(r.json()["results"]) > 5
        r = c.post("/v1/ask", json={"question": "湖州有几大新兴产业？", "top_k": 80})
        assert r.status_code == 200
        r = c.post("/v1/search", json={"query": "长三角一体化", "top_k": 101})
        assert r.status_code == 422 and "100" in r.json()["error"]["message"]


def _make_serve(*args: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    clean.pop("HOST", None)
    clean.pop("PORT", None)
    # under `make test` the parent make's flags would make this one print directory lines
    for var in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS"):
        clean.pop(var, None)
    out = subprocess.run(
        ["make", "-n", "--no-print-directory", "serve", *args],  # -n: print, run nothing
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_serve_honours_rag_host_and_port() -> None:
    assert _make_serve().endswith("rag serve --host 127.0.0.1 --port 8000")
    line = _make_serve(RAG_HOST="0.0.0.0", RAG_PORT="9123")
    assert line.endswith("rag serve --host 0.0.0.0 --port 9123")
    assert _make_serve("PORT=9000", RAG_PORT="9123").endswith("--port 9000")
