"""Load test: concurrent searches for a bounded time, checked against a sequential baseline.

    python bench/load.py                        # library from 8 threads, 60 s
    python bench/load.py --ui --sessions 4      # 4 browser sessions against `streamlit run app.py`

Library mode: every answer must equal the sequential answer for its query (no cross-talk between
threads), errors are counted, and the process's resident memory is sampled to show it stays flat.
UI mode: each headless Chromium session types its own query in a loop and checks that the page
shows that query's own top document. Models: tiny random ones by default (the load, not the model,
is under test); pass --dense-model/--reranker for others.
"""

from __future__ import annotations

import random
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import click
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench.common import machine, markdown_table, today, write_section  # noqa: E402


def rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prepare(tmp: Path, dense_model: str | None, reranker: str | None) -> tuple[Path, str, str]:
    from tiny_models import build_cross_encoder, build_encoder, train_tokenizer

    from amharic_search.index.build import build_index
    from amharic_search.search.ui.catalog import SAMPLE_CORPUS, sample_examples

    if dense_model is None or reranker is None:
        tok = train_tokenizer(SAMPLE_CORPUS.read_text(encoding="utf-8").splitlines())
        dense_model = dense_model or str(build_encoder(tmp / "enc", tok))
        reranker = reranker or str(build_cross_encoder(tmp / "ce", tok))
    build_index(SAMPLE_CORPUS, tmp / "indexes" / "sample", dense_model=dense_model, examples=sample_examples(),
                show_progress=False)
    return tmp / "indexes" / "sample", dense_model, reranker


def library_load(index: Path, reranker: str, threads: int, seconds: float) -> list:
    from amharic_search.search import Searcher
    from amharic_search.search.ui.catalog import sample_examples

    searcher = Searcher.load(index, reranker=reranker)
    queries = sample_examples(40)
    baseline = {q: [r.doc_id for r in searcher.search(q, top_k=5).results] for q in queries}
    lat, errors, wrong = [], [], 0
    lock = threading.Lock()
    stop = time.perf_counter() + seconds
    mem = [rss_mb()]

    def worker(seed: int) -> None:
        nonlocal wrong
        rng = random.Random(seed)
        while time.perf_counter() < stop:
            q = rng.choice(queries)
            t0 = time.perf_counter()
            try:
                ids = [r.doc_id for r in searcher.search(q, top_k=5).results]
            except Exception as exc:  # noqa: BLE001 - counted, reported
                with lock:
                    errors.append(repr(exc))
                continue
            with lock:
                lat.append((time.perf_counter() - t0) * 1000)
                wrong += ids != baseline[q]

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    while any(t.is_alive() for t in pool):
        time.sleep(1)
        mem.append(rss_mb())
    return [f"library, {threads} threads", f"{seconds:.0f}", len(lat), len(errors), wrong,
            f"{np.percentile(lat, 50):.0f}", f"{np.percentile(lat, 95):.0f}", f"{mem[1]:.0f} → {mem[-1]:.0f}"]


def ui_load(index: Path, dense_model: str, reranker: str, sessions: int, seconds: float) -> list:
    from browser import browser_page, streamlit_server

    from amharic_search.search import Searcher
    from amharic_search.search.ui.catalog import sample_examples

    queries = sample_examples(sessions)
    searcher = Searcher.load(index, reranker=reranker)
    # the page reranks with max_length=510 (its slider default): the reference must too
    expected = {q: searcher.search(q, top_k=10, max_length=510).results[0].doc_id for q in queries}
    env = {"AMHARIC_SEARCH_INDEX_ROOT": str(index.parent), "AMHARIC_SEARCH_RERANKER": reranker,
           "AMHARIC_SEARCH_DENSE_MODEL": dense_model, "HF_HUB_OFFLINE": "1"}
    lat, errors, wrong = [], [], 0
    with streamlit_server(env) as url, browser_page() as page:
        context = page.context
        pages = [page] + [context.browser.new_page() for _ in range(sessions - 1)]
        for p in pages:
            p.goto(url)
            p.get_by_placeholder("ለምሳሌ፦ የቡና ምርት").wait_for(timeout=60_000)
        stop = time.perf_counter() + seconds
        i = 0
        while time.perf_counter() < stop:
            # every session submits a different query each round (rotating), then all are read back:
            # the server runs the sessions concurrently; a page must show its own query's results
            t0 = time.perf_counter()
            asked = [queries[(n + i) % len(queries)] for n in range(len(pages))]
            for p, q in zip(pages, asked):
                p.get_by_placeholder("ለምሳሌ፦ የቡና ምርት").fill(q)
                p.get_by_role("button", name="Search", exact=True).click()
            for p, q in zip(pages, asked):
                try:
                    p.locator(".as-for", has_text=f"“{q}” · reranked").wait_for(timeout=60_000)
                    first = p.locator(".as-card .as-id").first.inner_text()
                    wrong += first != expected[q]
                except Exception as exc:  # noqa: BLE001
                    errors.append(repr(exc))
            lat.append((time.perf_counter() - t0) * 1000)
            i += 1
    return [f"UI, {sessions} browser sessions", f"{seconds:.0f}", len(lat) * sessions, len(errors), wrong,
            f"{np.percentile(lat, 50):.0f} (round)", f"{np.percentile(lat, 95):.0f} (round)", "-"]


@click.command()
@click.option("--threads", default=8, show_default=True)
@click.option("--seconds", default=60.0, show_default=True)
@click.option("--ui/--no-ui", default=True, help="Also run the browser sessions test.")
@click.option("--sessions", default=4, show_default=True)
@click.option("--dense-model", default=None)
@click.option("--reranker", default=None)
def main(threads, seconds, ui, sessions, dense_model, reranker):
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        index, dense_model, reranker = prepare(Path(tmp), dense_model, reranker)
        rows.append(library_load(index, reranker, threads, seconds))
        print(rows[-1], flush=True)
        if ui:
            rows.append(ui_load(index, dense_model, reranker, sessions, seconds))
            print(rows[-1], flush=True)
    body = (
        f"Machine: {machine()}. Date: {today()}. Rerun: `python bench/load.py`.\n\n"
        "Sample index, all stages (tiny random encoder and cross-encoder: the load is under test, not the "
        "models). *wrong* = answers that differ from the sequential answer to the same query (cross-talk); "
        "memory = resident set size at the start and end of the run.\n\n"
        + markdown_table(["load", "seconds", "queries", "errors", "wrong", "p50 ms", "p95 ms", "memory MB"], rows)
    )
    write_section("Load test", body)


if __name__ == "__main__":
    main()
