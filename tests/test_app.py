"""Page logic of app.py with streamlit's AppTest and tiny local models."""

import json
import math
import re
from html import unescape

import pytest
from streamlit.testing.v1 import AppTest

from amharic_search.index.build import build_index
from amharic_search.search.ui.display import SNIPPET_CHARS, escape
from amharic_search.search.ui.strings import STRINGS, missing_keys, t

from conftest import ROOT

APP = str(ROOT / "app.py")


@pytest.fixture
def app_env(monkeypatch, sample_index, tiny_models):
    monkeypatch.setenv("AMHARIC_SEARCH_INDEX_ROOT", str(sample_index.parent))
    monkeypatch.delenv("AMHARIC_SEARCH_INDEX", raising=False)
    monkeypatch.delenv("AMHARIC_SEARCH_API", raising=False)
    monkeypatch.setenv("AMHARIC_SEARCH_RERANKER", str(tiny_models["reranker"]))
    monkeypatch.setenv("AMHARIC_SEARCH_DENSE_MODEL", str(tiny_models["encoder"]))


@pytest.fixture(params=["in-process", "service"])
def both_modes(request, app_env, monkeypatch):
    """The same page test in-process and through a running search service (--api / AMHARIC_SEARCH_API)."""
    if request.param == "service":
        monkeypatch.setenv("AMHARIC_SEARCH_API", request.getfixturevalue("service_url"))
        monkeypatch.setenv("AMHARIC_SEARCH_INDEX_ROOT", "/nonexistent")  # nothing local is used
    return request.param


def page(lang="en", view="simple", **params):
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update({"lang": lang, "view": view, **params})
    at.run()
    assert not at.exception, at.exception
    return at


def cards(at):
    return [m.value for m in at.markdown if 'class="as-card"' in m.value]


def summary(at):
    return [plain(m.value) for m in at.markdown if 'class="as-summary"' in m.value]


def search(at, text):
    at.text_input(key="query").input(text)
    at.button(key="FormSubmitter:search-" + t("search_button", at.session_state["lang"])).click().run()
    assert not at.exception, at.exception
    return at


def plain(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", "", html).replace("<br>", "\n"))


def snippet_of(card: str) -> str:
    """A card's snippet without its label (how the result was found)."""
    return plain(re.search(r'<div class="as-text">(.*?)(<span class="as-found.*?</span>)?</div>', card).group(1))


# Its words are in many sample documents, so that results found by keywords reach the top 10 whatever
# the order of the tiny random reranker (a query with a few keyword hits can end with none in the top 10).
WORDS_QUERY = "ኢትዮጵያ ውስጥ"


def found_label(card: str) -> str | None:
    """The stage part of a card's label (``dense``, ``bm25``, ``both``), None when it has none."""
    m = re.search(r'class="as-found as-found-(\w+)"', card)
    return m.group(1) if m else None


def test_empty_page_shows_guidance(app_env):
    at = page()
    assert [i.value for i in at.info] == [t("guidance", "en")]
    assert not at.error


def test_simple_view_reads_like_search_results(both_modes):
    at = search(page(), WORDS_QUERY)
    found = cards(at)
    assert len(found) == 10
    assert 'class="as-rank">1<' in found[0]
    assert all("as-scores" not in c for c in found)  # no score line for readers
    for card in found:
        assert len(snippet_of(card).strip("…")) <= SNIPPET_CHARS
    assert "<mark>" in "".join(found)  # query words highlighted
    (line,) = summary(at)
    assert re.search(r"10 results · [\d.]+ m?s · reranked in [\d.]+ m?s", line)
    assert not at.metric and len(at.get("vega_lite_chart")) == 1  # the rank flow only: no timing tiles or charts
    assert [e.label for e in at.main.expander][-11:] == ["More"] * 10 + ["How the ranking was made"]  # one click away


def test_a_card_without_a_title_shows_its_first_sentence(tmp_path, monkeypatch):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "n1", "text": "የቡና ዋጋ ጨመረ። ገበሬዎች ተደሰቱ።", "date": "2024-05-01",
                                  "source": "ዜና"}, ensure_ascii=False) + "\n", encoding="utf-8")
    build_index(corpus, tmp_path / "indexes" / "notitle", dense_model=None, show_progress=False)
    monkeypatch.setenv("AMHARIC_SEARCH_INDEX_ROOT", str(tmp_path / "indexes"))
    monkeypatch.setenv("AMHARIC_SEARCH_RERANKER", "")
    (card,) = cards(search(page(), "ቡና"))
    assert plain(re.search(r'class="as-title">(.*?)</span><', card).group(1)) == "የቡና ዋጋ ጨመረ።"
    assert card.count("n1") == 1  # the id once, in the source line
    assert "date: 1 May 2024" in plain(card) and "source: ዜና" in plain(card)  # a date in the reader's calendar


