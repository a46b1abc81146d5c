"""Tiny XLM-RoBERTa models built at test time: random weights, a tokenizer trained on Amharic text.

They are saved to a directory and loaded through the same SentenceTransformer / CrossEncoder code
path as the real models (`index.models.load_encoder` / `load_cross_encoder`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Literal

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 800, *,
                    method: Literal["counted", "sentencepiece"] = "counted"):
    """An XLM-RoBERTa tokenizer (Unigram pieces after a ``▁`` word marker, as SentencePiece) for ``texts``.

    ``counted`` (the default) picks the pieces by counting: every character, then the substrings of the
    words that cover the most text, each scored by its log frequency. It gives the same tokenizer every
    run, and so the same random models in every test session. ``sentencepiece`` trains SentencePiece's
    Unigram (as the speed benchmarks do): its training breaks ties in hash order, so two runs differ.
    """
    from transformers import XLMRobertaTokenizerFast

    texts = list(texts)
    if method == "sentencepiece":
        from tokenizers import SentencePieceUnigramTokenizer

        sp = SentencePieceUnigramTokenizer()
        sp.train_from_iterator(texts, vocab_size=vocab_size, special_tokens=SPECIALS, unk_token="<unk>", show_progress=False)
        backend = sp._tokenizer if hasattr(sp, "_tokenizer") else sp
    else:
        backend = _counted_unigram(texts, vocab_size)
    return XLMRobertaTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>", unk_token="<unk>",
        pad_token="<pad>", mask_token="<mask>", model_max_length=512,
    )


def _counted_unigram(texts: list[str], vocab_size: int, longest: int = 8):
    import math
    import unicodedata
    from collections import Counter

    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import Unigram

    words = Counter("▁" + w for t in texts for w in unicodedata.normalize("NFKC", t).split())
    chars, pieces = Counter(), Counter()
    for word, n in words.items():
        for i, c in enumerate(word):
            chars[c] += n
            for j in range(i + 2, min(len(word), i + longest) + 1):
                pieces[word[i:j]] += n
    budget = max(0, vocab_size - len(SPECIALS) - len(chars))
    chosen = sorted(pieces.items(), key=lambda kv: (-kv[1] * (len(kv[0]) - 1), kv[0]))[:budget]  # text covered
    total = sum(chars.values())
    vocab = ([(s, 0.0) for s in SPECIALS] + [(c, math.log(n / total)) for c, n in sorted(chars.items())]
             + [(p, math.log(n / total)) for p, n in chosen])
    tokenizer = Tokenizer(Unigram(vocab, unk_id=SPECIALS.index("<unk>"), byte_fallback=False))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    return tokenizer


def _config(tokenizer, *, hidden: int, layers: int, heads: int, intermediate: int, num_labels: int | None = None):
    from transformers import XLMRobertaConfig

    kwargs = dict(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=intermediate, max_position_embeddings=514, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, type_vocab_size=1,
    )
    if num_labels is not None:
        kwargs["num_labels"] = num_labels
    return XLMRobertaConfig(**kwargs)


def build_encoder(out: Path, tokenizer, *, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A mean-pooled, normalized sentence-transformers encoder with random weights."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import XLMRobertaModel

    torch.manual_seed(seed)
    hf_dir = out / "_hf"
    XLMRobertaModel(_config(tokenizer, hidden=hidden, layers=layers, heads=2, intermediate=hidden * 2)).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    transformer = models.Transformer(str(hf_dir), max_seq_length=256)
    dim = getattr(transformer, "get_embedding_dimension", None) or transformer.get_word_embedding_dimension
    pooling = models.Pooling(dim(), pooling_mode="mean")
    model = SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device="cpu")
    model.save(str(out), safe_serialization=True)
    return out


def build_cross_encoder(out: Path, tokenizer, *, hidden: int = 32, layers: int = 2, seed: int = 1,
                        init_range: float | None = None) -> Path:
    """A one-logit XLM-R sequence classifier with random weights, saved as a CrossEncoder.

    Default weights give scores that all sit near 0.5 (std ~0.02 on the sample): a test that compares
    orderings (the engines' fidelity) takes ``init_range=0.5``, whose scores spread over 0-0.9."""
    import torch
    from transformers import XLMRobertaForSequenceClassification

    torch.manual_seed(seed)
    config = _config(tokenizer, hidden=hidden, layers=layers, heads=2, intermediate=hidden * 2, num_labels=1)
    if init_range is not None:
        config.initializer_range = init_range
    model = XLMRobertaForSequenceClassification(config)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out
