"""The ``amharic-search`` command line: a thin layer over :mod:`index` and :mod:`search`.

Missing models follow one policy (:meth:`index.models.ModelUnavailableError.note`): the stage is
skipped with one note on stderr and the command succeeds with the stages it has; ``--strict``
makes it an error. Arguments, paths and query text are checked before any model is loaded.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import get_args

import click

from ..index.analyzer import Analyzer, AnalyzerConfig, AnalyzerMismatchError
from ..index.bm25 import BM25Params
from ..index.chunking import ChunkConfig
from ..index.manifest import IndexFormatError, describe_manifest, read_manifest
from ..index.models import DEFAULT_DENSE_MODEL, DEFAULT_RERANKER, ModelUnavailableError
from ..index.ray_embed import RayUnavailableError
from ..index.readers import CorpusError
from ..index.shard import MAX_SHARDS, ShardError
from ..index.update import UpdateError

from .adaptive import AdaptiveDepth
from .fusion import FusionMethod
from .options import TRANSLIT_DOC, SearchOptions, Sort, Translit, option_field
from .rerank import BACKENDS, Window
from .evaluate import EvalInputError

from ..index.fields import FieldError  # noqa: E402 - numpy only

USER_ERRORS = (
    CorpusError, IndexFormatError, ModelUnavailableError, AnalyzerMismatchError, EvalInputError,
    FileExistsError, FileNotFoundError, PermissionError, ShardError, RayUnavailableError, UpdateError, FieldError,
)


class Output:
    """How chatty the command line is: ``-q`` (errors and results only) or ``-v`` (library logs too)."""

    quiet = False

    @classmethod
    def note(cls, message: str) -> None:
        if not cls.quiet:
            click.echo(f"note: {message}", err=True)

    @classmethod
    def progress(cls) -> bool:
        """Progress bars: on stderr, only for a terminal, never with ``-q``."""
        return not cls.quiet and sys.stderr.isatty()


def user_errors(func):
    """Turn the errors a user can fix into a one-line message and exit status 1 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from .schema import QueryError

        try:
            return func(*args, **kwargs)
        except (*USER_ERRORS, QueryError) as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


def strict_option(func):
    return click.option("--strict", is_flag=True,
                        help="Fail when a model is not available instead of skipping its stage with a note.")(func)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="amharic-search")
@click.option("-v", "--verbose", is_flag=True, help="Show the model libraries' own messages and loading bars.")
@click.option("-q", "--quiet", is_flag=True, help="No notes and no progress bars (for scripts).")
def main(verbose: bool, quiet: bool) -> None:
    """Semantic search for Amharic: BM25 + dense retrieval, fused, reranked by a cross-encoder.

    Works offline with the stages it has: a model that cannot be had is skipped with a note
    (--strict makes that an error).
    """
    from ..index import models

    Output.quiet = quiet
    models.VERBOSE = verbose


# -- index -----------------------------------------------------------------------------------------


@main.group("index")
def index_group() -> None:
    """Build and inspect indexes."""


