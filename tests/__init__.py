"""The test tree mirrors the package (tests/ingest, tests/matching, ...); shared fixtures live in conftest.py files."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES_DIR = REPO_ROOT.parent / "shared" / "samples" / "bank_statements"
