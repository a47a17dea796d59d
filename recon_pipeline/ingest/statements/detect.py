"""Which statement format a file holds, from its content (never its extension)."""

from __future__ import annotations

from pathlib import Path

from .camt import camt_message
from .cn_exports import find_header
from .mt940 import looks_like_mt940
from .tables import load_rows_with_encoding

SNIFF_BYTES = 4096


def detect_from_bytes(path: Path, data: bytes) -> tuple[str | None, object]:
    """(format name, what was parsed while detecting) so the reader need not parse twice:
    for a table, ((rows, encoding), header found or None)."""
    head = data[:SNIFF_BYTES]
    camt = camt_message(head)
    if camt is not None:
        return camt, None
    if looks_like_mt940(head):
        return "mt940", None
    loaded = load_rows_with_encoding(path, data)
    if loaded is None:
        return None, None
    found = find_header(loaded[0])
    if found is None:
        return None, (loaded, None)
    return found[0].name, (loaded, found)
