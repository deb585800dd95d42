"""Durable storage: SQLite is the one source of truth; everything else is derived from it."""
