"""End-to-end tests in headless Chromium against `streamlit run app.py` (run in CI: `make test`)."""

import json

import pytest
from playwright.sync_api import expect

from index.build import build_index

from browser import browser_page, run_query, streamlit_server

pytestmark = pytest.mark.browser

HOSTILE = [
    {"id": "evil-1", "title": "<script>window.__xss='title'</script>",
     "text": "ቡና ጥሩ ነው። <img src=x onerror=\"window.__xss='img'\"> <script>window.__xss='script'</script>"},
    {"id": "evil-2", "title": "<b onmouseover=alert(1)>ቡና</b>",
     "text": "የቡና ዋጋ [click](javascript:window.__xss='link') :red[ቀይ] **ደማቅ** $x^2$"},
]


@pytest.fixture(scope="module")
def server(sample_index, tiny_models):
    env = {
        "AMHARIC_SEARCH_INDEX_ROOT": str(sample_index.parent),
        "AMHARIC_SEARCH_RERANKER": str(tiny_models["reranker"]),
        "AMHARIC_SEARCH_DENSE_MODEL": str(tiny_models["encoder"]),
        "HF_HUB_OFFLINE": "1",
    }
    with streamlit_server(env) as url:
        yield url


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory, tiny_models):
    root = tmp_path_factory.mktemp("hostile")
    corpus = root / "evil.jsonl"
    corpus.write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in HOSTILE), encoding="utf-8")
    index = root / "indexes" / "evil<b>name"
    build_index(corpus, index, dense_model=None, show_progress=False)
    env = {"AMHARIC_SEARCH_INDEX": str(index), "AMHARIC_SEARCH_RERANKER": str(tiny_models["reranker"]), "HF_HUB_OFFLINE": "1"}
    with streamlit_server(env) as url:
        yield url


def test_search_and_compare_in_browser(server, tmp_path):
    with browser_page() as page:
        page.goto(server)
        page.get_by_text("amharic-search").first.wait_for(timeout=60_000)
        run_query(page, "የወባ በሽታ መከላከል")
        page.get_by_text("Reranked").first.wait_for(timeout=60_000)
        cards = page.locator(".as-card")
        expect(cards).to_have_count(10, timeout=30_000)
        first = cards.first.inner_text()
        assert "Rerank" in first and "Fused" in first
        assert page.locator(".as-card mark").count() > 0
        page.screenshot(path=str(tmp_path / "search.png"), full_page=True)

        page.get_by_text("Compare stages").click()
        page.get_by_text("BM25 alone").first.wait_for(timeout=60_000)
        page.get_by_text("Hybrid + rerank").first.wait_for(timeout=60_000)
        expect(page.locator(".as-dot")).to_have_count(30, timeout=30_000)
        assert "elsewhere" in page.locator(".as-card").first.inner_text()


def test_hostile_text_renders_as_text_and_runs_nothing(hostile_server):
    with browser_page() as page:
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(hostile_server)
        run_query(page, "ቡና")
        # both documents hold the query word; Streamlit streams the cards one by one, so wait for the
        # reranked list to be complete before reading it
        page.get_by_text("Reranked").first.wait_for(timeout=60_000)
        expect(page.locator(".as-card")).to_have_count(2, timeout=30_000)
        page.wait_for_timeout(500)
        text = page.locator(".as-card").all_inner_texts()
        joined = "\n".join(text)
        assert "<script>window.__xss='title'</script>" in joined
        assert "<img src=x onerror=" in joined
        assert "[click](javascript:" in joined and ":red[ቀይ]" in joined and "**ደማቅ**" in joined
        assert page.evaluate("window.__xss") is None
        assert dialogs == []
        assert page.locator(".as-card img, .as-card script, .as-card a, .as-card b").count() == 0
        # the hostile index directory name is shown as text in the index picker
        sidebar = page.locator('[data-testid="stSidebar"]')
        picker = sidebar.locator('[data-testid="stSelectbox"]')
        assert "evil<b>name" in (picker.text_content() + " ".join(
            picker.locator("input").evaluate_all("els => els.map(e => e.value)")))
        assert sidebar.locator("b").count() == 0


def upload_and_build(page, path, index_name: str) -> None:
    page.get_by_text("Index your own files").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
    # the upload is a request of its own: wait until the app lists the file before going on
    page.locator('[data-testid="stSidebar"]').get_by_text(path.name).wait_for(timeout=60_000)
    page.get_by_label("Index name").fill(index_name)
    page.get_by_label("Index name").press("Enter")
    expect(page.get_by_role("button", name="Build index")).to_be_enabled(timeout=60_000)
    page.get_by_role("button", name="Build index").click()


def test_upload_reports_bad_lines_then_indexes_and_searches(server, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "ቡና ጥሩ ነው።"}\n{oops\n', encoding="utf-8")
    good = tmp_path / "good.jsonl"
    good.write_text('{"id": "u1", "title": "የሻይ ቅጠል", "text": "ሻይ በጅማ ይመረታል።"}\n'
                    '{"id": "u2", "title": "ወተት", "text": "የወተት ላሞች።"}\n', encoding="utf-8")
    with browser_page() as page:
        page.goto(server)
        upload_and_build(page, bad, "uploaded-test")
        page.get_by_text("The files could not be indexed").wait_for(timeout=60_000)
        assert "line 2: not valid JSON" in page.locator('[data-testid="stCode"]').inner_text()
        page.reload()  # a new session: an empty uploader
        upload_and_build(page, good, "uploaded-test")
        page.get_by_text("Indexed 2 documents").wait_for(timeout=120_000)
        run_query(page, "ሻይ")
        expect(page.locator(".as-card .as-id").first).to_have_text("u1")
