"""First-stage quality: lexical, dense and each fusion, on enh and amqa+enh (issue: fusion).

    python bench/dense_runs.py --collection enh --window 256        # once per collection/window;
    python bench/dense_runs.py --collection enh --window 512        #   about 1 h 20 each on a 2-core
    python bench/dense_runs.py --collection amqa+enh --window 256   #   CPU, a minute or two on a GPU
    python bench/fusion.py                                          # seconds

Document level, as the product ranks: BM25 over whole documents (default analyzer); dense = the
stand-in encoder ../shared/models/me5-small-am over the index's passages, document score = its best
passage (the table "dense: truncated or passages" is how that was chosen). Settings are chosen on
held-out train queries of each collection (`tune` split); figures are on the test queries. The
fusion code is the product's (`search.fusion`).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import load_collection, machine, markdown_table, today, tuning_queries, write_section  # noqa: E402
from bench.dense_runs import document_texts, load_run, run_path  # noqa: E402
from amharic_search.index.analyzer import Analyzer  # noqa: E402
from amharic_search.index.bm25 import BM25Index  # noqa: E402
from amharic_search.search.evaluate import evaluate  # noqa: E402
from amharic_search.search.fusion import ranked, rrf, weighted_sum  # noqa: E402

DEPTH = 300


def document_bm25(corpus) -> tuple[Analyzer, BM25Index]:
    """The product's BM25 over whole documents, with the analyzer that reads the queries."""
    a = Analyzer()
    return a, BM25Index.build([a.tokens(t) for t in document_texts(corpus)])


def lexical_lists(corpus, queries, depth=DEPTH):
    a, bm25 = document_bm25(corpus)
    return {q: bm25.top_k(a.tokens(text), depth) for q, text in queries.items()}


def dense_lists(name, window=256, variant="max"):
    return load_run(name, window, variant)


def split(lists, queries):
    return {q: lists[q] for q in queries}


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


def evaluate_collection(name):
    corpus, queries, qrels = load_collection(name)
    tq, tqrels = tuning_queries(name)
    ids = [d["id"] for d in corpus]
    lex_t, lex = lexical_lists(corpus, tq), lexical_lists(corpus, queries)
    dense = dense_lists(name)
    den_t, den = split(dense, tq), split(dense, queries)
    rows = [("lexical (BM25, default analyzer)", evaluate(to_run(ids, lex_t), tqrels), evaluate(to_run(ids, lex), qrels)),
            ("dense (stand-in, best passage)", evaluate(to_run(ids, den_t), tqrels), evaluate(to_run(ids, den), qrels))]
    for depth in (100, 200, 300):
        for method, kw in VARIANTS:
            tune = evaluate(to_run(ids, fuse(lex_t, den_t, method, depth, **kw)), tqrels)
            test = evaluate(to_run(ids, fuse(lex, den, method, depth, **kw)), qrels)
            rows.append((label(method, kw, depth), tune, test))
    # candidates sent to the reranker, with the default fusion (z-score sum, dense weight 0.3, depth 300)
    fused = fuse(lex, den, "zscore", 300, w=0.3)
    recall = {k: float(np.mean([any(ids[r] in rel for r in fused[q][0][:k]) for q, rel in qrels.items()]))
              for k in (50, 100, 150, 200, 300)}
    union = float(np.mean([any(ids[r] in rel for r in set(lex[q][0][:100].tolist()) | set(den[q][0][:100].tolist()))
                           for q, rel in qrels.items()]))
    # robustness: a lexical stage made weaker than dense (60% of each query's words dropped)
    rng = random.Random(0)
    weak_q = {q: " ".join(w for w in t.split() if rng.random() > 0.6) or t.split()[0] for q, t in queries.items()}
    weak = lexical_lists(corpus, weak_q)
    robust = [("weakened lexical alone", evaluate(to_run(ids, weak), qrels)), ("dense alone", rows[1][2])]
    for method, kw in [("zscore", dict(w=0.3)), ("zscore", dict(w=0.5)), ("minmax", dict(w=0.3)), ("rrf", dict(k=60))]:
        robust.append((label(method, kw, 200), evaluate(to_run(ids, fuse(weak, den, method, 200, **kw)), qrels)))
    return rows, recall, union, robust


