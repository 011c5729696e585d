"""Benchmarks of the toolkit's restorers: tasks x datasets x methods, one protocol written into every result."""
