"""The page's filters, dates and downloads in headless Chromium (marker ``browser``)."""

import re

import pytest

from browser import browser_page, idle, run_query, streamlit_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def lexical_server(lexical_index):
    env = {"AMHARIC_SEARCH_INDEX": str(lexical_index), "AMHARIC_SEARCH_RERANKER": "none-such/reranker",
           "AMHARIC_SEARCH_DENSE_MODEL": "none-such/encoder", "HF_HUB_OFFLINE": "1"}
    with streamlit_server(env) as url:
        yield url


def card_metas(page) -> list[str]:
    return [m.inner_text() for m in page.locator(".as-card .as-meta").all()]


def test_choosing_a_source_in_the_sidebar_keeps_only_its_documents(lexical_server, tmp_path):
    with browser_page() as page:
        page.goto(lexical_server + "/?lang=en")
        run_query(page, "የኢትዮጵያ")
        before = card_metas(page)
        assert len({re.search(r"ምንጭ: ([^·]+)", m).group(1).strip() for m in before}) > 1
        idle(page)
        page.locator('[data-testid="stSidebar"] [data-testid="stMultiSelect"]').nth(1).click()  # ዘርፍ, then ምንጭ
        # each source with its count among the documents this search retrieved
        counted = page.get_by_role("option", name=re.compile(r"^ጤና ለሁሉ \(\d+\)$"))
        counted.wait_for(timeout=10_000)
        counted.click()
        page.keyboard.press("Escape")
        page.wait_for_function("() => [...document.querySelectorAll('.as-card .as-meta')].length > 0 && "
                               "[...document.querySelectorAll('.as-card .as-meta')].every(m => m.innerText.includes('ጤና ለሁሉ'))",
                               timeout=30_000)
        after = card_metas(page)
        assert after and all("ምንጭ: ጤና ለሁሉ" in m for m in after)
        # dates shown in the Gregorian calendar on the English page; the Ethiopian one on the Amharic page
        assert any(re.search(r"\b(19|20)\d\d\b", m) and "E.C." not in m for m in after)
        assert page.get_by_role("button", name="Download CSV").count() == 1
        assert page.get_by_role("button", name="Download JSON").count() == 1
        idle(page)
        page.screenshot(path=str(tmp_path / "filters.png"), full_page=True)
        print("screenshot:", tmp_path / "filters.png")


def test_the_amharic_page_shows_ethiopian_dates(lexical_server):
    with browser_page() as page:
        page.goto(lexical_server + "/?lang=am")
        run_query(page, "የኢትዮጵያ")
        metas = card_metas(page)
        assert any("ዓ.ም." in m for m in metas)


HOSTILE_FIELD = "[click](javascript:window.__xss=1) **bold**"


@pytest.fixture(scope="module")
def hostile_fields_server(tmp_path_factory):
    import json

    from amharic_search.index.build import build_index

    root = tmp_path_factory.mktemp("hostile-fields")
    corpus = root / "c.jsonl"
    corpus.write_text("\n".join(json.dumps({"id": f"d{i}", "text": "ቡና ጥሩ ነው።", HOSTILE_FIELD: ["<b>a</b>", "b"][i % 2],
                                            "date": f"2024-0{i % 3 + 1}-01"}, ensure_ascii=False)
                                for i in range(6)), encoding="utf-8")
    build_index(corpus, root / "indexes" / "h", dense_model=None, show_progress=False)
    env = {"AMHARIC_SEARCH_INDEX": str(root / "indexes" / "h"), "AMHARIC_SEARCH_RERANKER": "none-such/reranker",
           "AMHARIC_SEARCH_DENSE_MODEL": "none-such/encoder", "HF_HUB_OFFLINE": "1"}
    with streamlit_server(env) as url:
        yield url


def test_field_names_and_values_show_as_text(hostile_fields_server):
    with browser_page() as page:
        page.goto(hostile_fields_server + "/?lang=en")
        run_query(page, "ቡና")
        idle(page)
        sidebar = page.locator('[data-testid="stSidebar"]')
        assert HOSTILE_FIELD in sidebar.inner_text()  # the name as typed, not a link or bold
        assert sidebar.locator("a[href^='javascript']").count() == 0 and sidebar.locator("strong").count() == 0
        sidebar.locator("[data-testid='stMultiSelect']").first.click()
        page.get_by_role("option", name="<b>a</b> (3)", exact=True).wait_for(timeout=10_000)  # as text
        assert page.evaluate("window.__xss") is None
