"""The seeded demo / fixture / benchmark generator with its ground truth (not part of the pipeline)."""
