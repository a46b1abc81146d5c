"""Display helpers for the UI: safe HTML from untrusted text, term highlighting, rank changes.

Passage text, titles, ids and file names are untrusted. Everything that reaches HTML goes
through :func:`escape`, which also neutralizes Markdown and Streamlit's Markdown extensions
(links, emphasis, ``:color[...]`` directives, ``$`` math), so escaped text renders literally.
"""

from __future__ import annotations

import hashlib

from ...index.analyzer import ROOT_MARK, Analyzer

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


def rank_change(before: int | None, after: int | None, *, new: str = "new") -> str:
    """How the reranker moved a result: ``↑ 7``, ``↓ 2``, ``=`` or ``new`` (the page's word for it).

    >>> rank_change(8, 1), rank_change(1, 3), rank_change(2, 2), rank_change(None, 4, new="አዲስ")
    ('↑ 7', '↓ 2', '=', 'አዲስ')
    """
    if after is None or before is None:
        return new if after is not None else ""
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


SNIPPET_CHARS = 200
"""The longest snippet a result card shows (about three lines), ellipses not counted."""


def _words_cut(text: str, start: int, end: int) -> tuple[int, int]:
    """``start``/``end`` moved inwards to word boundaries (whole words only, unless one word is longer)."""
    if start > 0:
        space = text.find(" ", start)
        if 0 <= space < end:
            start = space + 1
    if end < len(text):
        space = text.rfind(" ", start, end + 1)
        if space > start:
            end = space
    return start, end


