"""End-to-end tests in headless Chromium against `streamlit run app.py` (run in CI: `make test`)."""

import json
import re

import pytest
from playwright.sync_api import expect

from amharic_search.index.build import build_index
from amharic_search.search.ui.display import SNIPPET_CHARS
from amharic_search.search.ui.strings import STRINGS

from browser import browser_page, idle, run_query, streamlit_server

pytestmark = pytest.mark.browser

HOSTILE = [
    {"id": "evil-1", "title": "<script>window.__xss='title'</script>",
     "text": "ቡና ጥሩ ነው። <img src=x onerror=\"window.__xss='img'\"> <script>window.__xss='script'</script>"},
    {"id": "evil-2", "title": "<b onmouseover=alert(1)>ቡና</b>",
     "text": "የቡና ዋጋ [click](javascript:window.__xss='link') :red[ቀይ] **ደማቅ** $x^2$"},
]
QUERY = "ኢትዮጵያ ውስጥ"  # words in many sample documents: keyword-found results reach the random reranker's top 10


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
def offline_server(tmp_path_factory):
    """No model at all: the sample collection is built lexical-only on first start, as on a laptop offline."""
    root = tmp_path_factory.mktemp("offline") / "indexes"
    env = {"AMHARIC_SEARCH_INDEX_ROOT": str(root), "AMHARIC_SEARCH_RERANKER": "rasyosef/reranker-amharic-medium",
           "AMHARIC_SEARCH_DENSE_MODEL": "rasyosef/embedding-amharic-medium", "HF_HUB_OFFLINE": "1"}
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


def wait_reranked(page, timeout=60_000):
    page.locator(".as-summary", has_text=re.compile("reranked in|ዳግም ተደርድሯል")).wait_for(timeout=timeout)


def main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def test_simple_view_reads_like_search_results(server, tmp_path):
    with browser_page() as page:
        page.goto(server + "/?lang=en")
        run_query(page, QUERY)
        wait_reranked(page)
        cards = page.locator(".as-card")
        expect(cards).to_have_count(10, timeout=30_000)
        for card in page.locator(".as-card .as-text").all():  # the snippet, its label (how it was found) left out
            text = card.evaluate("e => [...e.childNodes].filter(n => !(n.classList && n.classList.contains('as-found')))"
                                 ".map(n => n.textContent).join('')")
            assert len(text.strip().strip("…")) <= SNIPPET_CHARS
        assert page.locator(".as-card mark").count() > 0
        assert page.locator(".as-scores").count() == 0  # no score line for readers
        assert page.get_by_text("Deploy", exact=True).count() == 0  # no Deploy button (client.toolbarMode)
        page.screenshot(path=str(tmp_path / "simple.png"), full_page=True)


def test_expert_view_scores_rank_flow_and_compare(server):
    with browser_page() as page:
        page.goto(server + "/?lang=en&view=expert&q=" + QUERY)  # the URL runs the search
        wait_reranked(page)
        expect(page.locator(".as-scores")).to_have_count(10, timeout=30_000)
        first = page.locator(".as-scores").first.inner_text()
        assert "Reranked" in first and "Combined" in first
        chart = page.locator('[data-testid="stVegaLiteChart"] svg').first
        chart.wait_for(timeout=30_000)
        top_title = page.locator(".as-card .as-title").first.inner_text()
        labels = page.locator('[data-testid="stVegaLiteChart"] svg text').evaluate_all("els => els.map(e => e.textContent)")
        assert any(top_title[:20] in label for label in labels)  # the rank flow names the documents
        assert "Reranked" in labels and "Keywords" in labels

        page.get_by_role("tab", name="Compare stages").click()
        page.get_by_text("Keywords alone").first.wait_for(timeout=60_000)
        page.get_by_text("Keywords + meaning, reranked").first.wait_for(timeout=60_000)
        compare = page.locator('[data-testid="stTab"]').nth(1)
        assert compare.get_attribute("aria-selected") == "true"
        expect(page.locator(".as-elsewhere").first).to_contain_text("elsewhere")
        assert page.locator(".as-card .as-text").count() >= 40  # compare cards carry the snippet too


