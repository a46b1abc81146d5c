"""Progressive and adaptive reranking, quality: how much of the full-depth ranking the early answers keep.

    python bench/adaptive.py --reranker rasyosef/reranker-amharic-medium     # the product's reranker (needs the hub)
    python bench/adaptive.py --reranker PATH                                # a trained cross-encoder (bench/finetune.py)
    python bench/adaptive.py --proxy                                         # offline stand-in, see below

Each query's 100 BM25 candidates (enh index, the product's passages, first-stage order) are scored
once by the second stage; everything else is computed from those scores with the product's own
rules: the progressive answer after the first block (top ``--block`` reranked, the rest after them,
as ``Searcher.search_stream(blocks=...)`` shows it) and the adaptive depth
(``search.adaptive.simulate``, the code path of ``Searcher.search(adaptive=...)``). The adaptive
rule is chosen on tuning queries (enh train headlines, disjoint from the test queries): the rule
that scores the fewest candidates on average with MRR@10 ≥ 0.99 × full depth; it is then reported
on the test headlines.

``--proxy``: no trained cross-encoder is on this machine (the hub is out of reach; bench/finetune.py
trains one on a GPU), so the second stage is the stand-in encoder ../shared/models/me5-small-am
scoring each candidate by cosine to the query. A real, meaningful relevance signal that differs
from BM25, but not a cross-encoder: its figures show the method, the trained reranker's decide the
product's rule.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import click
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench.common import load_collection, machine, markdown_table, today, tuning_queries, write_section  # noqa: E402

STAND_IN = ROOT.parent / "shared" / "models" / "me5-small-am"
GRID = [dict(min_depth=m, block=b, patience=p) for m, b, p in itertools.product((10, 20, 30, 40, 50), (5, 10, 20), (1, 2))]


def scorer(searcher, reranker: str | None, proxy: bool):
    """score(query, passages) -> one value per passage, higher = more relevant."""
    if proxy:
        from index.dense import encode
        from index.models import load_encoder

        model = load_encoder(str(STAND_IN))
        model.max_seq_length = 256
        cache: dict[str, np.ndarray] = {}

        def score(query, passages):
            todo = [p for p in passages if p.passage_id not in cache]
            if todo:
                for p, v in zip(todo, encode(model, [p.text for p in todo], precision="bf16", engine="openvino")):
                    cache[p.passage_id] = v
            q = encode(model, [query], kind="query")[0]
            return np.array([cache[p.passage_id] @ q for p in passages])
        return score, f"proxy: stand-in encoder {STAND_IN.name}, cosine"
    from search.rerank import Reranker

    searcher.reranker = Reranker.load(reranker)
    return (lambda query, passages: searcher.score_passages(query, passages)), f"cross-encoder {reranker}"


def collect(searcher, score, queries: dict[str, str], qrels) -> list[tuple[list[str], np.ndarray, dict]]:
    """Per query: candidate doc ids in first-stage order, their second-stage scores, the judgments."""
    from tqdm import tqdm

    out = []
    for qid, text in tqdm(list(queries.items()), desc="scoring", unit=" queries"):
        _, cands = searcher.first_stage(text, stages="lexical", candidates=100)
        passages = searcher.store.passages([c.row for c in cands])
        out.append(([p.doc_id for p in passages], np.asarray(score(text, passages), dtype=np.float64), qrels.get(qid, {})))
    return out


def rr10(order: list[str], rel: dict) -> float:
    return next((1 / (i + 1) for i, d in enumerate(order[:10]) if rel.get(d, 0) > 0), 0.0)


def reranked(docs: list[str], scores: np.ndarray, scored: int) -> list[str]:
    """The first ``scored`` candidates by score (ties: first-stage order), the rest after them."""
    head = sorted(range(scored), key=lambda i: (-scores[i], i))
    return [docs[i] for i in head] + docs[scored:]


def evaluate_rule(data, rule) -> tuple[float, float]:
    from search.adaptive import simulate

    depths = [simulate(s, rule) for _, s, _ in data]
    return float(np.mean([rr10(reranked(d, s, n), rel) for (d, s, rel), n in zip(data, depths)])), float(np.mean(depths))


@click.command()
@click.option("--reranker", default=None, help="Cross-encoder (hub id or path).")
@click.option("--proxy", is_flag=True, help="The offline stand-in second stage (see the module's doc).")
@click.option("--tuning", "n_tune", default=200, show_default=True)
@click.option("--test", "n_test", default=200, show_default=True)
@click.option("--block", default=20, show_default=True, help="The progressive answer's first block.")
@click.option("--write/--no-write", default=True, show_default=True)
def main(reranker, proxy, n_tune, n_test, block, write) -> None:
    from bench.scale_out import enh_lexical
    from search.adaptive import AdaptiveDepth
    from search.searcher import Searcher

    if bool(reranker) == proxy:
        raise SystemExit("give --reranker PATH or --proxy")
    searcher = Searcher.load(enh_lexical(), reranker=None)
    score, what = scorer(searcher, reranker, proxy)
    tq, tqrels = tuning_queries("enh", n=n_tune)
    _, queries, qrels = load_collection("enh")
    tune = collect(searcher, score, tq, tqrels)
    test = collect(searcher, score, dict(list(queries.items())[:n_test]), qrels)

    rows = []
    for name, data in (("tuning", tune), ("test", test)):
        full = np.mean([rr10(reranked(d, s, len(d)), rel) for d, s, rel in data])
        first = np.mean([rr10(d, rel) for d, _, rel in data])
        early = [reranked(d, s, min(block, len(d))) for d, s, _ in data]
        early_mrr = np.mean([rr10(e, rel) for e, (_, _, rel) in zip(early, data)])
        same = np.mean([e[:10] == reranked(d, s, len(d))[:10] for e, (d, s, _) in zip(early, data)])
        same_set = np.mean([set(e[:10]) == set(reranked(d, s, len(d))[:10]) for e, (d, s, _) in zip(early, data)])
        rows.append([name, len(data), f"{first:.3f}", f"{full:.3f}", f"{early_mrr:.3f}", f"{early_mrr / full:.3f}",
                     f"{same:.2f}", f"{same_set:.2f}"])
        print(rows[-1], flush=True)
    # where the full-depth top 10 comes from in the first stage
    origin = np.zeros(4)
    for d, s, _ in test:
        head = sorted(range(len(d)), key=lambda i: (-s[i], i))[:10]
        origin += np.histogram(head, bins=[0, 20, 50, 80, 100])[0]
    origin /= origin.sum()

    full_tune = np.mean([rr10(reranked(d, s, len(d)), rel) for d, s, rel in tune])
    candidates = []
    for params in GRID:
        mrr, depth = evaluate_rule(tune, AdaptiveDepth(**params))
        candidates.append((depth, -mrr, params, mrr))
    ok = [c for c in candidates if c[3] >= 0.99 * full_tune]
    depth, _, chosen, mrr_tune = min(ok, key=lambda c: (c[0], c[1]))
    rule = AdaptiveDepth(**chosen)
    mrr_test, depth_test = evaluate_rule(test, rule)
    full_test = np.mean([rr10(reranked(d, s, len(d)), rel) for d, s, rel in test])
    default = AdaptiveDepth()
    mrr_def, depth_def = evaluate_rule(test, default)
    adaptive_rows = [
        ["chosen on tuning", str(chosen), "tuning", f"{depth:.1f}", f"{mrr_tune:.3f}", f"{mrr_tune / full_tune:.3f}"],
        ["chosen on tuning", str(chosen), "test", f"{depth_test:.1f}", f"{mrr_test:.3f}", f"{mrr_test / full_test:.3f}"],
        ["the product's default", str(default.to_dict()), "test", f"{depth_def:.1f}", f"{mrr_def:.3f}",
         f"{mrr_def / full_test:.3f}"],
    ]
    for k in (20, 30, 50):
        mrr_k = np.mean([rr10(reranked(d, s, k), rel) for d, s, rel in test])
        adaptive_rows.append([f"fixed depth {k}", "-", "test", f"{k}", f"{mrr_k:.3f}", f"{mrr_k / full_test:.3f}"])
    text = (f"`bench/adaptive.py`, measured {today()} on {machine()}. Second stage: {what}. enh, BM25 first stage, "
            f"100 candidates per query; tuning = {n_tune} enh train headlines (disjoint from the test queries), test = "
            f"the first {n_test} enh test headlines.\n\n"
            f"Progressive answer after the first block ({block} candidates reranked, the rest after them):\n\n"
            + markdown_table(["queries", "n", "MRR@10 first stage", "MRR@10 full depth", f"MRR@10 after {block}",
                              "ratio", "same top 10 (order)", "same top-10 set"], rows)
            + "\n\nWhere the full-depth top 10 comes from (test): first-stage ranks 1-20 "
            + f"{origin[0]:.0%}, 21-50 {origin[1]:.0%}, 51-80 {origin[2]:.0%}, 81-100 {origin[3]:.0%}.\n\n"
            "Adaptive depth (`search.adaptive`; rule = score `min_depth`, then blocks of `block` until `patience` "
            "blocks in a row put nothing into the top 10), grid of "
            f"{len(GRID)} rules on the tuning queries:\n\n"
            + markdown_table(["rule", "parameters", "queries", "mean candidates scored", "MRR@10", "vs full depth"],
                             adaptive_rows))
    print(text)
    if write:
        write_section("Progressive and adaptive reranking (quality)", text + "\n\nRerun: `python bench/adaptive.py "
                      + ("--proxy" if proxy else f"--reranker {reranker}") + "`.")


if __name__ == "__main__":
    main()
