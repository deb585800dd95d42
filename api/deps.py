"""Typed dependencies: routes get the engine and settings loaded once in the lifespan."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.metrics import Metrics
from rag.config import Settings
from rag.engine import Engine
from rag.errors import RagError


class NotReady(RagError):
    """The index is still loading."""

    code = "not_ready"


def get_settings(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings


def get_engine(request: Request) -> Engine:
    """The loaded engine; `NotReady` (503) until the lifespan has loaded it."""
    engine = getattr(request.app.state, "engine", None)
    if engine is None:
        raise NotReady("the index is still loading")
    return engine


def get_metrics(request: Request) -> Metrics:
    """The app's metrics registry."""
    return request.app.state.metrics


EngineDep = Annotated[Engine, Depends(get_engine)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