def test_expert_view_has_scores_the_rank_flow_and_timings(both_modes):
    at = search(page(view="expert"), WORDS_QUERY)
    results = [c for c in cards(at) if "as-scores" in c]
    assert len(results) == 10
    line = plain(re.search(r'<div class="as-scores">(.*?)</div>', results[0]).group(1))
    assert re.fullmatch(r"Keywords (\S+ \(#\d+\)|not found) · Meaning (\S+ \(#\d+\)|not found) · "
                        r"Combined \S+ \(#\d+\) · Reranked \S+ \(#1\)", line), line
    for number in re.findall(r"(-?\d+\.\d+)", line):
        assert len(number.replace("-", "").replace(".", "").lstrip("0")) <= 3  # three significant digits at most
    flow, timings = at.get("vega_lite_chart")
    assert "Reranked" in flow.proto.spec and "Combined" in flow.proto.spec and "rank" in flow.proto.spec
    assert "reranking" in timings.proto.spec or "reranking" in str(timings.proto)
    assert any(s.value == "How the ranking was made" for s in at.subheader)


def test_rank_flow_names_the_documents(app_env, searcher):
    import importlib.util

    from amharic_search.search.ui.display import doc_colors

    spec = importlib.util.spec_from_file_location("app_page", APP)
    page_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(page_module)  # the page's functions; main() runs only under streamlit
    response = searcher.search(WORDS_QUERY)
    chart = page_module.flow_chart(response, doc_colors(r.doc_id for r in response.results)).to_dict()
    values = [row for data in chart["datasets"].values() for row in data]
    for r in response.results:
        assert {row["title"] for row in values if row["doc_id"] == r.doc_id} == {r.title}
        assert {row["stage"]: row["rank"] for row in values if row["doc_id"] == r.doc_id}["rerank"] == r.rank
    assert {row["stage"] for row in values} == {"bm25", "dense", "fused", "rerank"}
    assert chart["layer"][0]["encoding"]["tooltip"][0]["field"] == "title"  # pointing at a line names the document


