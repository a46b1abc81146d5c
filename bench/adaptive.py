"""Progressive and adaptive reranking, quality: how much of the full-depth ranking the early answers keep.

    python bench/adaptive.py --reranker rasyosef/reranker-amharic-medium     # the product's reranker (needs the hub)
    python bench/adaptive.py --reranker PATH                                # a trained cross-encoder (bench/finetune.py)
    python bench/adaptive.py --proxy                                         # offline stand-ins, see below

Each query's 100 BM25 candidates (the product's passages, first-stage order; enh and amqa+enh) are
scored once by the second stage; everything else is computed from those scores with the product's
own rules: the progressive answer after the first block (top ``--block`` reranked, the rest after
them, as ``Searcher.search_stream(blocks=...)`` shows it) and the adaptive depth
(``search.adaptive.simulate``, the code path of ``Searcher.search(adaptive=...)``). The adaptive
rule is chosen on tuning queries (the collection's train questions, disjoint from its test
queries): the rule that scores the fewest candidates on average with MRR@10 ≥ 0.99 × full depth;
it is then reported on the test queries.

``--proxy``: no trained cross-encoder is on this machine (the hub is out of reach; bench/finetune.py
trains one on a GPU), so two stand-in second stages, from one pass of the stand-in encoder
../shared/models/me5-small-am over the candidates, bracket what a cross-encoder does:

* ``cosine``: each candidate's cosine to the query. It reorders the candidates deeply, the way a
  cross-encoder does, but on enh it ranks below BM25 (dense alone 0.40 vs 0.70 MRR@10), so there
  an early answer that keeps more of BM25's order looks better than full depth.
* ``bm25+cosine``: BM25 score and cosine, z-score normalized over the 100 candidates and summed
  with the product's fusion weights (BM25 0.7, dense 0.3): better than BM25 on both collections,
  but close to the first-stage order, which flatters early answers.

Their figures show the method and its range; the trained reranker's decide the product's rule.
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
PROXY_WEIGHTS = {"bm25": 0.7, "dense": 0.3}
GRID = [dict(min_depth=m, block=b, patience=p) for m, b, p in itertools.product((10, 20, 30, 40, 50), (5, 10, 20), (1, 2))]


def scorer(searcher, reranker: str | None, proxy: bool):
    """(score, description): score(query, passages, first-stage scores) -> {second stage: one value per
    passage, higher = more relevant}."""
    if proxy:
        from amharic_search.index.dense import encode
        from amharic_search.index.models import load_encoder
        from amharic_search.search.fusion import weighted_sum

        model = load_encoder(str(STAND_IN))
        model.max_seq_length = 256
        cache: dict[str, np.ndarray] = {}

        def score(query, passages, first):
            todo = [p for p in passages if p.passage_id not in cache]
            if todo:
                for p, v in zip(todo, encode(model, [p.text for p in todo], precision="bf16", engine="openvino")):
                    cache[p.passage_id] = v
            q = encode(model, [query], kind="query")[0]
            cos = np.array([cache[p.passage_id] @ q for p in passages])
            ids = range(len(passages))
            fused = weighted_sum({"bm25": (ids, first), "dense": (ids, cos)}, weights=PROXY_WEIGHTS,
                                 normalization="zscore")
            return {"cosine": cos, "bm25+cosine": np.array([fused[i] for i in ids])}
        return score, (f"two proxies from the stand-in encoder {STAND_IN.name} (256 tokens): `cosine` = cosine to the "
                       f"query; `bm25+cosine` = z-score sum of BM25 ({PROXY_WEIGHTS['bm25']}) and cosine "
                       f"({PROXY_WEIGHTS['dense']}) over the 100 candidates")
    from amharic_search.search.rerank import Reranker

    searcher.second.reranker = Reranker.load(reranker)
    name = Path(reranker).name
    return (lambda query, passages, first: {name: np.asarray(searcher.score_passages(query, passages))}), \
        f"cross-encoder `{reranker}`"


def collect(searcher, score, queries: dict[str, str], qrels, desc: str) -> list[tuple[list[str], dict, dict]]:
    """Per query: candidate doc ids in first-stage order, each second stage's scores, the judgments."""
    from tqdm import tqdm

    out = []
    for qid, text in tqdm(list(queries.items()), desc=desc, unit=" queries"):
        _, cands = searcher.first_stage(text, stages="lexical", candidates=100)
        passages = searcher.collection.passages([c.row for c in cands])
        scores = score(text, passages, [c.scores.bm25 for c in cands])
        out.append(([p.doc_id for p in passages], {k: np.asarray(v, dtype=np.float64) for k, v in scores.items()},
                    qrels.get(qid, {})))
    return out


