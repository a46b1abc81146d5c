from amharic_search.index.chunking import ChunkConfig, chunk_text, estimate_tokens, split_sentences

from conftest import sample_docs


def test_short_document_stays_whole():
    (chunk,) = chunk_text("ቡና ጥሩ ነው። ሻይም ጥሩ ነው።")
    assert chunk.text == "ቡና ጥሩ ነው። ሻይም ጥሩ ነው።" and chunk.start == 0


def test_sentence_boundaries():
    text = "አንድ ነው። ሁለት ነው? ሦስት! አራት፧ አምስት፡፡ ስድስት\nሰባት"
    assert [s for _, s in split_sentences(text)] == ["አንድ ነው።", "ሁለት ነው?", "ሦስት!", "አራት፧", "አምስት፡፡", "ስድስት", "ሰባት"]
    for offset, sentence in split_sentences(text):
        assert text[offset : offset + len(sentence)] == sentence


def test_budget_overlap_and_offsets():
    sentences = [f"ይህ ዓረፍተ ነገር ቁጥር {i} ነው።" for i in range(40)]
    text = " ".join(sentences)
    cfg = ChunkConfig(max_tokens=40, overlap=1)
    chunks = chunk_text(text, config=cfg)
    assert len(chunks) > 3
    for c in chunks:
        assert estimate_tokens(c.text) <= cfg.max_tokens + 2
        assert text[c.start : c.start + len(c.text)] == c.text
        assert c.text.endswith("።")
    # consecutive passages share one sentence, and together they cover every sentence
    for a, b in zip(chunks, chunks[1:]):
        last = a.text.split("።")[-2].strip() + "።"
        assert b.text.startswith(last)
    covered = " ".join(c.text for c in chunks)
    assert all(s in covered for s in sentences)


def test_over_long_sentence_is_cut_on_words():
    text = " ".join(["ቃል"] * 500)
    chunks = chunk_text(text, config=ChunkConfig(max_tokens=50, overlap=0))
    assert len(chunks) >= 10
    assert all(estimate_tokens(c.text) <= 50 for c in chunks)
    assert sum(len(c.text.split()) for c in chunks) == 500


def test_custom_token_counter():
    text = "አንድ። ሁለት። ሦስት። አራት።"
    chunks = chunk_text(text, config=ChunkConfig(max_tokens=2, overlap=0), count=lambda s: len(s.split()))
    assert [c.text for c in chunks] == ["አንድ።", "ሁለት።", "ሦስት።", "አራት።"]


def test_sample_long_documents_are_split():
    long_docs = [d for d in sample_docs() if d["id"].startswith("long-")]
    assert len(long_docs) >= 5
    for d in long_docs:
        chunks = chunk_text(d["text"])
        assert len(chunks) >= 2
        assert [c.index for c in chunks] == list(range(len(chunks)))
