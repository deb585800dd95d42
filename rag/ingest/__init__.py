"""Ingestion: bytes → decoded text → normalised `Document` → sentences → `Chunk`s."""
