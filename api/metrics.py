"""Prometheus metrics: requests and latency by route and status, index size, ingest counts."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from rag.types import Answer

# Latency buckets (seconds) around this service's range: ~2 ms searches to multi-second ingests.
_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """One registry per app (tests build many apps in one process)."""

    def __init__(self) -> None:
        """Create the metric families."""
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "rag_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "rag_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.documents = Gauge("rag_documents", "Documents indexed", registry=self.registry)
        self.chunks = Gauge("rag_chunks", "Chunks indexed", registry=self.registry)
        self.generation = Gauge(
            "rag_index_generation", "Index write generation", registry=self.registry
        )
        self.ingests = Counter(
            "rag_ingest_total", "Documents ingested, by outcome", ["status"], registry=self.registry
        )

        self.llm_latency = Histogram(
            "rag_llm_latency_seconds",
            "Latency of LLM answers",
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.llm_tokens = Counter(
            "rag_llm_tokens_total", "LLM tokens", ["kind"], registry=self.registry
        )
        self.answer_warnings = Counter(
            "rag_answer_warnings_total",
            "Answers with a warning (LLM failures, dropped citations)",
            ["code"],
            registry=self.registry,
        )

    def observe_answer(self, answer: Answer) -> None:
        """LLM tokens, latency and answer warnings (LLM failures, dropped citations)."""
        if answer.llm_ms is not None:
            self.llm_latency.observe(answer.llm_ms / 1000)
            self.llm_tokens.labels("prompt").inc(answer.prompt_tokens)
            self.llm_tokens.labels("completion").inc(answer.completion_tokens)
        for w in answer.warnings:
            self.answer_warnings.labels(w.code).inc()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one finished request."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route, str(status)).observe(seconds)

    def render(self, documents: int, chunks: int, generation: int) -> bytes:
        """The exposition text, with the index gauges refreshed."""
        self.documents.set(documents)
        self.chunks.set(chunks)
        self.generation.set(generation)
        return generate_latest(self.registry)
