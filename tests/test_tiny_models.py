"""The tiny test models are the same in every test session (tests that read their rankings rely on it)."""

import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
VOCAB = """
import hashlib, json, sys
sys.path.insert(0, {tests!r})
from conftest import sample_docs
from tiny_models import train_tokenizer
tok = train_tokenizer([d["title"] + "\\n" + d["text"] for d in sample_docs()])
print(len(tok), hashlib.sha256(json.dumps(sorted(tok.get_vocab().items()), ensure_ascii=False).encode()).hexdigest())
"""


def test_the_tokenizer_is_the_same_in_every_process():
    # in two processes: SentencePiece's trainer gave each process another vocabulary
    runs = {subprocess.run([sys.executable, "-c", VOCAB.format(tests=str(TESTS))], capture_output=True, text=True,
                           check=True).stdout for _ in range(2)}
    (out,) = runs
    assert out.split()[0] == "800"


def test_the_tokenizer_reads_amharic_without_unknown_pieces():
    from conftest import sample_docs
    from tiny_models import train_tokenizer

    tok = train_tokenizer([d["title"] + "\n" + d["text"] for d in sample_docs()])
    ids = tok("የወባ በሽታ መከላከል")["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id and tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True) == "የወባ በሽታ መከላከል"
    assert 1 < len(ids) - 2 < len("የወባ በሽታ መከላከል")  # pieces longer than one character