def snippet(analyzer: Analyzer, text: str, query_terms: list[str], *, budget: int = SNIPPET_CHARS) -> tuple[str, bool]:
    """A query-biased snippet of ``text`` as safe HTML: at most ``budget`` characters around the
    densest run of matched words (through the index's analyzer), ``<mark>``-ed, with ``…`` where
    text was left out. Returns the HTML and whether any query word occurs (False: a match by
    meaning only; the snippet is then the beginning of the text).

    >>> from index.analyzer import Analyzer
    >>> snippet(Analyzer(), "ቡና ጥሩ ነው።", ["ቡና"])
    ('<mark>ቡና</mark> ጥሩ ነው።', True)
    """
    text = " ".join(text.split())
    wanted = {t for t in query_terms if not t.startswith(ROOT_MARK)}
    spans = [(s, e) for s, e, terms in analyzer.term_spans(text) if wanted.intersection(terms)]
    if len(text) <= budget:
        return highlight(analyzer, text, query_terms), bool(spans)
    if spans:
        best, best_n, j = 0, 0, 0
        for i, (s, _) in enumerate(spans):
            while j < len(spans) and spans[j][1] <= s + budget:
                j += 1
            if j - i > best_n:
                best, best_n = i, j - i
        first, last = spans[best][0], spans[best + best_n - 1][1]
        lead = min(first, max(0, (budget - (last - first)) // 3))  # some context before the first match
        start = first - lead
        end = min(len(text), start + budget)
        start = max(0, min(start, end - budget))
    else:
        start, end = 0, budget
    start, end = _words_cut(text, start, end)
    html = highlight(analyzer, text[start:end], query_terms)
    return ("…" if start > 0 else "") + html + ("…" if end < len(text) else ""), bool(spans)


def first_sentence(text: str, *, limit: int = 90) -> str:
    """The first sentence of ``text`` (to stand for a missing title), cut at a word if long.

    >>> first_sentence("የቡና ምርት ጨመረ። ገበሬዎች ተደሰቱ።")
    'የቡና ምርት ጨመረ።'
    """
    text = " ".join(text.split())
    for mark in ("።", "፧", "?", "!", "፨"):
        pos = text.find(mark)
        if 0 <= pos < limit:
            return text[: pos + len(mark)]
    if len(text) <= limit:
        return text
    start, end = _words_cut(text, 0, limit)
    return text[:end] + "…"


def sig3(value: float | None) -> str:
    """A score with at most three significant digits (``–`` for none).

    >>> sig3(10.5551), sig3(0.87543), sig3(-0.0312), sig3(None), sig3(1234.5)
    ('10.6', '0.875', '-0.0312', '–', '1,234')
    """
    if value is None:
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def metadata_line(doc_id: str, metadata: dict | None, *, fields: int = 3) -> list[tuple[str, str]]:
    """What a card's source line shows: the id, then short metadata fields (date, source, …)."""
    items = [("id", doc_id)]
    preferred = ("date", "source", "author", "url", "category", "section", "ቀን", "ምንጭ", "ዘርፍ")
    meta = {k: v for k, v in (metadata or {}).items() if isinstance(v, (str, int, float)) and str(v).strip()}
    keys = [k for k in preferred if k in meta] + [k for k in meta if k not in preferred]
    for key in keys[:fields]:
        value = " ".join(str(meta[key]).split())
        items.append((key, value if len(value) <= 60 else value[:59] + "…"))
    return items


def rank_flow(results, stages: list[str]) -> list[dict]:
    """The rows of a rank-flow chart: one row per (document, stage) where the stage ranked it.

    ``results`` are SearchResults (their ``ranks``); ``stages`` the stages that ran, in order.
    """
    rows = []
    for r in results:
        for stage in stages:
            rank = getattr(r.ranks, stage)
            if rank is not None:
                rows.append({"doc_id": r.doc_id, "stage": stage, "rank": int(rank), "final": r.rank})
    return rows


def match_label(result, words_shown: bool) -> str | None:
    """What a card says about how its result was found, when its highlighted words do not already say
    it: ``"dense"`` (only meaning-based search found it), ``"bm25"`` (keyword search found it, its words
    being elsewhere in the document or in a related form), ``"both"``; None when a word of the search is
    highlighted (``words_shown``) or no first-stage score is known. It follows the stages' own scores,
    so a result is never said to be found by meaning when dense retrieval did not run or did not find it.

    >>> from types import SimpleNamespace as NS
    >>> [match_label(NS(scores=NS(bm25=b, dense=d)), shown) for b, d, shown in
    ...  [(1.0, None, False), (None, 0.8, False), (1.0, 0.8, False), (1.0, 0.8, True), (None, None, False)]]
    ['bm25', 'dense', 'both', None, None]
    """
    if words_shown:
        return None
    bm25, dense = result.scores.bm25 is not None, result.scores.dense is not None
    return "both" if bm25 and dense else "bm25" if bm25 else "dense" if dense else None


ANALYZER_STEPS = ("nfc", "fold", "numerals", "lowercase", "stem", "keep_surface", "roots", "stopwords")


def collection_facts(manifest: dict, reranker: str | None, tr, *, expert: bool) -> list[tuple[str, str]]:
    """"About this collection" as (label, value) lines in the page's language (``tr``: a catalogue key
    and values -> text): what a reader wants to know (name, size, date, how it can be searched), then,
    for experts, how it was prepared. Values that are names (models, files, settings) stay as they are."""
    corpus, dense, ana, bm25 = (manifest.get(k) or {} for k in ("corpus", "dense", "analyzer", "bm25"))
    name = str(manifest.get("name", ""))
    rows = [
        ("name", tr("sample_name") if name == "sample" else name),
        ("documents", f"{corpus.get('documents', 0):,}"),
        ("passages", f"{corpus.get('passages', 0):,}"),
        ("built", str(manifest.get("created", ""))[:10]),
        ("search", tr("about_search_both") if dense else tr("about_search_lexical")),
    ]
    if not expert:
        rows.append(("rerank", tr("about_rerank_on") if reranker else tr("about_rerank_off")))
        return [(tr(f"about_{key}"), value) for key, value in rows]
    chunking = manifest.get("chunking") or {}
    rows += [
        ("reranker", reranker or tr("about_rerank_off")),
        ("dense_model", f"{dense['model']} ({dense.get('dim')})" if dense else tr("about_search_lexical")),
    ]
    if dense.get("fingerprint"):
        rows.append(("fingerprint", str(dense["fingerprint"])[:23] + "…"))
    rows += [
        ("corpus", str(corpus.get("path", "")).replace("\\", "/").split("/")[-1]),  # the file's name: no server paths
        ("corpus_sha", str(corpus.get("sha256", ""))[:16] + "…"),
        ("analyzer", ", ".join(tr(f"analyzer_{step}") for step in ANALYZER_STEPS if ana.get(step))),
        ("bm25", f"{bm25.get('method')} k1={bm25.get('k1')} b={bm25.get('b')}, "
                 + tr("about_terms", n=f"{bm25.get('vocabulary') or 0:,}")),
        ("chunking", tr("about_chunk_value", tokens=chunking.get("max_tokens"), overlap=chunking.get("overlap"))),
    ]
    if manifest.get("shards"):
        rows.append(("shards", str(len(manifest["shards"]))))
    rows.append(("format", str(manifest.get("format_version"))))
    return [(tr(f"about_{key}"), value) for key, value in rows]


CHART_FONT = "Noto Sans Ethiopic Variable, Source Sans Pro, sans-serif"
"""Every chart's font: the page serves Noto Sans Ethiopic, so Ethiopic labels draw on any machine."""


def css_string(text: str) -> str:
    r"""``text`` as a CSS string literal (for ``content:``): quotes, backslashes, line breaks and angle
    brackets as CSS escapes, so it can neither end the string nor the ``<style>`` element.

    >>> print(css_string('say "hi" </style>'))
    "say \22 hi\22  \3c /style\3e "
    """
    return '"' + "".join(f"\\{ord(c):x} " if c in '"\\\n<>' else c for c in text) + '"'
