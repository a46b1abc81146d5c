"""Progressive reranking, speed: time to the first reranked top 10 and to the final list.

    python bench/progressive.py                 # about 4 minutes on 2 cores; BENCHMARKS.md "Progressive reranking (speed)"
    python bench/progressive.py --queries 5 --no-write

The enh index (lexical first stage, 100 candidates) and a randomly initialised cross-encoder of the
medium architecture (bench/speed.py: 8 layers, hidden 512; the product's defaults: backend auto,
the model's full length, focus window). ``Searcher.search_stream(blocks=(20,))``: the first 20
candidates are scored and shown, then the other 80. Speed does not depend on the weights; how
often the early top 10 equals the final one, and its MRR@10, are bench/adaptive.py's (random
scores say nothing about ranking).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench.common import DATA, machine, markdown_table, read_jsonl, today, write_section  # noqa: E402


@click.command()
@click.option("--queries", "n", default=20, show_default=True)
@click.option("--block", default=20, show_default=True, help="Candidates reranked first.")
@click.option("--write/--no-write", default=True, show_default=True)
def main(n: int, block: int, write: bool) -> None:
    from bench.scale_out import enh_lexical
    from bench.speed import build_models
    from amharic_search.search.evaluate import load_queries
    from amharic_search.search.searcher import Searcher

    queries = list(load_queries(DATA / "enh" / "queries.jsonl").values())[:n]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = read_jsonl(DATA / "enh" / "corpus.jsonl")
        build_models(tmp, "medium", [d["text"] for d in corpus[:3000]])
        searcher = Searcher.load(enh_lexical(), reranker=str(tmp / "ce"))
        searcher.search(queries[0], stages="lexical")  # warm
        first, early, final = [], [], []
        for q in queries:
            t = time.perf_counter()
            steps = searcher.search_stream(q, stages="lexical", blocks=(block,))
            next(steps)
            first.append(time.perf_counter() - t)
            next(steps)
            early.append(time.perf_counter() - t)
            list(steps)
            final.append(time.perf_counter() - t)
        whole = []
        for q in queries:  # the same queries without blocks (the score cache is per pair: a new query each time)
            searcher.reranker._cache.clear()
            t = time.perf_counter()
            searcher.search(q, stages="lexical")
            whole.append(time.perf_counter() - t)
        backend = searcher.reranker.backend
    rows = [["first stage (BM25, 100 candidates)", f"{np.median(first) * 1000:.0f} ms", f"{np.percentile(first, 95) * 1000:.0f} ms"],
            [f"first reranked top 10 (top {block} scored)", f"{np.median(early):.2f} s", f"{np.percentile(early, 95):.2f} s"],
            ["final list (all 100 scored, in two blocks)", f"{np.median(final):.2f} s", f"{np.percentile(final, 95):.2f} s"],
            ["final list, one block (`search`)", f"{np.median(whole):.2f} s", f"{np.percentile(whole, 95):.2f} s"]]
    text = (f"`bench/progressive.py`, measured {today()} on {machine()}: {len(queries)} enh test headlines, BM25 first "
            f"stage, 100 candidates, medium cross-encoder architecture with random weights (backend {backend}, full "
            "length, focus window).\n\n" + markdown_table(["answer", "p50", "p95"], rows)
            + "\n\nQuality (how often the early top 10 is the final one, its MRR@10): \"Progressive and adaptive "
            "reranking (quality)\" (bench/adaptive.py).")
    print(text)
    if write:
        write_section("Progressive reranking (speed)", text)


if __name__ == "__main__":
    main()