def test_the_summary_says_while_the_rest_is_being_reranked(app_env, searcher):
    """Progressive reranking: the page shows the top 20 reranked first, and says that the rest is coming."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("app_page", APP)
    page_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(page_module)
    steps = list(searcher.search_stream("የወባ በሽታ መከላከል", blocks=(page_module.FIRST_BLOCK,)))
    lines = [page_module.summary_line(r, reranking=100) for r in steps]
    assert lines[0].endswith(t("reranking_now", "am").format(n=100))
    assert lines[1].endswith(t("reranked_so_far", "am").format(done=20, of=100))
    assert "{" not in lines[2] and lines[2].split(" · ")[-1] == t("reranked_in", "am").format(
        time=page_module.time_text(steps[2].timings_ms["rerank"]))


def test_stage_controls_change_what_runs(app_env):
    at = page(view="expert")
    at.radio(key="mode").set_value("lexical")
    at.checkbox(key="rerank").uncheck()
    search(at, "የቡና ምርት")
    found = [c for c in cards(at) if "as-scores" in c]
    assert found and all("Keywords" in c and "Meaning" not in c and "Combined" not in c and "Reranked" not in c
                         for c in found)
    assert len(at.get("vega_lite_chart")) == 1  # the timings only: no movement between stages to draw
    assert any(c.value == t("flow_single", "en", stage=t("stage_bm25", "en")) for c in at.caption)


def test_controls_of_a_missing_stage_are_explained_not_shown(app_env, monkeypatch):
    monkeypatch.setenv("AMHARIC_SEARCH_RERANKER", "rasyosef/reranker-amharic-medium")
    at = page(view="expert")
    keys = {w.key for w in at.sidebar.radio} | {w.key for w in at.sidebar.select_slider} | {w.key for w in at.sidebar.checkbox}
    assert "rerank" not in keys and "max_length" not in keys and "window" not in keys and "candidates" not in keys
    assert t("rerank_missing", "en") in [c.value for c in at.sidebar.caption]


def test_empty_query_is_guidance_not_error(both_modes):
    at = search(page(), "   ")
    assert any(i.value == t("empty_query", "en") for i in at.info) and not at.error


def test_example_query_one_click(both_modes):
    at = page()
    at.button(key="ex0").click().run()
    assert not at.exception and cards(at)
    assert at.text_input(key="query").value == at.session_state["last_query"]


def test_latin_transliteration(app_env):
    at = search(page(), "selam buna")
    assert any("Searching for" in m.value and "ሰላም ቡና" in m.value for m in at.markdown)
    at = page(view="expert")
    at.checkbox(key="translit").uncheck()
    search(at, "selam buna")
    assert not any("Searching for" in m.value for m in at.markdown)


def test_compare_view(both_modes):
    at = search(page(view="expert"), "የአድዋ ጦርነት")
    heads = [plain(m.value) for m in at.markdown if m.value.startswith("**")]
    assert [h.split("**")[1] for h in heads] == ["Keywords alone", "Keywords + meaning", "Keywords + meaning, reranked"]
    compare = [c for c in cards(at) if "as-scores" not in c]
    assert len(compare) == 30 and all('class="as-text"' in c for c in compare)  # compare cards carry the snippet


def test_compare_view_on_a_lexical_collection_says_so(lexical_index, monkeypatch):
    monkeypatch.setenv("AMHARIC_SEARCH_INDEX_ROOT", str(lexical_index.parent))
    monkeypatch.setenv("AMHARIC_SEARCH_RERANKER", "")
    at = search(page(view="expert"), "የአድዋ ጦርነት")
    assert t("cmp_single", "en") in [i.value for i in at.info]
    assert not [m for m in at.markdown if 'class="as-elsewhere"' in m.value]


def test_compare_view_uses_the_sidebar_settings(app_env, monkeypatch):
    from amharic_search.search.options import SearchOptions
    from amharic_search.search.searcher import Searcher

    seen = []
    original = Searcher.search

    def spy(self, query, options=None, /, **kwargs):
        seen.append(SearchOptions.of(options, **kwargs))
        return original(self, query, options, **kwargs)

    monkeypatch.setattr(Searcher, "search", spy)
    at = page(view="expert")
    at.radio(key="fusion").set_value("rrf")
    at.select_slider(key="max_length").set_value(128)
    at.radio(key="window").set_value("head")
    search(at, "የአድዋ ጦርነት")
    assert len(seen) == 3
    assert all(o.fusion == "rrf" and o.max_length == 128 and o.window == "head" for o in seen)


def test_missing_model_is_said_once_and_kindly(app_env, monkeypatch):
    monkeypatch.setenv("AMHARIC_SEARCH_RERANKER", "rasyosef/reranker-amharic-medium")
    at = page()
    assert [i.value for i in at.info][:1] == [t("off_rerank", "en")]
    assert not at.warning
    (how,) = [e for e in at.expander if e.label == "How to turn it on"]
    commands = "\n".join(c.value for c in how.code)
    assert "models download" in commands and "--reranker " in commands and "reranker-amharic-medium" in commands
    outside = [m.value for m in at.main.markdown] + [i.value for i in at.info] + [c.value for c in at.main.caption]
    assert not any("--" in text for text in outside)  # no command-line flag outside the expander
    search(at, "የቡና ምርት")
    assert cards(at) and "reranked" not in summary(at)[0]


def test_hostile_passages_are_escaped(tmp_path, monkeypatch, tiny_models):
    corpus = tmp_path / "evil.jsonl"
    docs = [
        {"id": "x1", "title": "<script>alert(1)</script>", "text": "ቡና <img src=x onerror=alert(1)> [link](javascript:alert(1)) :red[ቀይ]"},
        {"id": "x2", "title": "**bold**", "text": "ቡና <script>document.title='pwned'</script>", "source": "<b>x</b>"},
    ]
    corpus.write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in docs), encoding="utf-8")
    root = tmp_path / "indexes"
    build_index(corpus, root / "evil", dense_model=None, show_progress=False)
    monkeypatch.setenv("AMHARIC_SEARCH_INDEX_ROOT", str(root))
    monkeypatch.setenv("AMHARIC_SEARCH_RERANKER", str(tiny_models["reranker"]))
    at = search(page(view="expert"), "ቡና")
    html = "".join(cards(at))
    assert "<script>" not in html and "<img" not in html and "](" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html and "&lt;img src&#61;x onerror&#61;alert&#40;1&#41;&gt;" in html


def test_unknown_words_page_says_the_results_match_by_meaning(both_modes):
    at = search(page(), "ዝዝዝዝዝ ቅቅቅቅቅ")
    assert t("no_word_found", "en") in [c.value for c in at.caption]
    found = cards(at)
    assert found and all(found_label(c) == "dense" and t("found_dense", "en") in c for c in found)  # dense answers


# (a lone surrogate cannot come from a browser, and AppTest cannot send one: the library tests cover it)
@pytest.mark.parametrize("query", ["።።።", "x" * 10_000, "ቡና \x00 ☕", "<script>alert(1)</script>"])
def test_odd_queries_in_the_page(app_env, query):
    at = search(page(), query)
    assert not at.error


# -- language, URL --------------------------------------------------------------------------------


def test_amharic_is_the_default_interface(app_env):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert at.session_state["lang"] == "am"
    assert [i.value for i in at.info] == [t("guidance", "am")]
    search(at, "የወባ በሽታ")
    (line,) = summary(at)
    assert "ውጤቶች" in line and "results" not in line
    english = {v["en"].split("{")[0].strip() for v in STRINGS.values() if v["en"] != v["am"]} - {""}
    ids = r'<span class="as-id"[^>]*>[^<]*</span>'  # document ids are the collection's, not the page's words
    shown = ([plain(re.sub(ids, "", m.value)) for m in at.main.markdown if "<style>" not in m.value]
             + [c.value for c in at.main.caption]
             + [b.label for b in at.main.button] + [i.value for i in at.main.info] + [e.label for e in at.main.expander]
             + [r.label for r in at.main.radio] + [o for r in at.main.radio for o in r.options] + [at.main.title[0].value])
    assert not [(s, e) for s in shown for e in english if e in s and e not in ("English", "BM25")]
    assert t("search_button", "am") in [b.label for b in at.main.button] + ["ፈልግ"]


def test_the_url_reopens_a_result_page(both_modes):
    at = page(lang="am", view="expert", q="የወባ በሽታ")
    assert len([c for c in cards(at) if "as-scores" in c]) == 10  # opening the URL runs the search
    assert at.text_input(key="query").value == "የወባ በሽታ"
    assert {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()} == \
        {"lang": "am", "view": "expert", "q": "የወባ በሽታ", "index": "sample"}
    at = page()
    search(at, "ቡና")
    assert {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}["q"] == "ቡና"


# -- the string catalogue -------------------------------------------------------------------------


def test_every_string_exists_in_both_languages():
    assert missing_keys() == {}
    for key, entry in STRINGS.items():
        placeholders = {lang: set(re.findall(r"{(\w+)}", text)) for lang, text in entry.items()}
        assert placeholders["am"] == placeholders["en"], key


def test_no_unused_strings_and_no_unknown_keys():
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "app.py", ROOT / "search" / "ui" / "display.py"))
    literal = set(re.findall(r"""\b(?:tr|say)\(["'](\w+)["']""", source)) | set(re.findall(r'"(cmp_\w+)"', source))
    prefixes = set(re.findall(r'''\btr\(f["'](\w+_)\{''', source)) | set(re.findall(r'labels\("(\w+_)"\)', source)) | {"progress_"}
    assert literal <= set(STRINGS), literal - set(STRINGS)
    unused = [k for k in STRINGS if k not in literal and not any(k.startswith(p) for p in prefixes)]
    assert unused == []


def test_the_page_gives_the_same_results_in_process_and_through_the_service(app_env, service_url, monkeypatch):
    local = search(page(view="expert"), "የወባ በሽታ መከላከል")
    monkeypatch.setenv("AMHARIC_SEARCH_API", service_url)
    remote = search(page(view="expert"), "የወባ በሽታ መከላከል")
    ids = [re.findall(r'class="as-id">([^<]+)<', c) for c in cards(local)]
    assert ids == [re.findall(r'class="as-id">([^<]+)<', c) for c in cards(remote)] and len(ids) == 40
    scores = [plain(re.search(r'<div class="as-scores">(.*?)</div>', c).group(1)) for c in cards(local) if "as-scores" in c]
    assert scores == [plain(re.search(r'<div class="as-scores">(.*?)</div>', c).group(1))
                      for c in cards(remote) if "as-scores" in c]
    assert not [e for e in remote.expander if e.label == "Add your own files"]  # the service serves its own collections


def test_an_unreachable_service_is_said_plainly(app_env, monkeypatch):
    monkeypatch.setenv("AMHARIC_SEARCH_API", "http://127.0.0.1:9")
    at = page()
    assert [e.value for e in at.error] == [t("api_unreachable", "en")] and "cannot be reached" in at.code[0].value


# -- adapting the encoder to a collection (expert view) -------------------------------------------------


ADAPT = t("adapt_title", "en")


@pytest.fixture
def titled_collection(tmp_path, tiny_models, monkeypatch):
    """40 titled sample documents indexed with the tiny encoder: the page's only collection (no reranker)."""
    from conftest import sample_docs
    from amharic_search.search.train import adapt

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in sample_docs()[:40]), encoding="utf-8")
    out = tmp_path / "indexes" / "titled"
    build_index(corpus, out, dense_model=str(tiny_models["encoder"]), show_progress=False)
    monkeypatch.setenv("AMHARIC_SEARCH_INDEX_ROOT", str(out.parent))
    monkeypatch.setenv("AMHARIC_SEARCH_INDEX", str(out))
    monkeypatch.delenv("AMHARIC_SEARCH_API", raising=False)
    monkeypatch.setenv("AMHARIC_SEARCH_RERANKER", "")
    monkeypatch.setenv("AMHARIC_SEARCH_DENSE_MODEL", str(tiny_models["encoder"]))
    monkeypatch.setenv("AMHARIC_SEARCH_CACHE", str(tmp_path / "cache"))  # this machine's measured training pace
    yield out
    job = adapt.current(out)
    if job is not None:
        job.stop()
        job.wait(60)
        adapt.forget(out)


