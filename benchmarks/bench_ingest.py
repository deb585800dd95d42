"""Ingest benchmark: a generated folder of Chinese documents, ingested as `rag ingest DIR` does.

Generates (deterministically, from `--seed`) a folder of `--docs` documents holding `--mb` MB of
text in all: each is a headline, a dateline and paragraphs recombined from the sentences of the
bundled `corpus/*.txt`, with every number replaced by a generated one and sentences about generated
people, places and dates mixed in, so no two documents are alike. A share of them (`--dup-share`)
are near-duplicate copies of an earlier one — another outlet's header, reflowed lines, full-width
digits, sometimes GB18030 instead of UTF-8 — and should be reported as duplicates. Then:

- the parse phase alone (read, decode, normalise, chunk, fingerprint: `rag.ingest.batch`) in this
  process, and in the parse sandbox (a limited process per file, `rag.ingest.sandbox`) one and
  max(2, `--workers`) at a time, to show what the sandbox costs and what parallel parsing gains;
- a cold ingest (`Engine.ingest_paths` into a fresh index, parsing in the sandbox, `--workers` at
  a time):
  documents, MB, chunks, wall time, docs/s, MB/min, chunks/s, duplicates found;
- a second ingest of the unchanged folder (every file should be skipped by size and mtime);
- peak resident memory of this process and of the largest child process that has exited
  (`ru_maxrss`: the sandbox's parse workers, once the sandboxes are closed).

Embedding is the bottleneck (the default embedder encodes every chunk and every sentence), so a
full run (2,000 documents, 50 MB) takes about half an hour on a 2-core machine; try a small one first:

    python benchmarks/bench_ingest.py --docs 200 --mb 5
    python benchmarks/bench_ingest.py                  # 2,000 documents, 50 MB
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from rag.config import Settings
from rag.embed.registry import get_embedder
from rag.engine import Engine
from rag.ingest.batch import FileJob, load_files
from rag.ingest.sandbox import Sandbox, SandboxLimits

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志新海波宁晓东晨宇浩然思远嘉怡雨欣"
)
CITIES = [
    "上海",
    "南京",
    "杭州",
    "合肥",
    "苏州",
    "无锡",
    "宁波",
    "常州",
    "嘉兴",
    "湖州",
    "绍兴",
    "金华",
    "舟山",
    "台州",
    "温州",
    "扬州",
    "镇江",
    "泰州",
    "南通",
    "盐城",
    "芜湖",
    "马鞍山",
    "滁州",
    "宣城",
]
TOPICS = [
    "产业园区",
    "科创走廊",
    "港口物流",
    "生态保护",
    "数字经济",
    "公共服务",
    "医保结算",
    "轨道交通",
    "人才引进",
    "乡村振兴",
    "新能源汽车",
    "集成电路",
]
OUTLETS = [
    "江南经济报",
    "长三角日报",
    "沿海农业",
    "城市周刊",
    "新华财经",
    "浙江在线",
    "江苏新闻网",
    "安徽商报",
]
ROLES = ["主任", "副主任", "局长", "总经理", "研究员", "教授", "负责人", "书记", "处长"]
_DIGITS = re.compile(r"\d+")
_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def corpus_sentences() -> list[str]:
    """The sentences of the bundled corpus (split at 。！？; short fragments dropped)."""
    text = "".join(p.read_text(encoding="utf-8") for p in sorted(CORPUS.glob("*.txt")))
    parts = re.split(r"(?<=[。！？])", text.replace("\n", ""))
    return [s.strip() for s in parts if len(s.strip()) >= 12]


def name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))


def date(rng: random.Random) -> str:
    return f"{rng.randint(2015, 2030)}年{rng.randint(1, 12)}月{rng.randint(1, 28)}日"


def generated_sentence(rng: random.Random) -> str:
    """A sentence about a generated person, place, date and figures."""
    city, topic = rng.choice(CITIES), rng.choice(TOPICS)
    forms = [
        f"{city}市{rng.choice(TOPICS)}办公室{rng.choice(ROLES)}{name(rng)}表示，{date(rng)}前将完成"
        f"第{rng.randint(2, 9)}批{topic}项目的验收，总投资约{rng.randint(3, 900)}亿元。",
        f"截至{date(rng)}，{city}共有{topic}相关企业{rng.randint(100, 9000)}家，"
        f"从业人员{rng.randint(1, 60)}.{rng.randint(0, 9)}万人，同比增长{rng.randint(1, 30)}.{rng.randint(0, 9)}%。",
        f"{name(rng)}说，{city}与{rng.choice(CITIES)}在{topic}方面的合作始于{rng.randint(1990, 2022)}年，"
        f"目前已建成{rng.randint(2, 40)}个联合实验室和{rng.randint(1, 15)}个示范基地。",
        f"据{rng.choice(OUTLETS)}{date(rng)}报道，{city}{topic}专项资金今年安排{rng.randint(1, 99)}亿元，"
        f"重点支持{rng.randint(10, 300)}个项目。",
    ]
    return rng.choice(forms)


def vary(sentence: str, rng: random.Random) -> str:
    """A corpus sentence with each number replaced by another of the same length."""
    return _DIGITS.sub(
        lambda m: str(rng.randint(10 ** (len(m.group()) - 1), 10 ** len(m.group()) - 1)), sentence
    )


def article(rng: random.Random, sentences: list[str], size: int) -> str:
    """One document of about `size` bytes (UTF-8): headline, dateline, paragraphs."""
    city, topic = rng.choice(CITIES), rng.choice(TOPICS)
    lines = [
        f"{city}{topic}发展情况通报（第{rng.randint(1, 999)}期）",
        f"{rng.choice(OUTLETS)}记者 {name(rng)} {date(rng)}",
    ]
    used = sum(len(s.encode()) for s in lines)
    while used < size:
        paragraph = "".join(
            generated_sentence(rng) if rng.random() < 0.25 else vary(rng.choice(sentences), rng)
            for _ in range(rng.randint(2, 6))
        )
        lines.append(paragraph)
        used += len(paragraph.encode()) + 1
    return "\n".join(lines) + "\n"


def reprint(text: str, rng: random.Random) -> str:
    """Another outlet's copy: new header, full-width digits or not, hard line breaks."""
    body = text.split("\n", 1)[1]
    if rng.random() < 0.5:
        body = body.translate(_FULL_WIDTH)
    width = rng.randint(30, 60)
    body = "\n".join(
        line[i : i + width] for line in body.split("\n") for i in range(0, len(line), width)
    )
    return f"转载自《{rng.choice(OUTLETS)}》 {date(rng)} 编辑：{name(rng)}\n\n{body}\n（责任编辑：{name(rng)}）\n"