def test_the_interface_is_amharic_by_default(server):
    with browser_page() as page:
        page.goto(server)
        page.get_by_role("button", name="ፈልግ").wait_for(timeout=60_000)
        run_query(page, QUERY)
        wait_reranked(page)
        text = main_text(page)
        words = " ".join(page.evaluate(VISIBLE_TEXT, '.as-id, [data-testid="stIconMaterial"]'))  # ids: the collection's
        english = {v["en"].split("{")[0].strip() for v in STRINGS.values() if v["en"] != v["am"]} - {"", "English", "BM25"}
        left = [e for e in english if re.search(rf"(?<![A-Za-z]){re.escape(e)}(?![A-Za-z])", words)]
        assert left == [], left
        assert "ውጤቶች" in text and STRINGS["examples_more"]["am"] in text  # the examples, folded away


@pytest.mark.parametrize("lang", ["am", "en"])
def test_phone_width(server, offline_server, lang):
    """At 390 px the first result's title and the start of its snippet are on the first screen (844 px),
    with the offline notice too; the examples fold away once a search has run; nothing is wider."""
    for url in (server, offline_server):
        with browser_page(390, 844) as page:
            page.goto(f"{url}/?lang={lang}&index=sample")
            run_query(page, QUERY)
            expect(page.locator(".as-card").first).to_be_visible(timeout=60_000)
            page.wait_for_timeout(1000)
            first = page.locator(".as-card").first.locator(".as-text").bounding_box()
            assert first["y"] + 30 < 844, first  # the title and the first line of the snippet
            assert not page.locator(".st-key-examples button").first.is_visible()  # folded away…
            assert page.get_by_text(STRINGS["examples_more"][lang]).is_visible()  # …one click away
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            assert page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollWidth") <= 390


def test_example_searches_are_whole_on_a_desktop(server, sample_index):
    from amharic_search.index.manifest import read_manifest

    examples = read_manifest(sample_index)["examples"][:8]
    with browser_page(1280, 900) as page:
        page.goto(server + "/?lang=am&index=sample")
        buttons = page.locator(".st-key-examples button")
        expect(buttons).to_have_count(len(examples), timeout=60_000)
        assert buttons.all_inner_texts() == examples
        cut = buttons.evaluate_all("bs => bs.filter(b => { const p = b.querySelector('p') || b; "
                                   "return p.scrollWidth > p.clientWidth + 1 || p.textContent.includes('…'); })"
                                   ".map(b => b.textContent)")
        assert cut == []


def test_offline_page_keeps_command_lines_in_the_expander(offline_server):
    with browser_page() as page:
        page.goto(offline_server + "/?lang=en")
        run_query(page, QUERY)
        text = main_text(page)
        assert "Meaning-based search and reranking are off" in text
        assert "--" not in text and "amharic-search" not in text  # no command line outside "How to turn it on"
        page.get_by_text("How to turn it on").click()
        page.get_by_text("models download --to amharic-models").first.wait_for(timeout=30_000)
        assert "--reranker" in main_text(page)


def upload(page, path, index_name: str) -> None:
    page.get_by_text("Add your own files").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
    # the upload is a request of its own: wait until the app lists the file before going on
    page.locator('[data-testid="stSidebar"]').get_by_text(path.name).wait_for(timeout=60_000)
    page.get_by_label("Collection name").fill(index_name)
    page.get_by_label("Collection name").press("Enter")
    idle(page)  # the name's rerun: a click during it can be lost


def build(page) -> None:
    button = page.get_by_role("button", name="Prepare for search")
    expect(button).to_be_enabled(timeout=60_000)
    idle(page)
    button.click()


