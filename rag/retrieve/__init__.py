"""Retrieval: dense and lexical candidates, fused into one ranking."""
