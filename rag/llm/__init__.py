"""Optional generative answers: LLM backends picked by name (see `registry.get_llm`)."""
