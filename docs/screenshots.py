"""Take the README's screenshots of the page with headless Chromium.

    .venv/bin/python docs/screenshots.py [--reranker DIR]

The hub models cannot be downloaded on the machine that took them, so the page runs with a stand-in
dense encoder, ../shared/models/me5-small-am (multilingual-e5-small), and a local cross-encoder
(--reranker; default bench/.cache/reranker-demo, made by `python bench/train_reranker.py --layers 4
--out bench/.cache/reranker-demo`), so that every stage shows. The page serves its own Ethiopic font,
so a headless Debian needs nothing more than Chromium (`apt-get install chromium`).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from browser import browser_page, streamlit_server  # noqa: E402

from index.build import build_index  # noqa: E402
from search.ui.catalog import SAMPLE_CORPUS, sample_examples  # noqa: E402

STAND_IN = ROOT.parent / "shared" / "models" / "me5-small-am"
DEMO_RERANKER = ROOT / "bench" / ".cache" / "reranker-demo"
QUERY = "የወባ በሽታ መከላከል"


def shoot(page, url: str, path: Path, *, height: int | None = None, wait_for: str = ".as-summary") -> None:
    page.goto(url)
    page.locator(wait_for).first.wait_for(timeout=120_000)
    page.locator(".as-summary", has_text="reranked in").or_(page.locator(".as-summary", has_text="ዳግም ተደርድሯል")) \
        .first.wait_for(timeout=120_000)
    page.wait_for_timeout(2500)
    if height:
        page.set_viewport_size({"width": page.viewport_size["width"], "height": height})
        page.wait_for_timeout(1500)
    page.screenshot(path=str(path))
    print("wrote", path)


@click.command()
@click.option("--reranker", default=str(DEMO_RERANKER), show_default=True, help="A local cross-encoder directory.")
def main(reranker: str) -> None:
    out = ROOT / "docs"
    q = "&q=" + QUERY
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build_index(SAMPLE_CORPUS, tmp / "indexes" / "sample", dense_model=str(STAND_IN), name="sample",
                    examples=sample_examples(), show_progress=True)
        env = {"AMHARIC_SEARCH_INDEX_ROOT": str(tmp / "indexes"), "AMHARIC_SEARCH_RERANKER": reranker,
               "AMHARIC_SEARCH_DENSE_MODEL": str(STAND_IN), "HF_HUB_OFFLINE": "1"}
        with streamlit_server(env) as url:
            with browser_page(1280, 1000) as page:
                shoot(page, url + "/?lang=en&view=simple" + q, out / "simple.png")
                shoot(page, url + "/?lang=am&view=simple" + q, out / "amharic.png")
                shoot(page, url + "/?lang=en&view=expert" + q, out / "expert.png", height=3400)
                page.get_by_role("tab", name="Compare stages").click()
                page.get_by_text("Keywords + meaning, reranked").first.wait_for(timeout=120_000)
                page.set_viewport_size({"width": 1280, "height": 1500})
                page.wait_for_timeout(1500)
                page.screenshot(path=str(out / "compare.png"))
                print("wrote", out / "compare.png")
            with browser_page(390, 844) as page:
                shoot(page, url + "/?lang=am&view=simple" + q, out / "phone.png", height=1500)


if __name__ == "__main__":
    main()
