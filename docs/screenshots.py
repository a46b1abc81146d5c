"""Take the README's screenshots of the UI with headless Chromium.

    .venv/bin/python docs/screenshots.py

The hub models cannot be downloaded on the machine that took them, so the page runs with stand-ins:
the dense stage uses ../shared/models/me5-small-am (multilingual-e5-small) when present, and the
reranker is a tiny randomly initialised cross-encoder (its scores only show the layout).
Ethiopic text needs a font in the browser: `apt-get install fonts-noto-core`.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from browser import browser_page, run_query, streamlit_server  # noqa: E402
from tiny_models import build_cross_encoder, train_tokenizer  # noqa: E402

from index.build import build_index  # noqa: E402
from search.catalog import SAMPLE_CORPUS, sample_examples  # noqa: E402

STAND_IN = ROOT.parent / "shared" / "models" / "me5-small-am"


def main() -> None:
    out = ROOT / "docs"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        texts = [line for line in SAMPLE_CORPUS.read_text(encoding="utf-8").splitlines()]
        reranker = build_cross_encoder(tmp / "reranker", train_tokenizer(texts))
        dense = str(STAND_IN) if STAND_IN.is_dir() else None
        build_index(SAMPLE_CORPUS, tmp / "indexes" / "sample", dense_model=dense, name="sample",
                    examples=sample_examples(), show_progress=True)
        env = {"AMHARIC_SEARCH_INDEX_ROOT": str(tmp / "indexes"), "AMHARIC_SEARCH_RERANKER": str(reranker),
               "HF_HUB_OFFLINE": "1"}
        with streamlit_server(env) as url, browser_page(1400, 1100) as page:
            page.goto(url)
            run_query(page, "የወባ በሽታ መከላከል")
            page.get_by_text("Reranked").first.wait_for(timeout=120_000)
            page.wait_for_timeout(1000)
            page.screenshot(path=str(out / "search.png"))
            page.get_by_text("Compare stages").click()
            page.get_by_text("Hybrid + rerank").first.wait_for(timeout=120_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(out / "compare.png"))
            page.get_by_text("Search", exact=True).first.click()
            page.get_by_text("Index information").click()
            page.get_by_text("Index your own files").click()
            page.wait_for_timeout(1000)
            page.screenshot(path=str(out / "sidebar.png"))
    print("wrote", ", ".join(str(out / n) for n in ("search.png", "compare.png", "sidebar.png")))


if __name__ == "__main__":
    main()
