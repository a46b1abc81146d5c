"""Lexical stage benchmark: each analyzer configuration on enh, amqa and amqa+enh.

    python bench/lexical.py            # all collections, writes BENCHMARKS.md
    python bench/lexical.py --tune     # also grid-search BM25 k1/b/method on held-out train headlines

Document-level BM25 (one entry per corpus document), as in ../shared/data/README.md.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import load_collection, machine, markdown_table, today, tuning_queries, write_section  # noqa: E402
from amharic_search.index.analyzer import Analyzer, AnalyzerConfig  # noqa: E402
from amharic_search.index.bm25 import BM25Index, BM25Params  # noqa: E402
from amharic_search.search.evaluate import evaluate  # noqa: E402

NAIVE = AnalyzerConfig(nfc=False, fold=False, numerals=False, lowercase=True, stem=False, roots=False, keep_surface=False)
CONFIGS = {
    "naive (split on space/punctuation)": NAIVE,
    "+ NFC + homophone folding": AnalyzerConfig(stem=False, numerals=False, roots=False, keep_surface=False),
    "+ numerals": AnalyzerConfig(stem=False, roots=False, keep_surface=False),
    "+ light stemmer": AnalyzerConfig(roots=False, keep_surface=False),
    "+ root features": AnalyzerConfig(keep_surface=False),
    "+ surface form next to the stem (default)": AnalyzerConfig(),
    "default, stem min 3 syllables": AnalyzerConfig(min_stem=3),
    "default + stopwords": AnalyzerConfig(stopwords=True),
}


def run_lexical(corpus, queries, analyzer, params, depth=100):
    t0 = time.perf_counter()
    terms = [analyzer.tokens(d.get("title", "") + "\n" + d["text"]) for d in corpus]
    bm25 = BM25Index.build(terms, params=params)
    build_s = time.perf_counter() - t0
    ids = [d["id"] for d in corpus]
    run, lat = {}, []
    for qid, text in queries.items():
        t = time.perf_counter()
        rows, scores = bm25.top_k(analyzer.tokens(text), depth)
        lat.append((time.perf_counter() - t) * 1000)
        run[qid] = {ids[r]: float(s) for r, s in zip(rows, scores)}
    return run, build_s, lat


class TimedSearcher:
    """A searcher whose responses' total times are collected (the product's own per-query timing)."""

    def __init__(self, searcher, times: list[float]) -> None:
        self.searcher, self.times = searcher, times

    def search(self, query, options=None):
        response = self.searcher.search(query, options)
        self.times.append(response.timings_ms["total"])
        return response


def product_row(name, corpus, queries, qrels):
    import json
    import tempfile

    from amharic_search.index.build import build_index
    from amharic_search.search import Searcher, SearchOptions
    from amharic_search.search.evaluate import run_queries

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.jsonl"
        path.write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in corpus), encoding="utf-8")
        t0 = time.perf_counter()
        build_index(path, Path(tmp) / "idx", dense_model=None, show_progress=False)
        build_s = time.perf_counter() - t0
        searcher = Searcher.load(Path(tmp) / "idx", reranker=None)
        lat = []
        timed = TimedSearcher(searcher, lat)
        run = run_queries(timed, queries, SearchOptions(top_k=100, stages="lexical", rerank=False))
    m = evaluate(run, qrels)
    return [name, "**product: passages, default analyzer**", m["MRR@10"], m["nDCG@10"], m["Recall@10"],
            m["Recall@100"], f"{build_s:.1f}", f"{np.percentile(lat, 50):.2f}", f"{np.percentile(lat, 95):.2f}"]


@click.command()
@click.option("--collections", default="enh,amqa,amqa+enh")
@click.option("--tune/--no-tune", default=False, help="Grid-search BM25 parameters on held-out train headlines.")
def main(collections: str, tune: bool) -> None:
    rows = []
    for name in collections.split(","):
        corpus, queries, qrels = load_collection(name)
        for label, cfg in CONFIGS.items():
            run, build_s, lat = run_lexical(corpus, queries, Analyzer(cfg), BM25Params())
            m = evaluate(run, qrels)
            row = [name, label, m["MRR@10"], m["nDCG@10"], m["Recall@10"], m["Recall@100"],
                   f"{build_s:.1f}", f"{np.percentile(lat, 50):.2f}", f"{np.percentile(lat, 95):.2f}"]
            print(" | ".join(str(x) if not isinstance(x, float) else f"{x:.3f}" for x in row), flush=True)
            rows.append(row)
        rows.append(product_row(name, corpus, queries, qrels))
        print(" | ".join(str(x) for x in rows[-1]), flush=True)
    header = ["collection", "analyzer", "MRR@10", "nDCG@10", "R@10", "R@100", "build s", "query p50 ms", "query p95 ms"]
    body = (
        f"Machine: {machine()}. Date: {today()}. Rerun: `python bench/lexical.py`.\n\n"
        f"Document-level BM25 (bm25s, {BM25Params().method}, k1={BM25Params().k1}, b={BM25Params().b}: the "
        "defaults, chosen on the tuning set below), all test queries of each collection; "
        "build = analysis + indexing of the whole corpus; query = analysis + BM25 top-100. "
        "The *product* row is the shipped path: `amharic-search index build --no-dense` (passages of at most 350 "
        "tokens, title + text), `Searcher.search(stages='lexical')`, documents ranked by their best passage; its "
        "build time includes chunking and writing the index directory, its query time the whole lexical search.\n\n"
        + markdown_table(header, rows)
    )
    write_section("Lexical stage: analyzer configurations", body)

    if tune:
        tq, tqrels = tuning_queries("enh")
        corpus, _, _ = load_collection("enh")
        analyzer = Analyzer()
        trows = []
        for method in ("lucene", "bm25+", "bm25l"):
            for k1 in (0.9, 1.2, 1.5, 2.0):
                for b in (0.6, 0.75, 0.9):
                    run, _, _ = run_lexical(corpus, tq, analyzer, BM25Params(k1=k1, b=b, method=method))
                    m = evaluate(run, tqrels)
                    trows.append([method, k1, b, m["MRR@10"], m["Recall@100"]])
                    print(trows[-1], flush=True)
        trows.sort(key=lambda r: -r[3])
        body = (
            f"Machine: {machine()}. Date: {today()}. Rerun: `python bench/lexical.py --tune --collections enh`.\n\n"
            "1,000 enh train headlines (disjoint from the test queries), default analyzer, document level. "
            "Top 10 settings by MRR@10:\n\n" + markdown_table(["method", "k1", "b", "MRR@10", "R@100"], trows[:10])
        )
        write_section("Lexical stage: BM25 parameters (tuning set)", body)


if __name__ == "__main__":
    main()
