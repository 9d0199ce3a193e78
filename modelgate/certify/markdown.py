"""Markdown escaping for text we do not control (model ids, families, model output, reasons).

Everything that could start Markdown syntax is made inert: every ASCII punctuation character is
backslash-escaped (CommonMark lets any of them be escaped; this also defeats links, images,
emphasis, code spans, headings, lists and GitHub's bare-URL autolinks, whose ``http:`` and
``www.`` no longer match), ``<``, ``>``, ``&`` and quotes become HTML entities, and line breaks
become spaces. A plain number or date is left as it is: it cannot form any syntax mid-line.
"""
from __future__ import annotations

import re
import string

_BACKTICK_RUN = re.compile(r"`+")
_PLAIN = re.compile(r"[-+]?\d+(?:\.\d+)?(?:/\d+)?|\d{4}-\d{2}-\d{2}")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
_ESCAPED = {ch: "\\" + ch for ch in string.punctuation}
_ESCAPED.update(_ENTITIES)


def fence(text: str, info: str = "text") -> str:
    """A fenced code block holding ``text`` verbatim: the fence is longer than any backtick run inside,
    so model output can never close it early and inject Markdown."""
    longest = max((len(m.group(0)) for m in _BACKTICK_RUN.finditer(text)), default=0)
    marker = "`" * max(3, longest + 1)
    return f"{marker}{info}\n{text}\n{marker}"


def inline(value: object) -> str:
    """Text safe in a Markdown paragraph, heading, list item or table cell: one line, every
    punctuation character escaped, HTML inert."""
    text = " ".join(("" if value is None else str(value)).split())  # newlines and tabs would break the line
    if _PLAIN.fullmatch(text):
        return text
    return "".join(_ESCAPED.get(ch, ch) for ch in text)


def cell(value: object) -> str:
    """Text safe inside a Markdown table cell (pipes included): the same escaping as ``inline``."""
    return inline(value)
