"""amharic-search in the browser (Streamlit). Presentation only: retrieval goes through `search`.

    python -m streamlit run app.py                       # the sample index (built on first use)
    python -m streamlit run app.py -- --index DIR        # another index
    AMHARIC_SEARCH_INDEX=DIR python -m streamlit run app.py

Every piece of corpus text, title, id or file name shown here is untrusted: it is either shown
with st.text/st.code (plain text) or passed through `search.display.escape` before it becomes HTML.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import streamlit as st

from index.manifest import IndexFormatError, describe_manifest, read_manifest
from index.models import DEFAULT_DENSE_MODEL, DEFAULT_RERANKER, ModelUnavailableError
from index.readers import CorpusError
from search import QueryError, Searcher
from search.searcher import clean_query
from search.catalog import DEFAULT_INDEX_ROOT, Upload, build_from_uploads, ensure_sample_index, find_indexes, safe_name
from search.display import doc_colors, escape, highlight, rank_change
from search.translit import looks_transliterated, to_ethiopic

STAGE_LABELS = {"bm25": "BM25", "dense": "Dense", "fused": "Fused", "rerank": "Rerank"}
MODES = {"Hybrid (BM25 + dense)": "hybrid", "Lexical (BM25)": "lexical", "Dense": "dense"}

CSS = """
<style>
.as-card {border: 1px solid rgba(128,128,128,.25); border-radius: 8px; padding: .6rem .8rem; margin-bottom: .6rem;}
.as-head {display: flex; gap: .6rem; align-items: baseline; flex-wrap: wrap;}
.as-rank {font-weight: 700; font-size: 1.1rem;}
.as-title {font-weight: 600;}
.as-id {font-family: monospace; font-size: .8rem; opacity: .7;}
.as-move {font-size: .85rem; font-weight: 600;}
.as-up {color: #1a7f37;} .as-down {color: #cf222e;} .as-same {opacity: .6;}
.as-text {margin: .35rem 0; line-height: 1.6;}
.as-text mark {background: #ffe58f; padding: 0 .1rem; border-radius: 2px;}
.as-scores {font-size: .8rem; opacity: .85;}
.as-for {font-size: .85rem; opacity: .7; margin-bottom: .4rem;}
.as-dot {display: inline-block; width: .75rem; height: .75rem; border-radius: 50%; margin-right: .3rem;}
</style>
"""


def settings() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="app.py")
    parser.add_argument("--index", default=os.environ.get("AMHARIC_SEARCH_INDEX"))
    parser.add_argument("--index-root", default=os.environ.get("AMHARIC_SEARCH_INDEX_ROOT", str(DEFAULT_INDEX_ROOT)))
    parser.add_argument("--reranker", default=os.environ.get("AMHARIC_SEARCH_RERANKER", DEFAULT_RERANKER))
    parser.add_argument("--dense-model", default=os.environ.get("AMHARIC_SEARCH_DENSE_MODEL"))
    args, _ = parser.parse_known_args(sys.argv[1:])
    return args


@st.cache_resource(show_spinner=False, max_entries=4)
def load_searcher(index_dir: str, built: str, dense_model: str, reranker: str) -> Searcher:
    """One Searcher per (index, build, models), shared by all sessions (it is thread-safe)."""
    return Searcher.load(index_dir, dense_model=dense_model, reranker=reranker or None, strict=False)


def ensure_sample(root: Path, dense_model: str) -> list[str]:
    sample = root / "sample"
    if (sample / "manifest.json").is_file():
        return []
    bar = st.progress(0.0, text="Building the sample index (first start only)…")
    notes = ensure_sample_index(sample, dense_model=dense_model, on_progress=lambda stage, f: bar.progress(f, text=f"Sample index: {stage}…"))
    bar.empty()
    return notes


# -- rendering -------------------------------------------------------------------------------------


def stage_line(result) -> str:
    parts = []
    for stage, label in STAGE_LABELS.items():
        score, rank = getattr(result.scores, stage), getattr(result.ranks, stage)
        if score is None:
            parts.append(f"{label} –")
        else:
            parts.append(f"{label} {score:.3f} (#{rank})")
    return " · ".join(parts)


def move_badge(result) -> str:
    change = rank_change(result.ranks.fused, result.ranks.rerank)
    if not change:
        return ""
    cls = "as-up" if change.startswith("↑") else "as-down" if change.startswith("↓") else "as-same"
    return f'<span class="as-move {cls}" title="rank change made by the reranker">{escape(change)}</span>'


def render_results(container, searcher: Searcher, response, *, show_docs: bool = True) -> None:
    with container.container():
        stage = "reranked" if "rerank" in response.stages else "first stage"
        st.markdown(f'<div class="as-for">Results for “{escape(response.query)}” · {stage}</div>', unsafe_allow_html=True)
        if not response.results:
            st.info("No results. Try other words, or switch the dense stage on.")
            return
        for r in response.results:
            title = escape(r.title or r.doc_id)
            st.markdown(
                f'<div class="as-card"><div class="as-head"><span class="as-rank">{r.rank}</span>'
                f'<span class="as-title">{title}</span><span class="as-id">{escape(r.doc_id)}</span>{move_badge(r)}</div>'
                f'<div class="as-text">{highlight(searcher.analyzer, r.text, response.query_terms)}</div>'
                f'<div class="as-scores">{escape(stage_line(r))}</div></div>',
                unsafe_allow_html=True,
            )
            if show_docs:
                with st.expander("Full document", expanded=False):
                    doc = searcher.document(r.doc_id)
                    st.text(doc["text"] if doc else "(document not found)")


def render_timings(container, timings: dict) -> None:
    import pandas as pd

    stages = {k: v for k, v in timings.items() if k != "total" and v is not None}
    with container.container():
        cols = st.columns(len(stages) + 1)
        for col, (stage, ms) in zip(cols, stages.items()):
            col.metric(f"{stage} ms", f"{ms:.1f}")
        cols[-1].metric("total ms", f"{timings.get('total') or 0:.1f}")
        if len(stages) > 2:
            st.bar_chart(pd.DataFrame({"ms": list(stages.values())}, index=list(stages)), horizontal=True, height=160)


def render_compare(searcher: Searcher, query: str, *, top_k: int, depth: int, candidates: int, fusion: str,
                   max_length: int, window: str) -> None:
    """The same query through each stage combination, with the sidebar's settings."""
    runs = {"BM25 alone": dict(stages="lexical", rerank=False)}
    if searcher.has_dense:
        runs["Hybrid"] = dict(stages="hybrid", rerank=False)
    if searcher.has_reranker:
        runs["Hybrid + rerank" if searcher.has_dense else "BM25 + rerank"] = dict(
            stages="hybrid" if searcher.has_dense else "lexical", rerank=True)
    responses = {}
    for name, kw in runs.items():
        try:
            responses[name] = searcher.search(query, top_k=top_k, depth=depth, candidates=candidates, fusion=fusion,
                                              max_length=max_length, window=window, **kw)
        except QueryError as exc:
            st.warning(f"{name}: {exc}")
    if not responses:
        return
    positions = {name: {r.doc_id: r.rank for r in resp.results} for name, resp in responses.items()}
    # color by best position in any column, so the top documents get the most distinct colors
    by_rank = sorted((r.rank, r.doc_id) for resp in responses.values() for r in resp.results)
    colors = doc_colors(doc_id for _, doc_id in by_rank)
    st.caption("The same document has the same color in every column; “elsewhere” gives its rank in the other columns.")
    for col, (name, resp) in zip(st.columns(len(responses)), responses.items()):
        with col:
            st.markdown(f"**{name}** · {resp.timings_ms['total']:.0f} ms")
            for r in resp.results:
                elsewhere = ", ".join(
                    f"{other}: #{positions[other][r.doc_id]}" if r.doc_id in positions[other] else f"{other}: –"
                    for other in responses if other != name
                )
                st.markdown(
                    f'<div class="as-card"><div class="as-head"><span class="as-rank">{r.rank}</span>'
                    f'<span class="as-dot" style="background:{colors[r.doc_id]}"></span>'
                    f'<span class="as-title">{escape(r.title or r.doc_id)}</span></div>'
                    f'<div class="as-id">{escape(r.doc_id)}</div>'
                    f'<div class="as-scores">elsewhere: {escape(elsewhere)}</div></div>',
                    unsafe_allow_html=True,
                )


# -- sidebar -----------------------------------------------------------------------------------------


def sidebar_index_builder(root: Path, dense_model: str) -> None:
    with st.sidebar.expander("Index your own files"):
        files = st.file_uploader(
            "JSONL, CSV/TSV, or .txt/.md files", type=["jsonl", "ndjson", "csv", "tsv", "txt", "md"],
            accept_multiple_files=True, key="uploads",
        )
        name = st.text_input("Index name", value="my-corpus", key="upload_name")
        skip_bad = st.checkbox("Skip bad records", value=False, key="upload_skip_bad")
        with_dense = st.checkbox("Dense embeddings", value=True, key="upload_dense",
                                 help="Needs the encoder; without it the index is lexical only.")
        exists = (root / safe_name(name, fallback="uploaded")).exists()
        replace = st.checkbox("Replace the existing index of that name", value=False, key="upload_replace") if exists else True
        if st.button("Build index", key="build_btn", disabled=not files or not replace):
            bar = st.progress(0.0, text="Starting…")
            try:
                report = build_from_uploads(
                    [Upload(f.name, f.getvalue()) for f in files], root, name,
                    dense_model=dense_model if with_dense else None, skip_bad=skip_bad,
                    on_progress=lambda stage, f: bar.progress(min(1.0, f), text=f"{stage}…"),
                )
            except (CorpusError, ModelUnavailableError, FileExistsError) as exc:
                bar.empty()
                st.error("The files could not be indexed:", icon="⚠️")
                st.code(str(exc), language=None, wrap_lines=True)
            else:
                st.session_state["flash"] = (
                    f"Indexed {report.documents} documents ({report.passages} passages) into “{report.out.name}”"
                    + (f"; skipped {len(report.skipped)} bad records" if report.skipped else "")
                    + ("".join(f"\n\n{note}" for note in report.notes)))
                st.session_state["pending_index"] = report.out.name
                st.rerun()


def main() -> None:
    st.set_page_config(page_title="amharic-search", layout="wide")
    st.markdown(CSS, unsafe_allow_html=True)
    args = settings()
    root = Path(args.index_root)
    build_model = args.dense_model or DEFAULT_DENSE_MODEL

    notes: list[str] = []
    indexes: dict[str, Path] = {}
    if args.index:
        indexes[Path(args.index).name] = Path(args.index)
    else:
        notes += ensure_sample(root, build_model)
    for path in find_indexes(root):
        indexes.setdefault(path.name, path)

    st.sidebar.title("amharic-search")
    if not indexes:
        st.error("No index found. Build one with `amharic-search index build CORPUS --out indexes/NAME`.")
        return
    names = list(indexes)
    if st.session_state.get("pending_index") in names:  # a freshly built upload: switch to it
        st.session_state["index_choice"] = st.session_state.pop("pending_index")
    if st.session_state.get("index_choice") not in names:
        st.session_state["index_choice"] = names[0]
    choice = st.sidebar.selectbox("Index", names, key="index_choice")
    index_dir = indexes[choice]

    try:
        manifest = read_manifest(index_dir)
        with st.spinner("Loading the index and models…"):
            searcher = load_searcher(str(index_dir), manifest.get("created", ""), args.dense_model or "index", args.reranker)
    except (IndexFormatError, ModelUnavailableError, ValueError) as exc:
        st.error(f"This index cannot be opened: {exc}")
        return

    with st.sidebar.expander("Index information"):
        for key, value in describe_manifest(manifest):
            st.text(f"{key}: {value}")
        st.text(f"reranker in use: {searcher.reranker.name if searcher.reranker else 'none'}")

    st.sidebar.subheader("Search settings")
    top_k = st.sidebar.slider("Results", 1, 50, 10, key="top_k")
    modes = {k: v for k, v in MODES.items() if v == "lexical" or searcher.has_dense}
    mode = MODES[st.sidebar.radio("First stage", list(modes), key="mode")]
    rerank = st.sidebar.checkbox("Rerank with the cross-encoder", value=searcher.has_reranker,
                                 disabled=not searcher.has_reranker, key="rerank")
    methods = ["rrf", "weighted"]
    fusion = st.sidebar.radio("Fusion", methods, index=methods.index(searcher.fusion.method), horizontal=True,
                              key="fusion", disabled=not searcher.has_dense, help="Reciprocal rank fusion or a normalized weighted sum; the default "
                              "is the index's (set by `amharic-search tune`).")
    depth = st.sidebar.slider("Candidates per retriever", 10, 300, min(300, max(10, searcher.fusion.depth)), step=10,
                              key="depth")
    candidates = st.sidebar.slider("Rerank depth", 5, 200, 100, step=5, key="rerank_depth",
                                   help="How many fused candidates go to the cross-encoder.")
    max_length = st.sidebar.select_slider("Reranker max tokens", [128, 256, 384, 510], value=510, key="max_length")
    windows = {"the part matching the query": "best", "the beginning": "head"}
    window = windows[st.sidebar.radio("The reranker reads, of a long passage", list(windows), key="window",
                                      disabled=not searcher.has_reranker)]
    if searcher.has_reranker:
        st.sidebar.caption(f"Reranker backend: {escape(searcher.reranker.backend)}")
    translit = st.sidebar.checkbox("Convert Latin typing to Ethiopic (selam → ሰላም)", value=True, key="translit")
    sidebar_index_builder(root, build_model)

    st.title("amharic-search")
    if flash := st.session_state.pop("flash", None):
        st.success(escape(flash), icon="✅")
    for note in notes + searcher.warnings:
        st.warning(note, icon="⚠️")
    if not manifest.get("dense"):
        st.info("This index has no dense embeddings (built offline or with `--no-dense`), so search uses BM25 "
                "only. With the encoder available, rebuild it: `amharic-search index build CORPUS --out DIR`.")

    view = st.radio("View", ["Search", "Compare stages"], horizontal=True, key="view", label_visibility="collapsed")
    with st.form("search", clear_on_submit=False, border=False):
        cols = st.columns([6, 1])
        typed = cols[0].text_input("Query", key="query", placeholder="ለምሳሌ፦ የቡና ምርት", label_visibility="collapsed")
        submitted = cols[1].form_submit_button("Search", use_container_width=True)
    examples = manifest.get("examples") or []
    if examples:
        ex_cols = st.columns(min(4, len(examples)))
        for i, example in enumerate(examples[:8]):
            if ex_cols[i % len(ex_cols)].button(example, key=f"ex{i}", use_container_width=True):
                st.session_state["pending_query"] = example
                st.rerun()

    query = st.session_state.pop("pending_query", None)
    if query is not None:
        st.session_state["last_query"] = query
    elif submitted:
        st.session_state["last_query"] = typed
    query = st.session_state.get("last_query")
    query = None if query is None else clean_query(query)
    if query is None:
        st.info("Type a query in Amharic (or Latin transliteration) and press Search, or pick an example above.")
        return
    if not query.strip():
        st.info("The query is empty: type a word or a question, e.g. የወባ በሽታ.")
        return
    if translit and looks_transliterated(query):
        converted = to_ethiopic(query)
        if converted != query:
            st.markdown(f"Searching for **{escape(converted)}** (from “{escape(query)}”). "
                        "Switch off *Convert Latin typing* in the sidebar to search the Latin text.", unsafe_allow_html=True)
            query = converted

    if view == "Compare stages":
        render_compare(searcher, query, top_k=top_k, depth=depth, candidates=candidates, fusion=fusion,
                       max_length=max_length, window=window)
        return

    try:
        response, cands = searcher.first_stage(query, stages=mode, fusion=fusion, depth=depth, candidates=candidates)
    except QueryError as exc:
        st.info(str(exc))
        return
    for w in response.warnings:
        st.caption(escape(w), unsafe_allow_html=True)
    timing_box = st.empty()
    results_box = st.empty()
    response.results = searcher.documents(cands, top_k)
    will_rerank = rerank and searcher.has_reranker and cands
    render_timings(timing_box, response.timings_ms)
    render_results(results_box, searcher, response, show_docs=not will_rerank)
    if will_rerank:
        n = min(candidates, len(cands))
        with st.status(f"Reranking the top {n} candidates…", expanded=False) as status:
            searcher.rerank_candidates(response, cands, top_k=top_k, rerank_depth=candidates, max_length=max_length,
                                       window=window)
            status.update(label=f"Reranked {n} candidates in {response.timings_ms['rerank']:.0f} ms", state="complete")
        render_timings(timing_box, response.timings_ms)
        render_results(results_box, searcher, response)


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - last resort: a message, never a traceback in the page
        if type(exc).__module__.startswith("streamlit"):  # st.rerun/st.stop use exceptions
            raise
        import logging

        logging.getLogger("amharic-search").exception("unexpected error")
        st.error(f"Something went wrong ({type(exc).__name__}). The details are in the server log.")