def adapt_box(at):
    boxes = [e for e in at.sidebar.expander if e.label == ADAPT]
    assert len(boxes) <= 1
    return boxes[0] if boxes else None


def test_adapt_is_offered_in_the_expert_view_only(titled_collection):
    assert adapt_box(page()) is None  # the simple view shows nothing new
    box = adapt_box(page(view="expert"))
    # before this computer's pace is known: a measurement is offered, not a start without an estimate
    assert [b.label for b in box.button] == [t("adapt_measure_button", "en")]
    assert [c.value for c in box.caption] == [t("adapt_intro", "en", n=38),  # 2 titles are copied in their bodies
                                              t("adapt_estimate_unknown", "en")]
    assert not box.error and not box.progress


def writes_offered(at) -> list[str]:
    """What on the page can change a collection: the upload box, its build button, the adapt box."""
    labels = [e.label for e in at.sidebar.expander]
    offered = [label for label in labels if label in (t("upload_title", "en"), ADAPT)]
    offered += [b.key for b in at.sidebar.button if b.key == "build_btn"]
    offered += ["file_uploader"] if at.get("file_uploader") else []
    return offered


def test_a_read_only_page_offers_no_write(titled_collection, monkeypatch):
    assert writes_offered(page(view="expert"))  # the same page, writable: upload and adapt are there
    monkeypatch.setenv("AMHARIC_SEARCH_READ_ONLY", "1")
    for view in ("simple", "expert"):
        at = page(view=view)
        assert writes_offered(at) == []
        assert t("read_only", "en") in [c.value for c in at.sidebar.caption]
    assert cards(search(page(view="expert"), "ኢትዮጵያ"))  # searching still works