def test_upload_reports_bad_lines_then_indexes_and_searches(server, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "ቡና ጥሩ ነው።"}\n{oops\n', encoding="utf-8")
    good = tmp_path / "good.jsonl"
    good.write_text('{"id": "u1", "title": "የሻይ ቅጠል", "text": "ሻይ በጅማ ይመረታል።"}\n'
                    '{"id": "u2", "title": "ወተት", "text": "የወተት ላሞች።"}\n', encoding="utf-8")
    with browser_page() as page:
        page.goto(server + "/?lang=en")
        upload(page, bad, "uploaded-test")
        build(page)
        page.get_by_text("The files could not be prepared").wait_for(timeout=60_000)
        error = page.locator('[data-testid="stCode"]').last.inner_text()
        assert error.startswith("bad.jsonl, line 2: not valid JSON") and "/tmp" not in error and "--" not in error
        page.get_by_text("Tick “Skip bad records”").wait_for(timeout=10_000)
        page.reload()  # a new session: an empty uploader
        upload(page, good, "uploaded-test")
        build(page)
        page.get_by_text("Prepared 2 documents").wait_for(timeout=120_000)
        run_query(page, "ሻይ")  # both documents come back (meaning); the one with the word, highlighted
        card = page.locator(".as-card", has=page.locator(".as-id", has_text=re.compile("^u[12]$")))
        expect(card).to_have_count(2)
        expect(card.filter(has_text="u1").locator("mark")).to_have_text(["የሻይ", "ሻይ"])  # title and text
        expect(card.filter(has_text="u2").locator("mark")).to_have_count(0)


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the select box labelled ``label``."""
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option, exact=True).click()
    page.wait_for_timeout(300)


def test_offline_upload_of_a_csv_without_a_text_column(offline_server, tmp_path):
    csv = tmp_path / "news.csv"
    csv.write_text("id,headline,body\nn1,የሻይ ምርት,ሻይ በጅማ ይመረታል።\nn2,ወተት,የወተት ላሞች በብዛት አሉ።\n", encoding="utf-8")
    with browser_page() as page:
        page.goto(offline_server + "/?lang=en")
        upload(page, csv, "news")
        sidebar = page.locator('[data-testid="stSidebar"]')
        sidebar.get_by_text("Which column holds the text?").wait_for(timeout=30_000)
        sidebar.get_by_text("The meaning model is not on this computer").wait_for(timeout=30_000)
        choose(page, "Which column holds the text?", "body")
        choose(page, "Which column holds the title?", "headline")
        build(page)
        page.get_by_text("Prepared 2 documents").wait_for(timeout=120_000)
        page.get_by_text("Prepared for keyword search only").wait_for(timeout=10_000)
        run_query(page, "ሻይ")
        expect(page.locator(".as-card .as-title").first).to_have_text("የሻይ ምርት")


def test_hostile_text_renders_as_text_and_runs_nothing(hostile_server):
    with browser_page() as page:
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(hostile_server + "/?lang=en&view=expert")
        run_query(page, "ቡና")
        # both documents hold the query word; Streamlit streams the cards one by one, so wait for the
        # reranked list to be complete before reading it
        wait_reranked(page)
        results = page.locator(".as-card").filter(has=page.locator(".as-scores"))  # not the compare tab's cards
        expect(results).to_have_count(2, timeout=30_000)
        page.wait_for_timeout(500)
        joined = "\n".join(results.all_inner_texts())
        assert "<script>window.__xss='title'</script>" in joined
        assert "<img src=x onerror=" in joined
        assert "[click](javascript:" in joined and ":red[ቀይ]" in joined and "**ደማቅ**" in joined
        page.locator('[data-testid="stVegaLiteChart"] svg text').first.wait_for(timeout=30_000)
        labels = page.locator('[data-testid="stVegaLiteChart"] svg text').evaluate_all("els => els.map(e => e.textContent)")
        assert any("<script>" in label or "<b onmouseover" in label for label in labels)  # chart labels: text too
        page.locator('[data-testid="stVegaLiteChart"] svg path').first.hover()
        assert page.evaluate("window.__xss") is None
        assert dialogs == []
        assert page.locator(".as-card img, .as-card script, .as-card a, .as-card b").count() == 0
        assert page.locator("#vg-tooltip-element b, #vg-tooltip-element script, #vg-tooltip-element img").count() == 0
        # the hostile index directory name is shown as text in the collection picker
        sidebar = page.locator('[data-testid="stSidebar"]')
        picker = sidebar.locator('[data-testid="stSelectbox"]')
        assert "evil<b>name" in (picker.text_content() + " ".join(
            picker.locator("input").evaluate_all("els => els.map(e => e.value)")))
        assert sidebar.locator("b").count() == 0


def test_the_page_through_the_search_service_shows_the_same_results(server, service_url):
    def ids(url):
        with browser_page() as page:
            page.goto(url + "/?lang=en&view=expert&q=" + QUERY)
            wait_reranked(page)
            results = page.locator(".as-card").filter(has=page.locator(".as-scores"))
            expect(results).to_have_count(10, timeout=30_000)
            return results.locator(".as-id").all_inner_texts(), results.locator(".as-scores").all_inner_texts()

    env = {"AMHARIC_SEARCH_API": service_url, "AMHARIC_SEARCH_INDEX_ROOT": "/nonexistent", "HF_HUB_OFFLINE": "1"}
    with streamlit_server(env) as through_service:
        assert ids(through_service) == ids(server)


# -- what an Amharic-reading manager sees (issue 23) --------------------------------------------------

AM = {k: v["am"] for k, v in STRINGS.items()}

# Every visible piece of text of the page (text nodes, input values, CSS generated content) outside the
# places where Latin belongs: the collection's own text and ids, icons, and the administrator's part.
VISIBLE_TEXT = """excluded => {
  const out = [], root = document.querySelector('[data-testid="stApp"]');
  // drawn, not clipped to a pixel nor moved off the left edge (a skip link), not in a closed panel
  const shown = el => { const s = getComputedStyle(el), r = el.getBoundingClientRect();
    return el.getClientRects().length && s.visibility === 'visible' && parseFloat(s.fontSize) > 0
      && r.width > 1 && r.height > 1 && r.right > 0 && !el.closest('details:not([open]) > :not(summary)'); };
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement, text = walker.currentNode.textContent.trim();
    if (text && el && !el.closest(excluded) && shown(el)) out.push(text);
  }
  for (const el of root.querySelectorAll('input:is([type=text], [type=search], :not([type])), textarea')) if (el.value && shown(el) && !el.closest(excluded)) out.push(el.value);
  for (const el of root.querySelectorAll('*')) {
    const c = getComputedStyle(el, '::after').content;
    if (c && c !== 'none' && c !== 'normal' && shown(el) && !el.closest(excluded)) out.push(c);
  }
  return out;
}"""
NOT_THE_PAGES_WORDS = ('.as-text, .as-title, .as-id, [data-testid="stIconMaterial"], .st-key-admin, '
                       '[data-testid="stSidebarCollapseButton"], [data-testid="stExpandSidebarButton"]')
LATIN_ALLOWED = {"English", "Enter", "JSON", "JSONL", "CSV", "TSV", "TXT", "MD", ".txt", ".md"}  # names, file types


def latin_words(texts) -> set[str]:
    return {w for text in texts for w in re.findall(r"\.?[A-Za-z][A-Za-z0-9.-]*", text)} - LATIN_ALLOWED


def test_the_amharic_page_is_in_amharic(offline_server):
    """Offline (the notice, How to turn it on), every panel open, the Enter hint showing: no English
    word, only the administrator's part holds command lines."""
    with browser_page() as page:
        page.goto(offline_server + "/?lang=am&index=sample")  # the sample collection (uploads may sort before it)
        run_query(page, "የቡና ወጪ ንግድ")
        idle(page)
        for label in (AM["how_to_turn_on"], AM["about_collection"], AM["upload_title"], AM["examples_more"]):
            page.get_by_text(label, exact=True).click()
            idle(page)
        expect(page.get_by_text(AM["how_reader"])).to_be_visible()
        for more in page.get_by_text(AM["more"], exact=True).all():  # each result's passage and whole document
            more.click()
        page.wait_for_timeout(500)
        page.get_by_placeholder(re.compile("የቡና ምርት")).press("End")
        page.get_by_placeholder(re.compile("የቡና ምርት")).type(" ")  # the hint under the box shows while typing
        page.locator('.st-key-query [data-testid="InputInstructions"]').wait_for(timeout=10_000)
        texts = page.evaluate(VISIBLE_TEXT, NOT_THE_PAGES_WORDS)
        assert latin_words(texts) == set(), latin_words(texts)
        joined = " ".join(texts)
        for key in ("enter_to_search", "upload_choose", "how_reader", "about_documents"):
            assert AM[key].split("{")[0].strip() in joined, key
        admin = page.locator(".st-key-admin")
        assert AM["how_admin"] in admin.inner_text() and "amharic-search app --dense-model /" in admin.inner_text()
        assert page.locator('[data-testid="stMain"] code').filter(has_text="amharic-search").count() == \
            admin.locator("code").filter(has_text="amharic-search").count() > 0  # command lines: the administrator's part only
        code = admin.locator("code").first
        assert code.evaluate("e => e.scrollWidth <= e.clientWidth + 1")  # wrapped, not cut at the edge


