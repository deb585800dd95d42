"""Answer composition: extractive (no LLM) with checked citations."""
