"""Render docs/runbook.md for the alerts page's links, with an anchor per alert type."""

from __future__ import annotations

import re
from pathlib import Path

from markdown_it import MarkdownIt
from markupsafe import Markup

# An alert type such as `amount_mismatch`: snake_case with at least one underscore.
IDENTIFIER = re.compile(r"(?<![A-Za-z0-9])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![A-Za-z0-9])")


def heading_slug(text: str) -> str:
    """GitHub-style anchor: lower case, punctuation dropped, spaces to dashes."""
    slug = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return slug.replace(" ", "-")


def render_runbook(path: Path) -> Markup | None:
    """The runbook as HTML; headings get their GitHub slug and, when they name an alert type
    (an identifier such as `amount_mismatch`), that identifier as id too, so
    `docs/runbook.md#amount_mismatch` resolves here. None when there is no runbook yet."""
    if not path.is_file():
        return None
    markdown = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = markdown.parse(path.read_text(encoding="utf-8"))
    for index, token in enumerate(tokens):
        if token.type != "heading_open":
            continue
        text = tokens[index + 1].content
        identifier = IDENTIFIER.search(text)
        token.attrSet("id", identifier.group(0) if identifier else heading_slug(text))
    return Markup(markdown.renderer.render(tokens, markdown.options, {}))


def runbook_link(runbook_url: str | None, alert_type: str | None) -> str:
    """Where an alert's runbook link points in the dashboard."""
    if runbook_url and re.match(r"https?://", runbook_url):
        return runbook_url
    anchor = (runbook_url or "").partition("#")[2] or (alert_type or "")
    return f"/runbook#{anchor}" if anchor else "/runbook"
