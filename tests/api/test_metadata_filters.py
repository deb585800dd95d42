"""Policy metadata over HTTP: extracted on upload, overridden by the uploader's own, filterable in
`/v1/search` and `/v1/ask`, and carried by passages and chat citations.

One fresh engine (real embedder, FAISS, SQLite) on a temporary index holds four small policy
documents on one topic (so an unfiltered search finds several of them, and a filter has work to do).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rag.engine import Engine

SHANGHAI = """上海市人民政府文件
沪府发〔2024〕12号
上海市人民政府关于印发《上海市促进人工智能产业发展若干措施》的通知
各区人民政府，市政府各委、办、局：
现将《上海市促进人工智能产业发展若干措施》印发给你们，请认真按照执行。到2026年，本市人工智能产业规模力争达到4500亿元，建设10个人工智能创新应用先导区。对新建智能算力中心给予最高3000万元补贴。
特此通知。
上海市人民政府
2024年10月15日
"""
STATE_COUNCIL = """国务院办公厅关于加快推进人工智能产业发展的意见
国办发〔2023〕5号
各省、自治区、直辖市人民政府，国务院各部委、各直属机构：
人工智能是引领新一轮科技革命和产业变革的战略性技术。到2025年，全国人工智能核心产业规模超过5000亿元，培育50家人工智能领军企业。各地要完善人工智能产业发展支持政策。
国务院办公厅
2023年3月2日
"""
ZHEJIANG = """浙江省人民政府关于支持人工智能产业发展的若干意见
浙政发〔2022〕8号
各市、县（市、区）人民政府，省政府直属各单位：
为加快人工智能产业发展，到2025年，全省人工智能产业营业收入突破1000亿元，建设5个人工智能特色小镇。对人工智能企业研发投入给予10%的奖励。
浙江省人民政府
二〇二二年六月二十日
"""
HANGZHOU = """杭州市人民政府关于推进人工智能创新应用的通知
杭政函〔2021〕30号
各区、县（市）人民政府，市政府各部门：
为推进人工智能创新应用，本市将在城市大脑、智能制造等领域开放100个人工智能应用场景，对入选企业给予最高500万元支持。
杭州市人民政府
2021年5月10日
"""
HANGZHOU_USER_META = {"issuer": "杭州市数据资源管理局", "date": "2021年6月1日", "category": "试点"}
QUERY = "人工智能产业发展目标和支持政策"

SH_META = {
    "title": "上海市人民政府关于印发《上海市促进人工智能产业发展若干措施》的通知",
    "doc_number": "沪府发〔2024〕12号",
    "issuer": "上海市人民政府",
    "date": "2024-10-15",
}


@pytest.fixture(scope="module")
def ids(client: TestClient) -> dict[str, str]:
    """Uploads the four documents; their doc ids by short name."""
    out: dict[str, str] = {}
    for name, text, meta in (
        ("sh", SHANGHAI, None),
        ("gov", STATE_COUNCIL, None),
        ("zj", ZHEJIANG, None),
        ("hz", HANGZHOU, HANGZHOU_USER_META),
    ):
        body: dict[str, Any] = {"source": f"policy/{name}.txt", "text": text}
        if meta:
            body["metadata"] = meta
        r = client.post("/v1/documents", json=body)
        assert r.status_code == 201, r.text
        out[name] = r.json()["doc_id"]
    return out


def search(client: TestClient, flt: dict[str, Any] | None, top_k: int = 10) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"query": QUERY, "top_k": top_k}
    if flt is not None:
        body["filter"] = flt
    r = client.post("/v1/search", json=body)
    assert r.status_code == 200, r.text
    return list(r.json()["results"])


def docs_of(results: list[dict[str, Any]], ids: dict[str, str]) -> set[str]:
    names = {v: k for k, v in ids.items()}
    return {names[p["doc_id"]] for p in results}


def assert_error(r: Any, *words: str) -> None:
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    for w in words:
        assert w in message, message


# --- extraction on upload -----------------------------------------------------------------------
def test_extracted_metadata_is_stored_and_the_policy_title_replaces_the_red_header(
    client: TestClient, ids: dict[str, str]
) -> None:
    info = client.get(f"/v1/documents/{ids['sh']}").json()
    assert info["metadata"] == SH_META
    assert info["title"] == SH_META["title"]  # not "上海市人民政府文件", the loader's first line
    zj = client.get(f"/v1/documents/{ids['zj']}").json()["metadata"]
    assert (zj["issuer"], zj["date"], zj["doc_number"]) == (
        "浙江省人民政府",
        "2022-06-20",
        "浙政发〔2022〕8号",
    )


def test_user_metadata_wins_over_extracted_and_is_filterable(
    client: TestClient, ids: dict[str, str]
) -> None:
    meta = client.get(f"/v1/documents/{ids['hz']}").json()["metadata"]
    assert meta == {
        "title": "杭州市人民政府关于推进人工智能创新应用的通知",
        "doc_number": "杭政函〔2021〕30号",  # extracted, the user gave none
        "issuer": "杭州市数据资源管理局",  # the user's, not the 落款's 杭州市人民政府
        "date": "2021-06-01",  # the user's (normalised), not the 落款's 2021-05-10
        "category": "试点",
    }
    assert docs_of(search(client, {"metadata": {"category": "试点"}}), ids) == {"hz"}
    assert docs_of(search(client, {"metadata": {"issuer": "杭州市数据资源管理局"}}), ids) == {"hz"}
    assert search(client, {"metadata": {"issuer": "杭州市人民政府"}}) == []
    assert docs_of(search(client, {"date_from": "2021-06-01", "date_to": "2021-06-01"}), ids) == {
        "hz"
    }


# --- filters ------------------------------------------------------------------------------------
def test_unfiltered_search_spans_the_documents(client: TestClient, ids: dict[str, str]) -> None:
    results = search(client, None)
    assert len(docs_of(results, ids)) >= 3  # so the filters below have something to remove
    for p in results:  # every passage carries its document's metadata
        assert p["metadata"] == client.get(f"/v1/documents/{p['doc_id']}").json()["metadata"]


def test_filter_by_issuer_or_doc_number(client: TestClient, ids: dict[str, str]) -> None:
    results = search(client, {"metadata": {"issuer": "上海市人民政府"}})
    assert results and docs_of(results, ids) == {"sh"}
    assert all(p["metadata"] == SH_META for p in results)
    results = search(client, {"metadata": {"doc_number": "国办发〔2023〕5号"}})
    assert results and docs_of(results, ids) == {"gov"}
    both = {"issuer": "国务院办公厅", "doc_number": "沪府发〔2024〕12号"}
    assert search(client, {"metadata": both}) == []  # every key must match


def test_date_range_is_inclusive(client: TestClient, ids: dict[str, str]) -> None:
    assert docs_of(search(client, {"date_from": "2023-01-01", "date_to": "2023-12-31"}), ids) == {
        "gov"
    }
    assert docs_of(search(client, {"date_from": "2023-03-02"}), ids) == {"gov", "sh"}
    assert docs_of(search(client, {"date_to": "2022-06-20"}), ids) == {"zj", "hz"}
    assert docs_of(search(client, {"date_from": "2022-06-20", "date_to": "2022-06-20"}), ids) == {
        "zj"
    }
    assert search(client, {"date_from": "2024-10-16"}) == []


def test_filters_combine_and_unknown_keys_match_nothing(
    client: TestClient, ids: dict[str, str]
) -> None:
    assert search(client, {"metadata": {"issuer": "上海市人民政府"}, "date_to": "2023-12-31"}) == []
    assert search(client, {"metadata": {"no_such_key": "x"}}) == []
    in_sources = {"sources": ["policy/sh.txt", "policy/zj.txt"], "date_from": "2023-01-01"}
    assert docs_of(search(client, in_sources), ids) == {"sh"}


@pytest.mark.parametrize(
    ("flt", "words"),
    [
        ({"date_from": "2024/10/15"}, ("date_from", "YYYY-MM-DD", "2024/10/15")),
        ({"date_to": "2024-02-30"}, ("date_to", "YYYY-MM-DD")),
        ({"date_to": "yesterday"}, ("date_to",)),
        ({"date_from": "2024-10-15", "date_to": "2024-01-01"}, ("date_from", "after", "date_to")),
        ({"metadata": {"issuer": ["a", "b"]}}, ("filter.metadata.issuer",)),
        ({"issuer": "上海市人民政府"}, ("filter.issuer",)),  # keys go under `metadata`
    ],
)
def test_bad_filters_are_422_naming_the_problem(
    client: TestClient, ids: dict[str, str], flt: dict[str, Any], words: tuple[str, ...]
) -> None:
    assert_error(client.post("/v1/search", json={"query": QUERY, "filter": flt}), *words)
    assert_error(client.post("/v1/ask", json={"question": QUERY, "filter": flt}), *words)
    r = client.post("/v1/ask", json={"question": QUERY, "filter": flt, "stream": True})
    assert_error(r, *words)


# --- metadata with answers ------------------------------------------------------------------------
def test_ask_with_a_filter_cites_only_that_document_with_its_metadata(
    client: TestClient, ids: dict[str, str]
) -> None:
    question = "到2025年全国人工智能核心产业规模要超过多少？"
    body = {"question": question, "filter": {"metadata": {"issuer": "国务院办公厅"}}}
    r = client.post("/v1/ask", json=body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["answerable"] and answer["citations"], answer
    assert docs_of(answer["passages"], ids) == {"gov"}
    for c in answer["citations"]:
        cited = answer["passages"][c["marker"] - 1]
        assert cited["chunk_id"] == c["chunk_id"]
        assert cited["metadata"]["issuer"] == "国务院办公厅"
        assert cited["metadata"]["doc_number"] == "国办发〔2023〕5号"
        assert cited["metadata"]["date"] == "2023-03-02"
    # The same filter excluding the answer's document: nothing from it comes back.
    body["filter"] = {"metadata": {"issuer": "国务院办公厅"}, "date_from": "2024-01-01"}
    assert client.post("/v1/ask", json=body).json()["passages"] == []


def test_streamed_ask_applies_the_filter_and_sends_metadata(
    client: TestClient, ids: dict[str, str]
) -> None:
    body = {"question": QUERY, "stream": True, "filter": {"date_to": "2022-12-31"}}
    with client.stream("POST", "/v1/ask", json=body) as r:
        assert r.status_code == 200
        text = "".join(r.iter_text())
    events = {}
    for block in text.strip().split("\n\n"):
        event, data = block.split("\n", 1)
        events[event.removeprefix("event: ")] = json.loads(data.removeprefix("data: "))
    passages = events["passages"]["passages"]
    assert passages and docs_of(passages, ids) <= {"zj", "hz"}
    assert all(p["metadata"]["date"] <= "2022-12-31" for p in passages)
    final = events["citations"]["passages"]
    assert final and all(p["metadata"]["date"] <= "2022-12-31" for p in final)


def test_chat_citations_carry_metadata(client: TestClient, ids: dict[str, str]) -> None:
    r = client.post(
        "/v1/chat/completions",
        json={
            "messages": [{"role": "user", "content": "浙江省对人工智能企业研发投入给予多少奖励？"}]
        },
    )
    assert r.status_code == 200, r.text
    citations = r.json()["citations"]
    assert citations
    for c in citations:
        doc_id = c["chunk_id"].split(":")[0]
        assert c["metadata"] == client.get(f"/v1/documents/{doc_id}").json()["metadata"]
    assert any(c["metadata"].get("issuer") == "浙江省人民政府" for c in citations)


# --- upload metadata limits -----------------------------------------------------------------------
def test_upload_metadata_is_any_small_json_object(client: TestClient, engine: Engine) -> None:
    nested = {"series": {"name": "政策汇编", "volume": 3}, "tags": ["AI", "产业"]}
    r = client.post(
        "/v1/documents",
        json={"source": "limits/nested.txt", "text": ZHEJIANG, "metadata": nested},
    )
    assert r.status_code == 201, r.text
    stored = client.get(f"/v1/documents/{r.json()['doc_id']}").json()["metadata"]
    assert stored["series"] == nested["series"] and stored["issuer"] == "浙江省人民政府"
    assert docs_of(search(client, {"metadata": {"tags": "产业"}}), {"n": r.json()["doc_id"]}) == {
        "n"
    }
    client.delete(f"/v1/documents/{r.json()['doc_id']}")

    generation = engine.store.generation()
    too_big = {"note": "长" * 6000}
    r = client.post(
        "/v1/documents", json={"source": "limits/big.txt", "text": ZHEJIANG, "metadata": too_big}
    )
    assert_error(r, "metadata", "16384")
    r = client.post(
        "/v1/documents",
        files={"file": ("limits/big.txt", ZHEJIANG.encode(), "text/plain")},
        data={"metadata": json.dumps(too_big, ensure_ascii=False)},
    )
    assert_error(r, "metadata")
    r = client.post(
        "/v1/documents",
        files={"file": ("limits/deep.txt", ZHEJIANG.encode(), "text/plain")},
        data={"metadata": "[" * 5000},
    )
    assert_error(r, "metadata")
    assert engine.store.generation() == generation  # nothing was written
