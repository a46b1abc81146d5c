"""Live updates on enh (index/update.py): time from an add call to searchable, query latency before and
after many small additions, and single-document additions under concurrent query load.

    python bench/live_updates.py                     # writes BENCHMARKS.md "Live updates"
    python bench/live_updates.py --n 1000 --no-write # fewer single additions, print only

The enh index is built lexical-only (no encoder) into bench/.cache/live-updates/ once; each run works on
a copy. With ../shared/models/me5-small-am present, the add time with an encoder is measured on a small
index built with it (--encoder-docs 0 skips it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from bench.common import DATA, machine, markdown_table, read_jsonl, today, write_section  # noqa: E402

CACHE = ROOT / "bench" / ".cache" / "live-updates"
ENCODER = ROOT.parent / "shared" / "models" / "me5-small-am"


def new_docs(corpus: list[dict], prefix: str, n: int, start: int = 0) -> list[dict]:
    """``n`` documents with new ids (the texts of enh articles, from the end of the corpus)."""
    picked = [corpus[-1 - ((start + i) % len(corpus))] for i in range(n)]
    return [{**d, "id": f"{prefix}-{start + i}"} for i, d in enumerate(picked)]


def base_index(corpus_path: Path) -> Path:
    from amharic_search.index.build import build_index

    base = CACHE / "enh-lexical"
    if not (base / "manifest.json").is_file():
        print("building the enh index (lexical only) once ...", flush=True)
        build_index(corpus_path, base, dense_model=None, show_progress=True)
    return base


def fresh_copy(base: Path, name: str) -> Path:
    work = CACHE / name
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(base, work)
    return work


def time_to_searchable(work: Path, corpus: list[dict], *, batch: int, repeats: int, encoder=None) -> list[dict]:
    """Per repeat: seconds from the add call until a reopened searcher finds every new document."""
    from amharic_search.index.update import add_documents
    from amharic_search.search import Searcher

    searcher = Searcher.load(work, reranker=None, use_dense=encoder is not None)
    rows = []
    for r in range(repeats):
        docs = new_docs(corpus, f"live{batch}x{r}", batch, start=r * batch)
        t0 = time.perf_counter()
        add_documents(work, docs, encoder=encoder, dense_model="index" if encoder is not None else None)
        t1 = time.perf_counter()
        searcher = searcher.reopen()
        found = all(searcher.document(d["id"]) is not None for d in docs)
        hit = searcher.search(docs[0]["text"][:200], stages="lexical", rerank=False, top_k=10)
        t2 = time.perf_counter()
        assert found and docs[0]["id"] in [x.doc_id for x in hit.results], "a new document is not searchable"
        rows.append({"add_s": t1 - t0, "reopen_s": t2 - t1, "total_s": t2 - t0})
    return rows


def query_latency(directory: Path, queries: list[str], rounds: int) -> list[float]:
    """Median ms per query (lexical stage, no reranking) in each of ``rounds`` passes over ``queries``."""
    from amharic_search.search import Searcher

    searcher = Searcher.load(directory, reranker=None, use_dense=False)
    for q in queries[:20]:
        searcher.search(q, stages="lexical", rerank=False)
    medians = []
    for _ in range(rounds):
        times = []
        for q in queries:
            t0 = time.perf_counter()
            searcher.search(q, stages="lexical", rerank=False)
            times.append((time.perf_counter() - t0) * 1000)
        medians.append(statistics.median(times))
    return medians


def under_load(work: Path, corpus: list[dict], queries: list[str], n: int, readers: int,
               max_seconds: float = float("inf")) -> dict:
    """``n`` single-document additions, one after the other, while ``readers`` threads search through
    an in-process service (each request picks up the newest generation); then every document is checked."""
    from amharic_search.index.update import add_documents
    from amharic_search.search.service import SearchService, ServiceConfig

    service = SearchService(ServiceConfig(path=str(work), reranker=None, use_dense=False, reload_interval=0))
    base_docs = service.entry(None).searcher.collection.num_docs
    stop = threading.Event()
    errors: list[str] = []
    searches = [0]

    def read(k: int) -> None:
        i = k
        while not stop.is_set():
            try:
                service.entry(None).searcher.search(queries[i % len(queries)], stages="lexical", rerank=False)
                searches[0] += 1
            except Exception as exc:  # noqa: BLE001 - counted
                errors.append(f"search: {type(exc).__name__}: {exc}")
            i += readers

    threads = [threading.Thread(target=read, args=(k,), daemon=True) for k in range(readers)]
    for t in threads:
        t.start()
    docs = new_docs(corpus, "single", n)
    t0 = time.perf_counter()
    slowest = 0.0
    for i, doc in enumerate(docs):
        if time.perf_counter() - t0 > max_seconds:
            docs = docs[:i]
            print(f"  stopped after {i:,} additions: --max-seconds {max_seconds:.0f} reached", flush=True)
            break
        t = time.perf_counter()
        try:
            add_documents(work, [doc], dense_model=None)
        except Exception as exc:  # noqa: BLE001 - counted
            errors.append(f"add {doc['id']}: {type(exc).__name__}: {exc}")
        slowest = max(slowest, time.perf_counter() - t)
        if (i + 1) % 500 == 0:
            print(f"  {i + 1:,} additions, {time.perf_counter() - t0:.0f} s, {searches[0]:,} searches", flush=True)
    seconds = time.perf_counter() - t0
    stop.set()
    for t in threads:
        t.join()
    searcher = service.entry(None).searcher
    lost = [d["id"] for d in docs if searcher.document(d["id"]) is None]
    segments = [p for p in searcher.manifest["segments"]["parts"] if p["path"].startswith("segments/")]
    service.close()
    return {"n": len(docs), "asked": n, "seconds": seconds, "slowest_add_s": slowest, "searches": searches[0], "errors": errors,
            "lost": lost, "documents": searcher.collection.num_docs, "expected": base_docs + len(docs),
            "segments": len(segments)}


def with_encoder(corpus: list[dict], docs: int, repeats: int) -> list[dict] | None:
    from amharic_search.index.build import build_index
    from amharic_search.index.models import load_encoder

    if docs <= 0 or not ENCODER.is_dir():
        return None
    base = CACHE / "enh-me5-300"
    if not (base / "manifest.json").is_file():
        path = CACHE / "enh-300.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            for d in corpus[:300]:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
        print("building a 300-document enh index with me5-small-am once ...", flush=True)
        build_index(path, base, dense_model=str(ENCODER), show_progress=True)
    work = fresh_copy(base, "work-encoder")
    encoder = load_encoder(str(ENCODER))
    return time_to_searchable(work, corpus, batch=docs, repeats=repeats, encoder=encoder)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=100, help="documents per timed addition")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--small", type=int, default=100, help="single-document additions before the latency is measured again")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=10_000, help="single-document additions under query load")
    ap.add_argument("--readers", type=int, default=2, help="query threads during those additions")
    ap.add_argument("--max-seconds", type=float, default=1800, help="stop the single additions after this long")
    ap.add_argument("--encoder-docs", type=int, default=10)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    corpus_path = DATA / "enh" / "corpus.jsonl"
    corpus = read_jsonl(corpus_path)
    queries = [q["text"] for q in read_jsonl(DATA / "enh" / "queries.jsonl")][: args.queries]
    base = base_index(corpus_path)

    work = fresh_copy(base, "work")
    timed = time_to_searchable(work, corpus, batch=args.batch, repeats=args.repeats)
    print("add -> searchable:", [round(r["total_s"], 3) for r in timed], flush=True)
    enc = with_encoder(corpus, args.encoder_docs, 3)
    if enc:
        print(f"with me5-small-am, {args.encoder_docs} docs:", [round(r["total_s"], 3) for r in enc], flush=True)

    from amharic_search.index.update import add_documents, compact

    lat_dir = fresh_copy(base, "work-latency")
    before = query_latency(lat_dir, queries, args.rounds)
    for doc in new_docs(corpus, "small", args.small):
        add_documents(lat_dir, [doc], dense_model=None)
    after = query_latency(lat_dir, queries, args.rounds)
    compact(lat_dir)
    compacted = query_latency(lat_dir, queries, args.rounds)
    print("latency ms before / after / compacted:", before, after, compacted, flush=True)

    load = under_load(fresh_copy(base, "work-load"), corpus, queries, args.n, args.readers, args.max_seconds)
    print({k: v for k, v in load.items() if k not in ("errors", "lost")}, "errors:", len(load["errors"]),
          "lost:", len(load["lost"]), flush=True)
    for e in load["errors"][:5]:
        print("  ", e)

    med = lambda rows, k: statistics.median(r[k] for r in rows)  # noqa: E731
    body = [f"Machine: {machine()}; {today()}. `python bench/live_updates.py --n {args.n} --max-seconds {args.max_seconds:.0f}` "
            "(index/update.py; enh, 12,986 articles, built lexical-only; the machine shared with other work)."]
    body.append("")
    rows = [[f"{args.batch} documents, no encoder", f"{med(timed, 'add_s'):.2f}", f"{med(timed, 'reopen_s'):.3f}",
             f"{med(timed, 'total_s'):.2f}", f"{max(r['total_s'] for r in timed):.2f}", len(timed)]]
    if enc:
        rows.append([f"{args.encoder_docs} documents, me5-small-am loaded (a 300-doc index)", f"{med(enc, 'add_s'):.2f}",
                     f"{med(enc, 'reopen_s'):.3f}", f"{med(enc, 'total_s'):.2f}", f"{max(r['total_s'] for r in enc):.2f}",
                     len(enc)])
    body.append("Time from `add_documents` to searchable (the add's commit, then a reopened searcher finds every new "
                "document), in seconds:\n")
    body.append(markdown_table(["addition", "add (median)", "reopen (median)", "to searchable (median)", "max", "runs"], rows))
    body.append("")
    spread = lambda xs: f"{statistics.median(xs):.2f} ({min(xs):.2f}–{max(xs):.2f})"  # noqa: E731
    body.append(f"Query latency, lexical stage (no encoder, no reranking), median ms per query over {len(queries)} enh "
                f"queries, median of {args.rounds} passes (range over passes = the noise):\n")
    body.append(markdown_table(["index", "ms per query"], [
        ["as built", spread(before)],
        [f"after {args.small} single-document additions (segments merged by the policy)", spread(after)],
        ["after `index compact`", spread(compacted)],
    ]))
    body.append("")
    body.append(f"Single-document additions under query load ({args.readers} query threads through an in-process "
                f"service that picks up each generation): **{load['n']:,} additions** in {load['seconds']:.0f} s "
                f"({load['n'] / load['seconds']:.1f} per second; slowest {load['slowest_add_s']:.2f} s: merges run inside the "
                f"add that triggers them, not in the background), {load['searches']:,} searches meanwhile; **{len(load['errors'])} errors, {len(load['lost'])} "
                f"lost documents** ({load['documents']:,} live documents at the end, {load['expected']:,} expected; "
                f"{load['segments']} segments).")
    if load["n"] < 10_000:
        body.append("")
        body.append(f"Only {load['n']:,} of the 10,000 additions the issue asks for were run here (the 2-core machine is "
                    f"shared; --n {args.n}, --max-seconds {args.max_seconds:.0f}); `--n 10000` runs them all.")
    text = "\n".join(body)
    print(text)
    if not args.no_write:
        write_section("Live updates", text)


if __name__ == "__main__":
    main()
