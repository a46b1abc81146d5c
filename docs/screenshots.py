"""Take the README's screenshots of the page with headless Chromium.

    .venv/bin/python docs/screenshots.py [--reranker DIR] [--review DIR]

The hub models cannot be downloaded on the machine that took them, so the page runs with a stand-in
dense encoder, ../shared/models/me5-small-am (multilingual-e5-small), and a local cross-encoder
(--reranker; by default bench/.cache/reranker-demo, made here from the stand-in's first 4 layers and a
fresh one-logit head when it is missing: every stage shows, but its order means nothing), and once
more without any model (offline: keyword search, the notice and the administrator's part). The page
serves its own Ethiopic font, so a headless Debian needs nothing more than Chromium (`apt-get install
chromium`). ``--review DIR`` also writes every view in both languages, desktop and phone, with and
without the models, to look at before a release.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from browser import browser_page, streamlit_server  # noqa: E402

from amharic_search.index.build import build_index  # noqa: E402
from amharic_search.search.ui.catalog import SAMPLE_CORPUS, sample_examples  # noqa: E402
from amharic_search.search.ui.strings import t  # noqa: E402

STAND_IN = ROOT.parent / "shared" / "models" / "me5-small-am"
DEMO_RERANKER = ROOT / "bench" / ".cache" / "reranker-demo"
QUERY = "የወባ በሽታ መከላከል"
DESKTOP, PHONE = (1280, 1000), (390, 844)


def demo_reranker(out: Path, layers: int = 4) -> Path:
    """A cross-encoder built from the stand-in encoder (its first layers, a fresh seeded head): a real
    model folder that CrossEncoder loads, untrained for ranking."""
    if (out / "config.json").is_file():
        return out
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(STAND_IN, num_labels=1, num_hidden_layers=layers)
    model.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(STAND_IN).save_pretrained(out)
    return out


def settle(page, *, reranked: bool, searched: bool = True) -> None:
    """Wait for the results (reranked, when the page reranks), or the start page's guidance, and for
    the page to stop running."""
    page.locator(".as-card" if searched else '[data-testid="stAlert"]').first.wait_for(timeout=180_000)
    if reranked:
        page.locator(".as-summary", has_text=t("reranked_in", "en").split(" {")[0]).or_(
            page.locator(".as-summary", has_text=t("reranked_in", "am").split("}")[-1].strip())).first.wait_for(timeout=180_000)
    page.wait_for_timeout(1500)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=60_000)
    page.wait_for_timeout(1000)


def shoot(page, url: str, path: Path, *, reranked: bool, height: int | None = None, open_labels=()) -> None:
    page.set_viewport_size({"width": page.viewport_size["width"], "height": DESKTOP[1] if page.viewport_size["width"]
                            > PHONE[0] else PHONE[1]})
    page.goto(url)
    settle(page, reranked=reranked, searched="q=" in url)
    for label in open_labels:
        page.get_by_text(label, exact=True).first.click()
        page.wait_for_timeout(800)
    if height:  # at most this tall: the page's content, without the empty space below it
        page.set_viewport_size({"width": page.viewport_size["width"], "height": height})
        page.wait_for_timeout(1500)
        used = page.evaluate("document.querySelector('[data-testid=\"stMainBlockContainer\"]').getBoundingClientRect().bottom")
        page.set_viewport_size({"width": page.viewport_size["width"], "height": min(height, int(used) + 40)})
        page.wait_for_timeout(1000)
    page.screenshot(path=str(path))
    print("wrote", path)


def filters_shot(page, url: str, path: Path) -> None:
    """The sidebar's filters at work: one source chosen, newest first, dates in the Gregorian calendar."""
    page.goto(url)
    settle(page, reranked=True)
    page.locator('[data-testid="stSidebar"] [data-testid="stMultiSelect"]').nth(1).click()  # ዘርፍ, then ምንጭ
    page.get_by_role("option", name=re.compile("^ጤና ለሁሉ")).click()
    page.keyboard.press("Escape")
    settle(page, reranked=True)
    page.get_by_text(t("sort_date_desc", "en"), exact=True).click()
    settle(page, reranked=True)
    page.screenshot(path=str(path))
    print("wrote", path)