def test_a_label_says_what_the_stages_did(offline_server, server):
    """Without meaning-based search no card says "found by meaning" (e.g. የቡና ወጪ ንግድ, selam typed in Latin);
    with it, a card says so only where keyword search did not find the result."""
    with browser_page() as page:
        for query in ("የቡና ወጪ ንግድ", "selam"):
            page.goto(offline_server + "/?lang=am&index=sample")
            run_query(page, query)
            idle(page)
            assert AM["found_dense"] not in main_text(page) and page.locator(".as-found-dense").count() == 0
            for card in page.locator(".as-card").all():  # each card says why it is there
                assert card.locator("mark").count() > 0 or card.locator(".as-found-bm25").count() == 1
        page.goto(server + "/?lang=en&view=expert&q=" + "ዝዝዝዝዝ ቅቅቅቅቅ")  # no word of it is in any document
        wait_reranked(page)
        results = page.locator(".as-card").filter(has=page.locator(".as-scores"))
        expect(results).to_have_count(10, timeout=30_000)
        for card in results.all():
            assert card.locator(".as-found-dense").count() == 1
            assert card.locator(".as-scores").inner_text().startswith("Keywords not found")


def test_charts_draw_ethiopic_in_the_served_font_with_units(server, offline_server):
    with browser_page() as page:
        page.goto(server + "/?lang=am&view=expert&q=" + QUERY)
        wait_reranked(page)
        charts = page.locator('[data-testid="stVegaLiteChart"]')
        expect(charts).to_have_count(2, timeout=60_000)
        for chart in charts.all():
            chart.locator("svg text").first.wait_for(timeout=30_000)
        fonts = page.locator('[data-testid="stVegaLiteChart"] svg text').evaluate_all(
            "els => els.map(e => [e.textContent, getComputedStyle(e).fontFamily])")
        assert fonts and all(f.startswith('"Noto Sans Ethiopic Variable"') for _, f in fonts), fonts
        assert page.evaluate("document.fonts.check('12px \"Noto Sans Ethiopic Variable\"', 'ቃል')")  # the font is loaded
        labels = [text for text, _ in fonts]
        assert AM["timing_ms"] in labels and AM["timing_fusion"] in labels  # the unit; combining: two lists ran
        page.goto(offline_server + "/?lang=am&view=expert&index=sample&q=" + QUERY)
        timing = page.locator('[data-testid="stVegaLiteChart"]')
        timing.locator("svg text").first.wait_for(timeout=60_000)
        labels = timing.locator("svg text").evaluate_all("els => els.map(e => e.textContent)")
        assert AM["timing_bm25"] in labels and AM["timing_ms"] in labels
        assert AM["timing_fusion"] not in labels and AM["timing_dense"] not in labels  # only keyword search ran


def test_api_docs_work_without_internet(service_url):
    """/docs (Swagger UI) and /redoc (ReDoc) load everything from the service itself."""
    with browser_page() as page:
        outside = []

        def only_the_service(route):
            if route.request.url.startswith(service_url):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", only_the_service)
        page.goto(service_url + "/docs")
        page.locator(".swagger-ui .opblock").first.wait_for(timeout=60_000)
        assert page.locator(".swagger-ui .opblock", has_text="/v1/search").count() >= 2
        page.goto(service_url + "/redoc")
        page.get_by_role("heading", name=re.compile("amharic-search")).first.wait_for(timeout=60_000)
        page.get_by_text("/v1/search/stream").first.wait_for(timeout=30_000)
        assert outside == []
