"""The name → LLM backend table, and `get_llm`, which builds the configured one (or none)."""

from __future__ import annotations

from rag.config import Settings
from rag.errors import ConfigError
from rag.llm.base import LLM
from rag.llm.openai import OpenAIChat

#: Backends by `RAG_LLM_BACKEND` name.
BACKENDS: dict[str, type[OpenAIChat]] = {"openai": OpenAIChat}


def get_llm(settings: Settings) -> LLM | None:
    """The configured LLM, or None when `RAG_LLM_BASE_URL` is unset (extractive answers only)."""
    if not settings.llm_base_url:
        return None
    cls = BACKENDS.get(settings.llm_backend)
    if cls is None:
        raise ConfigError(
            f"unknown LLM backend '{settings.llm_backend}'; valid choices: {', '.join(BACKENDS)}"
        )
    if not settings.llm_model:
        raise ConfigError("RAG_LLM_BASE_URL is set but RAG_LLM_MODEL is not")
    return cls(
        settings.llm_base_url,
        settings.llm_model,
        api_key=settings.llm_api_key,
        timeout=settings.llm_timeout,
        retries=settings.llm_retries,
        max_tokens=settings.llm_max_tokens,
        temperature=settings.llm_temperature,
    )