def test_adapt_is_replaced_by_one_sentence_when_it_cannot_run(lexical_index, app_env, service_url, tmp_path,
                                                              tiny_models, monkeypatch):
    def sentence(expected, **values):
        box = adapt_box(page(view="expert"))
        assert not box.button and [c.value for c in box.caption] == [t(expected, "en", **values)]

    monkeypatch.setenv("AMHARIC_SEARCH_API", service_url)  # the service's collections are not the page's to rebuild
    sentence("adapt_off_api")
    monkeypatch.delenv("AMHARIC_SEARCH_API")

    monkeypatch.setenv("AMHARIC_SEARCH_INDEX_ROOT", str(lexical_index.parent))
    monkeypatch.setenv("AMHARIC_SEARCH_RERANKER", "")
    sentence("adapt_off_lexical")

    from conftest import sample_docs

    corpus = tmp_path / "few.jsonl"
    corpus.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in sample_docs()[:6]), encoding="utf-8")
    few = tmp_path / "few" / "few"
    build_index(corpus, few, dense_model=str(tiny_models["encoder"]), show_progress=False)
    monkeypatch.setenv("AMHARIC_SEARCH_INDEX_ROOT", str(few.parent))
    sentence("adapt_off_titles", n=6, docs=6, min=20)

    import shutil

    encoder = tmp_path / "gone-encoder"
    shutil.copytree(tiny_models["encoder"], encoder)
    gone = tmp_path / "gone" / "gone"
    build_index(corpus, gone, dense_model=str(encoder), show_progress=False)
    shutil.rmtree(encoder)
    monkeypatch.setenv("AMHARIC_SEARCH_INDEX_ROOT", str(gone.parent))
    monkeypatch.delenv("AMHARIC_SEARCH_DENSE_MODEL")
    sentence("adapt_off_encoder")


