"""The HTTP service: a thin FastAPI layer over `rag.engine.Engine`."""
