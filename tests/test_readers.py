import json

import pytest

from index.readers import CorpusError, ReadReport, read_corpus


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def test_jsonl_keeps_extra_fields_and_normalizes(tmp_path):
    f = write(tmp_path / "c.jsonl", json.dumps({"id": "a", "title": "ርዕስ", "text": "Cafe\u0301 ቡና", "topic": "x"}) + "\n\n")
    (doc,) = read_corpus(f)
    assert (doc.id, doc.title, doc.text, doc.metadata) == ("a", "ርዕስ", "Caf\u00e9 ቡና", {"topic": "x"})


def test_jsonl_bad_line_names_file_and_line(tmp_path):
    f = write(tmp_path / "c.jsonl", '{"id": "a", "text": "ቡና"}\n{not json\n{"id": "c", "text": "ሻይ"}\n')
    with pytest.raises(CorpusError, match=r"c\.jsonl, line 2: not valid JSON"):
        list(read_corpus(f))
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
