"""First-stage quality: lexical, dense and each fusion, on enh and amqa+enh (issue: fusion).

    python bench/embed.py --collection amqa && python bench/embed.py --collection enh   # once, ~20 min
    python bench/fusion.py                                                               # seconds

Document level, documents embedded whole (truncated at 256 tokens) with the stand-in encoder
../shared/models/me5-small-am. Settings are chosen on held-out train queries of each collection
(`tune` split), figures are reported on the test queries. The fusion code is the product's
(`search.fusion`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import load_collection, machine, markdown_table, today, tuning_queries, write_section  # noqa: E402
from bench.embed import STAND_IN, caches, document_texts  # noqa: E402
from index.analyzer import Analyzer  # noqa: E402
from index.bm25 import BM25Index  # noqa: E402
from search.evaluate import evaluate  # noqa: E402
from search.fusion import ranked, rrf, weighted_sum  # noqa: E402

DEPTH = 300


def lexical_lists(corpus, queries, depth=DEPTH):
    a = Analyzer()
    bm25 = BM25Index.build([a.tokens(t) for t in document_texts(corpus)])
    return {q: bm25.top_k(a.tokens(text), depth) for q, text in queries.items()}


def dense_lists(corpus, queries, model_path, max_seq_length=256, depth=DEPTH):
    c = caches(model_path, max_seq_length)
    docs = c["document"].get(document_texts(corpus))
    qs = c["query"].get(list(queries.values()))
    if any(v is None for v in docs) or any(v is None for v in qs):
        raise SystemExit("embeddings missing: run bench/embed.py for this collection first")
    D = np.stack(docs)
    out = {}
    for qid, qv in zip(queries, qs):
        s = D @ qv
        top = np.argpartition(-s, depth)[:depth]
        top = top[np.argsort(-s[top])]
        out[qid] = (top, s[top])
    return out


def to_run(ids, lists, depth=100):
    return {q: {ids[r]: float(depth - i) for i, r in enumerate(rows[:depth])} for q, (rows, _) in lists.items()}


def fuse(lex, den, method, depth=100, **kw):
    out = {}
    for q in lex:
        lr, ls = lex[q][0][:depth], lex[q][1][:depth]
        dr, ds = den[q][0][:depth], den[q][1][:depth]
        if method == "rrf":
            fused = rrf({"bm25": lr.tolist(), "dense": dr.tolist()}, k=kw.get("k", 60),
                        weights={"bm25": 1.0, "dense": kw.get("w", 1.0)})
        else:
            fused = weighted_sum({"bm25": (lr, ls), "dense": (dr, ds)}, normalization=method,
                                 weights={"bm25": 1.0 - kw["w"], "dense": kw["w"]})
        out[q] = (np.array([r for r, _ in ranked(fused)]), None)
    return out


VARIANTS = (
    [("rrf", dict(k=k)) for k in (10, 30, 60, 100)]
    + [("rrf", dict(k=60, w=w)) for w in (0.25, 0.5, 0.75)]
    + [("minmax", dict(w=w)) for w in (0.1, 0.2, 0.3, 0.4, 0.5)]
    + [("zscore", dict(w=w)) for w in (0.1, 0.2, 0.3, 0.4, 0.5)]
)


def label(method, kw, depth):
    if method == "rrf":
        w = f", w_dense={kw['w']}" if "w" in kw else ""
        return f"RRF k={kw['k']}{w}, depth {depth}"
    return f"{method} sum, w_dense={kw['w']}, depth {depth}"


def evaluate_collection(name, model_path):
    corpus, queries, qrels = load_collection(name)
    tq, tqrels = tuning_queries(name)
    ids = [d["id"] for d in corpus]
    lex_t, den_t = lexical_lists(corpus, tq), dense_lists(corpus, tq, model_path)
    lex, den = lexical_lists(corpus, queries), dense_lists(corpus, queries, model_path)
    rows = []
    for lbl, (lt, l) in {"lexical (BM25, default analyzer)": (lex_t, lex), "dense (stand-in)": (den_t, den)}.items():
        rows.append((lbl, evaluate(to_run(ids, lt), tqrels), evaluate(to_run(ids, l), qrels)))
    for depth in (100, 200, 300):
        for method, kw in VARIANTS:
            tune = evaluate(to_run(ids, fuse(lex_t, den_t, method, depth, **kw)), tqrels)
            test = evaluate(to_run(ids, fuse(lex, den, method, depth, **kw)), qrels)
            rows.append((label(method, kw, depth), tune, test))
    return rows


@click.command()
@click.option("--collections", default="enh,amqa+enh")
@click.option("--model", "model_path", default=str(STAND_IN))
def main(collections: str, model_path: str) -> None:
    body = [
        f"Machine: {machine()}. Date: {today()}. Rerun: `python bench/embed.py --collection amqa; "
        "python bench/embed.py --collection enh; python bench/fusion.py`.\n",
        "Document level; dense = stand-in encoder me5-small-am (multilingual-e5-small), documents truncated "
        "at 256 tokens; lexical = BM25 with the default analyzer. `tune` = 1,000 held-out train queries of the "
        "collection (AmQA train questions for amqa+enh), `test` = the collection's test queries. Fused lists are "
        "cut to 100 candidates (the reranker's input); depth = candidates taken from each retriever.\n",
    ]
    for name in collections.split(","):
        rows = evaluate_collection(name, model_path)
        best = max(rows[2:], key=lambda r: r[1]["MRR@10"])
        table = [[lbl, tune["MRR@10"], tune["Recall@100"], test["MRR@10"], test["nDCG@10"], test["Recall@10"],
                  test["Recall@100"]] for lbl, tune, test in rows]
        for r in table:
            print(name, " | ".join(f"{x:.3f}" if isinstance(x, float) else str(x) for x in r), flush=True)
        body.append(f"### {name}\n\nBest on the tuning queries: **{best[0]}** "
                    f"(test MRR@10 {best[2]['MRR@10']:.3f}, Recall@100 {best[2]['Recall@100']:.3f}).\n")
        body.append(markdown_table(["first stage", "tune MRR@10", "tune R@100", "MRR@10", "nDCG@10", "R@10", "R@100"], table))
        body.append("")
    write_section("First stage: dense and fusion", "\n".join(body))


if __name__ == "__main__":
    main()
