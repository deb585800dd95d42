"""The name → backend class table, and `get_embedder`, which resolves a `RAG_EMBEDDER` value."""

from __future__ import annotations

from pathlib import Path

from rag.embed.base import Embedder
from rag.embed.sbert import SentenceTransformerEmbedder
from rag.embed.use import UseEmbedder
from rag.errors import ConfigError

#: Backends by name. `sbert:<model id or path>` passes the model to the sentence-transformers backend.
BACKENDS: dict[str, type[Embedder]] = {
    "use-multilingual": UseEmbedder,
    "sbert": SentenceTransformerEmbedder,
}


def _resolve(spec: str) -> tuple[type[Embedder], str]:
    """`(backend class, argument)` for `spec`, without loading anything."""
    name, sep, arg = spec.partition(":")
    if name in BACKENDS and (sep or name != "sbert"):
        return BACKENDS[name], arg
    if "/" in spec or Path(spec).is_dir():  # a bare hub id or local directory: sentence-transformers
        return SentenceTransformerEmbedder, spec
    choices = ", ".join(f"{n}:<model id or path>" if n == "sbert" else n for n in BACKENDS)
    raise ConfigError(f"unknown embedder '{spec}'; valid choices: {choices} (or a model id / local path)")


def get_embedder(spec: str) -> Embedder:
    """Build the embedder named by `spec`: a name from `BACKENDS`, `sbert:<model>`, or a model id/path."""
    cls, arg = _resolve(spec)
    return cls(arg) if arg else cls()  # type: ignore[call-arg]


def embedder_name(spec: str) -> str:
    """The manifest name `spec` resolves to, without loading the model."""
    cls, arg = _resolve(spec)
    return f"sbert:{arg}" if cls is SentenceTransformerEmbedder else spec
