"""Page logic of app.py with streamlit's AppTest and tiny local models."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from index.build import build_index

from conftest import ROOT

APP = str(ROOT / "app.py")


@pytest.fixture
def app_env(monkeypatch, sample_index, tiny_models):
    monkeypatch.setenv("AMHARIC_SEARCH_INDEX_ROOT", str(sample_index.parent))
    monkeypatch.delenv("AMHARIC_SEARCH_INDEX", raising=False)
    monkeypatch.setenv("AMHARIC_SEARCH_RERANKER", str(tiny_models["reranker"]))
    monkeypatch.setenv("AMHARIC_SEARCH_DENSE_MODEL", str(tiny_models["encoder"]))


def cards(at):
    return [m.value for m in at.markdown if 'class="as-card"' in m.value]


def search(at, text):
    at.text_input(key="query").input(text)
    at.button(key="FormSubmitter:search-Search").click().run()
    assert not at.exception, at.exception
    return at


def test_empty_page_shows_guidance(app_env):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert any("Type a query" in i.value for i in at.info)
    assert not at.error


def test_query_gives_ranked_results_with_all_stage_scores(app_env):
    at = search(AppTest.from_file(APP, default_timeout=60).run(), "የወባ በሽታ መከላከል")
    found = cards(at)
    assert len(found) == 10
    assert 'class="as-rank">1<' in found[0]
    for card in found:
        for stage in ("Fused", "Rerank"):  # every candidate has these; BM25/dense only if that retriever found it
            assert f"{stage} –" not in card
    assert any("BM25 –" not in c and "Dense –" not in c for c in found)
    assert "<mark>" in "".join(found)  # query words highlighted
    assert [m.label for m in at.metric] == ["bm25 ms", "dense ms", "fusion ms", "rerank ms", "total ms"]
    assert any("Reranked" in s.label for s in at.status)


def test_stage_toggles_change_what_runs(app_env):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.radio(key="mode").set_value("Lexical (BM25)")
    at.checkbox(key="rerank").uncheck()
    search(at, "የቡና ምርት")
    found = cards(at)
    assert found and all("Dense –" in c and "Rerank –" in c and "BM25 –" not in c for c in found)
    assert [m.label for m in at.metric] == ["bm25 ms", "fusion ms", "total ms"]
    assert not at.status


def test_empty_query_is_guidance_not_error(app_env):
    at = search(AppTest.from_file(APP, default_timeout=60).run(), "   ")
    assert any("empty" in i.value for i in at.info) and not at.error


def test_example_query_one_click(app_env):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.button(key="ex0").click().run()
    assert not at.exception and cards(at)


def test_latin_transliteration(app_env):
    at = search(AppTest.from_file(APP, default_timeout=60).run(), "selam buna")
    assert any("Searching for" in m.value and "ሰላም ቡና" in m.value for m in at.markdown)
    at.checkbox(key="translit").uncheck()
    at.run()
    assert not any("Searching for" in m.value for m in at.markdown)


def test_compare_view(app_env):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.radio(key="view").set_value("Compare stages")
    search(at, "የአድዋ ጦርነት")
    heads = [m.value for m in at.markdown if m.value.startswith("**")]
    assert [h.split("**")[1] for h in heads] == ["BM25 alone", "Hybrid", "Hybrid + rerank"]
    assert len(cards(at)) == 30


def test_compare_view_uses_the_sidebar_settings(app_env, monkeypatch):
    from search.searcher import Searcher

    seen = []
    original = Searcher.search

    def spy(self, query, **kwargs):
        seen.append(kwargs)
        return original(self, query, **kwargs)

    monkeypatch.setattr(Searcher, "search", spy)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.radio(key="view").set_value("Compare stages")
    at.radio(key="fusion").set_value("rrf")
    at.select_slider(key="max_length").set_value(128)
    at.radio(key="window").set_value("the beginning")
    search(at, "የአድዋ ጦርነት")
    assert len(seen) == 3
    assert all(kw["fusion"] == "rrf" and kw["max_length"] == 128 and kw["window"] == "head" for kw in seen)


def test_missing_model_is_explained_and_search_still_works(app_env, monkeypatch):
    monkeypatch.setenv("AMHARIC_SEARCH_RERANKER", "rasyosef/reranker-amharic-medium")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert any("reranker-amharic-medium" in w.value and "models download" in w.value for w in at.warning)
    search(at, "የቡና ምርት")
    found = cards(at)
    assert found and all("Rerank –" in c for c in found)
    assert "Traceback" not in "".join(m.value for m in at.markdown)


def test_hostile_passages_are_escaped(tmp_path, monkeypatch, tiny_models):
    corpus = tmp_path / "evil.jsonl"
    docs = [
        {"id": "x1", "title": "<script>alert(1)</script>", "text": "ቡና <img src=x onerror=alert(1)> [link](javascript:alert(1)) :red[ቀይ]"},
        {"id": "x2", "title": "**bold**", "text": "ቡና <script>document.title='pwned'</script>"},
    ]
    corpus.write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in docs), encoding="utf-8")
    root = tmp_path / "indexes"
    build_index(corpus, root / "evil", dense_model=None, show_progress=False)
    monkeypatch.setenv("AMHARIC_SEARCH_INDEX_ROOT", str(root))
    monkeypatch.setenv("AMHARIC_SEARCH_RERANKER", str(tiny_models["reranker"]))
    at = search(AppTest.from_file(APP, default_timeout=60).run(), "ቡና")
    html = "".join(cards(at))
    assert "<script>" not in html and "<img" not in html and "](" not in html
    assert "&lt;script&gt;" in html and "&lt;img src&#61;x onerror&#61;alert&#40;1&#41;&gt;" in html


def test_unknown_words_page_says_lexical_found_nothing(app_env):
    at = search(AppTest.from_file(APP, default_timeout=60).run(), "ዝዝዝዝዝ ቅቅቅቅቅ")
    assert any("no passage contains a word of the query" in c.value for c in at.caption)
    assert cards(at)  # the dense stage still answers


# (a lone surrogate cannot come from a browser, and AppTest cannot send one: the library tests cover it)
@pytest.mark.parametrize("query", ["።።።", "x" * 10_000, "ቡና \x00 ☕", "<script>alert(1)</script>"])
def test_odd_queries_in_the_page(app_env, query):
    at = search(AppTest.from_file(APP, default_timeout=60).run(), query)
    assert not at.error
