import json

import pytest

from amharic_search.index.readers import CorpusError, ReadReport, read_corpus


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def test_jsonl_keeps_extra_fields_and_normalizes(tmp_path):
    f = write(tmp_path / "c.jsonl", json.dumps({"id": "a", "title": "ርዕስ", "text": "Cafe\u0301 ቡና", "topic": "x"}) + "\n\n")
    (doc,) = read_corpus(f)
    assert (doc.id, doc.title, doc.text, doc.metadata) == ("a", "ርዕስ", "Caf\u00e9 ቡና", {"topic": "x"})


def test_jsonl_bad_line_names_file_and_line(tmp_path):
    f = write(tmp_path / "c.jsonl", '{"id": "a", "text": "ቡና"}\n{not json\n{"id": "c", "text": "ሻይ"}\n')
    with pytest.raises(CorpusError, match=r"c\.jsonl, line 2: not valid JSON: expecting property name enclosed in "
                                          r"double quotes at column 2 "):
        list(read_corpus(f))
    f2 = write(tmp_path / "d.jsonl", '{"id": "a", "text": "ቡና\tሻይ"}\n')  # a raw tab inside a string
    with pytest.raises(CorpusError, match=r"d\.jsonl, line 1: not valid JSON: invalid control character at column 24 "):
        list(read_corpus(f2))
    report = ReadReport()
    docs = list(read_corpus(f, skip_bad=True, report=report))
    assert [d.id for d in docs] == ["a", "c"]
    assert report.read == 2 and len(report.skipped) == 1 and "line 2" in report.skipped[0]


def test_jsonl_missing_text_and_wrong_types(tmp_path):
    f = write(tmp_path / "c.jsonl", '{"id": "a", "body": "ቡና"}\n')
    with pytest.raises(CorpusError, match="line 1: missing 'text' field"):
        list(read_corpus(f))
    f = write(tmp_path / "d.jsonl", '{"id": "a", "text": ["ቡና"]}\n')
    with pytest.raises(CorpusError, match="must be a string"):
        list(read_corpus(f))
    f = write(tmp_path / "e.jsonl", '["ቡና"]\n')
    with pytest.raises(CorpusError, match="expected a JSON object"):
        list(read_corpus(f))


def test_custom_field_names(tmp_path):
    f = write(tmp_path / "c.jsonl", '{"doc": "a", "body": "ቡና", "name": "ርዕስ"}\n')
    (doc,) = read_corpus(f, id_field="doc", text_field="body", title_field="name")
    assert (doc.id, doc.text, doc.title) == ("a", "ቡና", "ርዕስ")


def test_duplicate_ids_and_empty_documents(tmp_path):
    f = write(tmp_path / "c.jsonl", '{"id": "a", "text": "ቡና"}\n{"id": "a", "text": "ሻይ"}\n{"id": "b", "text": "  "}\n')
    with pytest.raises(CorpusError, match="line 2: duplicate document id 'a'"):
        list(read_corpus(f))
    report = ReadReport()
    assert [d.text for d in read_corpus(f, skip_bad=True, report=report)] == ["ቡና"]
    assert len(report.skipped) == 2


def test_csv_and_tsv(tmp_path):
    f = write(tmp_path / "c.csv", 'id,title,text,lang\n1,ርዕስ,"ቡና, ሻይ",am\n2,,ወተት,am\n')
    docs = list(read_corpus(f))
    assert [(d.id, d.title, d.text, d.metadata) for d in docs] == [
        ("1", "ርዕስ", "ቡና, ሻይ", {"lang": "am"}),
        ("2", "", "ወተት", {"lang": "am"}),
    ]
    t = write(tmp_path / "c.tsv", "id\ttext\nx\tጤና\n")
    assert [d.text for d in read_corpus(t)] == ["ጤና"]


def test_csv_wrong_columns(tmp_path):
    f = write(tmp_path / "c.csv", "id,body\n1,ቡና\n")
    with pytest.raises(CorpusError, match="no 'text' column .*id, body.*--text-field"):
        list(read_corpus(f))


def test_encodings(tmp_path):
    f = write(tmp_path / "bom.jsonl", '{"id": "a", "text": "ቡና"}\n', encoding="utf-8-sig")
    assert [d.text for d in read_corpus(f)] == ["ቡና"]
    f = write(tmp_path / "u16.jsonl", '{"id": "a", "text": "ቡና"}\n', encoding="utf-16")
    assert [d.text for d in read_corpus(f)] == ["ቡና"]
    f = write(tmp_path / "latin1.jsonl", '{"id": "a", "text": "café"}\n', encoding="latin-1")
    with pytest.raises(CorpusError, match="line 1: not valid UTF-8.*iconv"):
        list(read_corpus(f))