def test_adapt_shows_progress_without_blocking_and_can_be_stopped(titled_collection):
    from amharic_search.search.train import adapt

    job = adapt.Job("adapt", titled_collection.resolve(), phase="training", done=2, total=5, eta_s=30.0)
    adapt._JOBS[str(titled_collection.resolve())] = job  # a job as the registry holds it while it trains
    at = page(view="expert")
    (bar,) = adapt_box(at).progress
    assert bar.value == 40 and "step 2 of 5" in bar.proto.text and "About 30 s left." in bar.proto.text
    assert cards(search(at, "የወባ በሽታ"))  # the page searches meanwhile
    at.button(key="adapt_stop").click().run()
    assert job.stopping and t("adapt_stopping", "en") in [c.value for c in adapt_box(at).caption]
    job.state = "stopped"
    at.run()
    assert [i.value for i in adapt_box(at).info] == [t("adapt_stopped", "en", done=2, total=5)]


def test_adapt_runs_to_the_end_then_the_collection_is_rebuilt_with_it(titled_collection):
    from amharic_search.index.manifest import read_manifest
    from amharic_search.index.models import load_encoder
    from amharic_search.search.train import adapt

    before = read_manifest(titled_collection)
    at = page(view="expert")
    at.button(key="adapt_measure").click().run()
    measure = adapt.current(titled_collection)
    assert measure.kind == "measure" and measure.wait(120) and measure.state == "done", (measure.error, measure.detail)
    at.run()
    box = adapt_box(at)
    estimate = adapt.estimate(titled_collection)
    assert estimate is not None and estimate.rates.source == "measured" and estimate.train_pairs == 34
    assert estimate.steps == math.ceil(34 / estimate.batch_size) and estimate.seconds > 0
    seconds = estimate.seconds
    said = t("seconds", "en", value=max(1, round(seconds))) if seconds < 90 else t("minutes", "en", value=round(seconds / 60))
    assert t("adapt_estimate", "en", time=said, steps=estimate.steps, batch=estimate.batch_size,
             source=t("adapt_source_measured", "en", when=estimate.rates.measured)) in [c.value for c in box.caption]
    (budget,) = box.number_input
    assert budget.value == budget.max == math.ceil(estimate.seconds / 60)  # the whole run, by default
    at.button(key="adapt_start").click().run()
    job = adapt.current(titled_collection)
    assert job.kind == "adapt" and job.wait(120) and job.state == "done", (job.error, job.detail)
    assert job.model.parent == titled_collection.parent and job.model.name.startswith("titled.adapted-")
    load_encoder(str(job.model))  # an ordinary model folder, through the normal model path
    at.run()
    box = adapt_box(at)
    assert [s.value for s in box.success] == [t("adapt_done", "en", pairs=34, steps=job.steps)]
    (table,) = box.table
    assert list(table.value.index) == ["MRR@10", "Recall@1", "Recall@10"] and list(table.value.columns) == ["before", "after"]
    assert list(table.value["after"]) == [f"{v:.3f}" for v in job.after.values()]
    assert [c.value for c in box.code] == [str(job.model)]

    at.button(key="adapt_rebuild").click().run()
    rebuild = adapt.current(titled_collection)
    assert rebuild.kind == "rebuild" and rebuild.wait(120) and rebuild.state == "done", (rebuild.error, rebuild.detail)
    after = read_manifest(titled_collection)
    assert after["dense"]["model"] == str(job.model) and after["created"] != before["created"]
    assert after["corpus"] == before["corpus"]  # the same documents; the manifest still names the corpus
    at.run()
    assert [s.value for s in adapt_box(at).success] == [escape(t("adapt_rebuilt", "en", model=job.model.name))]
    assert [b.label for b in adapt_box(at).button] == ["Adapt"]  # nothing pending: adapt again from the new model
    about = [e for e in at.sidebar.expander if e.label == "About this collection"][0]
    assert any(str(job.model) in unescape(x.value) for x in about.caption)  # the page searches the rebuilt collection
    found = [c for c in cards(search(at, "የወባ በሽታ")) if "as-scores" in c]
    assert found and "Meaning" in plain(found[0])


