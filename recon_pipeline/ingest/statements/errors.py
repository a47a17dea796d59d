"""The one error the statement readers raise: a file that cannot be read as a statement."""

from __future__ import annotations


class StatementError(ValueError):
    """A file that is not a readable bank statement; the message (Chinese) names the file
    and what was tried, so a user can act on it. Readers never return a partial result."""
