"""Soak test: readers, a writer and hostile clients against one real server, for a minute.

The script indexes `corpus/` into a temporary directory, starts `python -m rag.cli serve` on a
free loopback port and runs, all at once for `--duration` seconds (default 60):

* **readers** (`--readers`, 32): closed-loop clients on distinct questions (the dev sets and the
  CMRC 2018 trial questions, each reader starting at its own offset), `POST /v1/search` and every
  fourth request `POST /v1/ask`; one request in three asks about the writer's documents;
* **one writer**: adds, updates and deletes its own documents (`soak/NNN.txt`) through
  `POST /v1/documents` (JSON) and `DELETE /v1/documents/{id}`; every sentence of a document
  carries the tag `〔soak-NNN vV〕` of its version. After each acknowledged write it reads the
  index generation the write produced (`X-Index-Generation` of a search), so the script knows
  which version of which document every generation holds;
* **hostile clients** (`--hostile`, 2): in turn, a chat message and a search with a lone
  surrogate, `top_k` as a string and as a boolean, an over-long query and id, malformed and
  deeply nested JSON, a body over the request limit, an unsafe file name, a binary file, an old
  `.doc`, a DOCX zip bomb (a small zip whose `word/document.xml` expands to `--bomb-mb` MB), a PDF
  of many blank pages, and slowloris connections that send half a request and then nothing.
  Every one must get a 4xx (or, for slowloris, be closed by the server); none may commit.

It then checks, and prints:

* **zero 5xx** and zero transport errors among the readers' and writer's requests;
* **zero responses mixing generations**: every passage of a writer document in a search response
  holds the version that the response's generation (`X-Index-Generation`) holds, all passages of
  one document in one response agree, and every generation seen is one the writer made;
* **exact counts** at the end: `GET /v1/documents` and `/readyz` both equal the corpus documents
  plus the writer's live documents;
* **peak RSS** of the server process tree (sampled every 0.2 s; parse workers included);
* request counts and latency percentiles per kind.

    python benchmarks/bench_soak.py                 # 60 s, 32 readers, 1 writer, 2 hostile
    python benchmarks/bench_soak.py --duration 20 --json

Exit status 0 when every check passes, 1 otherwise, 2 when the server cannot start.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import re
import sys
import tempfile
import time
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_load import (
    DEFAULT_CMRC,
    HOST,
    RawConnection,
    ServerFailed,
    build_index,
    load_questions,
    log,
    percentile,
    proc_tree,
    server,
)

ROOT = Path(__file__).resolve().parent.parent
DEV_SETS = [ROOT / "benchmarks" / "data" / f for f in ("seed_dev_qa.jsonl", "own_dev_qa.jsonl")]
TAG = re.compile(r"〔soak-(\d{3}) v(\d+)〕")
PAGE = 4096
SENTENCES = [
    "长三角港口群在{n}号码头开通了新的集装箱航线",
    "该航线每周往返三次，主要运输电子产品和汽车零部件",
    "码头管理部门表示，今年的吞吐量比去年增长了百分之十二",
    "新航线的开通将进一步降低区域企业的物流成本",
    "当地政府计划在明年扩建{n}号码头的堆场面积",
]


def writer_text(n: int, version: int) -> str:
    """A writer document: every sentence carries the `〔soak-NNN vV〕` tag of its version."""
    tag = f"〔soak-{n:03d} v{version}〕"
    lines = [s.format(n=n) + f"{tag}。" for s in SENTENCES for _ in range(2)]
    return f"浦江{n}号码头航线通报（第{version}版）\n\n" + "\n".join(lines) + "\n"


def rss_kib(pids: list[int]) -> int:
    """Resident set size of the processes, KiB (each process's VmRSS summed)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


# --- hostile requests ---------------------------------------------------------------------------
def docx_bomb(megabytes: int) -> bytes:
    """A .docx zip whose `word/document.xml` inflates to `megabytes` MB of small paragraphs."""
    head = (
        '<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats'
        '.org/wordprocessingml/2006/main"><w:body>'
    )
    para = "<w:p><w:r><w:t>炸</w:t></w:r></w:p>" * 1000
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="xml" ContentType="application/xml"/><Override '
            'PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        z.writestr(
            "_rels/.rels",
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
            '2006/relationships"><Relationship Id="r1" Type="http://schemas.openxmlformats.org/'
            'officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>'
            "</Relationships>",
        )
        with z.open("word/document.xml", "w", force_zip64=True) as f:
            f.write(head.encode())
            block = para.encode()
            for _ in range(megabytes * (1 << 20) // len(block)):
                f.write(block)
            f.write(b"</w:body></w:document>")
    return out.getvalue()


def blank_pdf(pages: int) -> bytes:
    """A valid PDF of `pages` empty pages (objects written by hand, with an xref table)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    kids = []
    for i in range(pages):
        kids.append(f"{i + 3} 0 R")
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {pages} >>".encode()
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(f"{i} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for off in offsets:
        out.write(f"{off:010d} 00000 n \n".encode())
    out.write(
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


def multipart(name: str, data: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with one `file` field; returns (body, content type)."""
    boundary = f"soak{random.getrandbits(64):016x}"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def raw_request(method: str, path: str, body: bytes, ctype: str = "application/json") -> bytes:
    """Request bytes with an explicit content type."""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def hostile_requests(bomb_mb: int, body_limit: int) -> list[tuple[str, bytes]]:
    """(name, request bytes) of every hostile request the hostile clients cycle through."""
    surrogate = b'"\\ud800 x"'
    bomb, bomb_type = multipart("bomb.docx", docx_bomb(bomb_mb))
    pdf, pdf_type = multipart("pages.pdf", blank_pdf(20000))
    exe, exe_type = multipart("tool.txt", bytes(range(256)) * 64)
    doc, doc_type = multipart("old.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 4096)
    unsafe, unsafe_type = multipart("../../etc/passwd.txt", "正文内容。".encode())
    nested = b"[" * 100_000 + b"]" * 100_000
    return [
        (
            "chat-surrogate",
            raw_request(
                "POST",
                "/v1/chat/completions",
                b'{"messages": [{"role": "user", "content": ' + surrogate + b"}]}",
            ),
        ),
        ("search-surrogate", raw_request("POST", "/v1/search", b'{"query": ' + surrogate + b"}")),
        (
            "top_k-string",
            raw_request("POST", "/v1/search", '{"query": "码头", "top_k": "5"}'.encode()),
        ),
        (
            "top_k-bool",
            raw_request("POST", "/v1/search", '{"query": "码头", "top_k": true}'.encode()),
        ),
        (
            "long-query",
            raw_request("POST", "/v1/ask", json.dumps({"question": "码" * 100_000}).encode()),
        ),
        ("long-id", raw_request("GET", "/v1/documents/" + "x" * 100_000, b"")),
        ("bad-json", raw_request("POST", "/v1/ask", b'{"question": ')),
        ("nested-json", raw_request("POST", "/v1/search", nested)),
        ("over-limit", raw_request("POST", "/v1/search", b" " * (body_limit + 1))),
        ("unsafe-name", raw_request("POST", "/v1/documents", unsafe, unsafe_type)),
        ("binary", raw_request("POST", "/v1/documents", exe, exe_type)),
        ("old-doc", raw_request("POST", "/v1/documents", doc, doc_type)),
        ("docx-bomb", raw_request("POST", "/v1/documents", bomb, bomb_type)),
        ("pdf-pages", raw_request("POST", "/v1/documents", pdf, pdf_type)),
    ]


# --- the run ------------------------------------------------------------------------------------
@dataclass
class Tally:
    """What every client saw."""

    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    seen: list[tuple[int, dict[str, int]]] = field(default_factory=list)  # (generation, doc→ver)
    mixed: list[str] = field(default_factory=list)
    states: dict[int, dict[str, int]] = field(default_factory=dict)  # generation → doc→version
    live: dict[str, int] = field(default_factory=dict)  # the writer's documents now
    hostile_ok: Counter[str] = field(default_factory=Counter)
    hostile_bad: Counter[str] = field(default_factory=Counter)
    slowloris_closed: int = 0
    slowloris_open: int = 0


def header(raw_head: bytes, name: bytes) -> str | None:
    """A response header's value from the raw head bytes."""
    for line in raw_head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip().decode()
    return None


async def send_with_head(conn: RawConnection, request: bytes) -> tuple[int, bytes, bytes]:
    """`conn.send`, with the response head (for its headers)."""
    status, body = await conn.send(request)
    return status, body, conn.last_head


def record_passages(tally: Tally, generation: int, results: list[dict[str, Any]]) -> None:
    """Note the versions of writer documents a response showed, checking they agree."""
    versions: dict[str, int] = {}
    for p in results:
        for n, v in TAG.findall(p.get("text", "")):
            doc = f"soak/{n}.txt"
            if p.get("source") != doc:
                tally.mixed.append(
                    f"gen {generation}: tag of {doc} in passage of {p.get('source')}"
                )
            if versions.setdefault(doc, int(v)) != int(v):
                tally.mixed.append(f"gen {generation}: {doc} shows v{versions[doc]} and v{v}")
    tally.seen.append((generation, versions))


async def reader(
    i: int, port: int, questions: list[str], stop: float, tally: Tally, writer_count: int
) -> None:
    """One closed-loop reader."""
    conn = RawConnection(HOST, port)
    k = i * 37
    while time.perf_counter() < stop:
        k += 1
        if k % 3 == 0:
            q = f"浦江{random.randrange(writer_count)}号码头的航线每周往返几次？"
        else:
            q = questions[k % len(questions)]
        route = "/v1/ask" if k % 4 == 0 else "/v1/search"
        key = "question" if route == "/v1/ask" else "query"
        body = json.dumps({key: q, "top_k": 5}, ensure_ascii=False).encode()
        t0 = time.perf_counter()
        try:
            status, payload, head = await send_with_head(conn, conn.encode("POST", route, body))
        except Exception as exc:
            tally.errors[f"reader {type(exc).__name__}"] += 1
            await asyncio.sleep(0.05)
            continue
        tally.latency[route].append(time.perf_counter() - t0)
        tally.statuses[(route, status)] += 1
        if status == 200 and route == "/v1/search":
            generation = header(head, b"x-index-generation")
            if generation is None:
                tally.errors["search without X-Index-Generation"] += 1
                continue
            record_passages(tally, int(generation), json.loads(payload)["results"])
    conn.close()


async def generation_now(conn: RawConnection) -> int:
    """The generation searches read now."""
    body = json.dumps({"query": "码头", "top_k": 1}, ensure_ascii=False).encode()
    status, _, head = await send_with_head(conn, conn.encode("POST", "/v1/search", body))
    value = header(head, b"x-index-generation")
    if status != 200 or value is None:
        raise RuntimeError(f"search for the generation answered {status}")
    return int(value)


async def writer(port: int, stop: float, tally: Tally, count: int) -> None:
    """Adds, updates and deletes the writer's documents, recording each generation's state."""
    conn = RawConnection(HOST, port)
    rng = random.Random(7)
    versions: dict[str, int] = {}
    tally.states[await generation_now(conn)] = {}
    while time.perf_counter() < stop:
        n = rng.randrange(count)
        source = f"soak/{n:03d}.txt"
        t0 = time.perf_counter()
        try:
            if source in versions and rng.random() < 0.3:
                doc_id = await doc_id_of(conn, source)
                status, _ = await conn.send(conn.encode("DELETE", f"/v1/documents/{doc_id}"))
                kind = "delete"
                if status == 200:
                    del versions[source]
            else:
                version = versions.get(source, 0) + 1
                body = json.dumps(
                    {"source": source, "text": writer_text(n, version)}, ensure_ascii=False
                ).encode()
                status, _ = await conn.send(conn.encode("POST", "/v1/documents", body))
                kind = "update" if version > 1 else "add"
                if status in (200, 201):
                    versions[source] = version
            tally.latency[f"write {kind}"].append(time.perf_counter() - t0)
            tally.statuses[(f"write {kind}", status)] += 1
            tally.states[await generation_now(conn)] = {s: v for s, v in versions.items()}
        except Exception as exc:
            tally.errors[f"writer {type(exc).__name__}: {exc}"] += 1
            await asyncio.sleep(0.2)
    tally.live = dict(versions)
    conn.close()


async def doc_id_of(conn: RawConnection, source: str) -> str:
    """The id the service gives `source` (from the document list)."""
    status, body = await conn.send(conn.encode("GET", "/v1/documents"))
    if status != 200:
        raise RuntimeError(f"GET /v1/documents answered {status}")
    return next(d["doc_id"] for d in json.loads(body)["documents"] if d["source"] == source)


async def hostile(
    i: int, port: int, requests: list[tuple[str, bytes]], stop: float, tally: Tally
) -> None:
    """One hostile client: cycles through the hostile requests, and slowloris connections."""
    k = i
    while time.perf_counter() < stop:
        k += 1
        if k % (len(requests) + 1) == 0:
            await slowloris(port, tally)
            continue
        name, request = requests[k % len(requests)]
        conn = RawConnection(HOST, port)
        try:
            status, _ = await asyncio.wait_for(conn.send(request), timeout=60)
        except Exception as exc:  # the server may close a connection it refuses: fine
            tally.hostile_ok[f"{name}: closed ({type(exc).__name__})"] += 1
            continue
        finally:
            conn.close()
        (tally.hostile_ok if 400 <= status < 500 else tally.hostile_bad)[f"{name}: {status}"] += 1


async def slowloris(port: int, tally: Tally, wait: float = 30.0) -> None:
    """Half a request, then silence: the server must close the connection within `wait` s."""
    reader_, writer_ = await asyncio.open_connection(HOST, port)
    writer_.write(f"POST /v1/search HTTP/1.1\r\nHost: {HOST}\r\nContent-Le".encode())
    await writer_.drain()
    try:
        data = await asyncio.wait_for(reader_.read(), timeout=wait)
        tally.slowloris_closed += 1
        del data
    except TimeoutError:
        tally.slowloris_open += 1
    finally:
        writer_.close()


async def sample_rss(pid: int, stop: float, peaks: list[int]) -> None:
    """Peak RSS of the server's process tree, sampled every 0.2 s."""
    while time.perf_counter() < stop:
        peaks.append(rss_kib(proc_tree(pid)))
        await asyncio.sleep(0.2)


async def final_counts(port: int) -> tuple[int, int]:
    """(documents listed, documents /readyz reports)."""
    conn = RawConnection(HOST, port)
    _, listed = await conn.send(conn.encode("GET", "/v1/documents"))
    _, ready = await conn.send(conn.encode("GET", "/readyz"))
    conn.close()
    return int(json.loads(listed)["total"]), int(json.loads(ready)["documents"])


async def run(args: argparse.Namespace, port: int, pid: int, questions: list[str]) -> Tally:
    """All clients at once for the duration."""
    tally = Tally()
    log(f"building the hostile requests (a {args.bomb_mb} MB docx bomb, a 20,000-page PDF)")
    requests = hostile_requests(args.bomb_mb, args.body_limit)
    stop = time.perf_counter() + args.duration
    peaks: list[int] = []
    base = rss_kib(proc_tree(pid))
    log(
        f"running {args.readers} readers, 1 writer, {args.hostile} hostile clients for {args.duration:.0f} s"
    )
    await asyncio.gather(
        sample_rss(pid, stop + 5, peaks),
        writer(port, stop, tally, args.writer_docs),
        *(reader(i, port, questions, stop, tally, args.writer_docs) for i in range(args.readers)),
        *(hostile(i, port, requests, stop, tally) for i in range(args.hostile)),
    )
    tally.latency["rss"] = [base, max(peaks or [base])]
    return tally


def check(tally: Tally, corpus_docs: int, counts: tuple[int, int]) -> list[tuple[str, bool, str]]:
    """(check, passed, detail) rows."""
    rows: list[tuple[str, bool, str]] = []
    fivexx = {k: n for k, n in tally.statuses.items() if k[1] >= 500}
    rows.append(("zero 5xx (readers, writer)", not fivexx, str(fivexx or "none")))
    rows.append(("zero transport errors", not tally.errors, str(dict(tally.errors) or "none")))
    rows.append(
        (
            "hostile requests all 4xx/closed",
            not tally.hostile_bad,
            str(dict(tally.hostile_bad) or "none"),
        )
    )
    rows.append(
        (
            "slowloris connections closed",
            tally.slowloris_open == 0,
            f"{tally.slowloris_closed} closed, {tally.slowloris_open} left open",
        ),
    )
    mixed = list(tally.mixed)
    unknown = 0
    for generation, versions in tally.seen:
        state = tally.states.get(generation)
        if state is None:
            unknown += 1
            continue
        for doc, v in versions.items():
            if state.get(doc) != v:
                mixed.append(f"gen {generation}: {doc} v{v}, the generation holds {state.get(doc)}")
    rows.append(
        (
            "zero responses mixing generations",
            not mixed,
            f"{len(tally.seen)} responses checked; " + ("; ".join(mixed[:3]) or "none mixed"),
        ),
    )
    rows.append(
        (
            "every generation seen is one the writer made",
            unknown == 0,
            f"{unknown} responses from unknown generations",
        ),
    )
    expected = corpus_docs + len(tally.live)
    rows.append(
        (
            "counts exact at the end",
            counts == (expected, expected),
            f"listed {counts[0]}, /readyz {counts[1]}, expected {expected}",
        ),
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the soak and print the report."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--readers", type=int, default=32)
    p.add_argument("--hostile", type=int, default=2)
    p.add_argument("--writer-docs", type=int, default=20, help="distinct writer documents")
    p.add_argument("--bomb-mb", type=int, default=1024, help="inflated size of the docx bomb")
    p.add_argument("--body-limit", type=int, default=2 * 1024 * 1024, help="RAG_MAX_REQUEST_BYTES")
    p.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    # server() reads these
    args.port, args.server_cmd, args.ready_timeout = 0, "", 300.0
    questions = load_questions(DEFAULT_CMRC)
    for path in DEV_SETS:
        questions += [
            json.loads(line)["question"] for line in path.read_text().splitlines() if line
        ]
    random.Random(1).shuffle(questions)
    corpus_docs = len([f for f in args.corpus.iterdir() if f.is_file()])
    with tempfile.TemporaryDirectory(prefix="rag-soak-") as tmp:
        index_dir = Path(tmp) / "index"
        build_index(args.corpus, index_dir)
        os.environ["RAG_MAX_REQUEST_BYTES"] = str(args.body_limit)
        try:
            with server(args, index_dir, Path(tmp) / "server.log") as (port, pid):
                tally = asyncio.run(run(args, port, pid, questions))
                counts = asyncio.run(final_counts(port))
        except ServerFailed as exc:
            log(str(exc))
            return 2
    rows = check(tally, corpus_docs, counts)
    base, peak = tally.latency.pop("rss")
    lat = {
        kind: {
            "n": len(v),
            "p50_ms": round(1000 * percentile(sorted(v), 50), 1),
            "p99_ms": round(1000 * percentile(sorted(v), 99), 1),
        }
        for kind, v in sorted(tally.latency.items())
    }
    report = {
        "duration_s": args.duration,
        "readers": args.readers,
        "hostile_clients": args.hostile,
        "requests": lat,
        "statuses": {f"{k} {s}": n for (k, s), n in sorted(tally.statuses.items())},
        "hostile": dict(sorted(tally.hostile_ok.items())),
        "rss_mib": {"at_start": round(base / 1024), "peak": round(peak / 1024)},
        "checks": [{"check": c, "pass": ok, "detail": d} for c, ok, d in rows],
    }
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print(
            f"soak: {args.duration:.0f} s, {args.readers} readers, 1 writer, {args.hostile} hostile clients"
        )
        for kind, v in lat.items():
            print(
                f"  {kind:<14} {v['n']:>6} requests  p50 {v['p50_ms']:>8.1f} ms  p99 {v['p99_ms']:>8.1f} ms"
            )
        print("  statuses: " + ", ".join(f"{k}: {n}" for k, n in report["statuses"].items()))
        print("  hostile:  " + ", ".join(f"{k} ×{n}" for k, n in report["hostile"].items()))
        print(
            f"  server RSS: {report['rss_mib']['at_start']} MiB at start, peak {report['rss_mib']['peak']} MiB"
        )
        for c, ok, d in rows:
            print(f"  [{'pass' if ok else 'FAIL'}] {c}: {d}")
    return 0 if all(ok for _, ok, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