# -- what a reader sees: labels, words, charts (issue 23) -----------------------------------------------


def score_line_of(card: str) -> str:
    return plain(re.search(r'<div class="as-scores">(.*?)</div>', card).group(1))


@pytest.mark.parametrize("query", ["የቡና ወጪ ንግድ", "selam", "የወባ በሽታ መከላከል", "ዝዝዝዝዝ ቅቅቅቅቅ"])
def test_a_label_says_what_the_stages_did(app_env, query):
    """A card's label follows the stages' own scores (the expert view's score line): "found by meaning"
    only when dense retrieval found the result and keyword search did not."""
    at = search(page(view="expert"), query)
    results = [c for c in cards(at) if "as-scores" in c]
    assert results
    for card in results:
        label, scores = found_label(card), score_line_of(card)
        by_words = not scores.startswith(f"Keywords {t('not_found_by', 'en')}")
        by_meaning = f"Meaning {t('not_found_by', 'en')}" not in scores
        expected = {(True, True): "both", (True, False): "bm25", (False, True): "dense"}[(by_words, by_meaning)]
        assert label in (expected, None), (label, scores)
        if label is None:  # no label: a highlighted word of the search says why the result is there
            assert "<mark>" in card


def test_without_meaning_based_search_no_card_claims_it(lexical_index, monkeypatch):
    monkeypatch.setenv("AMHARIC_SEARCH_INDEX_ROOT", str(lexical_index.parent))
    monkeypatch.setenv("AMHARIC_SEARCH_RERANKER", "")
    labels = []
    for query in ("የቡና ወጪ ንግድ", "selam", "የወባ በሽታ መከላከል"):
        found = cards(search(page(lang="am"), query))
        assert found
        assert not [c for c in found if t("found_dense", "am") in c or found_label(c) in ("dense", "both")]
        assert all("<mark>" in c or found_label(c) == "bm25" for c in found)  # each card says why it is there
        labels += [found_label(c) for c in found]
    assert "bm25" in labels  # the keyword label is said where no highlighted word shows why


def test_latin_nonsense_is_searched_as_typed(app_env):
    at = search(page(), "xyzqwv blorf")
    assert not any("Searching for" in m.value for m in at.markdown)
    assert t("not_transliterated", "en", typed="xyzqwv blorf") in [unescape(c.value) for c in at.caption]
    assert at.session_state["last_query"] == "xyzqwv blorf"


def test_about_this_collection_speaks_the_page_language(app_env):
    def about(at):
        (box,) = [e for e in at.sidebar.expander if e.label == t("about_collection", "am")]
        return [unescape(c.value) for c in box.caption]

    simple = about(page(lang="am"))
    assert simple[0] == t("about_name", "am") + t("label_sep", "am") + t("sample_name", "am")
    assert any(line.startswith(t("about_documents", "am")) and line.endswith("143") for line in simple)
    assert not [line for line in simple if re.search("[A-Za-z]", line)], simple  # no format version, sha, k1=…
    expert = about(page(lang="am", view="expert"))
    assert len(expert) > len(simple) and any(line.startswith(t("about_bm25", "am")) and "k1=" in line for line in expert)
    assert all(re.match("[\u1200-\u137f]", line) for line in expert)  # every label in Amharic, values as they are


