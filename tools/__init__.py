"""Build-time tools: generators of the data files the runtime reads (never shipped)."""
