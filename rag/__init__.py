"""rag: retrieval-augmented question answering over Chinese and English documents.

The library never imports FastAPI; `api/` is a thin HTTP layer over `rag.engine.Engine`.
"""

__version__ = "0.1.0"