@index_group.command("build")
@click.argument("corpus", type=click.Path(path_type=Path))
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path), help="Index directory to write.")
@click.option("--format", "fmt", type=click.Choice(["auto", "jsonl", "csv", "tsv", "folder"]), default="auto", show_default=True)
@click.option("--id-field", default="id", show_default=True, help="JSONL key / CSV column of the document id.")
@click.option("--text-field", default="text", show_default=True, help="JSONL key / CSV column of the text.")
@click.option("--title-field", default="title", show_default=True, help="JSONL key / CSV column of the title.")
@click.option("--skip-bad", is_flag=True, help="Skip bad records (reported) instead of stopping at the first.")
@click.option("--dense-model", default=DEFAULT_DENSE_MODEL, show_default=True, help="Encoder: hub id or local path.")
@click.option("--no-dense", is_flag=True, help="Lexical-only index: no encoder needed.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1, 4096))
@click.option("--dense-index", "dense_index_kind", type=click.Choice(["auto", "flat", "ivf"]), default="auto", show_default=True,
              help="FAISS index: exact (flat) up to 100,000 passages, IVF above (auto).")
@click.option("--precision", "dense_precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
              help="Encoder arithmetic: auto = bf16 on a CPU that has it (faster), else fp32.")
@click.option("--engine", "dense_engine", type=click.Choice(["auto", "torch", "openvino"]), default="auto", show_default=True,
              help="Encoder runtime: auto = OpenVINO for bf16 on the CPU (faster), else PyTorch.")
@click.option("--max-tokens", default=ChunkConfig.max_tokens, show_default=True, type=click.IntRange(16, 8192),
              help="Passage size budget in model tokens.")
@click.option("--no-stem", is_flag=True, help="Analyzer: no stemming.")
@click.option("--no-roots", is_flag=True, help="Analyzer: no root features.")
@click.option("--stopwords", is_flag=True, help="Analyzer: drop Amharic function words.")
@click.option("--name", default=None, help="Display name of the index (default: the directory name).")
@click.option("--shards", default=1, show_default=True, type=click.IntRange(1, MAX_SHARDS),
              help="Write the index as this many shards (searched exactly as one index; see `index split`).")
@click.option("--ray", "ray_address", default=None, is_flag=False, flag_value="auto", metavar="[ADDRESS|auto|local]",
              help="Embed on a Ray cluster: --ray alone joins the running cluster or starts a local one "
                   "(needs amharic-search[scale]).")
@click.option("--ray-workers", default=None, type=click.IntRange(1, 10_000),
              help="Encoder workers on the Ray cluster (default: one per GPU, else one per node).")
@click.option("--metadata", default=None, type=click.Path(path_type=Path),
              help="A JSONL or CSV file of more fields per document, joined to the corpus by its \"id\".")
@click.option("--field", "field_types", multiple=True, metavar="NAME=TYPE",
              help="A field's type instead of the inferred one: keyword, number, text, date or date:ethiopian "
                   "(repeatable; e.g. --field source=keyword --field date_ethiopian=date:ethiopian).")
@strict_option
@user_errors
def index_build(corpus, out, fmt, id_field, text_field, title_field, skip_bad, dense_model, no_dense, batch_size,
                dense_index_kind, dense_precision, dense_engine, max_tokens, no_stem, no_roots, stopwords, name, shards,
                ray_address, ray_workers, metadata, field_types, strict):
    """Index CORPUS (JSONL, CSV/TSV, or a folder of .txt/.md files) into --out.

    Without its encoder (offline, not cached) the index is built lexical-only with a note; a later
    build with the encoder adds the embeddings. An interrupted build (Ctrl-C) keeps the embeddings
    done so far: run the same command again to resume.

    Fields beyond id, title and text (the corpus's own, and --metadata's) are typed (keyword,
    number, date, text: inferred, or --field) and can be filtered and counted by (query --filter).
    """
    from ..index.build import BuildInterrupted, build_index
    from ..index.fields import parse_field_option

    overrides = dict(parse_field_option(f) for f in field_types)

    try:
        report = build_index(
            corpus, out, format=fmt, id_field=id_field, text_field=text_field, title_field=title_field,
            skip_bad=skip_bad, dense_model=None if no_dense else dense_model,
            analyzer=AnalyzerConfig(stem=not no_stem, roots=not no_roots, stopwords=stopwords),
            bm25=BM25Params(), chunking=ChunkConfig(max_tokens=max_tokens), batch_size=batch_size, name=name,
            dense_index_kind=dense_index_kind, dense_precision=dense_precision, dense_engine=dense_engine,
            show_progress=Output.progress(), strict=strict, shards=shards, ray=ray_address, ray_workers=ray_workers,
            metadata=metadata, fields=overrides,
        )
    except BuildInterrupted as exc:
        click.echo(f"Interrupted: {exc}", err=True)
        sys.exit(130)
    for line in report.notes:
        Output.note(line)
    if ray_address and not report.manifest.get("build"):
        Output.note("--ray was not used: there were no passages to embed (a lexical-only build, or every vector reused)")
    for line in report.skipped[:20]:
        Output.note(f"skipped: {line}")
    if len(report.skipped) > 20:
        Output.note(f"skipped: ... and {len(report.skipped) - 20} more")
    if report.changes:
        c = report.changes
        click.echo(f"Changes since the previous index: {c['added']} added, {c['edited']} edited, "
                   f"{c['deleted']} deleted, {c['unchanged']} unchanged")
    if report.manifest.get("dense"):
        resumed = f", resumed {report.resumed} from an interrupted build" if report.resumed else ""
        click.echo(f"Embedded {report.embedded} passages, reused {report.reused - report.resumed} from the previous "
                   f"index{resumed}")
    seconds = sum(report.seconds.values())
    click.echo(
        f"Indexed {report.documents} documents as {report.passages} passages into {report.out} "
        f"in {seconds:.1f} s" + (f"; skipped {len(report.skipped)} bad record{'s' if len(report.skipped) > 1 else ''}"
                                  if report.skipped else "")
        + ("" if report.manifest.get("dense") else " (lexical only)")
        + (f", {shards} shards" if shards > 1 else "")
    )
    if report.manifest.get("build"):
        b = report.manifest["build"]
        click.echo(f"Embedded on {b['cluster']} by {b['encoder_workers']} encoder worker(s) ({b['device']})")


@index_group.command("split")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path), help="Sharded index directory to write.")
@click.option("--shards", required=True, type=click.IntRange(2, MAX_SHARDS), help="Number of shards.")
@user_errors
def index_split(directory, out, shards):
    """Write the index in DIRECTORY as --shards shards of consecutive documents into --out.

    A sharded index is searched like any other (query, eval, serve, the page) and returns exactly the
    unsharded rankings and scores; each shard directory is an index of its own.
    """
    from ..index.shard import split_index

    manifest = split_index(directory, out, shards=shards, show_progress=Output.progress())
    sizes = ", ".join(f"{s['passages']:,}" for s in manifest["shards"])
    click.echo(f"Wrote {len(manifest['shards'])} shards of {sizes} passages into {out}")


def _live(report) -> str:
    return f"{report.documents:,} documents, {report.passages:,} passages (generation {report.generation})"


@index_group.command("add")
@click.argument("directory", type=click.Path(path_type=Path))
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["auto", "jsonl", "csv", "tsv", "folder"]), default="auto", show_default=True)
@click.option("--id-field", default="id", show_default=True, help="JSONL key / CSV column of the document id.")
@click.option("--text-field", default="text", show_default=True, help="JSONL key / CSV column of the text.")
@click.option("--title-field", default="title", show_default=True, help="JSONL key / CSV column of the title.")
@click.option("--skip-bad", is_flag=True, help="Skip bad records (reported) instead of stopping at the first.")
@click.option("--no-dense", is_flag=True, help="Do not embed the new passages (found by keywords only until compacted).")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1, 4096))
@strict_option
@user_errors
def index_add(directory, files, fmt, id_field, text_field, title_field, skip_bad, no_dense, batch_size, strict):
    """Add the documents of FILES (read as `index build` reads a corpus) to the index in DIRECTORY,
    without a rebuild; a document whose id the index holds replaces it. Searchable when this returns."""
    from ..index.readers import ReadReport, read_corpus
    from ..index.update import add_documents

    read_manifest(directory)  # a missing index is said before the files are read
    docs, read = [], ReadReport()
    for path in files:
        docs.extend(read_corpus(path, format=fmt, id_field=id_field, text_field=text_field, title_field=title_field,
                                skip_bad=skip_bad, report=read))
    for line in read.skipped[:20]:
        Output.note(f"skipped: {line}")
    if not docs:
        raise click.ClickException(f"no documents in {', '.join(str(f) for f in files)}")
    report = add_documents(directory, docs, dense_model=None if no_dense else "index", batch_size=batch_size,
                           strict=strict, show_progress=Output.progress())
    for line in report.notes:
        Output.note(line)
    replaced = f" ({report.replaced} replacing documents with the same id)" if report.replaced else ""
    click.echo(f"Added {report.added + report.replaced} documents{replaced} to {directory}: {_live(report)}")


@index_group.command("delete")
@click.argument("directory", type=click.Path(path_type=Path))
@click.argument("ids", nargs=-1, required=True)
@user_errors
def index_delete(directory, ids):
    """Delete the documents IDS from the index in DIRECTORY (marked deleted; `index compact` drops them)."""
    from ..index.update import delete_documents

    report = delete_documents(directory, ids)
    if not report.deleted:
        raise click.ClickException(f"no document with id {', '.join(report.missing)} in {directory}")
    if report.missing:
        Output.note(f"not in the index: {', '.join(report.missing)}")
    click.echo(f"Deleted {report.deleted} documents from {directory}: {_live(report)}")


