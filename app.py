"""amharic-search in the browser (Streamlit). Presentation only: retrieval goes through `search`.

    python -m streamlit run app.py                       # the sample index (built on first use)
    python -m streamlit run app.py -- --index DIR        # another index
    AMHARIC_SEARCH_INDEX=DIR python -m streamlit run app.py

The URL carries the search, the view and the language: ``?q=…&view=simple|expert&lang=am|en``.
Every label comes from the catalogue in `search.ui.strings` (Amharic and English).

Every piece of corpus text, title, id or file name shown here is untrusted: it is either shown
with st.text/st.code (plain text) or passed through `search.ui.display.escape` before it becomes HTML.
"""

from __future__ import annotations

import argparse
import math
from typing import Callable
import os
import shlex
import sys
from pathlib import Path

import streamlit as st

from amharic_search.index.manifest import IndexFormatError, corpus_source, find_indexes, read_manifest
from amharic_search.index.models import (
    DEFAULT_DENSE_MODEL, DEFAULT_RERANKER, ModelUnavailableError, cached_model, looks_like_path, skipped_note,
)
from amharic_search.index.readers import CorpusError
from amharic_search.index.update import UpdateError, generation
from amharic_search.search import QueryError, Searcher, SearchOptions
from amharic_search.search.compare import compare_stages
from amharic_search.search.loading import rebuild_command
from amharic_search.search.ui.catalog import (
    DEFAULT_INDEX_ROOT, MAX_UPLOAD_BYTES, Upload, add_from_uploads, build_from_uploads, ensure_sample_index, safe_name,
    sample_needs_build, table_columns,
)
from amharic_search.search.ui.display import (
    CHART_FONT, collection_facts, css_string, doc_colors, escape, first_sentence, highlight, match_label, metadata_line,
    rank_change, rank_flow, sig3, snippet,
)
from amharic_search.search.ui.paths import models_dir, read_only_env
from amharic_search.search.schema import NO_SEARCHABLE_WORDS, clean_query
from amharic_search.search.export import results_csv, results_json
from amharic_search.search.filters import FilterError
from amharic_search.search.ui.filters import (default_calendar, facet_counts, filter_fields, selection_filters,
                                              shown_date)
from amharic_search.search.ui.strings import LANG_NAMES, LANGS, STRINGS, t
from amharic_search.search.translit import latin_only, transliterate_query

STAGES = ("bm25", "dense", "fused", "rerank")
VIEWS = ("simple", "expert")
MODES = ("hybrid", "lexical", "dense")
SORTS = ("relevance", "date_desc", "date_asc")
CALENDARS = ("ethiopian", "gregorian")

CSS = """
<style>
@font-face {font-family: 'Noto Sans Ethiopic Variable'; font-style: normal; font-display: swap; font-weight: 100 900;
  src: url('app/static/fonts/NotoSansEthiopic-ethiopic.woff2') format('woff2-variations');
  unicode-range: U+030E, U+1200-1399, U+2D80-2DDE, U+AB01-AB2E;}
.stApp :is(p, li, span, label, input, textarea, button, h1, h2, h3, h4, div):not([data-testid="stIconMaterial"]) {
  font-family: 'Noto Sans Ethiopic Variable', 'Source Sans Pro', 'Source Sans 3', sans-serif;}
.stApp :is(code, code *, pre) {font-family: 'Noto Sans Ethiopic Variable', 'Source Code Pro', monospace !important;}
[data-testid="stMainBlockContainer"] {padding-top: 2.2rem;}
.as-filter-label {font-size: 14px; margin-bottom: -0.3rem;}
[role="listbox"], [role="listbox"] *, [role="option"], [role="option"] * {
  font-family: 'Noto Sans Ethiopic Variable', 'Source Sans Pro', 'Source Sans 3', sans-serif !important;}
.st-key-filters [data-testid="stSlider"] {padding-top: 1.1rem;}
.as-card {border: 1px solid rgba(128,128,128,.25); border-radius: 10px; padding: .7rem .9rem; margin-bottom: .3rem;
  overflow-wrap: anywhere;}
.as-head {display: flex; gap: .5rem; align-items: baseline; flex-wrap: wrap;}
.as-rank {font-weight: 700; font-size: 1.05rem; min-width: 1.2rem;}
.as-title {font-weight: 600; font-size: 1.08rem;}
.as-meta {font-size: .82rem; opacity: .7; margin-top: .1rem;}
.as-meta .as-id {font-family: monospace;}
.as-move {font-size: .85rem; font-weight: 600;}
.as-up {color: #1a7f37;} .as-down {color: #cf222e;} .as-same {opacity: .6;}
.as-text {margin: .35rem 0 .1rem 0; line-height: 1.7;}
.as-text mark {background: #ffe58f; padding: 0 .1rem; border-radius: 2px;}
.as-full {line-height: 1.7; margin-bottom: .6rem;}
.as-title mark {background: #ffe58f; padding: 0 .1rem; border-radius: 2px;}
.as-found {display: inline-block; font-size: .78rem; border-radius: 1rem; padding: 0 .5rem; margin-left: .3rem;
  cursor: help;}
.as-found-dense {background: rgba(31,119,180,.12); color: #1f5f99;}
.as-found-bm25, .as-found-both {background: rgba(44,160,44,.12); color: #1d6b1d;}
.as-scores {font-size: .8rem; opacity: .8; margin-top: .2rem;}
.as-summary {font-size: .95rem; opacity: .8; margin: .2rem 0 .5rem 0;}
.as-dot {display: inline-block; width: .7rem; height: .7rem; border-radius: 50%; flex: none;}
.as-elsewhere {font-size: .8rem; opacity: .8;}
/* the header's language and view switches stay on one line, also on a phone */
.st-key-switches {justify-content: flex-end;}
.st-key-switches [data-testid="stRadio"] {width: auto;}
/* Streamlit's own words, replaced by the page's (localized_css) */
[data-testid="stFileUploaderDropzone"] button [data-testid="stMarkdownContainer"] p {display: none;}
[data-testid="stFileUploaderDropzoneInstructions"] > div > span {display: none;}
[data-testid="stFileUploaderDropzoneInstructions"] > div::after {white-space: normal; font-size: .85rem;}
[data-testid="InputInstructions"] > span {display: none;}
</style>
"""


def localized_css() -> str:
    """The words Streamlit's own widgets show (the upload button and its limits, the Enter hint under
    a text box), in the page's language: CSS replaces them, since Streamlit has no setting for them."""
    mb = MAX_UPLOAD_BYTES // (1024 * 1024)
    rules = {
        '[data-testid="stFileUploaderDropzone"] button [data-testid="stMarkdownContainer"]::after': tr("upload_choose"),
        '[data-testid="stFileUploaderDropzoneInstructions"] > div::after': tr("upload_limit", mb=mb),
        '.st-key-query [data-testid="InputInstructions"]::after': tr("enter_to_search"),
        '.st-key-upload_name [data-testid="InputInstructions"]::after': tr("enter_to_apply"),
    }
    return "<style>" + "".join(f"{selector} {{content: {css_string(text)};}}" for selector, text in rules.items()) + "</style>"


