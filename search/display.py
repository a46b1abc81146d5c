"""Display helpers for the UI: safe HTML from untrusted text, term highlighting, rank changes.

Passage text, titles, ids and file names are untrusted. Everything that reaches HTML goes
through :func:`escape`, which also neutralizes Markdown and Streamlit's Markdown extensions
(links, emphasis, ``:color[...]`` directives, ``$`` math), so escaped text renders literally.
"""

from __future__ import annotations

import hashlib

from index.analyzer import ROOT_MARK, Analyzer

_MARKDOWN_SPECIALS = "\\`*_{}[]()#+-.!|~$:^=@"
_ESCAPES = {ord(c): f"&#{ord(c)};" for c in _MARKDOWN_SPECIALS}
_ESCAPES.update({ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;", ord('"'): "&quot;", ord("'"): "&#39;"})
_ESCAPES[ord("\n")] = "<br>"


def escape(text: str) -> str:
    """HTML-escape and Markdown-neutralize untrusted text.

    >>> escape("<img src=x onerror=alert(1)>")
    '&lt;img src&#61;x onerror&#61;alert&#40;1&#41;&gt;'
    """
    return str(text).translate(_ESCAPES)


def highlight(analyzer: Analyzer, text: str, query_terms: list[str]) -> str:
    """``text`` as safe HTML with the words that match a query term in ``<mark>``.

    Matching uses the index's analyzer, so ህዝቡ highlights for the query ሕዝብ. Root features
    (``$``) are not used for highlighting: they would mark too loosely.
    """
    wanted = {t for t in query_terms if not t.startswith(ROOT_MARK)}
    out: list[str] = []
    pos = 0
    for start, end, terms in analyzer.term_spans(text):
        if wanted.intersection(terms):
            out.append(escape(text[pos:start]))
            out.append("<mark>" + escape(text[start:end]) + "</mark>")
            pos = end
    out.append(escape(text[pos:]))
    return "".join(out)


def rank_change(before: int | None, after: int | None) -> str:
    """How the reranker moved a result: ``↑ 7``, ``↓ 2``, ``=`` or ``new``.

    >>> rank_change(8, 1), rank_change(1, 3), rank_change(2, 2)
    ('↑ 7', '↓ 2', '=')
    """
    if after is None or before is None:
        return "new" if after is not None else ""
    if before == after:
        return "="
    return f"↑ {before - after}" if before > after else f"↓ {after - before}"


PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)


def doc_colors(doc_ids) -> dict[str, str]:
    """Distinct colors in order of first appearance (then a stable hash), to link the same document
    across compared rankings.

    >>> doc_colors(["a", "b", "a"]) == {"a": PALETTE[0], "b": PALETTE[1]}
    True
    """
    colors: dict[str, str] = {}
    for doc_id in doc_ids:
        if doc_id not in colors:
            if len(colors) < len(PALETTE):
                colors[doc_id] = PALETTE[len(colors)]
            else:
                digest = hashlib.sha256(doc_id.encode("utf-8")).digest()
                colors[doc_id] = f"hsl({int.from_bytes(digest[:2], 'big') % 360}, 60%, 45%)"
    return colors
