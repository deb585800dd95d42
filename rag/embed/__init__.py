"""Embedding backends, picked by name from `BACKENDS` (see `get_embedder`)."""

from __future__ import annotations

from rag.embed.base import Embedder
from rag.embed.registry import BACKENDS, get_embedder

__all__ = ["BACKENDS", "Embedder", "get_embedder"]