def settings() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="app.py")
    parser.add_argument("--index", default=os.environ.get("AMHARIC_SEARCH_INDEX"))
    parser.add_argument("--index-root", default=os.environ.get("AMHARIC_SEARCH_INDEX_ROOT", str(DEFAULT_INDEX_ROOT)))
    parser.add_argument("--reranker", default=os.environ.get("AMHARIC_SEARCH_RERANKER", DEFAULT_RERANKER))
    parser.add_argument("--dense-model", default=os.environ.get("AMHARIC_SEARCH_DENSE_MODEL"))
    parser.add_argument("--api", default=os.environ.get("AMHARIC_SEARCH_API"),
                        help="Search through a running `amharic-search serve` at this URL instead of in this process.")
    parser.add_argument("--read-only", action="store_true", default=read_only_env(),
                        help="Offer no writes to visitors: no uploads, no adapting, no rebuilding a collection.")
    args, _ = parser.parse_known_args(sys.argv[1:])
    return args


def tr(key: str, **values) -> str:
    """A catalogue string in the page's language."""
    return t(key, st.session_state.get("lang", "am"), **values)


@st.cache_resource(show_spinner=False, max_entries=4)
def load_searcher(index_dir: str, built: str, dense_model: str, reranker: str) -> Searcher:
    """One Searcher per (index, build, models), shared by all sessions (it is thread-safe)."""
    return Searcher.load(index_dir, dense_model=dense_model, reranker=reranker or None)


@st.cache_resource(show_spinner=False, max_entries=8)
def load_client(url: str, index: str | None):
    """A client of the search service (the page's searcher when it runs with --api)."""
    from amharic_search.search.service.client import ServiceClient

    return ServiceClient(url, index=index)


def query_encoder(manifest: dict, dense_model: str | None) -> str:
    """The encoder to query a collection with: its own ("index") when it is on this machine (a model
    adapted to it included), else the page's --dense-model (the same model from a bundle folder, say;
    the searcher checks that it is the same)."""
    built = (manifest.get("dense") or {}).get("model")
    if not dense_model or (built and cached_model(built)):
        return "index"
    return dense_model


# -- state and the URL ------------------------------------------------------------------------------


def init_state() -> None:
    """On a session's first run, take the language, view, collection and search from the URL."""
    if st.session_state.get("_from_url"):
        return
    params = st.query_params
    st.session_state["_from_url"] = True
    st.session_state["lang"] = params.get("lang") if params.get("lang") in LANGS else "am"
    st.session_state["view"] = params.get("view") if params.get("view") in VIEWS else "simple"
    if params.get("q"):
        st.session_state["pending_query"] = params["q"]
        st.session_state["query"] = params["q"]
    if params.get("index"):
        st.session_state["pending_index"] = params["index"]  # the collection, when it is one of the page's


def sync_url() -> None:
    """The URL says what the page shows, so a result page can be shared and reopened as it is."""
    wanted = {"lang": st.session_state.get("lang", "am"), "view": st.session_state.get("view", "simple")}
    if st.session_state.get("index_choice"):
        wanted["index"] = st.session_state["index_choice"]
    if st.session_state.get("last_query"):
        wanted["q"] = st.session_state["last_query"]
    if dict(st.query_params) != wanted:
        st.query_params.from_dict(wanted)


# -- collections ------------------------------------------------------------------------------------


def ensure_sample(root: Path, dense_model: str) -> list[str]:
    sample = root / "sample"
    if not sample_needs_build(sample, dense_model):
        return []
    bar = st.progress(0.0, text=tr("building_sample"))
    notes = ensure_sample_index(sample, dense_model=dense_model, on_progress=lambda stage, f: bar.progress(
        min(1.0, f), text=tr("building_sample")))
    bar.empty()
    return notes


def sidebar_collections(indexes: dict) -> str:
    names = list(indexes)
    if st.session_state.get("pending_index") in names:  # a freshly built upload: switch to it
        st.session_state["index_choice"] = st.session_state.pop("pending_index")
    if st.session_state.get("index_choice") not in names:
        st.session_state["index_choice"] = names[0]
    shown = {name: collection_name(name) for name in names}  # fixed when it is drawn, as labels()
    return st.sidebar.selectbox(tr("collection_label"), names, key="index_choice", format_func=shown.get)


def collection_name(name: str) -> str:
    """A collection as the page names it: the sample collection in the page's language, others as named."""
    return tr("sample_name") if name == "sample" else name


def sidebar_about(manifest: dict, searcher, *, expert: bool) -> None:
    with st.sidebar.expander(tr("about_collection")):
        reranker = searcher.reranker.name if searcher.reranker else None
        for label, value in collection_facts(manifest, reranker, tr, expert=expert):
            st.caption(escape(f"{label}{tr('label_sep')}{value}"))  # escaped: names are the collection's own


