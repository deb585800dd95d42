"""The `rag` command line: ingest, search, ask, info, eval, delete, serve, db, migrate.

Settings come from flags, then `RAG_*` environment variables, then defaults. Data-producing
commands take `--json`. Errors print one line on stderr (`error: …`) and exit non-zero:
1 for a failed operation, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rag.config import Settings
from rag.errors import ConfigError, InputError, NotFound, RagError
from rag.ingest.loaders import supported_suffixes


def _settings(args: argparse.Namespace) -> Settings:
    """The settings: `RAG_*` variables, then the flags given; `ConfigError` naming each invalid
    value (a flag such as `--port 0`, or a variable), never a validation traceback."""
    overrides: dict[str, Any] = {}
    for name in ("index_dir", "store_url", "embedder", "host", "port", "workers"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})"
            for e in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None


def _engine(args: argparse.Namespace) -> Any:
    from rag.engine import open_engine

    return open_engine(_settings(args))


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def _pairs(option: str, values: Sequence[str] | None) -> dict[str, str]:
    """`key=value` arguments of a repeatable option as a dict (`InputError` naming a bad one)."""
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{option} expects key=value, not '{item}'")
        out[key.strip()] = value
    return out


def _query_filters(args: argparse.Namespace) -> dict[str, Any]:
    """Engine filter arguments from `--source`, `--filter`, `--date-from` and `--date-to`."""
    from rag.retrieve.filter import MetadataFilter

    where = MetadataFilter.build(_pairs("--filter", args.filter), args.date_from, args.date_to)
    return {"sources": args.source or None, "where": where}


def _shown(metadata: Mapping[str, Any]) -> str:
    """`上海市人民政府 · 沪府发〔2024〕12号 · 2024-10-15`: what a citation line shows of a document."""
    parts = [metadata.get(k) for k in ("issuer", "doc_number", "date")]
    return " · ".join(str(p) for p in parts if p)


# --- commands -------------------------------------------------------------------------------
def cmd_ingest(args: argparse.Namespace) -> int:
    """Ingest files/folders with a progress bar; exit 1 if any file failed."""
    from tqdm import tqdm

    from rag.engine import Engine

    paths = [Path(p) for p in args.paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise NotFound(f"no such file or directory: {', '.join(missing)}")
    metadata = _pairs("--meta", args.meta)  # a malformed pair is refused before opening the index
    engine = _engine(args)
    if args.if_empty and engine.store.count_documents() > 0:
        if not args.json:
            print(f"index already holds {engine.store.count_documents()} documents; nothing to do")
        return 0
    files = Engine.expand(paths)
    if not files:
        raise InputError(f"no supported files under {', '.join(args.paths)}")
    bar = tqdm(total=len(files), unit="file", disable=args.json or args.quiet, file=sys.stderr)

    def step(result: Any) -> None:
        bar.set_postfix_str(result.source[-40:])
        bar.update(1)

    results = engine.ingest_paths(paths, progress=step, metadata=metadata)
    bar.close()
    summary = ingest_summary(results)
    if args.json:
        _print_json(
            {
                "results": [asdict(r) for r in results],
                "summary": {k: n for k, n in summary.items() if n},
            }
        )
    else:
        for r in results:
            if r.status == "failed":
                print(f"failed: {r.reason}", file=sys.stderr)
            elif r.duplicate_of:
                print(f"duplicate: {r.source} nearly duplicates {r.duplicate_of} (stored anyway)")
        counts = ", ".join(f"{n} {k}" for k, n in summary.items())
        print(
            f"{counts}; index holds {engine.store.count_documents()} documents, {engine.store.count_chunks()} chunks"
        )
    return 1 if summary["failed"] else 0


def ingest_summary(results: Sequence[Any]) -> dict[str, int]:
    """Files per outcome: added / updated / unchanged / duplicate / failed. A duplicate (a file
    that nearly duplicates a stored document; stored all the same) counts as added or updated
    too."""
    summary = dict.fromkeys(("added", "updated", "unchanged", "duplicate", "failed"), 0)
    for r in results:
        summary[r.status] = summary.get(r.status, 0) + 1
        summary["duplicate"] += bool(r.duplicate_of)
    return summary


def _remote(args: argparse.Namespace, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """The answer of a running `rag serve` on this index (`rag.serving`), or None: no server, or
    one that cannot answer now (the caller then answers in-process). A 4xx such as a bad
    `--top-k` raises `InputError` with the server's message."""
    if args.no_server:
        return None
    from rag.serving import Unavailable, find_server

    settings = _settings(args)
    try:
        server = find_server(settings.index_dir, settings.embedder, os.environ.get("RAG_API_KEY"))
        return server.post(path, body)
    except Unavailable:
        return None


