import pytest

from amharic_search.index.analyzer import Analyzer
from amharic_search.index.manifest import read_manifest
from amharic_search.index.readers import CorpusError
from amharic_search.search.ui.catalog import MAX_UPLOAD_BYTES, Upload, build_from_uploads, safe_name
from amharic_search.search.ui.display import doc_colors, escape, highlight, rank_change
from amharic_search.search.translit import looks_transliterated, to_ethiopic, transliterate_query


@pytest.mark.parametrize(
    "hostile",
    ["<script>alert(1)</script>", '<img src=x onerror="alert(1)">', "[x](javascript:alert(1))", ":red[ቀይ]",
     "**bold** _it_ `code` $x$", "&lt;already&gt;", "a\nb"],
)
def test_escape_leaves_no_markup(hostile):
    out = escape(hostile)
    assert "<" not in out.replace("<br>", "") and ">" not in out.replace("<br>", "")
    for ch in "[]()*_`$:\"'":
        assert ch not in out
    import html

    assert html.unescape(out.replace("<br>", "\n")) == hostile


def test_highlight_uses_the_analyzer_and_escapes():
    a = Analyzer()
    text = "የሕዝቡ <b>ጤና</b> ጉዳይ"
    out = highlight(a, text, a.tokens("ህዝብ"))
    assert out.startswith("<mark>የሕዝቡ</mark>")  # ሕዝቡ folds and stems to ህዝብ
    assert "&lt;b&gt;ጤና&lt;/b&gt;" in out and "<b>" not in out
    assert highlight(a, "ቡና", []) == "ቡና"


def test_rank_change_and_colors():
    assert rank_change(8, 1) == "↑ 7" and rank_change(1, 3) == "↓ 2" and rank_change(4, 4) == "="
    assert rank_change(None, 1) == "new" and rank_change(3, None) == "" and rank_change(None, 1, new="አዲስ") == "አዲስ"
    colors = doc_colors([f"d{i}" for i in range(30)])
    assert len(set(list(colors.values())[:20])) == 20


def test_transliteration():
    assert looks_transliterated("selam buna") and not looks_transliterated("ሰላም buna") and not looks_transliterated("123")
    assert to_ethiopic("selam buna") == "ሰላም ቡና"
    assert to_ethiopic("addis") == to_ethiopic("adis")  # gemination is not written
    assert to_ethiopic("buna 2024!") == "ቡና 2024!"



@pytest.mark.parametrize("query", ["selam", "selam buna", "yemenged timhirt", "tsehay", "addis abeba", "hagerachn"])
def test_amharic_typed_in_latin_letters_is_converted(query):
    assert looks_transliterated(query) and transliterate_query(query) == to_ethiopic(query) != query


@pytest.mark.parametrize("query", ["xyzqwv blorf", "xyzqwv", "selam xyzqwv", "strengths", "brrr", "123", "ሰላም buna"])
def test_latin_nonsense_is_searched_as_typed(query):
    """Not transliterated (auto): a word without a vowel or with four consonants in a row is not Amharic."""
    assert not looks_transliterated(query) and transliterate_query(query) == query
    assert transliterate_query(query, "on") == to_ethiopic(query)  # unless asked


@pytest.mark.parametrize("name, expected", [("../../etc/passwd", "passwd"), ("..", "corpus"), ("a/b\\c.txt", "c.txt"),
                                            (".hidden", "hidden"), ("ጽሑፍ 1.md", "ጽሑፍ_1.md")])
def test_safe_name(name, expected):
    assert safe_name(name) == expected


def test_upload_builds_index_inside_root(tmp_path):
    root = tmp_path / "indexes"
    report = build_from_uploads(
        [Upload("../../a.txt", "ቡና ጥሩ ነው።".encode()), Upload("b.md", "# ሻይ\nሻይ".encode())],
        root, "../../escape", dense_model=None,
    )
    assert report.out == root / "escape" and read_manifest(report.out)["corpus"]["documents"] == 2
    assert not (tmp_path / "escape").exists()