def test_how_to_turn_it_on_is_for_the_administrator_with_paths_of_this_server(app_env, monkeypatch, sample_index):
    from amharic_search.search.ui.paths import models_dir

    monkeypatch.setenv("AMHARIC_SEARCH_RERANKER", "rasyosef/reranker-amharic-medium")
    at = page(lang="am")
    (how,) = [e for e in at.expander if e.label == t("how_to_turn_on", "am")]
    assert how.caption[0].value == t("how_reader", "am") and not re.search("[A-Za-z]", how.caption[0].value)
    assert any(t("how_admin", "am") in m.value for m in how.markdown)  # the administrator's part, marked
    commands = [c.value for c in how.code]
    folder = str(models_dir(sample_index.parent))
    assert folder in commands and folder.startswith("/")
    (start,) = [c for c in commands if c.startswith("amharic-search app")]
    assert f"--reranker {folder}/reranker-amharic-medium" in start and "--dense-model" not in start  # only what is off
    assert not [c.value for c in how.code if "\n" in c.value.strip()]  # one command a block, wrapped, never cut


def test_a_keyword_collection_says_so_and_how_to_add_meaning(tmp_path, monkeypatch, tiny_models):
    """A lexical-only collection with the encoder on this computer: not "the model is not here", and the
    rebuild command names the corpus and the collection by absolute paths, wherever it was built from."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.jsonl").write_text(json.dumps({"id": "a", "title": "ቡና", "text": "የቡና ዋጋ ጨመረ።"},
                                                 ensure_ascii=False) + "\n", encoding="utf-8")
    build_index("c.jsonl", "indexes/words", dense_model=None, show_progress=False)  # relative paths
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("AMHARIC_SEARCH_INDEX", str(tmp_path / "indexes" / "words"))
    monkeypatch.setenv("AMHARIC_SEARCH_INDEX_ROOT", str(tmp_path / "indexes"))
    monkeypatch.setenv("AMHARIC_SEARCH_DENSE_MODEL", str(tiny_models["encoder"]))
    monkeypatch.setenv("AMHARIC_SEARCH_RERANKER", "")
    at = page()
    assert [i.value for i in at.info][:1] == [t("off_lexical_index", "en")]
    (how,) = [e for e in at.expander if e.label == "How to turn it on"]
    (rebuild,) = [c.value for c in how.code]
    assert rebuild == (f"amharic-search index build {tmp_path / 'c.jsonl'} --out {tmp_path / 'indexes' / 'words'} "
                       f"--dense-model {tiny_models['encoder']}")


def test_examples_fold_away_once_a_search_has_run(app_env):
    at = page(lang="am")
    assert t("examples_label", "am") in [c.value for c in at.main.caption]
    assert t("examples_more", "am") not in [e.label for e in at.main.expander]
    examples = [b.label for b in at.main.button if b.key and b.key.startswith("ex")]
    assert examples
    search(at, "ቡና")
    (shelf,) = [e for e in at.main.expander if e.label == t("examples_more", "am")]
    assert [b.label for b in shelf.button] == examples  # still one click away
    assert t("examples_label", "am") not in [c.value for c in at.main.caption]


def test_time_per_stage_shows_the_stages_that_ran_with_a_unit_in_the_served_font(app_env):
    from amharic_search.search.ui.display import CHART_FONT

    at = page(view="expert")
    at.radio(key="mode").set_value("lexical")
    at.checkbox(key="rerank").uncheck()
    (timings,) = search(at, "የቡና ምርት").get("vega_lite_chart")
    spec = str(timings.proto)
    assert t("timing_bm25", "en") in spec and t("timing_ms", "en") in spec and CHART_FONT in spec
    assert t("timing_fusion", "en") not in spec and t("timing_dense", "en") not in spec  # only keyword search ran
    flow, timings = search(page(view="expert"), "የቡና ምርት").get("vega_lite_chart")
    assert all(t(f"timing_{k}", "en") in str(timings.proto) for k in ("bm25", "dense", "fusion", "rerank"))
    assert CHART_FONT in str(flow.proto)
