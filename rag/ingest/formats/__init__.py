"""File formats: one module per format, each with `load(source, data, limits) -> Loaded`.

`rag.ingest.loaders` holds the one table from file suffix to format. Formats that expand (zip,
PDF streams) enforce `limits` (`rag.ingest.limits`) while they parse; for the others the text is
no longer than the file, and `load_document` checks its length once.
"""