def test_upload_errors(tmp_path):
    root = tmp_path / "indexes"
    with pytest.raises(CorpusError, match="not a .jsonl"):
        build_from_uploads([Upload("x.exe", b"MZ")], root, "x", dense_model=None)
    with pytest.raises(CorpusError, match="not a mix"):
        build_from_uploads([Upload("a.jsonl", b"{}"), Upload("b.txt", b"x")], root, "x", dense_model=None)
    with pytest.raises(CorpusError, match="larger than"):
        build_from_uploads([Upload("a.txt", b"x" * (MAX_UPLOAD_BYTES + 1))], root, "x", dense_model=None)
    with pytest.raises(CorpusError, match=r"a\.jsonl, line 2"):
        build_from_uploads([Upload("a.jsonl", '{"id":"1","text":"ቡና"}\n{oops\n'.encode())], root, "x", dense_model=None)
    assert not (root / "x").exists()


def test_snippet_is_query_biased_short_and_marked():
    from amharic_search.index.analyzer import Analyzer
    from amharic_search.search.ui.display import SNIPPET_CHARS, snippet

    analyzer = Analyzer()
    filler = "የአገሪቱ ገበሬዎች በዚህ ዓመት ብዙ ሥራ ሠርተዋል። " * 12
    text = filler + "የወባ በሽታን ለመከላከል አዲስ ዘመቻ ተጀመረ። " + filler
    html, matched = snippet(analyzer, text, analyzer.tokens("የወባ በሽታ"))
    plain = html.replace("<mark>", "").replace("</mark>", "")
    assert matched and html.startswith("…") and html.endswith("…")
    assert len(plain.strip("…")) <= SNIPPET_CHARS
    assert "<mark>የወባ</mark> <mark>በሽታን</mark>" in html  # through the analyzer: በሽታን matches በሽታ
    assert not plain.strip("…").startswith(" ") and "ለመከላከል" in plain  # whole words around the match
    html, matched = snippet(analyzer, text, analyzer.tokens("ቡና"))
    assert not matched and html.startswith("የአገሪቱ") and html.endswith("…") and "<mark>" not in html
    html, _ = snippet(analyzer, "<b>ቡና</b> [x](javascript:1)", ["ቡና"])
    assert "<b>" not in html and "](" not in html and "<mark>ቡና</mark>" in html


def test_first_sentence_and_metadata_line():
    from amharic_search.search.ui.display import first_sentence, metadata_line

    assert first_sentence("የቡና ዋጋ ጨመረ። ገበሬዎች ተደሰቱ።") == "የቡና ዋጋ ጨመረ።"
    long = "ቃል " * 60
    assert first_sentence(long).endswith("…") and len(first_sentence(long)) <= 91
    assert metadata_line("d1", {"source": "ዜና", "date": "2024", "tags": ["x"], "n": 3}) == [
        ("id", "d1"), ("date", "2024"), ("source", "ዜና"), ("n", "3")]


def test_the_lexical_sample_gains_embeddings_once_the_encoder_is_here(tmp_path, tiny_models):
    from amharic_search.index.manifest import read_manifest
    from amharic_search.search.ui.catalog import ensure_sample_index, sample_needs_build

    out = tmp_path / "sample"
    notes = ensure_sample_index(out, dense_model=str(tmp_path / "not-here"))  # offline: keyword search only
    assert notes and notes[0].startswith("dense retrieval skipped") and not read_manifest(out)["dense"]
    assert not sample_needs_build(out, str(tmp_path / "not-here"))
    assert sample_needs_build(out, str(tiny_models["encoder"]))
    assert ensure_sample_index(out, dense_model=str(tiny_models["encoder"])) == []
    assert read_manifest(out)["dense"]["dim"] == 32 and not sample_needs_build(out, str(tiny_models["encoder"]))


def test_upload_errors_name_the_file_and_no_command_line_flag(tmp_path):
    from amharic_search.index.readers import CorpusError
    from amharic_search.search.ui.catalog import Upload, build_from_uploads, table_columns

    csv = Upload("news.csv", "id,headline,body\n1,ርዕስ,ቡና ጥሩ ነው።\n".encode())
    assert table_columns(csv) == ["id", "headline", "body"]
    assert table_columns(Upload("a.jsonl", b'{"id": "1", "body": "x", "n": 3}\n')) == ["id", "body"]
    with pytest.raises(CorpusError) as info:
        build_from_uploads([csv], tmp_path, "x", dense_model=None)
    assert str(info.value).startswith("news.csv, line 1: no 'text' column") and "--" not in str(info.value)
    assert "/tmp" not in str(info.value)
    report = build_from_uploads([csv], tmp_path, "x", dense_model=None, text_field="body", title_field="headline")
    assert report.documents == 1
