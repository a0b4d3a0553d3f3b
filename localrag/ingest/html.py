"""HTML to text in one pass over the parsed tree: block elements become paragraph breaks, ``<br>`` a line break,
``<pre>`` keeps its lines and spaces, scripts and styles are dropped.

The walk keeps its own stack instead of editing the tree (inserting break markers next to each block element
costs time proportional to the nesting depth per insert, so 100,000 nested ``<div>`` took minutes) or
recursing (which such a file would overflow).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["html_to_text"]

_BLOCK_TAGS = frozenset(
    {"p", "div", "section", "article", "main", "header", "footer", "nav", "aside", "h1", "h2", "h3",
     "h4", "h5", "h6", "ul", "ol", "li", "dl", "dt", "dd", "table", "thead", "tbody", "tfoot", "tr",
     "blockquote", "pre", "figure", "figcaption", "form", "fieldset", "address", "details", "summary",
     "hr", "body", "caption"}
)  # fmt: skip
_DROP_TAGS = frozenset({"script", "style", "noscript", "template", "head", "title", "svg", "iframe", "object"})
_CELLS = frozenset({"td", "th"})
# Private-use sentinels survive HTML whitespace collapsing and become breaks afterwards.
_PARA, _LINE, _SPACE = "\ue000", "\ue001", "\ue002"
_WS_RUN = re.compile(r"\s+")
_BREAKS = re.compile(rf"[ {_LINE}{_PARA}]*[{_LINE}{_PARA}][ {_LINE}{_PARA}]*")


def _join_breaks(m: re.Match[str]) -> str:
    return "\n\n" if _PARA in m.group(0) else "\n"


def html_to_text(markup: str) -> tuple[str, str]:
    """(text, title) of an HTML document; html.parser is lenient, so this does not fail on bad markup."""
    from bs4 import BeautifulSoup, CData, NavigableString, Tag

    soup = BeautifulSoup(markup, "html.parser")
    title_tag = soup.title
    title = _WS_RUN.sub(" ", title_tag.get_text()).strip() if title_tag is not None else ""
    text_types = (NavigableString, CData)  # exactly these: comments, doctypes and script bodies are no text
    out: list[str] = []
    in_pre = 0
    stack: list[tuple[Any, bool]] = [(soup, False)]  # (node, leaving): a tag's closing break follows its children
    while stack:
        node, leaving = stack.pop()
        if not isinstance(node, Tag):
            if type(node) in text_types:
                piece = str(node)
                out.append(piece.replace("\n", _LINE).replace(" ", _SPACE) if in_pre else piece)
            continue
        name = node.name
        if leaving:
            if name in _BLOCK_TAGS:
                out.append(_PARA)
            if name in _CELLS:
                out.append(" ")
            if name == "pre":
                in_pre -= 1
            continue
        if name in _DROP_TAGS:
            continue
        if name == "br":
            out.append(_LINE)
            continue
        if name in _BLOCK_TAGS:
            out.append(_PARA)
        if name == "pre":
            in_pre += 1
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(node.contents))
    raw = _WS_RUN.sub(" ", "".join(out))
    return _BREAKS.sub(_join_breaks, raw).replace(_SPACE, " ").strip(), title