def generate(folder: Path, docs: int, mb: float, dup_share: float, seed: int) -> dict[str, Any]:
    """Write the folder; returns what was written (files, bytes, duplicates planted)."""
    rng = random.Random(seed)
    sentences = corpus_sentences()
    size = int(mb * 1_000_000 / docs)
    texts: list[str] = []
    duplicates = 0
    total = 0
    for i in range(docs):
        if texts and rng.random() < dup_share:
            text = reprint(rng.choice(texts), rng)
            duplicates += 1
        else:
            text = article(rng, sentences, int(size * rng.uniform(0.5, 1.5)))
            texts.append(text)
        encoding = "gb18030" if rng.random() < 0.1 else "utf-8"
        path = folder / f"d{i // 100:03d}" / f"doc{i:05d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode(encoding)
        path.write_bytes(data)
        total += len(data)
    # Saved a while ago: the fast path trusts only mtimes safely in the past (rag.ingest.batch).
    past = time.time_ns() - 3600 * 10**9
    for path in folder.rglob("*.txt"):
        os.utime(path, ns=(past, past))
    return {"files": docs, "bytes": total, "planted_duplicates": duplicates}


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def maxrss_mib(who: int) -> float:
    peak = resource.getrusage(who).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def parse_phase(folder: Path, settings: Settings, workers: int, sandbox: Sandbox | None) -> float:
    """Seconds to read and prepare every file (no index, no embedding), in `sandbox` processes
    (`workers` at a time) or in this process."""
    jobs = [
        FileJob(
            path, source, None, settings.chunk_size, settings.chunk_overlap, settings.max_file_bytes
        )
        for path, source in Engine.expand([folder])
    ]
    loaded, seconds = timed(lambda: list(load_files(jobs, workers, sandbox)))
    assert all(not x.error for x in loaded)
    return seconds


