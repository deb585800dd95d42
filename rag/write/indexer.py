"""The write path: plan, embed, commit, then apply the change to the index segments; merges.

An `Indexer` owns the index state of one engine: the current `Snapshot` and the write lock.
Ingesting parses, chunks, embeds and tokenises outside the lock (searches go on); under the lock
it stores the documents (SQLite, one transaction per write) and then `refresh`es: the change log
says which chunks were added and deleted since the snapshot's generation, and the new snapshot is
the old segment set plus one small segment of the added chunks, with tombstones for the deleted
ones. The same `refresh` catches up with writes by other processes (`rag ingest` into a served
index); when the log no longer covers the snapshot's generation, every segment is rebuilt from
SQLite (from stored tokens and vectors: nothing is re-tokenised or re-embedded).

A background thread merges small segments (`SegmentSet.merge_candidates`): the merged segment is
built and saved outside any lock, then swapped in under the write lock with `with_merged`
(deletes made meanwhile carried over); readers never wait for it.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.embed.base import Embedder
from rag.embed.passages import chunk_vectors, vector_recipe
from rag.errors import Cancelled, DocumentTooLarge, NotFound
from rag.index.persist import StaleOrCorrupt
from rag.index.segments import MANIFEST_FILE, SegmentSet, new_segment_id
from rag.index.snapshot import (
    Snapshot,
    apply_changes,
    build_snapshot,
    load_snapshot,
    remove_orphans,
    save_segments,
    write_back,
)
from rag.index.tokenize import TOKENIZER_VERSION, tokenize
from rag.ingest.batch import FileJob, Stat, load_files, stat_of
from rag.ingest.dedup import Fingerprints, Match, from_bytes, signature, to_bytes
from rag.ingest.loaders import supported_suffixes
from rag.ingest.metadata import check_user_metadata
from rag.ingest.pipeline import Prepared, content_hash, prepare
from rag.ingest.sandbox import Sandbox
from rag.retrieve.lexicon import warm
from rag.store.base import StoreLike
from rag.store.sqlite import ChunkVectors, Stored, chunk_hash, doc_id_for
from rag.types import IngestResult

log = logging.getLogger(__name__)

# How stale a reader may be with respect to writes by other processes: a check is a SQLite
# generation read (tens of microseconds), so twice a second costs nothing, and a write
# through another process (`rag ingest` beside `rag serve`, another replica) is found within a
# second even by a search that then takes a while.
RECHECK_SECONDS = 0.5
GROUP_CHUNKS = 64  # a folder ingest embeds changed files in groups of about this many chunks
EMBED_SLICE_BATCHES = 8  # an upload's texts are embedded this many batches at a time, so that a
# cancelled upload stops within one slice (slices of whole batches: the same batches, same vectors)
MERGE_IDLE_SECONDS = 5.0  # the merge thread looks for work at least this often


@dataclass(frozen=True)
class Upload:
    """One document to ingest from bytes (an HTTP upload, or text sent as JSON with `as_type`)."""

    source: str
    data: bytes
    metadata: dict[str, Any] = field(default_factory=dict)
    as_type: str | None = None  # loader to use instead of the source's suffix (e.g. ".txt")


@dataclass(frozen=True)
class _Plan:
    """What ingesting one upload will do; `prepared` is None when the content is unchanged."""

    source: str
    previous: str | None  # content hash stored before, if any
    prepared: Prepared | None
    file_stat: tuple[int, int] | None = None  # (size, mtime_ns) of the file read, if trusted


class Indexer:
    """Writes to one index (store + segments) and keeps its current snapshot."""

    def __init__(
        self,
        settings: Settings,
        store: StoreLike,
        embedder: Embedder,
        sandbox: Sandbox | None,
        *,
        recipe: str | None = None,
        background_merge: bool = True,
    ) -> None:
        """Load (or rebuild) the snapshot; start the merge thread unless told not to. New chunk
        vectors are made by `recipe` (the index's own; `rag/embed/passages.py`)."""
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.recipe = recipe or vector_recipe(embedder)
        self._sandbox = sandbox
        self._write_lock = threading.Lock()
        self._fingerprint_index: Fingerprints | None = None  # loaded on the first write
        self._fingerprints_generation = -1
        self._warmer: threading.Thread | None = None  # started by `_open` when it has helpers
        self._snapshot = self._open()
        self._manifest_seen = self._manifest_stamp()
        # One of several server workers: a client's next request may reach another worker, so
        # each read checks the store's generation (~40 µs) and a write made through a sibling
        # is seen at once, not up to a second later.
        self._recheck = 0.0 if settings.workers > 1 else RECHECK_SECONDS
        self._checked_at = time.monotonic()
        self._merge_wanted = threading.Event()
        self._stopping = threading.Event()
        self._merger: threading.Thread | None = None
        if background_merge:
            self._merger = threading.Thread(target=self._merge_loop, name="merge", daemon=True)
            self._merger.start()
            self._merge_wanted.set()

    @property
    def index_dir(self) -> Path:
        """Where the segment files are."""
        return self.settings.index_dir

    def close(self) -> None:
        """Stop the merge thread (a merge under way finishes first)."""
        self._stopping.set()
        self._merge_wanted.set()
        if self._merger is not None:
            self._merger.join()
            self._merger = None

    # --- state ------------------------------------------------------------------------------
    def _open(self) -> Snapshot:
        """The snapshot of the store as it is: saved segments, or rebuilt."""
        with self.store.read_view() as view:
            snap = load_snapshot(self.store, view, self.index_dir, self.embedder.dim)
        # The romanised vocabulary for English questions is built now, once per segment and off
        # the request path, not by the first English readers; readiness waits for it (`warming`).
        self._warmer = threading.Thread(
            target=warm, args=(snap.segments,), name="pinyin", daemon=True
        )
        self._warmer.start()
        return snap

    @property
    def warming(self) -> bool:
        """Whether the search helpers of the loaded index are still being built (an English
        question asked now would wait for them)."""
        return self._warmer is not None and self._warmer.is_alive()

    @property
    def snapshot(self) -> Snapshot:
        """The current consistent index state."""
        return self._snapshot

    def refresh(self) -> None:
        """Bring the snapshot to the store's generation (caller holds the write lock): apply the
        logged changes since the snapshot's generation as a new segment and tombstones, or
        rebuild every segment when the log does not cover it; save, then swap in."""
        snap = self._snapshot
        if self.store.generation() != snap.generation:
            filled: list[tuple[int, list[str]]] = []
            dim = self.embedder.dim
            with self.store.read_view() as view:
                saved = self._saved_layout(view.generation)
                new = apply_changes(snap, view, dim, filled, saved)
                if new is None:
                    log.info(
                        "the change log does not cover generation %d: rebuilding", snap.generation
                    )
                    new = build_snapshot(view, dim, filled, spill=self.index_dir)
            write_back(self.store, filled)
            known = set(snap.segments.seg_ids)
            # the new segment's helpers (its romanised words) are built before readers see it
            warm(new.segments, [e.segment for e in new.segments.entries if e.seg_id not in known])
            if new.segments is not saved:
                save_segments(new.segments, self.index_dir, new.generation)
                self._manifest_seen = self._manifest_stamp()
            self._snapshot = new
            self._merge_wanted.set()
        else:
            self._adopt_saved()
        self._checked_at = time.monotonic()

    def _manifest_moved(self) -> bool:
        """Whether the saved manifest changed since this process last looked (a sibling merged)."""
        return self._manifest_stamp() != self._manifest_seen

    def _manifest_stamp(self) -> int | None:
        """The saved manifest's modification time (None: there is none)."""
        try:
            return (self.index_dir / MANIFEST_FILE).stat().st_mtime_ns
        except OSError:
            return None

    def _saved_layout(self, generation: int) -> SegmentSet | None:
        """The segments another process saved for `generation`, if the manifest on disk changed
        since this process last saw it and is of that generation; ours are reused as they are,
        only segments new to this process are mapped (and verified)."""
        stamp = self._manifest_stamp()
        if stamp is None or stamp == self._manifest_seen:
            return None
        # seen either way: a manifest of another generation is not tried again on every read
        self._manifest_seen = stamp
        known = {e.seg_id: e.segment for e in self._snapshot.segments.entries}
        try:
            return SegmentSet.load(self.index_dir, generation, dim=self.embedder.dim, known=known)
        except StaleOrCorrupt:  # another generation, or being replaced: the log path covers it
            return None

    def _adopt_saved(self) -> None:
        """Take the segment layout another process saved for this same generation, if it differs
        from ours (caller holds the write lock). With several server workers only one merges;
        the others map its merged segments in here instead of searching their unmerged ones for
        as long as they live. Same generation, same live chunks: only the layout differs. Ours
        are reused as they are; only segments new to this process are mapped and verified."""
        snap = self._snapshot
        segs = self._saved_layout(snap.generation)
        if segs is None or segs.seg_ids == snap.segments.seg_ids or len(segs) != len(snap.segments):
            return
        known = set(snap.segments.seg_ids)
        warm(segs, [e.segment for e in segs.entries if e.seg_id not in known])
        self._snapshot = Snapshot.of(
            snap.generation, segs, snap.sources, snap.metadata, snap.pages, snap.rebuilt
        )
        log.info("adopted the saved segment layout (%d segments)", len(segs.entries))

    def current(self) -> Snapshot:
        """The snapshot to read; at most once per `RECHECK_SECONDS`, pick up writes made by another
        process (e.g. `rag ingest` into the index a server is serving).

        A server worker (`RAG_WORKERS` > 1) checks the store's generation on every read instead
        (~40 µs): a client's next request may reach a sibling worker, and it must find the write
        the previous one made. When the generation moved, the read waits for this process to
        catch up (another reader may be doing it) — at most `RECHECK_SECONDS`, then it goes on
        with the snapshot it has; when it did not, the read takes no lock at all.
        """
        if self._recheck == 0.0:
            moved = self.store.generation() != self._snapshot.generation or self._manifest_moved()
            if moved and self._write_lock.acquire(timeout=RECHECK_SECONDS):
                try:
                    self.refresh()
                finally:
                    self._write_lock.release()
            return self._snapshot
        if time.monotonic() - self._checked_at >= self._recheck and self._write_lock.acquire(
            blocking=False
        ):
            try:
                self.refresh()
            finally:
                self._write_lock.release()
        return self._snapshot

    def locked_refresh(self) -> None:
        """`refresh` under the write lock."""
        with self._write_lock:
            self.refresh()

    # --- merges -----------------------------------------------------------------------------
    def merge_once(self) -> bool:
        """Run one merge the policy asks for, if any; returns whether there was one.

        The merged segment is built and saved with no lock held; the swap (`with_merged`, which
        carries over deletes made meanwhile) and the manifest save happen under the write lock,
        then the files of the merged-away segments are deleted.
        """
        snap = self._snapshot
        ids = snap.segments.merge_candidates()
        if not ids:
            return False
        merged = snap.segments.merged_segment(ids)
        seg_id = new_segment_id()
        warm(snap.segments, [merged])
        try:
            if merged.n_rows:  # a merge of only dead rows just drops its segments: no file
                merged.save(self.index_dir, seg_id)
        except OSError as exc:  # saved again with the manifest, or rebuilt by a later load
            log.warning("could not save a merged segment: %s", exc)
        with self._write_lock:
            cur = self._snapshot
            if not set(ids) <= set(cur.segments.seg_ids):  # a rebuild replaced them meanwhile
                return True
            segs = cur.segments.with_merged(ids, merged, seg_id)
            saved = save_segments(segs, self.index_dir, cur.generation)
            self._manifest_seen = self._manifest_stamp()
            self._snapshot = Snapshot.of(
                cur.generation, segs, cur.sources, cur.metadata, cur.pages, cur.rebuilt
            )
            if saved:
                remove_orphans(self.index_dir, only=ids)
        return True

    def merge_all(self) -> int:
        """Run merges until the policy asks for none (tests, benchmarks); returns how many."""
        n = 0
        while self.merge_once():
            n += 1
        return n

    def _merge_loop(self) -> None:
        """The merge thread: after each write (or every `MERGE_IDLE_SECONDS`), merge while the
        policy asks for it."""
        while not self._stopping.is_set():
            self._merge_wanted.wait(MERGE_IDLE_SECONDS)
            self._merge_wanted.clear()
            try:
                while not self._stopping.is_set() and self.merge_once():
                    pass
            except Exception:  # a merge is an optimisation: log, never take the server down
                log.exception("a background merge failed")

    # --- writes -----------------------------------------------------------------------------
    def ingest_paths(
        self,
        paths: Sequence[Path],
        progress: Callable[[IngestResult], None] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> list[IngestResult]:
        """Ingest files and folders (walked for supported files). Bad files fail alone.

        `metadata` is the user's, given to every file. A file whose size and mtime are the ones
        stored for its source is unchanged without being read; any other is read and compared by
        content hash. Changed files are parsed (in sandbox processes, `ingest_workers` at once,
        unless `parse_sandbox` is off) and embedded in groups across files, so the embedder's
        batches stay full. Results are in `expand` order; `progress` sees each one as
        it is decided. Missing paths (`NotFound`) and unusable metadata (`InputError`) are refused
        before anything is written.
        """
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise NotFound(f"no such file or directory: {', '.join(missing)}")
        check_user_metadata(metadata)
        files = self.expand(paths)
        stored = self.store.file_states()
        results: list[IngestResult | None] = [None] * len(files)

        def report(i: int, result: IngestResult) -> None:
            results[i] = result
            if progress:
                progress(result)

        jobs: list[FileJob] = []
        at: list[tuple[int, Stat]] = []  # position and stat of each job
        for i, (path, source) in enumerate(files):
            state = stored.get(source)
            try:
                stat = stat_of(path)
            except OSError as exc:
                report(i, _failed(source, f"{path}: cannot be read ({exc.strerror or exc})"))
                continue
            # with user metadata given, the file is read: the metadata may be what changed
            if not metadata and state is not None and (state.size, state.mtime_ns) == stat.key:
                report(i, _unchanged(source, state.chunks))  # the fast path: not even opened
                continue
            jobs.append(
                FileJob(
                    path,
                    source,
                    state.content_hash if state else None,
                    self.settings.chunk_size,
                    self.settings.chunk_overlap,
                    self.settings.max_file_bytes,
                    dict(metadata or {}),
                    self.settings.parse_limits,
                )
            )
            at.append((i, stat))
        group: list[tuple[int, _Plan]] = []
        for (i, stat), loaded in zip(
            at, load_files(jobs, self.settings.ingest_workers, self._sandbox), strict=True
        ):
            source = loaded.job.source
            trusted = stat.key if stat.trusted else None
            if loaded.error:
                report(i, _failed(source, loaded.error))
            elif loaded.prepared is None:  # same content (touched, copied, checked out again)
                self.store.set_file_stat(source, trusted)
                report(i, _unchanged(source, stored[source].chunks))
            else:
                group.append((i, _Plan(source, loaded.job.previous, loaded.prepared, trusted)))
                if sum(len(p.prepared.chunks) for _, p in group if p.prepared) >= GROUP_CHUNKS:
                    self._commit_reporting(group, report)
                    group = []
        self._commit_reporting(group, report)
        self.locked_refresh()
        assert all(r is not None for r in results)
        return [r for r in results if r is not None]

    def _commit_reporting(
        self, group: list[tuple[int, _Plan]], report: Callable[[int, IngestResult], None]
    ) -> None:
        """Commit a group of planned files and report each result."""
        if group:
            for (i, _), result in zip(
                group, self._commit_group([p for _, p in group]), strict=True
            ):
                report(i, result)

    @staticmethod
    def expand(paths: Sequence[Path]) -> list[tuple[Path, str]]:
        """`(file, source)` pairs: a folder contributes its supported files, named relative to it."""
        out: list[tuple[Path, str]] = []
        suffixes = set(supported_suffixes())
        for p in paths:
            if p.is_dir():
                for f in sorted(p.rglob("*")):
                    if (
                        f.is_file()
                        and f.suffix.lower() in suffixes
                        and not any(part.startswith(".") for part in f.relative_to(p).parts)
                    ):
                        out.append((f, f.relative_to(p).as_posix()))
            else:
                out.append((p, p.name))
        return out

    def ingest_bytes(
        self,
        source: str,
        data: bytes,
        metadata: dict[str, Any] | None = None,
        *,
        as_type: str | None = None,
    ) -> IngestResult:
        """Ingest one document given as bytes; raises `DocumentError` on bad input (index untouched)."""
        return self.ingest_documents([Upload(source, data, metadata or {}, as_type)])[0]

    def ingest_documents(
        self, uploads: Sequence[Upload], *, cancelled: Callable[[], bool] | None = None
    ) -> list[IngestResult]:
        """Ingest several documents: all are validated and parsed before any is written.

        A bad one raises its `DocumentError` (naming it) and nothing is stored; so do documents
        holding more than `max_document_chars` characters together (`DocumentTooLarge`: they
        are all held in memory until stored). Documents are parsed in the sandbox unless
        `parse_sandbox` is off. `cancelled` (e.g. "the HTTP client disconnected") is polled
        while they are parsed and embedded; once it returns true, before anything is stored,
        the work stops (a parse process is killed) and `Cancelled` is raised: nothing is stored.
        """
        plans: list[_Plan] = []
        chars = 0
        for upload in uploads:
            plan = self._plan(upload, cancelled)
            plans.append(plan)
            chars += len(plan.prepared.document.text) if plan.prepared else 0
            if chars > self.settings.max_document_chars:
                raise DocumentTooLarge(
                    f"the documents of this request hold more than "
                    f"{self.settings.max_document_chars} characters together "
                    "(RAG_MAX_DOCUMENT_CHARS); send them in several requests"
                )
        results = self._commit_group(plans, cancelled, atomic=True)
        self.locked_refresh()
        return results

    def _plan(self, upload: Upload, cancelled: Callable[[], bool] | None = None) -> _Plan:
        """Decide what an upload needs: nothing (unchanged), or a parsed, chunked document."""
        digest = content_hash(upload.data, upload.metadata)
        previous = self.store.content_hash(upload.source)
        if previous == digest:
            return _Plan(upload.source, previous, None)
        call = functools.partial(
            prepare,
            upload.source,
            upload.data,
            chunk_size=self.settings.chunk_size,
            chunk_overlap=self.settings.chunk_overlap,
            max_bytes=self.settings.max_file_bytes,
            metadata=upload.metadata,
            as_type=upload.as_type,
            limits=self.settings.parse_limits,
        )
        if self._sandbox is None:
            prepared = call()
        else:
            prepared = self._sandbox.run(upload.source, call, cancelled=cancelled)
        return _Plan(upload.source, previous, prepared)

    def _commit_group(
        self,
        plans: Sequence[_Plan],
        cancelled: Callable[[], bool] | None = None,
        atomic: bool = False,
    ) -> list[IngestResult]:
        """Embed the planned documents together (outside the write lock: searches go on), then
        store them, marking near-duplicates of stored documents: each in its own transaction, or
        (`atomic`, an upload) all in one, so that a write failing half-way (a full disk) leaves
        none stored. Added, updated or unchanged is what the store found at commit time.
        `Cancelled` when `cancelled()` turns true before the first is stored."""
        todo = [p.prepared for p in plans if p.prepared is not None]
        vectors = iter(self._embed_many(todo, cancelled))
        # BM25 tokens too are made here, outside the lock: the write stores them, and the
        # segment built after it (or any later rebuild) reads them instead of re-tokenising
        tokens = iter([[tokenize(c.text) for c in p.chunks] for p in todo])
        if cancelled is not None and cancelled():
            raise Cancelled("ingestion cancelled before anything was stored")
        results: list[IngestResult] = []
        with self._write_lock, self._writing(atomic):
            for plan in plans:
                doc_id = doc_id_for(plan.source)
                if plan.prepared is None:
                    chunks = self.store.document(doc_id).chunks
                    results.append(_unchanged(plan.source, chunks))
                    continue
                stored, match = self._store_document(
                    plan, plan.prepared, next(vectors), next(tokens)
                )
                results.append(
                    IngestResult(
                        source=plan.source,
                        status=stored.status,
                        doc_id=doc_id,
                        chunks=stored.chunks,
                        duplicate_of=match.source if match else "",
                    )
                )
        return results

    @contextmanager
    def _writing(self, atomic: bool) -> Iterator[None]:
        """Around the writes of `_commit_group`: one store transaction when `atomic`; after a
        failure, the signatures are reloaded (they may name documents that were rolled back)."""
        try:
            with self.store.batch() if atomic else nullcontext():
                yield
        except BaseException:
            self._fingerprint_index = None
            raise

    def _store_document(
        self,
        plan: _Plan,
        prepared: Prepared,
        vectors: list[ChunkVectors],
        tokens: list[list[str]],
    ) -> tuple[Stored, Match | None]:
        """Store one document (caller holds the write lock); returns what the store did, and the
        stored document it nearly duplicates, if any, which its metadata then names as
        `duplicate_of` (None when the same content was stored already)."""
        doc_id = doc_id_for(plan.source)
        fingerprints = self._fingerprints()
        sig = from_bytes(prepared.fingerprint)
        match = fingerprints.find(sig, exclude=doc_id) if sig is not None else None
        metadata = dict(prepared.document.metadata)
        if match is not None:
            metadata["duplicate_of"] = match.source
        before = self._fingerprints_generation
        stored = self.store.put_document(
            source=plan.source,
            title=prepared.document.title,
            text=prepared.document.text,
            content_hash=prepared.content_hash,
            encoding=prepared.encoding,
            metadata=metadata,
            chunks=prepared.chunks,
            vectors=vectors,
            fingerprint=prepared.fingerprint,
            file_stat=plan.file_stat,
            tokens=tokens,
            tokenizer_version=TOKENIZER_VERSION,
        )
        if stored.status == "unchanged":  # stored meanwhile by another upload: nothing written
            return stored, None
        if sig is not None:
            fingerprints.add(doc_id, plan.source, sig, original=match is None)
        # Still current only if no other process wrote in between (then: reload next time).
        after = self.store.generation()
        self._fingerprints_generation = after if after == before + 1 else -1
        return stored, match

    def _fingerprints(self) -> Fingerprints:
        """Signatures of the stored documents (caller holds the write lock), loaded once and kept
        while the store's generation is the one they were loaded at. Documents stored before
        signatures existed get theirs computed from the stored text, and saved."""
        generation = self.store.generation()
        if self._fingerprint_index is None or self._fingerprints_generation != generation:
            index = Fingerprints()
            missing: list[tuple[str, bytes]] = []
            for doc_id, source, blob, original in self.store.fingerprints():
                sig = from_bytes(blob)
                if sig is None:
                    sig = signature(self.store.document_text(doc_id))
                    missing.append((doc_id, to_bytes(sig)))
                index.add(doc_id, source, sig, original=original)
            if missing:
                log.info("computed near-duplicate signatures of %d documents", len(missing))
                self.store.set_fingerprints(missing)
            self._fingerprint_index = index
            self._fingerprints_generation = generation
        return self._fingerprint_index

    def _embed_many(
        self, prepared: Sequence[Prepared], cancelled: Callable[[], bool] | None = None
    ) -> list[list[ChunkVectors]]:
        """Chunk and sentence vectors of several documents, each text embedded once
        (`rag/embed/passages.py`), in full batches.

        Chunks whose text hash is stored reuse their vectors; a text that occurs several times
        (two copies of an article) is embedded once. With `cancelled`, the texts are embedded a
        slice of batches at a time and `Cancelled` is raised between slices once it returns true.
        """
        hashes = [[chunk_hash(c.text) for c in p.chunks] for p in prepared]
        cached = self.store.cached_vectors([h for hs in hashes for h in hs], self.embedder.dim)
        texts: dict[str, str] = {}  # hash → text, first occurrence, not cached
        for p, hs in zip(prepared, hashes, strict=True):
            for c, h in zip(p.chunks, hs, strict=True):
                if h not in cached:
                    texts.setdefault(h, c.text)

        def between() -> None:
            if cancelled is not None and cancelled():
                raise Cancelled("ingestion cancelled before anything was stored")

        batch = self.settings.embed_batch_size
        vectors = chunk_vectors(
            self.embedder,
            list(texts.values()),
            batch,
            batch * EMBED_SLICE_BATCHES if cancelled is not None else None,
            between,
            self.recipe,
        )
        cached.update(zip(texts, vectors, strict=True))
        return [[cached[h] for h in hs] for hs in hashes]

    def delete(self, doc_id: str) -> None:
        """Remove a document; `NotFound` if absent."""
        with self._write_lock:
            self.store.delete_document(doc_id)
            # the store re-pointed the deleted original's copies: reload the signatures with them
            self._fingerprint_index = None
            self.refresh()


def _unchanged(source: str, chunks: int) -> IngestResult:
    return IngestResult(source=source, status="unchanged", doc_id=doc_id_for(source), chunks=chunks)


def _failed(source: str, reason: str) -> IngestResult:
    return IngestResult(source=source, status="failed", reason=reason)


class DatabaseIndexer(Indexer):
    """The write path over a store that searches itself (PostgreSQL, `rag.retrieve.pg`): the
    same planning, embedding, tokenising and committing, but no segments — nothing to build,
    save, refresh or merge. Its snapshot is an empty placeholder; searches read the database."""

    def __init__(
        self,
        settings: Settings,
        store: StoreLike,
        embedder: Embedder,
        sandbox: Sandbox | None,
        *,
        recipe: str | None = None,
    ) -> None:
        """As `Indexer`, without the merge thread."""
        super().__init__(settings, store, embedder, sandbox, recipe=recipe, background_merge=False)

    def _open(self) -> Snapshot:
        return Snapshot.of(0, SegmentSet(), {})

    def refresh(self) -> None:
        """Nothing to bring up to date: every search reads the database's current state."""

    def current(self) -> Snapshot:
        """The (empty) placeholder snapshot."""
        return self._snapshot

    def merge_once(self) -> bool:
        """No segments, no merges."""
        return False
