"""Markdown escaping for text we do not control (model ids, model output, reasons)."""
from __future__ import annotations

import html
import re

_BACKTICK_RUN = re.compile(r"`+")
_TILDE_RUN = re.compile(r"~+")


def fence(text: str, info: str = "text") -> str:
    """A fenced code block holding ``text`` verbatim: the fence is longer than any backtick run inside,
    so model output can never close it early and inject Markdown."""
    longest = max((len(m.group(0)) for m in _BACKTICK_RUN.finditer(text)), default=0)
    marker = "`" * max(3, longest + 1)
    return f"{marker}{info}\n{text}\n{marker}"


def cell(value: object) -> str:
    """Text safe inside a Markdown table cell: one line, pipes escaped, HTML inert."""
    text = "" if value is None else str(value)
    text = " ".join(text.split())  # newlines and tabs would break the row
    text = html.escape(text, quote=False)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")


def inline(value: object) -> str:
    """Text safe in a Markdown paragraph or heading: one line, HTML inert, emphasis/link syntax escaped."""
    text = " ".join(("" if value is None else str(value)).split())
    text = html.escape(text, quote=False)
    return re.sub(r"([\\`*_\[\]#|!])", r"\\\1", text)
