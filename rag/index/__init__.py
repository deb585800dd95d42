"""Derived search indexes: immutable segments (FAISS dense, BM25 postings) over SQLite's chunks,
changed by adding segments and tombstones, rebuilt from the store at will."""
