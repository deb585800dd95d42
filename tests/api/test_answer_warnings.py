"""Answer warnings over HTTP: `constraint_mismatch` and `not_a_question` in `/v1/ask` and chat."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from rag.config import Settings
from rag.embed.base import Embedder
from rag.engine import Engine

ServerFactory = Callable[..., AbstractContextManager[tuple[str, FastAPI]]]

PARK = (
    "碳谷绿湾产业园\n"
    "数据显示，碳谷绿湾产业园2023年实现产值300亿元，税收43.58亿元。"
    "园区已集聚新材料企业120家。\n"
)
RAIL = (
    "沪苏湖高铁全长约164公里，设计时速350公里，于2024年12月26日开通运营。"
    "线路自上海虹桥站引出，经江苏苏州，终至浙江湖州，沿途设七座车站。\n"
)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, use_embedder: Embedder) -> Iterator[Engine]:
    """An engine with a refusal floor of 0: a question the answerability model would refuse (a
    year the documents never state) is answered, so its `constraint_mismatch` shows."""
    settings = Settings(
        index_dir=tmp_path_factory.mktemp("answer_warnings"),
        api_keys=None,
        admin_keys=None,
        cors_origins=None,
        relevance_floor=0.0,
    )
    engine = Engine(settings, embedder=use_embedder)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def server(engine: Engine, uvicorn_server: ServerFactory) -> Iterator[str]:
    """A live server over two small documents."""
    engine.ingest_bytes("park.txt", PARK.encode())
    engine.ingest_bytes("rail.txt", RAIL.encode())
    with uvicorn_server(engine) as (base, _):
        yield base


def ask(server: str, question: str) -> dict[str, Any]:
    r = httpx.post(f"{server}/v1/ask", json={"question": question}, timeout=60)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_constraint_mismatch_reaches_the_ask_json(server: str) -> None:
    body = ask(server, "碳谷绿湾产业园2024年的税收是多少？")
    assert body["answerable"] is True
    warnings = body["warnings"]
    codes = [w["code"] for w in warnings]
    assert "constraint_mismatch" in codes
    message = warnings[codes.index("constraint_mismatch")]["message"]
    assert "2024" in message and "2023" in message
    ok = ask(server, "碳谷绿湾产业园2023年的税收是多少？")
    assert "constraint_mismatch" not in [w["code"] for w in ok["warnings"]]


def test_a_greeting_over_ask_and_chat(server: str) -> None:
    body = ask(server, "您好！")
    assert body["answerable"] is False and body["citations"] == [] and body["passages"] == []
    assert [w["code"] for w in body["warnings"]] == ["not_a_question"]
    r = httpx.post(
        f"{server}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "hello"}]},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    chat = r.json()
    assert chat["choices"][0]["message"]["content"] == "Please ask a question about the documents."
    assert chat["answerable"] is False
    assert [w["code"] for w in chat["warnings"]] == ["not_a_question"]