def sidebar_upload(root: Path, dense_model: str, encoder_here: bool) -> None:
    with st.sidebar.expander(tr("upload_title")):
        files = st.file_uploader(tr("upload_files"), type=["jsonl", "ndjson", "csv", "tsv", "txt", "md"],
                                 accept_multiple_files=True, key="uploads", max_upload_size=MAX_UPLOAD_BYTES // (1024 * 1024))
        uploads = [Upload(f.name, f.getvalue()) for f in files or []]
        text_field, title_field = "text", "title"
        columns = table_columns(uploads[0]) if len(uploads) == 1 else None
        if columns and "text" not in columns:
            text_field = st.selectbox(tr("upload_text_column"), columns, key="upload_text_field")
            none = tr("upload_no_column")
            options = [none] + [c for c in columns if c != text_field]
            chosen = st.selectbox(tr("upload_title_column"), options,
                                  index=options.index("title") if "title" in options else 0, key="upload_title_field")
            title_field = "" if chosen == none else chosen
        name = st.text_input(tr("upload_name"), value=tr("upload_default_name"), key="upload_name")
        skip_bad = st.checkbox(tr("upload_skip_bad"), value=False, key="upload_skip_bad")
        if encoder_here:
            with_dense = st.checkbox(tr("upload_dense"), value=True, key="upload_dense", help=tr("upload_dense_help"))
        else:
            with_dense = False
            st.caption(tr("upload_dense_off"))
        exists = (root / safe_name(name, fallback="uploaded")).exists()
        add = exists and st.checkbox(tr("upload_add"), value=False, key="upload_add", help=tr("upload_add_help"))
        replace = (not add and st.checkbox(tr("upload_replace"), value=False, key="upload_replace")) if exists else True
        if add and st.button(tr("upload_build"), key="add_btn", disabled=not uploads):
            try:
                added = add_from_uploads(uploads, root / safe_name(name, fallback="uploaded"), skip_bad=skip_bad,
                                         text_field=text_field, title_field=title_field or "title")
            except (CorpusError, ModelUnavailableError, IndexFormatError, UpdateError) as exc:
                st.error(tr("upload_failed"), icon="⚠️")
                st.code(str(exc), language=None, wrap_lines=True)
            else:
                st.session_state["flash"] = tr("upload_added", docs=added.added + added.replaced, replaced=added.replaced,
                                               total=added.documents, name=safe_name(name, fallback="uploaded"))
                st.session_state["pending_index"] = safe_name(name, fallback="uploaded")
                st.rerun()
        elif st.button(tr("upload_build"), key="build_btn", disabled=not uploads or not replace):
            bar = st.progress(0.0, text=tr("progress_reading"))

            def progress(stage: str, fraction: float) -> None:
                key = f"progress_{stage}"
                bar.progress(min(1.0, fraction), text=tr(key if key in STRINGS else "progress_finishing"))

            try:
                report = build_from_uploads(uploads, root, name, dense_model=dense_model if with_dense else None,
                                            skip_bad=skip_bad, text_field=text_field, title_field=title_field or "title",
                                            on_progress=progress)
            except (CorpusError, ModelUnavailableError, FileExistsError) as exc:
                bar.empty()
                st.error(tr("upload_failed"), icon="⚠️")
                st.code(str(exc), language=None, wrap_lines=True)
                if "line" in str(exc) and not skip_bad:
                    st.caption(tr("upload_skip_hint"))
            else:
                flash = [tr("upload_done", docs=report.documents, passages=report.passages, name=report.out.name)]
                if report.skipped:
                    flash.append(tr("upload_skipped", n=len(report.skipped)))
                if not report.manifest.get("dense") and (report.notes or not encoder_here):
                    flash.append(tr("upload_lexical"))  # not when the user chose keyword search
                st.session_state["flash"] = " ".join(flash)
                st.session_state["pending_index"] = report.out.name
                st.rerun()


# -- adapting the encoder to a collection (expert view) --------------------------------------------


@st.cache_data(show_spinner=False, max_entries=16)
def title_count(index_dir: str, built: str) -> tuple[int, int]:
    """(usable titles, documents) of a collection, read once per build of it."""
    from amharic_search.search.train.adapt import count_titles

    report = count_titles(index_dir)
    return report.pairs, report.documents


@st.cache_data(show_spinner=False, max_entries=16)
def adapt_estimate(index_dir: str, built: str, base: str | None, rates: float):
    """How long adapting the collection takes here (None until this computer's pace is measured);
    read again when the collection is built again or a new pace is recorded (``rates``)."""
    from amharic_search.search.train.adapt import estimate

    return estimate(index_dir, base=base)


def duration(seconds: float) -> str:
    if seconds < 90:
        return tr("seconds", value=f"{max(1, round(seconds))}")
    return tr("minutes", value=f"{round(seconds / 60)}")


def sidebar_adapt(index_dir: Path | None, manifest: dict, encoder: str) -> None:
    """Fine-tune the collection's encoder on its documents' titles, then rebuild its embeddings with
    the adapted model, both in the background (`search.train.adapt`); one sentence says why when it cannot.
    ``encoder``: the one the page queries the collection with (see query_encoder)."""
    from amharic_search.search.train import adapt

    job = adapt.current(index_dir) if index_dir is not None else None
    with st.sidebar.expander(tr("adapt_title"), expanded=job is not None):
        if index_dir is None:  # the service's collections are not this page's to rebuild
            st.caption(tr("adapt_off_api"))
            return
        base = None if encoder == "index" else encoder
        reason = adapt.model_unavailable(manifest, base)  # before reading the documents
        titles, documents = title_count(str(index_dir), manifest.get("created", "")) if reason is None else (0, 0)
        reason = reason or adapt.too_few_titles(titles)
        polling = job is not None and job.running
        # the panel alone is redrawn every second while a job runs; the page stays usable
        st.fragment(adapt_panel, run_every=1.0 if polling else None)(str(index_dir), manifest, base, reason, titles,
                                                                    documents, polling)


def adapt_panel(index_dir: str, manifest: dict, base: str | None, reason: str | None, titles: int, documents: int,
                polling: bool) -> None:
    from amharic_search.search.train import adapt

    job = adapt.current(index_dir)
    if polling and (job is None or not job.running):
        st.rerun()  # the job ended: the whole page again (a rebuilt collection is loaded, the polling stops)
    if job is not None and job.running:
        adapt_progress(job)
        return
    said = job.error if job is not None and job.state == "failed" else None
    if job is not None and job.state == "failed":
        if job.error == "model":
            st.error(tr("adapt_error_model"), icon="⚠️")
        elif job.error == "failed":
            st.error(tr("adapt_error_rebuild", error=job.error_type) if job.kind == "rebuild"
                     else tr("adapt_error_failed", error=job.error_type), icon="⚠️")
        else:  # a reason found when the job started
            st.error(tr(f"adapt_off_{job.error}", n=job.pairs, docs=job.documents, min=adapt.MIN_PAIRS), icon="⚠️")
    elif job is not None and job.state == "stopped":
        st.info(tr("adapt_stopped", done=job.done, total=job.total), icon="⏸️")
    elif job is not None and job.kind == "rebuild" and job.state == "done":
        st.success(escape(tr("adapt_rebuilt", model=job.model.name)), icon="✅")

    model = adapt.latest_model(index_dir)
    pending = model is not None and not adapt.in_use(manifest, model)
    if pending:  # trained, not yet searched with
        info = adapt.training_info(model)
        counts = info.get("counts") or {}
        st.success(tr("adapt_done", pairs=counts.get("train", 0), steps=info.get("steps", 0)), icon="✅")
        adapt_figures(info.get("before"), info.get("after"), counts.get("heldout", 0))
        st.caption(tr("adapt_where"))
        st.code(str(model), language=None, wrap_lines=True)
        st.caption(tr("adapt_rebuild_intro"))
        if st.button(tr("adapt_rebuild_button"), key="adapt_rebuild", type="primary"):
            adapt.forget(index_dir)
            adapt.start_rebuild(index_dir, model)
            st.rerun()
    if reason is not None:
        if reason != said:
            st.caption(tr(f"adapt_off_{reason}", n=titles, docs=documents, min=adapt.MIN_PAIRS))
        return
    if not pending:
        st.caption(tr("adapt_intro", n=titles))
    budget, fits = None, True
    if adapt.unfinished_run(index_dir):
        st.caption(tr("adapt_resumes"))
    else:
        est = adapt_estimate(index_dir, manifest.get("created", ""), base, adapt.rates_stamp())
        if est is None:
            st.caption(tr("adapt_estimate_unknown"))
            if st.button(tr("adapt_measure_button"), key="adapt_measure"):
                adapt.forget(index_dir)
                adapt.start_measure(index_dir, base=base)
                st.rerun()
            return
        source = tr(f"adapt_source_{est.rates.source}", when=est.rates.measured)
        st.caption(tr("adapt_estimate", time=duration(est.seconds), steps=est.steps, batch=est.batch_size, source=source))
        whole = max(1, math.ceil(est.seconds / 60))
        minutes = st.number_input(tr("adapt_budget"), min_value=1, max_value=whole, value=whole, step=1,
                                  help=tr("adapt_budget_help"), key="adapt_budget")
        budget, steps = minutes * 60, est.steps_for(minutes * 60)
        fits = steps >= 1
        if not fits:
            st.caption(tr("adapt_off_budget"))
        elif steps < est.steps:
            st.caption(tr("adapt_budget_partial", steps=steps, total=est.steps, time=duration(budget),
                          pct=round(100 * steps / est.steps)))
    if st.button(tr("adapt_again") if pending else tr("adapt_button"), key="adapt_start", disabled=not fits):
        adapt.forget(index_dir)
        adapt.start_adapt(index_dir, base=base, budget_s=budget)
        st.rerun()


def adapt_progress(job) -> None:
    """A running job: its phase, steps done of all, the time left (or taken so far), a Stop button."""
    timed = False
    if job.kind == "measure" or job.phase == "measuring":
        text, value = tr("adapt_measuring"), 0.0
    elif job.kind == "adapt":
        if job.phase == "training" and job.total:
            text, value, timed = tr("adapt_training", done=job.done, total=job.total), job.done / job.total, True
        elif job.phase == "evaluating":
            text, value = tr("adapt_evaluating"), 1.0
        else:
            text, value = tr("adapt_preparing"), 0.0
    else:
        key = f"progress_{job.phase}"
        text, value, timed = tr(key if key in STRINGS else "progress_finishing"), job.fraction, job.phase == "embedding"
    if timed and job.eta_s is not None:
        text += " " + tr("adapt_eta", time=duration(job.eta_s))
    else:
        text += " " + tr("adapt_elapsed", time=duration(job.elapsed_s))
    st.progress(min(1.0, max(0.0, value)), text=text)
    if job.kind == "rebuild":
        st.caption(tr("adapt_rebuild_running"))
    elif job.stopping:
        st.caption(tr("adapt_stopping"))
    elif st.button(tr("adapt_stop"), key="adapt_stop"):
        job.stop()
        st.caption(tr("adapt_stopping"))
    else:
        st.caption(tr("adapt_running"))


def adapt_figures(before: dict | None, after: dict | None, heldout: int) -> None:
    """The held-out figures of the base model and the adapted one (how often a title finds its document)."""
    if not before or not after:
        return
    import pandas as pd

    st.caption(tr("adapt_figures", n=heldout))
    st.table(pd.DataFrame({tr("adapt_before"): [f"{before[k]:.3f}" for k in before],
                           tr("adapt_after"): [f"{after.get(k, float('nan')):.3f}" for k in before]},
                          index=list(before)))  # a row per figure: narrow enough for the sidebar


# -- notices ----------------------------------------------------------------------------------------


def missing_models_notice(searcher, manifest: dict, encoder_here: bool, *, args, encoder: str,
                          index_dir: Path | None) -> None:
    """One short notice for what is off; "How to turn it on" under it: a sentence for the reader, then
    the administrator's part, marked as such, with its command lines (paths as they are on this server).
    ``encoder``: the one the page queries the collection with (see query_encoder)."""
    lexical = not manifest.get("dense")
    # a collection without embeddings because the encoder is not here counts as "meaning-based search is off"
    # (through the service the page cannot tell; the collection is then said to be a keyword collection)
    dense_missing = (not args.api and not encoder_here) if lexical else bool(skipped_note(searcher.warnings, "dense"))
    rerank_missing = bool(skipped_note(searcher.warnings, "rerank"))
    if dense_missing and rerank_missing:
        line = tr("off_both")
    elif dense_missing:
        line = tr("off_dense")
    elif rerank_missing:
        line = tr("off_rerank")
    elif lexical:
        line = tr("off_lexical_index")
    else:
        return
    st.info(line, icon="ℹ️")
    with st.expander(tr("how_to_turn_on")):
        st.caption(tr("how_reader"))
        with st.container(border=True, key="admin"):
            st.markdown(f":material/build: **{escape(tr('how_admin'))}**")
            admin_steps(manifest, args=args, index_dir=index_dir, encoder=encoder, dense_missing=dense_missing,
                        rerank_missing=rerank_missing)


BUNDLE = "amharic-models"  # the folder `amharic-search models download --to` writes, in the administrator's steps


def admin_steps(manifest: dict, *, args, index_dir: Path | None, encoder: str, dense_missing: bool,
                rerank_missing: bool) -> None:
    """What the administrator does to turn the missing stages on: get the models here, start the page
    (or the service) with them, prepare a lexical-only collection again. Command lines stay Latin; every
    path is absolute, as it is on the machine the page runs on."""

    def say(key: str, **values) -> None:
        st.caption(escape(tr(key, **values)))  # escaped: plain text (no Markdown lists from "1.")

    def command(text: str) -> None:
        st.code(text, language="bash", wrap_lines=True)

    built = (manifest.get("dense") or {}).get("model")
    dense_model = (built if encoder == "index" else encoder) or args.dense_model or DEFAULT_DENSE_MODEL
    download = f"amharic-search models download --to {BUNDLE}"
    for option, name, default in (("--dense-model", dense_model, DEFAULT_DENSE_MODEL),
                                  ("--reranker", args.reranker, DEFAULT_RERANKER)):
        if name and name != default and not looks_like_path(name):  # another hub model than the defaults
            download += f" {option} {shlex.quote(name)}"
    folder = models_dir(args.index_root)

    def bundled(name: str, root: str) -> str:
        return f"{root}/{name.rstrip('/').split('/')[-1]}"

    if args.api:  # the service has the models, on its own machine
        say("how_missing_service", url=args.api)
        say("how_step_download")
        command(download)
        say("how_step_serve", bundle=BUNDLE)
        command(f"amharic-search serve INDEX --dense-model {bundled(dense_model, 'MODELS')} "
                f"--reranker {bundled(args.reranker or DEFAULT_RERANKER, 'MODELS')}")
        return
    if dense_missing:
        say("how_missing_dense", model=dense_model)
    if rerank_missing:
        say("how_missing_rerank", model=args.reranker)
    dense_path = bundled(dense_model, str(folder)) if dense_missing else dense_model
    if dense_missing or rerank_missing:
        say("how_step_download")
        command(download)
        say("how_step_copy", bundle=BUNDLE)
        command(str(folder))
        say("how_step_restart")
        start = "amharic-search app" + (f" --index {shlex.quote(str(Path(args.index).resolve()))}" if args.index else "")
        if dense_missing:
            start += f" --dense-model {shlex.quote(dense_path)}"
        if rerank_missing:
            start += f" --reranker {shlex.quote(bundled(args.reranker, str(folder)))}"
        command(start)
    if not manifest.get("dense") and index_dir is not None:
        if (not args.index and manifest.get("name") == "sample"
                and Path(index_dir).resolve().parent == Path(args.index_root).resolve()):
            say("how_sample_auto")  # the page adds the sample's embeddings itself (ensure_sample)
        elif corpus_source(manifest) is None:
            say("how_rebuild_gone")
        else:
            say("how_step_rebuild")
            command(rebuild_command(manifest, Path(index_dir), dense_path))


# -- results ----------------------------------------------------------------------------------------


def stages_shown(response) -> list[str]:
    """The stages whose ranks mean something for this response (fused only when two lists were fused)."""
    shown = [s for s in ("bm25", "dense") if s in response.stages]
    if response.fusion:
        shown.append("fused")
    if "rerank" in response.stages:
        shown.append("rerank")
    return shown


def card_title(result) -> str:
    return result.title.strip() or first_sentence(result.text)


def move_badge(result) -> str:
    change = rank_change(result.ranks.fused, result.ranks.rerank, new=tr("rank_new"))
    if not change:
        return ""
    cls = "as-up" if change.startswith("↑") else "as-down" if change.startswith("↓") else "as-same"
    return f'<span class="as-move {cls}" title="{escape(tr("moved_by_rerank"))}">{escape(change)}</span>'


def score_line(result, stages: list[str]) -> str:
    parts = []
    for stage in stages:
        score, rank = getattr(result.scores, stage), getattr(result.ranks, stage)
        label = tr(f"stage_{stage}")
        parts.append(f"{label} {sig3(score)} (#{rank})" if score is not None else f"{label} {tr('not_found_by')}")
    return " · ".join(parts)


def title_and_text(searcher, response, result, *, budget: int | None = None) -> tuple[str, str]:
    """A card's title and snippet as safe HTML, the words of the search highlighted in both, and after
    the snippet the label that says how the result was found when no highlighted word says it."""
    html_snippet, matched = snippet(searcher.analyzer, result.text, response.query_terms,
                                    **({"budget": budget} if budget else {}))
    title = highlight(searcher.analyzer, card_title(result), response.query_terms)
    found = match_label(result, matched or "<mark>" in title)
    if found:
        html_snippet += (f'<span class="as-found as-found-{found}" title="{escape(tr(f"found_{found}_why"))}">'
                         f'{escape(tr(f"found_{found}"))}</span>')
    return title, html_snippet


def render_card(searcher, response, result, color: str, *, expert: bool, details: bool) -> None:
    title, html_snippet = title_and_text(searcher, response, result)
    doc = searcher.document(result.doc_id)
    metadata = dict((doc or {}).get("metadata") or {})
    date_fields, calendar = st.session_state.get("dates") or ({}, None)
    for name, stored in date_fields.items():  # dates in the reader's calendar, under the word "date"
        value = metadata.pop(name, None)
        if result.fields.get(name):
            label = tr("date_label") if len(date_fields) == 1 else name
            metadata = {label: shown_date(result.fields[name], stored, calendar, st.session_state.get("lang", "am")),
                        **metadata}
        elif value:
            metadata[name] = value
    meta = metadata_line(result.doc_id, metadata)
    meta_html = " · ".join(
        f'<span class="as-id" title="{escape(tr("doc_id"))}">{escape(v)}</span>' if k == "id"
        else f"{escape(k)}{escape(tr('label_sep'))}{escape(v)}" for k, v in meta)
    scores = f'<div class="as-scores">{escape(score_line(result, stages_shown(response)))}</div>' if expert else ""
    st.markdown(
        f'<div class="as-card"><div class="as-head"><span class="as-dot" style="background:{color}"></span>'
        f'<span class="as-rank">{result.rank}</span><span class="as-title">{title}</span>'
        f'{move_badge(result)}</div><div class="as-meta">{meta_html}</div>'
        f'<div class="as-text">{html_snippet}</div>{scores}</div>',
        unsafe_allow_html=True,
    )
    if details:
        with st.expander(tr("more")):
            st.caption(tr("passage_heading"))
            st.markdown(f'<div class="as-full">{escape(result.text)}</div>', unsafe_allow_html=True)  # escaped: safe
            full = (doc or {}).get("text", "")
            if full and len(" ".join(full.split())) > len(" ".join(result.text.split())) + 1:
                st.caption(tr("full_document"))
                st.markdown(f'<div class="as-full">{escape(full)}</div>', unsafe_allow_html=True)


def ms_text(ms: float) -> str:
    return tr("ms", value=f"{ms:.1f}" if ms < 10 else f"{ms:.0f}")


def time_text(ms: float) -> str:
    """A duration for readers: milliseconds under a second, else seconds."""
    return ms_text(ms) if ms < 1000 else tr("seconds", value=f"{ms / 1000:.1f}")


def summary_line(response, *, reranking: int = 0) -> str:
    n = len(response.results)
    parts = [tr("results_one") if n == 1 else tr("results_count", n=n)]
    first = sum(v or 0 for k, v in response.timings_ms.items() if k in ("bm25", "dense", "fusion"))
    parts.append(time_text(first))
    progress = response.rerank_progress
    if progress and progress[0] < progress[1]:
        parts.append(tr("reranked_so_far", done=progress[0], of=progress[1]))
    elif response.timings_ms.get("rerank") is not None:
        parts.append(tr("reranked_in", time=time_text(response.timings_ms["rerank"])))
    elif reranking:
        parts.append(tr("reranking_now", n=reranking))
    return " · ".join(parts)


def render_results(searcher, response, colors: dict[str, str], *, expert: bool, reranking: int = 0) -> None:
    st.markdown(f'<div class="as-summary">{escape(summary_line(response, reranking=reranking))}</div>',
                unsafe_allow_html=True)
    if not response.results:
        st.info(tr("no_results"))
        return
    if response.lexical_hits == 0 and "dense" in response.stages:
        st.caption(tr("no_word_found"))
    for r in response.results:
        render_card(searcher, response, r, colors.get(r.doc_id, "#999"), expert=expert, details=not reranking)


def result_tools(response, options: dict) -> None:
    """Under the results: the year facet, the download buttons (CSV, JSON), "more results"."""
    for name in (options.get("date_fields") or {}):
        counts = response.facets.get(name) or []
        if counts:
            st.caption(escape(tr("years_facet") + tr("label_sep") + " · ".join(f"{y} ({n})" for y, n in counts)))
    with st.container(horizontal=True, gap="small"):
        st.download_button(tr("download_csv"), results_csv(response), file_name="results.csv", mime="text/csv",
                           key="download_csv")
        st.download_button(tr("download_json"), results_json(response), file_name="results.json",
                           mime="application/json", key="download_json")
        if len(response.results) >= options["top_k"] + st.session_state.get("more", 0) \
                and len(response.results) < options["candidates"]:
            if st.button(tr("more_results"), key="more_results"):
                st.session_state["more"] = st.session_state.get("more", 0) + 10
                st.rerun()


def flow_chart(response, colors: dict[str, str]):
    """The rank-flow (bump) chart: stages across, rank down, one line per result, its card's colour."""
    import altair as alt
    import pandas as pd

    stages = stages_shown(response)
    rows = rank_flow(response.results, stages)
    if len(stages) < 2 or not rows:
        return None
    titles = {r.doc_id: card_title(r) for r in response.results}
    labels = [tr(f"stage_{s}") for s in stages]
    frame = pd.DataFrame(rows)
    frame["stage_label"] = [tr(f"stage_{s}") for s in frame["stage"]]
    frame["title"] = [titles[d] for d in frame["doc_id"]]
    frame["label"] = [f"{titles[d][:28]}…" if len(titles[d]) > 28 else titles[d] for d in frame["doc_id"]]
    ids = [r.doc_id for r in response.results]
    hover = alt.selection_point(fields=["doc_id"], on="pointerover", clear="pointerout")
    rank_scale = alt.Scale(type="log", reverse=True, domain=[1, max(10, int(frame["rank"].max()))], nice=False)
    base = alt.Chart(frame).encode(
        x=alt.X("stage_label:N", sort=labels, title=tr("axis_stage"), axis=alt.Axis(labelAngle=0, labelLimit=120)),
        y=alt.Y("rank:Q", scale=rank_scale, title=tr("axis_rank"), axis=alt.Axis(values=[1, 2, 3, 5, 10, 20, 50, 100, 300])),
        color=alt.Color("doc_id:N", scale=alt.Scale(domain=ids, range=[colors[i] for i in ids]), legend=None),
        detail="doc_id:N",
        opacity=alt.condition(hover, alt.value(1.0), alt.value(0.55)),
        tooltip=[alt.Tooltip("title:N", title=tr("axis_document")), alt.Tooltip("stage_label:N", title=tr("axis_stage")),
                 alt.Tooltip("rank:Q", title=tr("axis_rank"))],
    )
    lines = base.mark_line(point=alt.OverlayMarkDef(size=60), strokeWidth=2.5).add_params(hover)
    last = frame[frame["stage"] == stages[-1]]
    names = alt.Chart(last).mark_text(align="left", dx=8, fontSize=12).encode(
        x=alt.X("stage_label:N", sort=labels), y=alt.Y("rank:Q", scale=rank_scale), text="label:N",
        color=alt.Color("doc_id:N", scale=alt.Scale(domain=ids, range=[colors[i] for i in ids]), legend=None),
        tooltip=[alt.Tooltip("title:N", title=tr("axis_document"))],
    )
    return styled((lines + names).properties(height=360, padding={"right": 190}))


def styled(chart):
    """Every chart of the page: the served Ethiopic font (labels, titles, tooltips) drawn as SVG, so
    Ethiopic text renders on a machine without an Ethiopic font of its own."""
    return (chart.properties(usermeta={"embedOptions": {"renderer": "svg"}})
            .configure(font=CHART_FONT)
            .configure_axis(labelFont=CHART_FONT, titleFont=CHART_FONT)
            .configure_legend(labelFont=CHART_FONT, titleFont=CHART_FONT)
            .configure_title(font=CHART_FONT).configure_text(font=CHART_FONT))


def render_flow(response, colors: dict[str, str]) -> None:
    chart = flow_chart(response, colors)
    if chart is None:
        shown = stages_shown(response)
        st.caption(tr("flow_single", stage=tr(f"stage_{shown[0]}") if shown else ""))
        return
    st.caption(tr("flow_caption"))
    st.altair_chart(chart, width="stretch")


def timed_stages(response) -> list[str]:
    """The stages whose time the chart shows: those that ran (combining only when two lists were fused)."""
    ran = {"bm25": "bm25" in response.stages, "dense": "dense" in response.stages, "fusion": bool(response.fusion),
           "rerank": "rerank" in response.stages}
    return [k for k, v in response.timings_ms.items() if ran.get(k) and v is not None]


def timing_chart(response):
    """Time per stage: one bar per stage that ran, in milliseconds."""
    import altair as alt
    import pandas as pd

    stages = timed_stages(response)
    if not stages:
        return None
    frame = pd.DataFrame({"stage": [tr(f"timing_{k}") for k in stages],
                          "ms": [round(response.timings_ms[k], 1) for k in stages]})
    frame["label"] = [ms_text(v) for v in frame["ms"]]
    base = alt.Chart(frame).encode(
        x=alt.X("ms:Q", title=tr("timing_ms"), axis=alt.Axis(tickCount=5)),
        y=alt.Y("stage:N", sort=list(frame["stage"]), title=None, axis=alt.Axis(labelLimit=160)),
        tooltip=[alt.Tooltip("stage:N", title=tr("axis_stage")), alt.Tooltip("label:N", title=tr("timing_ms"))],
    )
    bars = base.mark_bar(color="#1f77b4") + base.mark_text(align="left", dx=4, fontSize=12).encode(text="label:N")
    return styled(bars.properties(height={"step": 30}, padding={"right": 90}))


def render_timings(response) -> None:
    chart = timing_chart(response)
    if chart is None:
        return
    st.caption(tr("timings_title"))
    st.altair_chart(chart, width="stretch")


def render_compare(searcher, query: str, options: dict) -> None:
    """The same query through each stage combination this collection can run, side by side."""
    compared = compare_stages(searcher, query, search_options(options))
    if len(compared) == 1:
        st.info(tr("cmp_single"))
    responses = {}
    for name, answer in compared.items():
        if isinstance(answer, QueryError):
            st.warning(f"{tr(f'cmp_{name}')}: {answer}")
        else:
            responses["cmp_" + name] = answer
    if not responses:
        return
    positions = {key: {r.doc_id: r.rank for r in resp.results} for key, resp in responses.items()}
    by_rank = sorted((r.rank, r.doc_id) for resp in responses.values() for r in resp.results)
    colors = doc_colors(doc_id for _, doc_id in by_rank)
    if len(responses) > 1:
        st.caption(tr("cmp_caption"))
    for col, (key, resp) in zip(st.columns(len(responses)), responses.items()):
        with col:
            st.markdown(f"**{escape(tr(key))}** · {escape(ms_text(resp.timings_ms['total']))}")
            for r in resp.results:
                title, html_snippet = title_and_text(searcher, resp, r, budget=140)
                elsewhere = " · ".join(f"{tr(other)} #{positions[other][r.doc_id]}" for other in responses
                                       if other != key and r.doc_id in positions[other])
                st.markdown(
                    f'<div class="as-card"><div class="as-head"><span class="as-dot" style="background:{colors[r.doc_id]}"></span>'
                    f'<span class="as-rank">{r.rank}</span><span class="as-title">{title}</span></div>'
                    f'<div class="as-text">{html_snippet}</div>'
                    + (f'<div class="as-elsewhere">{escape(tr("cmp_elsewhere"))}: {escape(elsewhere)}</div>' if elsewhere else "")
                    + "</div>",
                    unsafe_allow_html=True,
                )


# -- controls ---------------------------------------------------------------------------------------


def labels(prefix: str):
    """A widget's option labels, fixed when it is drawn (options stay the same across languages)."""
    return {k[len(prefix):]: tr(k) for k in STRINGS if k.startswith(prefix)}.get


def header() -> None:
    top = st.columns([4, 4], vertical_alignment="center")
    top[0].title(tr("page_title"))
    # the two switches side by side in one row, which stays one row on a phone (columns would stack)
    with top[1].container(horizontal=True, key="switches", gap="medium"):
        st.radio(tr("lang_label"), LANGS, format_func=LANG_NAMES.get, key="lang", horizontal=True,
                 label_visibility="collapsed")
        st.radio(tr("view_label"), VIEWS, format_func=labels("view_"), key="view", horizontal=True,
                 label_visibility="collapsed")
    st.caption(tr("tagline"))


def expert_controls(searcher) -> dict:
    """Every control, in the sidebar; a control for a stage that is not available is replaced by why."""
    sb = st.sidebar
    sb.subheader(tr("settings"))
    options = {"top_k": sb.slider(tr("top_k"), 1, 50, 10, key="top_k"), "rerank": False, "mode": "lexical",
               "fusion": None, "depth": None, "candidates": 100, "max_length": None, "window": "best"}
    if searcher.has_dense:
        options["mode"] = sb.radio(tr("first_stage"), MODES, format_func=labels("mode_"), key="mode")
        methods = ["rrf", "weighted"]
        options["fusion"] = sb.radio(tr("fusion"), methods, index=methods.index(searcher.fusion.method), key="fusion",
                                     format_func=labels("fusion_"), help=tr("fusion_help"),
                                     disabled=options["mode"] != "hybrid")
        options["depth"] = sb.select_slider(tr("depth"), [50, 100, 200, 300, 500], value=searcher.fusion.depth
                                            if searcher.fusion.depth in (50, 100, 200, 300, 500) else 300, key="depth")
    else:
        sb.caption(tr("dense_missing"))
    if searcher.has_reranker:
        options["rerank"] = sb.checkbox(tr("rerank_toggle"), value=True, key="rerank")
        if options["rerank"]:
            options["candidates"] = sb.select_slider(tr("candidates"), [10, 20, 30, 50, 100, 200], value=100, key="candidates")
            default = getattr(searcher.reranker, "max_length", None) or 512
            lengths = sorted({128, 256, 384, 512, default})
            options["max_length"] = sb.select_slider(tr("max_length"), lengths, value=default, key="max_length",
                                                     help=tr("max_length_help"))
            options["window"] = sb.radio(tr("window"), ["best", "head"], format_func=labels("window_"), key="window")
    else:
        sb.caption(tr("rerank_missing"))
    options["translit"] = sb.checkbox(tr("translit"), value=True, key="translit")
    return options


def sidebar_filters(searcher, manifest: dict) -> tuple[dict, Callable[[], None]]:
    """The filters, order and date calendar chosen in the sidebar (from the index's fields; nothing
    when it has none), and a function that draws their widgets: called once the search has run, so a
    keyword's counts are this search's facets (the choices are the widgets' state, set before a rerun)."""
    fields = getattr(getattr(searcher, "collection", None), "fields", None)
    offered = filter_fields(manifest, fields, st.session_state.get("last_facets"))
    lang = st.session_state.get("lang", "am")
    calendar_key = f"calendar_{lang}"  # each language has its own default calendar
    chosen = {"filters": [], "sort": "relevance", "calendar": default_calendar(lang), "date_fields": {}}
    if not offered:
        return chosen, lambda: None
    box = st.sidebar.container(key="filters")  # here, in the sidebar's order; filled by draw()
    keywords = {f.name: st.session_state.get(f"filter_{f.name}") or [] for f in offered if f.type == "keyword"}
    years = {f.name: st.session_state[f"filter_{f.name}"] for f in offered
             if f.type == "date" and f"filter_{f.name}" in st.session_state}
    chosen["filters"] = selection_filters(keywords, years, offered)
    chosen["date_fields"] = {f.name: f.calendar for f in offered if f.type == "date"}
    if chosen["date_fields"]:
        chosen["sort"] = st.session_state.get("sort", "relevance")
        chosen["calendar"] = st.session_state.get(calendar_key, chosen["calendar"])

    def draw() -> None:
        facets = st.session_state.get("last_facets") or {}
        with box:
            st.subheader(tr("filters_title"))
            for f in offered:
                if f.type == "keyword":
                    counts = facet_counts(facets, f.name)
                    values = list(dict.fromkeys([*keywords[f.name], *f.values]))  # a choice stays offered
                    # a field's name is corpus text: shown escaped, never as the widget's (Markdown) label
                    st.markdown(f'<div class="as-filter-label">{escape(f.name)}</div>', unsafe_allow_html=True)
                    st.multiselect(tr("filters_title"), values, key=f"filter_{f.name}", placeholder=tr("filter_any"),
                                   label_visibility="collapsed",
                                   format_func=lambda v, c=counts: tr("facet_count", value=v, n=c[v]) if v in c else v)
                elif f.years and f.years[0] < f.years[1]:
                    label = tr("filter_years", field=tr("date_label") if len(chosen["date_fields"]) == 1 else f.name,
                               era=tr(f"era_{f.calendar}"))  # years in the field's own calendar
                    st.markdown(f'<div class="as-filter-label">{escape(label)}</div>', unsafe_allow_html=True)
                    st.slider(tr("filters_title"), f.years[0], f.years[1], f.years, key=f"filter_{f.name}",
                              label_visibility="collapsed")
            if chosen["date_fields"]:
                st.radio(tr("sort_label"), SORTS, format_func=labels("sort_"), key="sort", horizontal=True)
                st.radio(tr("calendar_label"), CALENDARS, format_func=labels("calendar_"),
                         index=CALENDARS.index(default_calendar(lang)), key=calendar_key)

    return chosen, draw


def simple_options(searcher) -> dict:
    return {"top_k": 10, "rerank": searcher.has_reranker, "mode": "hybrid" if searcher.has_dense else "lexical",
            "fusion": None, "depth": None, "candidates": 100, "max_length": None, "window": "best", "translit": True}


def search_box(manifest: dict) -> str | None:
    with st.form("search", clear_on_submit=False, border=False):
        # the box and its button on one line, on a phone too
        with st.container(horizontal=True, vertical_alignment="bottom", gap="small"):
            typed = st.text_input(tr("query_label"), key="query", placeholder=tr("query_placeholder"),
                                  label_visibility="collapsed")
            submitted = st.form_submit_button(tr("search_button"), type="primary")
    examples = manifest.get("examples") or []
    searched = submitted or "pending_query" in st.session_state or bool(st.session_state.get("last_query"))
    if examples:
        # whole examples (never cut with "…"), wrapping as the width allows; once a search has run they
        # fold away, so that on a phone the first result is on the first screen
        if searched:
            shelf = st.expander(tr("examples_more"))
        else:
            st.caption(tr("examples_label"))
            shelf = st.container()
        with shelf, st.container(horizontal=True, gap="small", key="examples"):
            for i, example in enumerate(examples[:8]):
                if st.button(example, key=f"ex{i}"):
                    st.session_state["pending_query"] = st.session_state["_set_query"] = example
                    st.rerun()  # the example fills the search box, then runs
    query = st.session_state.pop("pending_query", None)
    if query is not None:
        st.session_state["last_query"] = query
    elif submitted:
        st.session_state["last_query"] = typed
    return st.session_state.get("last_query")


# -- the page ---------------------------------------------------------------------------------------


def main() -> None:
    init_state()
    if "_set_query" in st.session_state:  # a query from an example or the URL fills the box before it is drawn
        st.session_state["query"] = st.session_state.pop("_set_query")
    expert = st.session_state.get("view") == "expert"
    st.set_page_config(page_title=tr("page_title"), page_icon="🔎", layout="wide" if expert else "centered")
    st.markdown(CSS + localized_css(), unsafe_allow_html=True)
    args = settings()
    root = Path(args.index_root)
    build_model = args.dense_model or DEFAULT_DENSE_MODEL
    encoder_here = not args.api and bool(cached_model(build_model))  # looked up once a run (uploads, the notice)

    indexes: dict[str, Path | str] = {}
    if args.api:  # the collections are the ones the service serves
        from amharic_search.search.service.client import ServiceError

        try:
            indexes = {name: name for name in load_client(args.api, None).indexes()}
        except ServiceError as exc:
            header()
            st.error(tr("api_unreachable"))
            st.code(str(exc), language=None, wrap_lines=True)
            return
    elif args.index:
        indexes[Path(args.index).name] = Path(args.index)
    else:
        ensure_sample(root, build_model)  # its notes: the notice's "How to turn it on" says what they say
    if not args.api:
        for path in find_indexes(root):
            indexes.setdefault(path.name, path)

    header()
    if not indexes:
        st.error(tr("no_collection"))
        st.code("amharic-search index build CORPUS --out DIR", language="bash")
        return
    choice = sidebar_collections(indexes)
    encoder = "index"
    try:
        with st.spinner(tr("loading")):
            if args.api:
                searcher = load_client(args.api, choice)
                manifest = searcher.refresh()["manifest"]  # the service may have reloaded a rebuilt index
            else:
                manifest = read_manifest(indexes[choice])
                encoder = query_encoder(manifest, args.dense_model)
                changed = generation(manifest)  # documents added or deleted since it was built
                searcher = load_searcher(str(indexes[choice]), f"{manifest.get('created', '')}#{changed}", encoder,
                                         args.reranker)
    except (IndexFormatError, ModelUnavailableError, ValueError, RuntimeError) as exc:  # RuntimeError: ServiceError
        st.error(tr("cannot_open"))
        st.code(str(exc), language=None, wrap_lines=True)
        return
    sidebar_about(manifest, searcher, expert=expert)
    if args.read_only:  # served to visitors who may search only: nothing on the page writes
        st.sidebar.caption(tr("read_only"))
    else:
        if not args.api:  # uploads are indexed here; a service serves the collections it was started with
            sidebar_upload(root, build_model, encoder_here)
        if expert:
            sidebar_adapt(None if args.api else Path(indexes[choice]), manifest, encoder)

    if flash := st.session_state.pop("flash", None):
        st.success(escape(flash), icon="✅")
    missing_models_notice(searcher, manifest, encoder_here, args=args, encoder=encoder,
                          index_dir=None if args.api else Path(indexes[choice]))
    options = expert_controls(searcher) if expert else simple_options(searcher)
    chosen, draw_filters = sidebar_filters(searcher, manifest)
    options.update(chosen)
    try:
        search_page(searcher, manifest, options, expert=expert)
    finally:
        draw_filters()  # after the search: its facet counts


def search_page(searcher, manifest: dict, options: dict, *, expert: bool) -> None:
    """The search box, then the results of the query in it (in tabs in the expert view)."""
    query = search_box(manifest)
    sync_url()
    if query is None:
        st.info(tr("guidance"))
        return
    query = clean_query(query)
    if not query.strip():
        st.info(tr("empty_query"))
        return
    converted = transliterate_query(query, "auto" if options["translit"] else "off")
    if converted != query:
        st.markdown(tr("searching_for", converted=escape(converted), typed=escape(query)))
        query = converted
    elif options["translit"] and latin_only(query):  # Latin, but not Amharic typed in Latin letters
        st.caption(escape(tr("not_transliterated", typed=query)))

    if expert:
        results_tab, compare_tab = st.tabs([tr("tab_results"), tr("tab_compare")])
        with compare_tab:
            render_compare(searcher, query, options)
        with results_tab:
            run_search(searcher, query, options, expert=True)
    else:
        run_search(searcher, query, options, expert=False)


FIRST_BLOCK = 20  # the page reranks the first 20 candidates, shows them, then reranks the rest (progressive)


def search_options(options: dict, **overrides) -> SearchOptions:
    """The page's settings as the library's search options."""
    chosen = {k: options[k] for k in ("top_k", "depth", "candidates", "fusion", "max_length", "window")}
    chosen["top_k"] = min(options["candidates"], chosen["top_k"] + st.session_state.get("more", 0))
    chosen.update(filters=tuple(options.get("filters") or ()), sort=options.get("sort", "relevance"))
    return SearchOptions(**{**chosen, **overrides})


def run_search(searcher, query: str, options: dict, *, expert: bool) -> None:
    """The first stage at once, then the top candidates reranked, then the whole reranked list in its
    place; the ranking story below.

    ``searcher``: an in-process Searcher or a client of the search service (the same search_stream).
    """
    will_rerank = bool(options["rerank"] and searcher.has_reranker)
    asked = (query, tuple(options.get("filters") or ()), options.get("sort"))
    if st.session_state.get("more_for") != asked:  # "more results" counts for one search only
        st.session_state["more_for"], st.session_state["more"] = asked, 0
    try:
        stream = searcher.search_stream(query, search_options(options, stages=options["mode"], rerank=will_rerank,
                                                             rerank_depth=options["candidates"]),
                                        blocks=(FIRST_BLOCK,) if options["candidates"] > FIRST_BLOCK else ())
        response = next(stream)
    except FilterError as exc:
        st.warning(tr("bad_filter", message=str(exc)))
        return
    except QueryError as exc:
        st.info(tr("no_searchable_words") if str(exc) == NO_SEARCHABLE_WORDS else str(exc))
        return
    st.session_state["dates"] = (options.get("date_fields") or {}, options.get("calendar"))
    st.session_state["last_facets"] = response.facets  # the sidebar's counts (drawn after the search)
    results_box, flow_box, timing_box = st.empty(), st.empty(), st.empty()
    colors = doc_colors(r.doc_id for r in response.results)
    reranking = options["candidates"] if will_rerank and response.results else 0
    with results_box.container():
        render_results(searcher, response, colors, expert=expert, reranking=reranking)
    for response in stream:  # the top candidates reranked, then all of them (when reranking)
        colors = doc_colors([*colors, *(r.doc_id for r in response.results)])
        with results_box.container():
            render_results(searcher, response, colors, expert=expert)
    if not response.results:
        return
    result_tools(response, options)
    with flow_box.container():
        if expert:
            st.subheader(tr("flow_title"))
            render_flow(response, colors)
        else:
            with st.expander(tr("flow_title")):
                render_flow(response, colors)
    if expert:
        with timing_box.container():
            render_timings(response)


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - last resort: a message, never a traceback in the page
        if type(exc).__module__.startswith("streamlit"):  # st.rerun/st.stop use exceptions
            raise
        import logging

        logging.getLogger("amharic-search").exception("unexpected error")
        st.error(tr("went_wrong", error=type(exc).__name__))