@index_group.command("compact")
@click.argument("directory", type=click.Path(path_type=Path))
@user_errors
def index_compact(directory):
    """Merge the segments of the index in DIRECTORY and drop its deleted documents (one index again,
    vectors reused; its encoder is needed when it has embeddings)."""
    from ..index.update import compact

    report = compact(directory, show_progress=Output.progress())
    for line in report.notes:
        Output.note(line)
    click.echo(f"Compacted {directory}: {report.documents:,} documents, {report.passages:,} passages")


@index_group.command("info")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@click.option("--verify", is_flag=True, help="Also check every file against its checksum.")
@user_errors
def index_info(directory, as_json, verify):
    """Describe the index in DIRECTORY."""
    m = read_manifest(directory, verify=verify)
    if as_json:
        click.echo(json.dumps(m, ensure_ascii=False, indent=2))
        return
    width = max(len(k) for k, _ in describe_manifest(m))
    for key, value in describe_manifest(m):
        click.echo(f"{key:<{width}}  {value}")
    if verify:
        files = len(m.get("files", {}))
        for part in (m.get("segments") or {}).get("parts", []):  # each added segment has its own manifest
            if part["path"] != "." and part["path"] not in {s["path"] for s in m.get("shards") or []}:
                files += len(read_manifest(Path(directory) / part["path"], verify=True).get("files", {}))
        click.echo(f"{'checksums':<{width}}  ok ({files} files)")


# -- query -----------------------------------------------------------------------------------------


def search_option(name: str, *decls: str, **kwargs):
    """A command-line option for a search option: its default and help from :class:`SearchOptions`."""
    field = option_field(name)
    return click.option(*decls, default=field.default, help=field.metadata["doc"], **kwargs)


def searcher_options(func):
    for option in reversed([
        click.option("--dense-model", default="index", show_default=True,
                     help="Query encoder (default: the one the index was built with)."),
        click.option("--no-dense", is_flag=True, help="Skip dense retrieval."),
        click.option("--allow-other-encoder", is_flag=True,
                     help="Query with an encoder other than the index's (its fingerprint differs): experts only."),
        click.option("--reranker", default=DEFAULT_RERANKER, show_default=True, help="Cross-encoder: hub id or local path."),
        click.option("--no-rerank", is_flag=True, help="Skip the cross-encoder."),
        search_option("max_length", "--max-length", type=click.IntRange(16, 8192)),
        click.option("--reranker-backend", type=click.Choice(BACKENDS),
                     default="auto", show_default=True,
                     help="auto: PyTorch on a GPU; on a CPU with bfloat16 (AMX, AVX-512 BF16) OpenVINO bf16, "
                          "else PyTorch fp32."),
        search_option("window", "--window", type=click.Choice(get_args(Window)), show_default=True),
        search_option("fusion", "--fusion", type=click.Choice(get_args(FusionMethod))),
        search_option("rrf_k", "--rrf-k", type=float),
        search_option("depth", "--depth", type=click.IntRange(1, 10000)),
        search_option("candidates", "--candidates", show_default=True, type=click.IntRange(1, 10000)),
        strict_option,
    ]):
        func = option(func)
    return func


def load_searcher(directory, *, dense_model="index", no_dense=False, reranker=DEFAULT_RERANKER, no_rerank=False,
                  max_length=None, reranker_backend="auto", allow_other_encoder=False, strict=False):
    """The index and the models its stages need, with the missing-model policy's notes printed once."""
    from .searcher import Searcher

    searcher = Searcher.load(
        directory, dense_model=dense_model, use_dense=not no_dense, reranker=None if no_rerank else reranker,
        max_length=max_length, reranker_backend=reranker_backend, allow_other_encoder=allow_other_encoder,
        strict=strict,
    )
    for w in searcher.warnings:
        Output.note(w)
    return searcher


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def prepare_query(text: str, translit: str) -> str:
    """The query as searched: cleaned, Latin typing turned into Ethiopic (``auto``: as the page does,
    when the query has Latin letters and no Ethiopic); an empty query is an error before any model loads."""
    from .schema import QueryError, clean_query
    from .translit import transliterate_query

    query = clean_query(text)
    converted = transliterate_query(query, translit)
    if converted != query:
        Output.note(f"searching for {converted!r} (Latin typing converted; --translit off searches {query!r})")
        query = converted
    if not query:
        raise QueryError("the query is empty: type a word or a question")
    return query