@click.command()
@click.option("--reranker", default=str(DEMO_RERANKER), show_default=True,
              help="A local cross-encoder directory (made from the stand-in encoder when it is the default and missing).")
@click.option("--review", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write every view (both languages, desktop and phone, with and without models) here.")
def main(reranker: str, review: Path | None) -> None:
    out = ROOT / "docs"
    if reranker == str(DEMO_RERANKER):
        demo_reranker(DEMO_RERANKER)
    q = "&q=" + QUERY
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build_index(SAMPLE_CORPUS, tmp / "indexes" / "sample", dense_model=str(STAND_IN), name="sample",
                    examples=sample_examples(), show_progress=True)
        models = {"AMHARIC_SEARCH_INDEX_ROOT": str(tmp / "indexes"), "AMHARIC_SEARCH_RERANKER": reranker,
                  "AMHARIC_SEARCH_DENSE_MODEL": str(STAND_IN), "HF_HUB_OFFLINE": "1"}
        with streamlit_server(models, timeout=180) as url:
            with browser_page(*DESKTOP) as page:
                shoot(page, url + "/?lang=en&view=simple" + q, out / "simple.png", reranked=True)
                shoot(page, url + "/?lang=am&view=simple" + q, out / "amharic.png", reranked=True)
                filters_shot(page, url + "/?lang=en&view=simple&q=የኢትዮጵያ", out / "filters.png")
                shoot(page, url + "/?lang=en&view=expert" + q, out / "expert.png", reranked=True, height=3800)
                page.get_by_role("tab", name="Compare stages").click()
                page.get_by_text("Keywords + meaning, reranked").first.wait_for(timeout=180_000)
                page.set_viewport_size({"width": DESKTOP[0], "height": 1500})
                page.wait_for_timeout(1500)
                page.screenshot(path=str(out / "compare.png"))
                print("wrote", out / "compare.png")
                if review:
                    review.mkdir(parents=True, exist_ok=True)
                    shoot(page, url + "/?lang=am&view=expert" + q, review / "expert-am.png", reranked=True, height=3800)
                    shoot(page, url + "/?lang=am", review / "start-am.png", reranked=False)
            with browser_page(*PHONE) as page:
                shoot(page, url + "/?lang=am&view=simple" + q, out / "phone.png", reranked=True)
                if review:
                    shoot(page, url + "/?lang=en&view=simple" + q, review / "phone-en.png", reranked=True)
                    shoot(page, url + "/?lang=am", review / "phone-start-am.png", reranked=False)
        offline = {"AMHARIC_SEARCH_INDEX_ROOT": str(tmp / "offline"), "AMHARIC_SEARCH_RERANKER": "rasyosef/reranker-amharic-medium",
                   "AMHARIC_SEARCH_DENSE_MODEL": "rasyosef/embedding-amharic-medium", "HF_HUB_OFFLINE": "1"}
        how = [t("how_to_turn_on", "am")]
        with streamlit_server(offline, timeout=180) as url:  # the sample collection is built lexical-only on start
            with browser_page(*DESKTOP) as page:
                shoot(page, url + "/?lang=am&view=simple" + q, out / "offline.png", reranked=False, height=1250,
                      open_labels=how)
                if review:
                    shoot(page, url + "/?lang=en&view=simple" + q, review / "offline-en.png", reranked=False,
                          height=1250, open_labels=[t("how_to_turn_on", "en"), t("about_collection", "en")])
                    shoot(page, url + "/?lang=am&view=expert&q=የቡና ወጪ ንግድ", review / "offline-expert-am.png",
                          reranked=False, height=2600, open_labels=[t("about_collection", "am"), t("upload_title", "am")])
            with browser_page(*PHONE) as page:
                shoot(page, url + "/?lang=am&view=simple" + q, out / "phone-offline.png", reranked=False)
                if review:
                    shoot(page, url + "/?lang=en&view=simple&q=selam", review / "phone-offline-en.png", reranked=False)


if __name__ == "__main__":
    main()
