import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amharic_search.index.analyzer import (
    Analyzer,
    AnalyzerConfig,
    AnalyzerMismatchError,
    consonant_skeleton,
    convert_numerals,
    fold_homophones,
    root_feature,
    stem,
)


@pytest.mark.parametrize(
    "variant, canonical",
    [
        ("መንግሥት", "መንግስት"),  # ሠ -> ሰ
        ("ሕዝብ", "ህዝብ"),  # ሐ -> ሀ
        ("ኃይል", "ሀይል"),  # ኀ (4th order) -> ሀ
        ("ዓመት", "አመት"),  # ዐ (4th order) -> አ
        ("ዕድሜ", "እድሜ"),  # ዐ (6th order) -> እ
        ("ፀሐይ", "ጸሀይ"),  # ፀ -> ጸ, ሐ -> ሀ
        ("ሥራ", "ስራ"),
        ("ጉዋደኛ", "ጓደኛ"),  # spelled-out labialized letter
        ("ቋንቋ", "ቋንቋ"),
        ("ሰዉ", "ሰው"),
        ("ቈጠረ", "ቆጠረ"),  # old labialized letter
    ],
)
def test_homophone_folding(variant, canonical):
    assert fold_homophones(variant) == canonical
    assert fold_homophones(canonical) == canonical


@pytest.mark.parametrize("word", ["ሰላም", "ቡና", "ጤና", "ኢትዮጵያ", "አዲስ", "ትምህርት", "ቤት", "ወንዝ", "ሙዋዕለ"])
def test_folding_leaves_other_letters_alone(word):
    # ሙዋ is not folded: ሙ is a u-order letter of the መ row, which has a labialized ሟ only for ሙ+ዋ
    expected = word.replace("ሙዋ", "ሟ").replace("ዕ", "እ")
    assert fold_homophones(word) == expected


def test_numerals():
    assert convert_numerals("፲፱፻፹፯ ዓ.ም.") == "1987 ዓ.ም."
    assert convert_numerals("፫ ሺህ") == "3 ሺህ"
    assert convert_numerals("ምንም ቁጥር የለም") == "ምንም ቁጥር የለም"


@pytest.mark.parametrize(
    "word, expected",
    [
        ("ቤቶች", "ቤት"),  # plural -ኦች merged into the last consonant
        ("ቤቶቹ", "ቤት"),
        ("ቤቱ", "ቤት"),  # definite -ኡ
        ("ቤታችን", "ቤት"),  # possessive -አችን
        ("ቤቶቻቸውን", "ቤት"),
        ("ቋንቋዎች", "ቋንቋ"),  # plural -ዎች after a vowel
        ("ቋንቋው", "ቋንቋ"),  # definite -ው after a vowel
        ("ከተማዋ", "ከተማ"),  # definite -ዋ; ከተማ is not ከ + ተማ
        ("ለገበሬዎቹም", "ገበሬ"),  # prefix + plural + definite + clitic
        ("የኢትዮጵያ", "ኢትዮጵያ"),
        ("ኢትዮጵያውያን", "ኢትዮጵያ"),
        ("ኢትዮጵያዊ", "ኢትዮጵያ"),
        ("ባህላዊ", "ባህል"),
        ("በሰላም", "ሰላም"),
        ("ህዝብና", "ህዝብ"),
        ("አስክሬኖች", stem("አስክሬን")),  # inflected and bare forms agree
    ],
)
def test_stemmer(word, expected):
    assert stem(word) == expected


@pytest.mark.parametrize("word", ["በሬ", "በር", "ሰው", "ሰላም", "ከተማ", "በሽታ", "ለውጥ", "ቡና", "ጤና", "ሀገር", "ወንዝ", "ከፍተኛ", "በጀት"])
def test_stemmer_keeps_words_that_only_look_inflected(word):
    assert stem(word) == word


def test_stemmer_ignores_non_ethiopic():
    assert stem("computers") == "computers"


def test_root_feature_links_verb_forms():
    forms = ["ተሰደዱ", "ተሰደዋል", "የሚሰደዱ"]
    assert len({root_feature(f) for f in forms}) == 1
    assert root_feature("ትምህርት") != root_feature("ጤንነት")
    assert root_feature("ቡና") is None  # too short to carry a root
    assert root_feature("abc") is None
    assert consonant_skeleton("ጠበቀ") == "ጥብቅ"


def test_tokens_default_pipeline():
    a = Analyzer(AnalyzerConfig(roots=False, keep_surface=False))
    assert a.tokens("የኢትዮጵያ መንግሥት፡፡ ሕዝቡ፣ Hello WORLD ፲") == ["ኢትዮጵያ", "መንግስት", "ህዝብ", "hello", "world", "10"]
    assert a.tokens("።።። ፡ ፣ ? !") == []


def test_ethiopic_punctuation_splits_words():
    a = Analyzer(AnalyzerConfig(stem=False, roots=False))
    assert a.tokens("ሰላም፡ጤና።ቡና፣ሻይ፤ወተት") == ["ሰላም", "ጤና", "ቡና", "ሻይ", "ወተት"]


def test_nfc_makes_composed_and_decomposed_equal():
    a = Analyzer()
    assert a.tokens("Cafe\u0301 ቡና") == a.tokens("Caf\u00e9 ቡና")


def test_stopwords_optional():
    text = "ቡና እና ሻይ ነው"
    assert "እና" in Analyzer(AnalyzerConfig(stem=False, roots=False)).tokens(text)
    assert "እና" not in Analyzer(AnalyzerConfig(stem=False, roots=False, stopwords=True)).tokens(text)


def test_config_round_trip_and_mismatch():
    cfg = AnalyzerConfig(stem=False, stopwords=True)
    assert AnalyzerConfig.from_dict(cfg.to_dict()) == cfg
    bad = {**cfg.to_dict(), "version": "999"}
    with pytest.raises(AnalyzerMismatchError, match="rebuild the index"):
        AnalyzerConfig.from_dict(bad)
    with pytest.raises(AnalyzerMismatchError, match="unknown analyzer settings"):
        AnalyzerConfig.from_dict({**cfg.to_dict(), "future_step": True})


def test_term_spans_cover_original_text():
    a = Analyzer()
    text = "የቡና ምርት፡፡"
    spans = a.term_spans(text)
    assert [text[s:e] for s, e, _ in spans] == ["የቡና", "ምርት"]
    assert spans[0][2][0] == "ቡና"


ethiopic_text = st.text(
    alphabet=st.one_of(st.characters(min_codepoint=0x1200, max_codepoint=0x137F), st.sampled_from(" ።፣፡?!abcAB12\n")),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ethiopic_text)
def test_analyzer_never_crashes_and_folding_is_idempotent(text):
    a = Analyzer()
    tokens = a.tokens(text)
    assert all(t and not t.isspace() for t in tokens)
    for word in a.words(text):
        assert fold_homophones(fold_homophones(word)) == fold_homophones(word)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_analyzer_handles_any_unicode(text):
    Analyzer().tokens(text)