@main.command("query")
@click.argument("directory", type=click.Path(path_type=Path))
@click.argument("text")
@search_option("top_k", "--top-k", "-k", show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="Print the response as JSON (the same as --format json).")
@click.option("--format", "out_format", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help="table; json: the whole response; csv: one row per result (rank, doc_id, scores, fields, text).")
@search_option("filters", "--filter", "filters", multiple=True, metavar="FIELD=VALUE")
@search_option("sort", "--sort", type=click.Choice(get_args(Sort)), show_default=True)
@search_option("offset", "--offset", show_default=True, type=click.IntRange(0, 10_000))
@click.option("--translit", type=click.Choice(get_args(Translit)), default="auto", show_default=True, help=TRANSLIT_DOC)
@click.option("--adaptive", is_flag=True, help=option_field("adaptive").metadata["doc"])
@searcher_options
@user_errors
def query_cmd(directory, text, top_k, as_json, out_format, filters, sort, offset, translit, adaptive, dense_model, no_dense,
              allow_other_encoder, reranker, no_rerank, max_length, reranker_backend, window, fusion, rrf_k, depth,
              candidates, strict):
    """Search the index in DIRECTORY for TEXT.

    --filter narrows the search to documents whose fields match (repeatable, all apply):
    source=ሪፖርተር, source=A,B (either), source!=A, date>=1995, date<1996-05. Dates are written in
    the field's calendar (an Ethiopian-dated field: Ethiopian years, 1995 = 1995 ዓ.ም.); `date`
    names the index's date field. `index info` lists the fields.
    """
    query = prepare_query(text, translit)
    manifest = read_manifest(directory)  # a wrong directory or a query with nothing to search: before any model loads
    if (no_dense or not manifest.get("dense")) and not Analyzer.from_dict(manifest["analyzer"]).tokens(query):
        from .schema import NO_SEARCHABLE_WORDS

        raise click.ClickException(NO_SEARCHABLE_WORDS)
    if filters or sort != "relevance":  # a bad filter is said before any model loads
        from ..index.fields import FieldSet
        from .filters import document_mask, sort_key

        fields = FieldSet.load(directory)
        document_mask(fields, filters, int(manifest["corpus"]["documents"]))
        sort_key(fields, sort)
    searcher = load_searcher(directory, dense_model=dense_model, no_dense=no_dense, reranker=reranker,
                             no_rerank=no_rerank, max_length=max_length, reranker_backend=reranker_backend,
                             allow_other_encoder=allow_other_encoder, strict=strict)
    options = SearchOptions(top_k=top_k, stages="lexical" if no_dense else "hybrid", rerank=not no_rerank, fusion=fusion,
                            rrf_k=rrf_k, depth=depth, candidates=candidates, window=window,
                            adaptive=AdaptiveDepth() if adaptive else None, filters=filters, sort=sort, offset=offset)
    response = searcher.search(query, options)
    for w in response.warnings:
        if w not in searcher.warnings:  # a skipped stage was noted once, at load
            Output.note(w)
    if as_json or out_format == "json":
        click.echo(json.dumps(response.to_dict(), ensure_ascii=False, indent=2))
        return
    if out_format == "csv":
        from .export import results_csv

        click.echo(results_csv(response), nl=False)
        return
    if not response.results:
        click.echo("No results.")
        return
    click.echo(f"{'rank':>4}  {'doc':<20} {'bm25':>8} {'dense':>7} {'fused':>7} {'rerank':>8}  passage")
    for r in response.results:
        snippet = " ".join(r.text.split())[:70]
        if sort != "relevance":  # the order's reason, before the passage
            dated = [v for k, v in r.fields.items() if isinstance(v, str) and k in searcher.first.fields.of_type("date")]
            snippet = f"[{dated[0] if dated else 'no date'}] {snippet}"
        click.echo(f"{r.rank:>4}  {r.doc_id[:20]:<20} {_fmt(r.scores.bm25):>8} {_fmt(r.scores.dense):>7} "
                   f"{_fmt(r.scores.fused):>7} {_fmt(r.scores.rerank):>8}  {snippet}")
    for name, counts in response.facets.items():  # over the documents the first stage retrieved
        if counts:
            shown = ", ".join(f"{v} {n}" for v, n in counts[:8]) + (", …" if len(counts) > 8 else "")
            click.echo(f"{name}{' (years)' if isinstance(counts[0][0], int) else ''}: {shown}")
    t = response.timings_ms
    click.echo("time (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in t.items() if v is not None))
    if response.adaptive and response.adaptive["stopped"]:
        scored, of = response.rerank_progress
        click.echo(f"reranked {scored} of {of} candidates (adaptive depth; the rest keep the first-stage order)")


# -- eval ------------------------------------------------------------------------------------------

MODES = ("lexical", "dense", "hybrid", "lexical+rerank", "hybrid+rerank")


def runnable(mode: str, searcher) -> str | None:
    """Why ``mode`` cannot run with this searcher (None if it can)."""
    if mode.startswith(("dense", "hybrid")) and not searcher.has_dense:
        return "no dense retrieval" if searcher.manifest.get("dense") else "the index has no embeddings"
    if mode.endswith("+rerank") and not searcher.has_reranker:
        return "no reranker"
    return None


@main.command("eval")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--queries", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--qrels", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--mode", "modes", multiple=True, type=click.Choice(MODES),
              help="Stages to evaluate (repeatable). Default: every mode the index and the available models allow; "
                   "the others are listed as skipped.")
@click.option("--limit", default=None, type=click.IntRange(1), help="Evaluate only the first N judged queries.")
@click.option("--json", "as_json", is_flag=True)
@searcher_options
@user_errors
def eval_cmd(directory, queries, qrels, modes, limit, as_json, dense_model, no_dense, allow_other_encoder, reranker,
             no_rerank, max_length, reranker_backend, window, fusion, rrf_k, depth, candidates, strict):
    """Score the pipeline on judged queries: MRR@10, nDCG@10, Recall@10, Recall@100, MAP."""
    from .evaluate import evaluate, load_qrels, load_queries, run_queries

    qs, judgments = load_queries(queries), load_qrels(qrels)  # before any model loads
    judged = [q for q in qs if q in judgments]
    if not judged:
        raise click.ClickException(f"no query in {queries} has a judgment in {qrels}")
    judged = judged[:limit] if limit else judged
    read_manifest(directory)
    explicit = bool(modes)
    wants_rerank = not no_rerank and (not modes or any(m.endswith("+rerank") for m in modes))
    wants_dense = not no_dense and (not modes or any(m.startswith(("dense", "hybrid")) for m in modes))
    searcher = load_searcher(directory, dense_model=dense_model, no_dense=not wants_dense, reranker=reranker,
                             no_rerank=not wants_rerank, max_length=max_length, reranker_backend=reranker_backend,
                             allow_other_encoder=allow_other_encoder, strict=strict)
    if not modes:  # every mode the index and the options allow; those whose model is missing are listed as skipped
        modes = ["lexical"] + (["dense", "hybrid"] if searcher.manifest.get("dense") and not no_dense else [])
        if not no_rerank:
            modes.append("hybrid+rerank" if searcher.has_dense else "lexical+rerank")
    skipped = {m: why for m in modes if (why := runnable(m, searcher))}
    modes = [m for m in modes if m not in skipped]
    if skipped:
        message = "skipped modes: " + "; ".join(f"{m} ({why})" for m, why in skipped.items())
        if strict and explicit:
            raise click.ClickException(message)
        Output.note(message)
    if not modes:
        raise click.ClickException("no mode can run: " + "; ".join(f"{m} ({why})" for m, why in skipped.items()))

    table = {}
    judged_queries = {q: qs[q] for q in judged}
    for mode in modes:
        stages = "hybrid" if mode.startswith("hybrid") else ("lexical" if mode.startswith("lexical") else mode)
        options = SearchOptions(top_k=100, stages=stages, rerank=mode.endswith("+rerank"), fusion=fusion, rrf_k=rrf_k,
                                depth=depth, candidates=candidates, window=window)
        run = run_queries(searcher, judged_queries, options, desc=mode, progress=Output.progress())
        table[mode] = evaluate(run, {q: judgments[q] for q in judged})
    if as_json:
        click.echo(json.dumps({"queries": len(judged), "results": table, "skipped": skipped}, indent=2))
        return
    names = list(next(iter(table.values())))
    click.echo(f"{len(judged)} judged queries")
    click.echo(f"{'mode':<16}" + "".join(f"{n:>12}" for n in names))
    for mode, metrics in table.items():
        click.echo(f"{mode:<16}" + "".join(f"{metrics[n]:>12.4f}" for n in names))
    for mode, why in skipped.items():  # in the table's columns: the word under the first figure, then why
        click.echo(f"{mode:<16}{'skipped':>12}  ({why})")