def test_folder_of_text_files(tmp_path):
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    write(root / "a.txt", "ቡና ጥሩ ነው።")
    write(root / "sub" / "b.md", "# ርዕስ\nጤና")
    write(root / "image.png", b"\x89PNG\x00\x00")
    write(root / ".hidden.txt", "ምስጢር")
    report = ReadReport()
    docs = list(read_corpus(root, report=report))
    assert [d.id for d in docs] == ["a.txt", "sub/b.md"]
    assert docs[1].title == "b"
    assert any("image.png" in s for s in report.skipped)


def test_binary_file_with_text_suffix(tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    write(root / "a.txt", "ቡና")
    write(root / "b.txt", b"\x00\x01\x02binary")
    with pytest.raises(CorpusError, match="b.txt: looks like a binary file"):
        list(read_corpus(root))
    assert [d.id for d in read_corpus(root, skip_bad=True)] == ["a.txt"]


@pytest.mark.parametrize("name, content", [("empty.jsonl", ""), ("blank.jsonl", "\n\n")])
def test_empty_corpus(tmp_path, name, content):
    f = write(tmp_path / name, content)
    with pytest.raises(CorpusError, match="no documents found"):
        list(read_corpus(f))


def test_empty_folder_and_missing_path(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no documents found"):
        list(read_corpus(tmp_path / "empty"))
    with pytest.raises(CorpusError, match="no such file or folder"):
        list(read_corpus(tmp_path / "nope.jsonl"))
    with pytest.raises(CorpusError, match="unknown corpus format"):
        list(read_corpus(write(tmp_path / "x.pdf", "%PDF")))


def test_invisible_format_characters_are_removed(tmp_path):
    """BOMs inside text (concatenated files), zero-width spaces, word joiners, soft hyphens and
    direction marks are dropped from text, title and string metadata; ZWNJ/ZWJ are kept."""
    record = {"id": "a", "title": "\ufeffርዕስ", "text": "ቡና\ufeff ጥሩ\u200b ነው\u00ad\u2060\u200e\u200f።",
              "note": "\u200bማስታወሻ", "tags": ["\ufeffጤና", 3], "n": 1}
    f = write(tmp_path / "c.jsonl", json.dumps(record) + "\n" + json.dumps({"id": "b", "text": "a\u200cb\u200dc e\u200b\u0301"}) + "\n")
    a, b = read_corpus(f)
    assert (a.title, a.text) == ("ርዕስ", "ቡና ጥሩ ነው።")
    assert a.metadata == {"note": "ማስታወሻ", "tags": ["ጤና", 3], "n": 1}
    assert b.text == "a\u200cb\u200dc \u00e9"  # joiners kept; the accent composes once the mark is gone
    (c,) = read_corpus(write(tmp_path / "z.jsonl", json.dumps({"id": "z", "text": "ቡና\u200bጥሩ\u200b\u200bነው"}) + "\n"))
    assert c.text == "ቡና ጥሩ ነው"  # between words a zero-width space separates them, as the analyzer reads it

    root = tmp_path / "docs"
    root.mkdir()
    write(root / "x.txt", "\ufeff\ufeffቡና\u200b ጥሩ ነው።")  # a BOM is decoded away, the second one stays in the text
    (doc,) = read_corpus(root)
    assert doc.text == "ቡና ጥሩ ነው።"

    c = write(tmp_path / "c.csv", "id,title,text,lang\n1,\u200bርዕስ,ቡና\ufeff,\u2060am\n")
    (doc,) = read_corpus(c)
    assert (doc.title, doc.text, doc.metadata) == ("ርዕስ", "ቡና", {"lang": "am"})
    invisible = "\ufeff\u200b\u2060\u00ad\u200e\u200f"
    assert not any(ch in d.text + d.title for d in read_corpus(f) for ch in invisible)


def test_check_corpus_reads_only_the_first_document(tmp_path):
    from amharic_search.index.readers import check_corpus

    f = write(tmp_path / "c.jsonl", '{"id": "a", "text": "ቡና"}\n{not json\n')
    assert check_corpus(f).id == "a"  # a bad later line is the full read's business
    with pytest.raises(CorpusError, match="line 1: not valid JSON"):
        check_corpus(write(tmp_path / "d.jsonl", '{not json\n{"id": "a", "text": "ቡና"}\n'))
    assert check_corpus(tmp_path / "d.jsonl", skip_bad=True).id == "a"
    with pytest.raises(CorpusError, match="no documents found"):
        check_corpus(write(tmp_path / "e.jsonl", "\n"))
    with pytest.raises(CorpusError, match="no such file"):
        check_corpus(tmp_path / "nope.jsonl")