def rr10(order: list[str], rel: dict) -> float:
    return next((1 / (i + 1) for i, d in enumerate(order[:10]) if rel.get(d, 0) > 0), 0.0)


def reranked(docs: list[str], scores: np.ndarray, scored: int) -> list[str]:
    """The first ``scored`` candidates by score (ties: first-stage order), the rest after them."""
    head = sorted(range(scored), key=lambda i: (-scores[i], i))
    return [docs[i] for i in head] + docs[scored:]


def evaluate_rule(data, rule) -> tuple[float, float]:
    from amharic_search.search.adaptive import simulate

    depths = [simulate(s, rule) for _, s, _ in data]
    return float(np.mean([rr10(reranked(d, s, n), rel) for (d, s, rel), n in zip(data, depths)])), float(np.mean(depths))


def report(collection: str, stage: str, tune, test, block: int) -> tuple[list, list, list]:
    """Rows of the three tables for one collection and one second stage; data = (docs, scores, judgments)."""
    from amharic_search.search.adaptive import AdaptiveDepth

    progressive = []
    for name, data in (("tuning", tune), ("test", test)):
        full = np.mean([rr10(reranked(d, s, len(d)), rel) for d, s, rel in data])
        first = np.mean([rr10(d, rel) for d, _, rel in data])
        early = [reranked(d, s, min(block, len(d))) for d, s, _ in data]
        early_mrr = np.mean([rr10(e, rel) for e, (_, _, rel) in zip(early, data)])
        same = np.mean([e[:10] == reranked(d, s, len(d))[:10] for e, (d, s, _) in zip(early, data)])
        same_set = np.mean([set(e[:10]) == set(reranked(d, s, len(d))[:10]) for e, (d, s, _) in zip(early, data)])
        progressive.append([collection, stage, name, len(data), f"{first:.3f}", f"{full:.3f}", f"{early_mrr:.3f}",
                            f"{early_mrr / full:.3f}", f"{same:.2f}", f"{same_set:.2f}"])
    # where the full-depth top 10 comes from in the first stage
    origin = np.zeros(4)
    for d, s, _ in test:
        head = sorted(range(len(d)), key=lambda i: (-s[i], i))[:10]
        origin += np.histogram(head, bins=[0, 20, 50, 80, 100])[0]
    origin_row = [collection, stage] + [f"{x:.0%}" for x in origin / origin.sum()]

    full_tune = np.mean([rr10(reranked(d, s, len(d)), rel) for d, s, rel in tune])
    full_test = np.mean([rr10(reranked(d, s, len(d)), rel) for d, s, rel in test])
    candidates = []
    for params in GRID:
        mrr, depth = evaluate_rule(tune, AdaptiveDepth(**params))
        candidates.append((depth, -mrr, params, mrr))
    ok = [c for c in candidates if c[3] >= 0.99 * full_tune]
    depth, _, chosen, mrr_tune = min(ok, key=lambda c: (c[0], c[1]))
    mrr_test, depth_test = evaluate_rule(test, AdaptiveDepth(**chosen))
    default = AdaptiveDepth()
    mrr_def, depth_def = evaluate_rule(test, default)
    rule = lambda p: f"min_depth {p['min_depth']}, block {p['block']}, patience {p['patience']}"  # noqa: E731
    adaptive = [
        [collection, stage, "chosen on tuning", rule(chosen), "tuning", f"{depth:.1f}", f"{mrr_tune:.3f}",
         f"{mrr_tune / full_tune:.3f}"],
        [collection, stage, "chosen on tuning", rule(chosen), "test", f"{depth_test:.1f}", f"{mrr_test:.3f}",
         f"{mrr_test / full_test:.3f}"],
        [collection, stage, "the product's default", rule(default.to_dict()), "test", f"{depth_def:.1f}",
         f"{mrr_def:.3f}", f"{mrr_def / full_test:.3f}"],
    ]
    for k in (20, 30, 50):
        mrr_k = np.mean([rr10(reranked(d, s, k), rel) for d, s, rel in test])
        adaptive.append([collection, stage, f"fixed depth {k}", "-", "test", f"{k}", f"{mrr_k:.3f}",
                         f"{mrr_k / full_test:.3f}"])
    return progressive, [origin_row], adaptive