@main.command("tune")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--queries", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--qrels", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dense-model", default="index", show_default=True)
@click.option("--allow-other-encoder", is_flag=True, help="Use an encoder other than the index's (experts only).")
@click.option("--save/--no-save", default=True, show_default=True, help="Store the best setting in the index manifest.")
@click.option("--top", default=10, show_default=True, help="Rows of the table to print.")
@strict_option
@user_errors
def tune_cmd(directory, queries, qrels, dense_model, allow_other_encoder, save, top, strict):
    """Choose the fusion of BM25 and dense for this index on judged queries (held out from your tests)."""
    from ..index.manifest import update_manifest
    from tqdm.auto import tqdm

    from .evaluate import load_qrels, load_queries
    from .tune import tune

    qs, judgments = load_queries(queries), load_qrels(qrels)
    qs = {q: t for q, t in qs.items() if q in judgments}
    if not qs:
        raise click.ClickException(f"no query in {queries} has a judgment in {qrels}")
    read_manifest(directory)
    searcher = load_searcher(directory, dense_model=dense_model, no_rerank=True, allow_other_encoder=allow_other_encoder,
                             strict=strict)
    if not searcher.has_dense:
        why = "its encoder is not available here" if searcher.manifest.get("dense") else "the index has no embeddings"
        raise click.ClickException(f"tune chooses how BM25 and dense results are fused, so it needs dense retrieval, "
                                   f"and {why} (the note above says how to get it)")
    bar = tqdm(total=len(qs), desc="retrieving", unit=" queries", disable=not Output.progress())
    results = tune(searcher, qs, judgments, progress=lambda done, total: bar.update(done - bar.n))
    bar.close()
    click.echo(f"{len(qs)} judged queries")
    click.echo(f"{'fusion':<40}{'MRR@10':>10}{'nDCG@10':>10}{'R@100':>10}")
    singles = [r for r in results if r.config is None]
    for r in [r for r in results if r.config is not None][:top] + singles:
        m = r.metrics
        click.echo(f"{r.label:<40}{m['MRR@10']:>10.4f}{m['nDCG@10']:>10.4f}{m['Recall@100']:>10.4f}")
    best = next(r for r in results if r.config is not None)
    if save:
        update_manifest(directory, fusion=best.config.to_dict())
        click.echo(f"saved to {directory}/manifest.json: {best.label}")


# -- train -----------------------------------------------------------------------------------------


def train_options(kind: str):
    """The options of `train encoder` and `train reranker` (search.train does the work; the defaults
    are TrainConfig's, the measured fast settings)."""
    from .train.common import PRECISIONS
    from .train.trainer import DEFAULT_NEGATIVES, TrainConfig

    default_base = DEFAULT_DENSE_MODEL if kind == "encoder" else DEFAULT_RERANKER
    default = {name: f.default for name, f in TrainConfig.__dataclass_fields__.items()}
    lengths = [
        click.option("--query-length", default=default["query_length"], show_default=True, type=click.IntRange(8, 8192),
                     help="Tokens per query while training (a headline needs 32-64)."),
        click.option("--passage-length", "--max-length", "passage_length", default=default["passage_length"],
                     show_default=True, type=click.IntRange(16, 8192),
                     help="Tokens per passage while training (the saved model keeps the base's length)."),
    ] if kind == "encoder" else [
        click.option("--pair-length", "--max-length", "pair_length", default=default["pair_length"], show_default=True,
                     type=click.IntRange(16, 8192),
                     help="Tokens per (query, passage) pair while training (the saved model keeps the base's length)."),
        click.option("--micro-batch", default=default["micro_batch"], show_default=True, type=click.IntRange(1, 4096),
                     help="Pairs scored per forward pass: a step with more (batch x (1 + negatives), listwise also "
                          "4 in-batch negatives) is computed in parts, the same gradients in bounded memory."),
    ]

    def decorate(func):
        for option in reversed([
            click.option("--pairs", "pairs_paths", multiple=True, type=click.Path(path_type=Path),
                         help="JSONL[.gz] of {query, positive[, negatives][, doc_id]} (repeatable: files are joined)."),
            click.option("--from-titles", "titles_corpus", default=None, type=click.Path(path_type=Path),
                         help="Make the pairs from this corpus's titles and bodies (skips empty, short and copied titles)."),
            click.option("--title-field", default="title", show_default=True, help="With --from-titles: the title key/column."),
            click.option("--text-field", default="text", show_default=True, help="With --from-titles: the text key/column."),
            click.option("--base", default=default_base, show_default=True, help="Model to start from: hub id or local path."),
            click.option("--out", "-o", required=True, type=click.Path(path_type=Path),
                         help="Folder for the trained model (and its checkpoints while training)."),
            click.option("--epochs", default=default["epochs"], show_default=True, type=click.FloatRange(0, min_open=True)),
            click.option("--batch-size", default=default["batch_size"], show_default=True, type=click.IntRange(1, 4096)),
            click.option("--lr", default=default["lr"], show_default=True, type=click.FloatRange(0, min_open=True),
                         help="Learning rate."),
            *lengths,
            click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]),
                         help="auto: the GPU when PyTorch sees one, else the CPU."),
            click.option("--precision", default=default["precision"], show_default=True, type=click.Choice(PRECISIONS),
                         help="Arithmetic: bf16 computes in bfloat16 over float32 weights (2-3x faster on a CPU with "
                              "AVX-512 BF16 or AMX); auto = bf16 where the CPU or GPU computes it natively, else fp32."),
            click.option("--freeze-layers", default=default["freeze_layers"], show_default=True, type=click.IntRange(0, 256),
                         help="Keep the token embeddings and the first N layers as they are (cheaper steps)."),
            click.option("--index", "index_dir", default=None, type=click.Path(path_type=Path),
                         help="Mine hard negatives from this index's first stage (the positive and near-copies left out)."),
            click.option("--negatives", default=DEFAULT_NEGATIVES[kind], show_default=True, type=click.IntRange(0, 64),
                         help="Negatives per pair (hard ones from --index or the pairs file; else random other passages"
                              + (" - the encoder then uses in-batch negatives only)" if kind == "encoder" else ")")),
            click.option("--negative-depth", default=default["negative_depth"], show_default=True, type=click.IntRange(1, 1000),
                         help="How deep in the first stage hard negatives are looked for."),
            click.option("--holdout", default=default["holdout"], show_default=True, type=click.FloatRange(0, 1, max_open=True),
                         help="Fraction of the pairs held out to evaluate before and after (seeded; 0: none; with "
                              "--index each held-out pair gets hard negatives too, as distractors)."),
            click.option("--eval-queries", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
                         help="Evaluate on these judged queries instead (with --eval-qrels and --index)."),
            click.option("--eval-qrels", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path)),
            click.option("--seed", default=default["seed"], show_default=True, type=int),
            click.option("--max-steps", default=None, type=click.IntRange(1), help="Stop after this many steps (a bounded run)."),
            click.option("--checkpoint-minutes", default=default["checkpoint_minutes"], show_default=True, type=click.FloatRange(0.1),
                         help="Save a checkpoint this often (an interrupted run resumes from the last one)."),
            click.option("--resume/--no-resume", default=True, show_default=True,
                         help="Continue an interrupted run found in --out (--no-resume starts over)."),
            click.option("--overwrite", is_flag=True, help="Replace a model already trained in --out."),
            strict_option,
        ]):
            func = option(func)
        return func

    return decorate


