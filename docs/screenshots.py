"""Take the README's screenshots of the UI with headless Chromium.

    .venv/bin/python docs/screenshots.py

The hub models cannot be downloaded on the machine that took them, so the page runs with a stand-in
dense encoder, ../shared/models/me5-small-am (multilingual-e5-small), when present, and without a
reranker (a random one would show a meaningless order).
Ethiopic text needs a font in the browser: `apt-get install fonts-noto-core`.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from browser import browser_page, run_query, streamlit_server  # noqa: E402

from index.build import build_index  # noqa: E402
from search.catalog import SAMPLE_CORPUS, sample_examples  # noqa: E402

STAND_IN = ROOT.parent / "shared" / "models" / "me5-small-am"


def main() -> None:
    out = ROOT / "docs"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dense = str(STAND_IN) if STAND_IN.is_dir() else None
        build_index(SAMPLE_CORPUS, tmp / "indexes" / "sample", dense_model=dense, name="sample",
                    examples=sample_examples(), show_progress=True)
        env = {"AMHARIC_SEARCH_INDEX_ROOT": str(tmp / "indexes"), "AMHARIC_SEARCH_RERANKER": "",
               "HF_HUB_OFFLINE": "1"}
        with streamlit_server(env) as url, browser_page(1400, 1100) as page:
            page.goto(url)
            run_query(page, "የወባ በሽታ መከላከል")
            page.wait_for_timeout(1000)
            page.screenshot(path=str(out / "search.png"))
            page.get_by_text("Compare stages").click()
            page.get_by_text("Hybrid", exact=True).first.wait_for(timeout=120_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(out / "compare.png"))
            page.get_by_text("Index information").click()
            page.wait_for_timeout(1000)
            page.screenshot(path=str(out / "sidebar.png"))
    print("wrote", ", ".join(str(out / n) for n in ("search.png", "compare.png", "sidebar.png")))


if __name__ == "__main__":
    main()