@click.command()
@click.option("--reranker", default=None, help="Cross-encoder (hub id or path).")
@click.option("--proxy", is_flag=True, help="The offline stand-in second stages (see the module's doc).")
@click.option("--collection", "collections", multiple=True, type=click.Choice(["enh", "amqa+enh"]),
              default=("enh", "amqa+enh"), show_default=True)
@click.option("--tuning", "n_tune", default=200, show_default=True, help="Tuning queries per collection.")
@click.option("--test", "n_test", default=200, show_default=True, help="Test queries per collection.")
@click.option("--block", default=20, show_default=True, help="The progressive answer's first block.")
@click.option("--write/--no-write", default=True, show_default=True)
def main(reranker, proxy, collections, n_tune, n_test, block, write) -> None:
    from bench.finetune import corpus_file, lexical_index
    from amharic_search.search.searcher import Searcher

    if bool(reranker) == proxy:
        raise SystemExit("give --reranker PATH or --proxy")
    tables: tuple[list, list, list] = ([], [], [])
    what = ""
    for collection in collections:
        searcher = Searcher.load(lexical_index(collection, corpus_file(collection)), reranker=None)
        score, what = scorer(searcher, reranker, proxy)
        tq, tqrels = tuning_queries(collection, n=n_tune)
        _, queries, qrels = load_collection(collection)
        test_q = dict(list((q, t) for q, t in queries.items() if q in qrels)[:n_test])
        tune = collect(searcher, score, tq, tqrels, f"{collection} tuning")
        test = collect(searcher, score, test_q, qrels, f"{collection} test")
        for stage in tune[0][1]:
            pick = lambda data: [(d, s[stage], rel) for d, s, rel in data]  # noqa: E731
            for table, rows in zip(tables, report(collection, stage, pick(tune), pick(test), block)):
                table.extend(rows)
                for row in rows:
                    print(row, flush=True)
    progressive, origin, adaptive = tables
    text = (f"`bench/adaptive.py`, measured {today()} on {machine()}. Second stage: {what}. BM25 first stage, 100 "
            f"candidates per query; tuning = {n_tune} train questions of the collection (enh headlines, AmQA "
            f"questions; disjoint from the test queries), test = the first {n_test} judged test queries.\n\n"
            f"Progressive answer after the first block ({block} candidates reranked, the rest after them):\n\n"
            + markdown_table(["collection", "second stage", "queries", "n", "MRR@10 first stage", "MRR@10 full depth",
                              f"MRR@10 after {block}", "ratio", "same top 10 (order)", "same top-10 set"], progressive)
            + "\n\nWhere the full-depth top 10 comes from (test queries; first-stage ranks):\n\n"
            + markdown_table(["collection", "second stage", "1-20", "21-50", "51-80", "81-100"], origin)
            + "\n\nAdaptive depth (`search.adaptive`; rule = score `min_depth`, then blocks of `block` until `patience` "
            f"blocks in a row put nothing into the top 10); the rule chosen among {len(GRID)} on the tuning queries:\n\n"
            + markdown_table(["collection", "second stage", "rule", "parameters", "queries", "mean candidates scored",
                              "MRR@10", "vs full depth"], adaptive))
    if proxy:
        text += ("\n\nHow to read the proxies: where a second stage ranks below the first stage (`cosine` on enh and "
                 "amqa+enh), a ratio above 1 says only that BM25's order beats it; `bm25+cosine` beats BM25 but takes "
                 "nearly all of its top 10 from the first 20 ranks, which flatters early answers. A good cross-encoder "
                 "does both, reorders deeply and beats BM25; its run (`--reranker PATH`) decides the product's rule.")
    print(text)
    if write:
        write_section("Progressive and adaptive reranking (quality)", text + "\n\nRerun: `python bench/adaptive.py "
                      + ("--proxy" if proxy else f"--reranker {reranker}") + "`.")


if __name__ == "__main__":
    main()
