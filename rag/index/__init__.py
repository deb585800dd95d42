"""Derived search indexes (FAISS dense, BM25 lexical), rebuilt from the SQLite store at will."""
