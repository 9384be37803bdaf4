"""Data in: the importers of `data convert` (PandaLM, JudgeLM, your tables, preferences, the
judge benchmarks) and the pairing of answers."""
