"""File formats: one module per format, each with `load(source, data) -> Loaded`.

`rag.ingest.loaders` holds the one table from file suffix to format.
"""