def dense_choice_table(names_windows) -> str:
    rows = []
    for name, window in names_windows:
        corpus, queries, qrels = load_collection(name)
        tq, tqrels = tuning_queries(name)
        ids = [d["id"] for d in corpus]
        for variant in VARIANTS_DENSE:
            d = load_run(name, window, variant)
            with np.load(run_path(name, window, variant)) as f:
                n_pass = int(f["passages"])
            tune, test = evaluate(to_run(ids, split(d, tq)), tqrels), evaluate(to_run(ids, split(d, queries)), qrels)
            what = DENSE_LABELS[variant].format(n=len(corpus) if variant == "truncated" else n_pass,
                                                tokens=window if variant == "truncated" else min(350, window - 6))
            rows.append([name, window, what, tune["MRR@10"], test["MRR@10"], test["nDCG@10"], test["Recall@10"], test["Recall@100"]])
            print(rows[-1], flush=True)
    return markdown_table(["collection", "window", "dense documents", "tune MRR@10", "MRR@10", "nDCG@10", "R@10", "R@100"], rows)


VARIANTS_DENSE = ("truncated", "max", "sum2", "max+truncated")
DENSE_LABELS = {
    "truncated": "one embedding per document, cut at {tokens} tokens ({n} vectors)",
    "max": "passages of <= {tokens} tokens ({n} vectors), document = best passage",
    "sum2": "passages, document = sum of its best two",
    "max+truncated": "passages, document = mean of best passage and truncated document",
}


@click.command()
@click.option("--collections", default="enh,amqa+enh")
def main(collections: str) -> None:
    body = [
        f"Machine: {machine()}. Date: {today()}. Rerun: `python bench/dense_runs.py --collection enh --window 256` "
        "(and `--window 512`, and `--collection amqa+enh --window 256`), then `python bench/fusion.py`. The dense runs "
        "used here were embedded on an NVIDIA H200 (`--device cuda`); 500 document vectors compared with this CPU's "
        "had cosine 1.000000 at worst.\n",
        "Document level; dense = stand-in encoder me5-small-am (multilingual-e5-small); lexical = BM25 with the default "
        "analyzer. `tune` = 1,000 held-out train queries of the collection (AmQA train questions for amqa+enh), `test` "
        "= the collection's test queries. Fused lists are cut to 100 candidates (the reranker's input); depth = "
        "documents taken from each retriever.\n",
        "### Dense: one truncated embedding per document, or passages\n",
        dense_choice_table([("enh", 256), ("enh", 512), ("amqa+enh", 256)]),
        "\nDocument = best passage is the product's rule: it is the best or near the best on every collection "
        "(amqa+enh: +0.086 MRR@10 over truncated documents; enh headlines, which match an article's lead: within "
        "0.015 of truncation at 256 tokens and ahead at 512). The sum of the best two passages loses everywhere; the "
        "mean of best passage and document head helps enh and hurts amqa+enh.\n",
    ]
    for name in collections.split(","):
        rows, recall, union, robust = evaluate_collection(name)
        best = max(rows[2:], key=lambda r: r[1]["MRR@10"])
        table = [[lbl, tune["MRR@10"], tune["Recall@100"], test["MRR@10"], test["nDCG@10"], test["Recall@10"],
                  test["Recall@100"]] for lbl, tune, test in rows]
        for r in table:
            print(name, " | ".join(f"{x:.3f}" if isinstance(x, float) else str(x) for x in r), flush=True)
        body.append(f"### {name}\n\nBest on the tuning queries: **{best[0]}** "
                    f"(test MRR@10 {best[2]['MRR@10']:.3f}, Recall@100 {best[2]['Recall@100']:.3f}).\n")
        body.append(markdown_table(["first stage", "tune MRR@10", "tune R@100", "MRR@10", "nDCG@10", "R@10", "R@100"], table))
        body.append(f"\nCandidates to the reranker (default fusion, depth 300): recall of the fused top 50 / 100 / 150 / "
                    f"200 / 300 = {' / '.join(f'{v:.3f}' for v in recall.values())}; the union of both retrievers' "
                    f"top 100 holds the relevant document for {union:.3f} of the queries. Rerank time grows linearly "
                    "with the candidates (see the speed sections).\n")
        body.append("When dense is the stronger input (lexical weakened by dropping 60% of each query's words):\n")
        body.append(markdown_table(["first stage", "MRR@10", "R@100"], [[lbl, m["MRR@10"], m["Recall@100"]] for lbl, m in robust]))
        body.append("")
    write_section("First stage: dense and fusion", "\n".join(body))


if __name__ == "__main__":
    main()