def run(args: argparse.Namespace, folder: Path, index_dir: Path) -> dict[str, Any]:
    written, gen_s = timed(lambda: generate(folder, args.docs, args.mb, args.dup_share, args.seed))
    settings = Settings(index_dir=index_dir, embedder=args.embedder, ingest_workers=args.workers)
    out: dict[str, Any] = {**written, "mb": written["bytes"] / 1e6, "generate_s": gen_s}
    out["parse_serial_s"] = parse_phase(folder, settings, 0, None)
    limits = SandboxLimits(settings.parse_memory_mb, settings.parse_timeout)
    sandbox = Sandbox(limits)
    sandbox.start()
    out["parse_sandbox_s"] = parse_phase(folder, settings, 1, sandbox)
    out["parse_workers"] = max(2, args.workers)  # parallel parsing is measured even if not used
    parallel = Sandbox(replace(limits, processes=out["parse_workers"]))
    out["parse_pool_s"] = parse_phase(folder, settings, out["parse_workers"], parallel)
    sandbox.close()
    parallel.close()

    embedder = get_embedder(args.embedder)
    engine = Engine(settings, embedder=embedder)
    done = [0]

    def progress(_: Any) -> None:
        done[0] += 1
        if not args.json and done[0] % 50 == 0:
            print(f"  {done[0]}/{written['files']} files", file=sys.stderr, flush=True)

    results, ingest_s = timed(lambda: engine.ingest_paths([folder], progress=progress))
    chunks = engine.store.count_chunks()
    again, reingest_s = timed(lambda: engine.ingest_paths([folder]))
    engine.close()
    added = [r for r in results if r.status == "added"]
    out.update(
        workers=args.workers,
        embedder=embedder.name,
        documents=len(added),
        failed=sum(r.status == "failed" for r in results),
        duplicates=sum(bool(r.duplicate_of) for r in results),
        chunks=chunks,
        ingest_s=ingest_s,
        docs_per_s=len(added) / ingest_s,
        mb_per_min=out["mb"] / ingest_s * 60,
        chunks_per_s=chunks / ingest_s,
        reingest_s=reingest_s,
        reingest_unchanged=sum(r.status == "unchanged" for r in again),
        peak_rss_mib=maxrss_mib(resource.RUSAGE_SELF),
        peak_rss_children_mib=maxrss_mib(resource.RUSAGE_CHILDREN),
    )
    return out


def table(r: dict[str, Any]) -> str:
    pool = (
        f", sandboxed one at a time {r['parse_sandbox_s']:.1f} s, "
        f"{r['parse_workers']} at a time {r['parse_pool_s']:.1f} s"
    )
    rows = [
        (
            "folder",
            f"{r['files']} files, {r['mb']:.1f} MB, {r['planted_duplicates']} near-duplicate copies planted (generated in {r['generate_s']:.1f} s)",
        ),
        ("parse phase alone", f"in-process {r['parse_serial_s']:.1f} s{pool}"),
        (
            "cold ingest",
            f"{r['ingest_s']:.1f} s with {r['workers']} parse workers, embedder {r['embedder']}",
        ),
        (
            "documents",
            f"{r['documents']} added, {r['failed']} failed, {r['duplicates']} duplicates detected",
        ),
        ("chunks", f"{r['chunks']}"),
        (
            "throughput",
            f"{r['docs_per_s']:.2f} docs/s, {r['mb_per_min']:.2f} MB/min, {r['chunks_per_s']:.1f} chunks/s",
        ),
        ("second run (unchanged)", f"{r['reingest_s']:.2f} s, {r['reingest_unchanged']} unchanged"),
        (
            "peak memory (maxrss)",
            f"{r['peak_rss_mib']:.0f} MiB; largest exited child {r['peak_rss_children_mib']:.0f} MiB",
        ),
    ]
    width = max(len(n) for n, _ in rows)
    return "\n".join(f"{n:<{width}}  {v}" for n, v in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000, help="documents (default 2000)")
    parser.add_argument("--mb", type=float, default=50.0, help="MB of text in all (default 50)")
    parser.add_argument(
        "--dup-share", type=float, default=0.05, help="share of near-duplicate copies"
    )
    parser.add_argument("--seed", type=int, default=20241201)
    parser.add_argument(
        "--workers", type=int, default=0, help="parse worker processes (RAG_INGEST_WORKERS)"
    )
    parser.add_argument("--embedder", default=Settings.model_fields["embedder"].default)
    parser.add_argument(
        "--keep", type=Path, default=None, help="generate into this folder and keep it"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.docs < 1 or args.mb <= 0 or not 0 <= args.dup_share < 1:
        parser.error("--docs ≥ 1, --mb > 0, 0 ≤ --dup-share < 1")
    root = Path(tempfile.mkdtemp(prefix="rag-bench-ingest-"))
    folder = args.keep or root / "docs"
    if folder.exists() and any(folder.iterdir()):
        parser.error(f"{folder} is not empty")
    try:
        results = run(args, folder, root / "idx")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(results, indent=2, ensure_ascii=False) if args.json else table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
