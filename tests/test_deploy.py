"""`deploy/compose.yaml` (several API replicas over one PostgreSQL + pgvector database) agrees
with the code: no Docker daemon or image registry is reachable where the tests run, so the file
is checked against what it relies on instead — the commands it runs parse, every replica reaches
the database the `db` service creates, and nginx forwards to the port the image serves on."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from rag.cli import build_parser
from rag.config import Settings
from rag.store.postgres import is_postgres_url

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The parsed Compose file."""
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping"
    return {str(k): str(v) for k, v in env.items()}


def test_replicas_and_init_use_the_database_the_db_service_creates(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert services["db"]["image"].startswith("pgvector/pgvector:")
    db = _env(services["db"])
    for name in ("init", "api"):
        url = _env(services[name])["RAG_STORE_URL"]
        assert is_postgres_url(url)
        parts = urlsplit(url)
        assert parts.hostname == "db"
        assert (parts.username, parts.password) == (db["POSTGRES_USER"], db["POSTGRES_PASSWORD"])
        assert parts.path.lstrip("/") == db["POSTGRES_DB"]
        # the same settings the service reads: the URL is valid for it
        assert Settings(store_url=url).store_url == url
    assert services["api"]["deploy"]["replicas"] >= 2
    assert services["api"]["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert services["init"]["depends_on"]["db"]["condition"] == "service_healthy"


def test_the_init_commands_exist(compose: dict[str, Any]) -> None:
    command = compose["services"]["init"]["command"]
    assert command[:2] == ["sh", "-c"]
    # Compose turns `$$` into `$`; the shell then expands the variable the service sets
    script = command[2].replace("$$", "$")
    url = _env(compose["services"]["init"])["RAG_STORE_URL"]
    steps = [shlex.split(step.replace("$RAG_STORE_URL", url)) for step in script.split("&&")]
    assert [s[0] for s in steps] == ["rag", "rag"]
    parser = build_parser()
    parsed = [parser.parse_args(s[1:]) for s in steps]
    assert parsed[0].func.__name__ == "cmd_db" and parsed[0].action == "upgrade"
    assert parsed[1].func.__name__ == "cmd_migrate" and parsed[1].to == url


def test_nginx_forwards_to_the_port_the_image_serves_on(compose: dict[str, Any]) -> None:
    conf = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    upstream = re.search(r"upstream\s+\w+\s*\{\s*server\s+([\w.-]+):(\d+);", conf)
    assert upstream is not None
    host, port = upstream.groups()
    assert host == "api"
    assert compose["services"]["api"]["expose"] == [port]
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(rf"RAG_PORT={port}\b", dockerfile), "the image listens where nginx sends"
    assert re.search(r"RAG_HOST=0\.0\.0\.0\b", dockerfile), "reachable from the nginx container"
    # uploads up to the service's own limit pass the proxy
    limit = re.search(r"client_max_body_size\s+(\d+)m;", conf)
    assert limit is not None
    assert int(limit.group(1)) * 1024 * 1024 >= Settings().max_file_bytes
    mount = compose["services"]["lb"]["volumes"][0].split(":")
    assert (DEPLOY / mount[0]).resolve() == (DEPLOY / "nginx.conf").resolve()