def run_training(kind, *, pairs_paths, titles_corpus, title_field, text_field, base, out, epochs, batch_size, lr,
                 device, precision, index_dir, negatives, negative_depth, holdout, eval_queries, eval_qrels, seed,
                 max_steps, checkpoint_minutes, resume, overwrite, strict, loss=None, matryoshka=None, **lengths):
    from . import train

    if bool(pairs_paths) == bool(titles_corpus):
        raise click.UsageError("give the training pairs: --pairs FILE (repeatable) or --from-titles CORPUS")
    if bool(eval_queries) != bool(eval_qrels):
        raise click.UsageError("--eval-queries and --eval-qrels go together")
    if eval_queries and not index_dir:
        raise click.UsageError("--eval-queries/--eval-qrels need --index (the documents the qrels name)")
    if index_dir:
        read_manifest(index_dir)  # a wrong index: said before any model loads
    dims = None
    if matryoshka:
        try:
            dims = tuple(sorted({int(x) for x in matryoshka.split(",") if x.strip()}, reverse=True))
        except ValueError:
            raise click.BadParameter(f"{matryoshka!r}: give sizes like 384,256,128", param_hint="--matryoshka") from None

    def log(line: str) -> None:
        if not Output.quiet:
            click.echo(line, err=True)

    try:
        if titles_corpus:
            report = train.TitlesReport()
            pairs = train.pairs_from_titles(titles_corpus, title_field=title_field, text_field=text_field, report=report)
            log(f"--from-titles {titles_corpus}: {report.summary()}")
            if not pairs:
                raise click.ClickException(f"{titles_corpus}: no document gives a training pair ({report.summary()})")
            source = f"titles and bodies of {titles_corpus} ({report.summary()})"
        else:
            pairs = [p for path in pairs_paths for p in train.read_pairs(path)]
            source = ", ".join(str(p) for p in pairs_paths) + f" ({len(pairs)} pairs)"
        eval_set = train.eval_from_qrels(eval_queries, eval_qrels, index_dir) if eval_queries else None
        config = train.TrainConfig(base=base, epochs=epochs, batch_size=batch_size, lr=lr, precision=precision,
                                   device=device, loss=loss, matryoshka=dims, negatives=negatives,
                                   negative_depth=negative_depth, holdout=holdout, seed=seed, max_steps=max_steps,
                                   checkpoint_minutes=checkpoint_minutes, **lengths)
        result = train.train_model(kind, pairs, out, config, source=source, index=index_dir, eval_set=eval_set,
                               resume=resume, overwrite=overwrite, progress=Output.progress(), log=log, strict=strict)
    except train.TrainingInterrupted as exc:
        click.echo(f"Interrupted: {exc}", err=True)
        sys.exit(130)
    except (train.PairsError, train.TrainError) as exc:
        raise click.ClickException(str(exc)) from None
    if result.before and result.after:
        click.echo(f"{'':<12}" + "".join(f"{k:>12}" for k in result.before))
        for name, m in (("before", result.before), ("after", result.after)):
            click.echo(f"{name:<12}" + "".join(f"{m[k]:>12.4f}" for k in result.before))
    resumed = f", resumed from step {result.resumed_from}" if result.resumed_from else ""
    click.echo(f"Trained {result.steps} steps on {result.train_pairs} pairs in {result.seconds:.0f} s{resumed}; "
               f"model and card in {out}")
    use = f"index build CORPUS --out INDEX --dense-model {out}" if kind == "encoder" else f"query INDEX TEXT --reranker {out}"
    click.echo(f"Use it: amharic-search {use}")


@main.group("train")
def train_group() -> None:
    """Fine-tune the dense encoder or the reranker on your pairs (or your corpus's titles)."""


@train_group.command("encoder")
@train_options("encoder")
@click.option("--matryoshka", default=None, metavar="DIMS",
              help="Also train smaller embedding sizes (MatryoshkaLoss), e.g. 256,128.")
@user_errors
def train_encoder_cmd(matryoshka, **options):
    """Fine-tune a dense encoder (MultipleNegativesRankingLoss: in-batch and hard negatives).

    Prints MRR@10 and Recall@1/10 on held-out pairs before and after; writes a safetensors model
    with a model card to --out, usable as `index build --dense-model OUT`. Ctrl-C stops with a
    checkpoint: the same command resumes.
    """
    run_training("encoder", matryoshka=matryoshka, **options)


@train_group.command("reranker")
@train_options("reranker")
@click.option("--loss", type=click.Choice(["bce", "listwise"]), default="bce", show_default=True,
              help="bce: each (query, passage) scored alone; listwise: the positive against its negatives.")
@user_errors
def train_reranker_cmd(loss, **options):
    """Fine-tune a cross-encoder reranker (an encoder or a one-logit cross-encoder as --base).

    Prints MRR@10 and Recall@1/10 of reordering held-out candidates before and after; writes a
    safetensors model with a model card to --out, usable as `query --reranker OUT`. Ctrl-C stops
    with a checkpoint: the same command resumes.
    """
    run_training("reranker", loss=loss, **options)


# -- models and app -------------------------------------------------------------------------------


@main.group("models")
def models_group() -> None:
    """Get the models, and see which are available here."""


@models_group.command("download")
@click.option("--to", "to", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Write self-contained model folders here (an offline bundle to copy to another machine), "
                   "instead of the Hugging Face cache.")
