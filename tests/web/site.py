"""What the browser tests' server fixtures give a test."""

from __future__ import annotations

from dataclasses import dataclass

from rag.engine import Engine


@dataclass
class Site:
    """A running server: its base URL and the engine behind it."""

    base: str
    engine: Engine