def _filter_body(args: argparse.Namespace) -> dict[str, Any] | None:
    """The request `filter` for the filter flags (None when no flag is given)."""
    f = {
        "sources": args.source or None,
        "metadata": _pairs("--filter", args.filter) or None,
        "date_from": args.date_from,
        "date_to": args.date_to,
    }
    f = {k: v for k, v in f.items() if v is not None}
    return f or None


def cmd_search(args: argparse.Namespace) -> int:
    """Print the top passages: through a running server on this index when there is one."""
    filters = _query_filters(args)  # bad flags are refused here, before any server or index
    body = {"query": args.query, "top_k": args.top_k, "filter": _filter_body(args)}
    data = _remote(args, "/v1/search", body)
    if data is None:
        from rag.wire import search_json

        engine = _engine(args)
        t0 = time.perf_counter()
        result = engine.search(args.query, args.top_k, **filters)
        data = search_json(args.query, result.passages, 1000 * (time.perf_counter() - t0))
    if args.json:
        _print_json(data)
        return 0
    for i, p in enumerate(data["results"], 1):
        shown = _shown(p["metadata"])
        page = f" p.{p['page']}" if p["page"] is not None else ""
        print(
            f"[{i}] {p['source']}{page} ({p['start']}-{p['end']}) score={p['score']:.3f}"
            + (f"  {shown}" if shown else "")
        )
        print("    " + p["text"].replace("\n", " ")[:300])
    if not data["results"]:
        print("no results")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    """Print a cited answer and its sources: through a running server on this index when there
    is one; `--json` prints what `POST /v1/ask` answers."""
    filters = _query_filters(args)
    body = {
        "question": args.question,
        "top_k": args.top_k,
        "mode": args.mode,
        "filter": _filter_body(args),
    }
    data = _remote(args, "/v1/ask", body)
    if data is None:
        from rag.wire import answer_json

        engine = _engine(args)
        t0 = time.perf_counter()
        answer = engine.ask(args.question, args.top_k, mode=args.mode, **filters)
        data = answer_json(answer, 1000 * (time.perf_counter() - t0))
    if args.json:
        _print_json(data)
        return 0
    print(data["answer"])
    for w in data["warnings"]:
        print(f"warning: {w['message']}", file=sys.stderr)
    if data["citations"]:
        print()
        passages = data["passages"]
        for c in data["citations"]:
            marker = c["marker"]
            cited = passages[marker - 1] if 1 <= marker <= len(passages) else None
            shown = _shown(cited["metadata"]) if cited else ""
            page = f" p.{c['page']}" if c["page"] is not None else ""
            print(f"[{marker}] {c['source']}{page} {c['start']}-{c['end']}: {c['quote'][:120]}")
            if shown:
                print(f"    {shown}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Print index statistics. Read-only: nothing is written, no derived file is rebuilt, no
    model is loaded (`rag.info`)."""
    from rag.info import describe

    info = describe(_settings(args), documents=args.json)
    if args.json:
        _print_json(info)
        return 0
    for key, value in info.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        print(f"{key:16s} {value}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    """Delete a document by id."""
    _engine(args).delete(args.doc_id)
    print(f"deleted {args.doc_id}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate a JSONL question file and print the metrics table."""
    from rag.eval import load_questions, run_eval

    questions = load_questions(Path(args.file))
    report, rows = run_eval(_engine(args), questions)
    if args.json:
        _print_json({**report, "questions": [asdict(r) for r in rows]})
        return 0
    cols = [
        "n",
        "hit@1",
        "hit@5",
        "mrr@10",
        "answer_contains",
        "abstention",
        "false_abstention",
        "caveated",
        "low_confidence",
        "refused_or_caveated",
        "refused_unquoted",
    ]
    widths = [max(17, len(c) + 2) for c in cols]
    print(f"{'':14s}" + "".join(f"{c:>{w}s}" for c, w in zip(cols, widths, strict=True)))
    for name, m in [("overall", report["overall"]), *report["by_kind"].items()]:
        cells = "".join(
            f"{m[c]:>{w}.3f}" if isinstance(m.get(c), float) else f"{m.get(c, '-')!s:>{w}s}"
            for c, w in zip(cols, widths, strict=True)
        )
        print(f"{name:14s}{cells}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the HTTP service with uvicorn (timeouts and connection cap from the settings)."""
    from threadpoolctl import threadpool_limits

    from api.app import create_app
    from api.server import RecordedServer, server_config
    from rag.engine import open_engine

    settings = _settings(args)
    if settings.workers > 1:
        from api.workers import serve_workers

        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        return serve_workers(settings)
    # Requests run concurrently on both cores already; a second BLAS thread per small matrix
    # product only spins (measured: ~3x the CPU per search). Large ingest batches raise it again.
    threadpool_limits(1, user_api="blas")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Opened here, not in the app's lifespan: an unusable index (damaged, another embedder) is
    # then one `error:` line and exit 1, where uvicorn would print a traceback and exit 3. The
    # app closes it on shutdown (uvicorn re-raises SIGTERM afterwards: no code runs after it).
    engine = open_engine(settings)
    app = create_app(settings, engine=engine, owns_engine=True)
    server = RecordedServer(server_config(app, settings), settings)
    server.run()
    if not server.started:  # the port is taken…: uvicorn logged why
        raise RagError(f"the server did not start on {settings.host}:{settings.port}")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    """`rag db upgrade`: create or upgrade the PostgreSQL schema of RAG_STORE_URL."""
    from rag.store.postgres import is_postgres_url, redacted, upgrade

    url = _settings(args).store_url
    if not is_postgres_url(url):
        raise ConfigError("rag db needs a postgresql:// URL: set RAG_STORE_URL or --store-url")
    found, now = upgrade(url)
    what = "already at" if found == now else f"upgraded from {found or 'nothing'} to"
    print(f"{redacted(url)}: schema {what} version {now}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """`rag migrate --to URL`: copy the local index (RAG_INDEX_DIR) into PostgreSQL."""
    from rag.store.migrate import migrate
    from rag.store.postgres import is_postgres_url, redacted

    if not is_postgres_url(args.to):
        raise ConfigError(f"--to must be a postgresql:// URL, not '{args.to}'")
    settings = _settings(args)
    done = migrate(settings.db_path, args.to)
    if args.json:
        _print_json(
            {"documents": done.documents, "chunks": done.chunks, "generation": done.generation}
        )
    else:
        print(
            f"copied {done.documents} documents ({done.chunks} chunks) from "
            f"{settings.index_dir} to {redacted(args.to)} (generation {done.generation})"
        )
    return 0


# --- parser ---------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The argument parser (shared options on every subcommand)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--index-dir", type=Path, help="index directory (RAG_INDEX_DIR, default index/)"
    )
    common.add_argument(
        "--store-url",
        help="postgresql://… to use a PostgreSQL database instead of the index directory "
        "(RAG_STORE_URL)",
    )
    common.add_argument(
        "--embedder",
        help="use-multilingual (default), e5-small (the 'e5' extra), sbert:<model id or path> "
        "or a sentence-transformers model id (RAG_EMBEDDER)",
    )
    common.add_argument("--json", action="store_true", help="print JSON")

    parser = argparse.ArgumentParser(
        prog="rag", description="Cited question answering over your documents."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", parents=[common], help="add or update files and folders")
    p.add_argument(
        "paths", nargs="+", help=f"files, or folders walked for {' '.join(supported_suffixes())}"
    )
    p.add_argument("--if-empty", action="store_true", help="only when the index holds no documents")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--meta",
        action="append",
        metavar="KEY=VALUE",
        help="metadata for every file (repeatable; wins over what is extracted from the text)",
    )
    p.set_defaults(func=cmd_ingest)

    for name, func, arg in (("search", cmd_search, "query"), ("ask", cmd_ask, "question")):
        p = sub.add_parser(name, parents=[common], help=f"{name} the collection")
        p.add_argument(arg)
        p.add_argument("--top-k", type=int, default=None)
        p.add_argument("--source", action="append", help="restrict to this source (repeatable)")
        p.add_argument(
            "--filter",
            action="append",
            metavar="KEY=VALUE",
            help="only documents whose metadata KEY equals VALUE, a string (repeatable; all must match)",
        )
        p.add_argument("--date-from", help="only documents dated on or after YYYY-MM-DD")
        p.add_argument("--date-to", help="only documents dated on or before YYYY-MM-DD")
        p.add_argument(
            "--no-server",
            action="store_true",
            help="answer in-process even when a `rag serve` on this index is running",
        )
        if name == "ask":
            p.add_argument(
                "--mode",
                choices=["auto", "extractive", "llm"],
                default="auto",
                help="auto: the LLM when RAG_LLM_BASE_URL is set, else extractive",
            )
        p.set_defaults(func=func)

    p = sub.add_parser("info", parents=[common], help="index statistics")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("delete", parents=[common], help="remove a document by id")
    p.add_argument("doc_id")
    p.set_defaults(func=cmd_delete)
    p = sub.add_parser("eval", parents=[common], help="evaluate a JSONL question file")
    p.add_argument("file")
    p.set_defaults(func=cmd_eval)
    p = sub.add_parser("serve", parents=[common], help="run the HTTP service")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument(
        "--workers", type=int, default=None, help="server processes (RAG_WORKERS, default 1)"
    )
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("db", parents=[common], help="PostgreSQL schema (RAG_STORE_URL)")
    p.add_argument("action", choices=["upgrade"], help="create or upgrade the schema")
    p.set_defaults(func=cmd_db)
    p = sub.add_parser(
        "migrate", parents=[common], help="copy the local index into a PostgreSQL database"
    )
    p.add_argument("--to", required=True, metavar="URL", help="postgresql://user@host/db")
    p.set_defaults(func=cmd_migrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `rag` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