@click.option("--dense-model", default=DEFAULT_DENSE_MODEL, show_default=True)
@click.option("--reranker", default=DEFAULT_RERANKER, show_default=True)
@user_errors
def models_download(to, dense_model, reranker):
    """Download the models for offline use: into the Hugging Face cache, or with --to into a bundle folder.

    A bundle folder holds one folder per model (safetensors weights only); on a machine without
    internet pass them by path: --dense-model DIR/embedding-amharic-medium --reranker DIR/reranker-amharic-medium.
    """
    from ..index.models import download_model, resolve_model

    failed, offline = [], []
    for name in (dense_model, reranker):
        try:
            path = download_model(name, to) if to else resolve_model(name)
        except ModelUnavailableError as exc:
            (offline if exc.cause == "offline" else failed).append(name if exc.cause == "offline" else f"{name}: {exc.reason}")
            continue
        click.echo(f"{name}: {path}")
    if offline:
        failed.append(f"{' and '.join(offline)}: the Hugging Face hub cannot be reached from this machine and "
                      f"{'they are' if len(offline) > 1 else 'it is'} not in its cache. Run `amharic-search models "
                      "download --to DIR` on a machine with internet, copy DIR here, and pass the folders by path "
                      "(--dense-model DIR/NAME, --reranker DIR/NAME)")
    if failed:
        raise click.ClickException("; ".join(failed))
    if to:
        click.echo(f"Use them by path: --dense-model {to / dense_model.rstrip('/').split('/')[-1]} "
                   f"--reranker {to / reranker.rstrip('/').split('/')[-1]}")


@models_group.command("list")
@click.argument("names", nargs=-1)
@click.option("--dir", "bundle", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Also list the model folders in this bundle folder (from `models download --to`).")
@click.option("--index", "index_dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Also the encoder this index was built with.")
def models_list(names, bundle, index_dir):
    """Which models are available on this machine (a local folder or the cache) and which are not.

    Checks nothing on the network. NAMES: more hub ids or paths to check (default: the two default models).
    """
    from ..index.models import cached_model, looks_like_path

    wanted = list(names) or [DEFAULT_DENSE_MODEL, DEFAULT_RERANKER]
    if index_dir:
        try:
            model = (read_manifest(index_dir).get("dense") or {}).get("model")
        except IndexFormatError as exc:
            raise click.ClickException(str(exc)) from None
        if model and model not in wanted:
            wanted.append(model)
    if bundle:
        if not bundle.is_dir():
            raise click.ClickException(f"{bundle}: no such folder")
        wanted += [str(p) for p in sorted(bundle.iterdir()) if p.is_dir() and any(p.rglob("*.safetensors"))]
    width = max(len(n) for n in wanted)
    missing = 0
    for name in wanted:
        path = cached_model(name)
        if path:
            where = "local folder" if Path(name).expanduser().is_dir() else "cache"
            click.echo(f"{name:<{width}}  available ({where}: {path})")
        else:
            missing += 1
            why = "no such folder" if looks_like_path(name) else "not in this machine's cache"
            click.echo(f"{name:<{width}}  not available ({why})")
    if missing:
        Output.note("get missing hub models with `amharic-search models download` (with internet), or copy a "
                    "bundle made by `amharic-search models download --to DIR` on another machine")


@main.command("serve")
@click.argument("target", metavar="INDEX_OR_ROOT", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface; give it an --api-key).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Server processes; each loads its own models (memory x N).")
@click.option("--api-key", default=None, envvar="AMHARIC_SEARCH_API_KEY", show_envvar=True,
              help="Require this key from clients (header X-API-Key: KEY, or Authorization: Bearer KEY).")
@click.option("--cors-origin", "cors_origins", multiple=True,
              help="Let browser pages from this origin call the API (repeatable; CORS is off by default).")
@click.option("--deadline-ms", default=None, type=click.IntRange(1, 600_000),
              help="Default deadline of a request: past it, the first-stage list instead of the reranked one.")
@click.option("--batch-window-ms", default=5.0, show_default=True, type=click.FloatRange(0, 1000),
              help="How long the cross-encoder queue waits for more concurrent queries to score together.")
@click.option("--max-batch-pairs", default=512, show_default=True, type=click.IntRange(1, 100_000),
              help="Most (query, passage) pairs the cross-encoder takes in one go.")
@click.option("--rerank-batching", type=click.Choice(["exact", "packed"]), default="exact", show_default=True,
              help="exact: each query's pairs in the batches it would have alone (answers equal to a query run alone); "
                   "packed: batches filled across queries (scores may differ in the last float bits).")
@click.option("--reload-interval", default=2.0, show_default=True, type=click.FloatRange(0, 3600),
              help="Seconds between checks for a rebuilt index (0: never reload).")
@click.option("--trim-memory/--no-trim-memory", default=True, show_default=True,
              help="Give memory freed by each cross-encoder batch back to the system: resident memory stays flat "
                   "(about 7-10% slower reranking on a CPU).")
@click.option("--dense-model", default="index", show_default=True,
              help="Query encoder (default: the one the index was built with).")
@click.option("--no-dense", is_flag=True, help="Skip dense retrieval.")
@click.option("--allow-other-encoder", is_flag=True,
              help="Query with an encoder other than the index's (its fingerprint differs): experts only.")
@click.option("--reranker", default=DEFAULT_RERANKER, show_default=True, help="Cross-encoder: hub id or local path.")
@click.option("--no-rerank", is_flag=True, help="Skip the cross-encoder.")
@click.option("--max-length", default=None, type=click.IntRange(16, 512), help="Reranker max tokens (default: the model's).")
@click.option("--reranker-backend", type=click.Choice(BACKENDS), default="auto", show_default=True,
              help="auto: PyTorch on a GPU; on a CPU bfloat16 where the CPU has it, else fp32.")
@click.option("--ray", "ray_address", default=None, is_flag=False, flag_value="auto", metavar="[ADDRESS|auto|local]",
              help="Serve on Ray Serve: --ray alone joins the running cluster or starts a local one "
                   "(needs amharic-search[scale]).")
@click.option("--replicas", default=1, show_default=True, type=click.IntRange(1, 1000),
              help="With --ray: replicas of the HTTP API and first stage.")
@click.option("--max-replicas", default=None, type=click.IntRange(1, 1000),
              help="With --ray: autoscale the HTTP API replicas between --replicas and this.")
@click.option("--reranker-replicas", default=1, show_default=True, type=click.IntRange(1, 1000),
              help="With --ray: cross-encoder replicas (a GPU each where the cluster has GPUs).")
@click.option("--max-reranker-replicas", default=None, type=click.IntRange(1, 1000),
              help="With --ray: autoscale the cross-encoder replicas between --reranker-replicas and this.")
@click.option("--shard-replicas", default=1, show_default=True, type=click.IntRange(1, 1000),
              help="With --ray: replicas of each shard of a sharded index.")
@strict_option
@user_errors
def serve_cmd(target, host, port, workers, api_key, cors_origins, deadline_ms, batch_window_ms, max_batch_pairs,
              rerank_batching, reload_interval, trim_memory, dense_model, no_dense, allow_other_encoder, reranker, no_rerank,
              max_length, reranker_backend, ray_address, replicas, max_replicas, reranker_replicas, max_reranker_replicas,
              shard_replicas, strict):
    """Serve INDEX_OR_ROOT (an index, or a folder of indexes) as an HTTP JSON API that holds the models.

    Answers GET/POST /v1/search (the JSON of `query --json`), /v1/search/stream, /v1/documents/ID,
    /v1/indexes, /v1/health, /v1/ready, /v1/metrics; API docs at /docs. A rebuilt index is picked up
    without a restart. Ctrl-C or SIGTERM stops it after the requests in flight. With --ray the same
    API runs on Ray Serve: replicas of the API, of the cross-encoder and of each shard.
    """
    from .service import SearchService, ServiceConfig, create_app, run

    config = ServiceConfig(
        path=str(target), dense_model=dense_model, use_dense=not no_dense, reranker=None if no_rerank else reranker,
        max_length=max_length, reranker_backend=reranker_backend, allow_other_encoder=allow_other_encoder, strict=strict,
        api_key=api_key or None, cors_origins=list(cors_origins), batch_window_ms=batch_window_ms,
        max_batch_pairs=max_batch_pairs, batching=rerank_batching, reload_interval=reload_interval, deadline_ms=deadline_ms,
        trim_memory=trim_memory,
    )
    if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        Output.note(f"listening on {host} without --api-key: anyone who can reach this machine can search it")
    if ray_address:
        serve_on_ray(config, ray_address, host=host, port=port, replicas=replicas, max_replicas=max_replicas,
                     reranker_replicas=reranker_replicas, max_reranker_replicas=max_reranker_replicas,
                     shard_replicas=shard_replicas)
        return
    service = SearchService(config, load=load_searcher, on_note=Output.note)  # models load once, before listening
    names = ", ".join(service.entries)
    if not Output.quiet:
        click.echo(f"Serving {names} at http://{host}:{port} (API docs: http://{host}:{port}/docs); Ctrl-C stops", err=True)
    if workers > 1:
        service.close()  # each worker process loads its own (the load above checked that it can)
        service = None
        run(config, host=host, port=port, workers=workers, quiet=Output.quiet)
    else:
        run(create_app(service), host=host, port=port, quiet=Output.quiet)


def serve_on_ray(config, address: str, *, host: str, port: int, **scaling) -> None:
    """``serve --ray``: check the index and models here (notes said once), deploy, wait for Ctrl-C or SIGTERM."""
    import signal
    import threading

    from ..index.models import ModelUnavailableError, resolve_model

    from .service.ray_serve import deploy, shutdown
    from .loading import lexical_only_note
    from .service import served_indexes

    root = Path(config.path)
    dirs = list(served_indexes(root).values())
    if not dirs:
        read_manifest(root)  # its message: no such directory, or not an index
    manifests = [read_manifest(d) for d in dirs]
    wanted = []
    if config.use_dense:
        wanted += [("dense", config.dense_model if config.dense_model != "index" else m["dense"]["model"])
                   for m in manifests if m.get("dense")]
    if config.reranker:
        wanted.append(("rerank", config.reranker))
    for stage, model in dict.fromkeys(wanted):
        try:
            resolve_model(model)
        except ModelUnavailableError as exc:
            if config.strict:
                exc.stage = stage
                raise
            Output.note(exc.note(stage))
    if config.use_dense:
        for d, m in zip(dirs, manifests):
            if not m.get("dense"):
                Output.note(lexical_only_note(m, d, config.dense_model))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # before deploying: a Ctrl-C while it starts stops it too
        signal.signal(sig, lambda *_: stop.set())
    try:
        url = deploy(config, address=address, host=host, port=port, **scaling)
        if not Output.quiet and not stop.is_set():
            click.echo(f"Serving {', '.join(d.name for d in dirs)} on Ray Serve at {url} (API docs: {url}/docs); "
                       "Ctrl-C stops (requests are logged by Ray: /tmp/ray/session_latest/logs/serve/)", err=True)
        stop.wait()
    finally:
        shutdown()


@main.command("app", context_settings={"ignore_unknown_options": True})
@click.option("--index", "index_dir", default=None, help="Index directory (default: the sample index).")
@click.option("--api", default=None, envvar="AMHARIC_SEARCH_API", show_envvar=True,
              help="Search through a running `amharic-search serve` at this URL (default: in this process).")
@click.option("--dense-model", default=None, help="Encoder for building the sample index and uploads (hub id or path).")
@click.option("--reranker", default=None, help=f"Cross-encoder (hub id or path; default {DEFAULT_RERANKER}).")
@click.option("--port", default=8501, show_default=True, type=int)
@click.option("--read-only", is_flag=True, envvar="AMHARIC_SEARCH_READ_ONLY", show_envvar=True,
              help="Visitors may only search: no uploads, no adapting, no rebuilding (use it on a shared network).")
@click.argument("streamlit_args", nargs=-1, type=click.UNPROCESSED)
def app_cmd(index_dir, api, dense_model, reranker, port, read_only, streamlit_args):
    """Start the browser UI (Streamlit).

    The page listens on every network interface unless given `--server.address 127.0.0.1`; on a
    shared network start it with --read-only, so that visitors can search but not change collections.
    """
    from .ui.paths import app_path

    app = app_path()  # the checkout's app.py, else the copy packaged in the wheel
    if not app.is_file():
        raise click.ClickException(f"{app} not found: reinstall amharic-search")
    # the settings of .streamlit/config.toml, which streamlit reads only from the current directory
    settings = ["--server.maxUploadSize", "50", "--client.showErrorDetails", "none", "--browser.gatherUsageStats", "false",
                "--client.toolbarMode", "minimal", "--server.fileWatcherType", "none", "--server.enableStaticServing", "true"]
    args = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port), *settings, *streamlit_args]
    page_args = [arg for name, value in (("--index", index_dir), ("--api", api), ("--dense-model", dense_model),
                                         ("--reranker", reranker)) if value for arg in (name, value)]
    if read_only:
        page_args.append("--read-only")
    if page_args:
        args += ["--", *page_args]
    os.execv(sys.executable, args)


if __name__ == "__main__":
    main()
