"""Tokenizers, vocabulary files, corpus loading and the demo corpus."""

from __future__ import annotations

import json
import random

import pytest
import torch

from rnnkit.data.text import (
    UNK,
    CharTokenizer,
    TextDataConfig,
    Tokenizer,
    WordTokenizer,
    load_text,
    split_tokens,
    stdlib_corpus,
    tokenizer_from_dict,
)


def random_text(n: int, alphabet: str = "abcdefgh ijk\nXYZ.,;'", seed: int = 0) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(n))


def test_char_roundtrip_and_ids_match_vocabulary():
    text = random_text(2000, seed=1)
    tok = CharTokenizer.from_text(text)
    ids = tok.encode_tensor(text)
    assert ids.dtype == torch.long and ids.shape == (len(text),)
    assert tok.decode(ids) == text
    # reference: a plain loop over characters
    assert ids.tolist() == tok.encode(text) == [tok.itos.index(ch) for ch in text]
    assert 0 not in ids.tolist()  # nothing unknown in the text it was built from


def test_vocabulary_is_ordered_by_frequency_then_first_seen():
    tok = CharTokenizer.from_text("bbbaac" + "d")
    assert tok.itos == [UNK, "b", "a", "c", "d"]


def test_unknown_symbols_map_to_unk():
    tok = CharTokenizer.from_text("abc")
    ids = tok.encode("azb")
    assert ids == [tok.stoi["a"], tok.unk_id, tok.stoi["b"]] and tok.unk_id == 0
    assert tok.decode(ids) == f"a{UNK}b"
    assert tok.coverage("azb") == pytest.approx(2 / 3)


def test_max_vocab_and_min_count():
    text = "a" * 10 + "b" * 5 + "c" * 2 + "d"
    assert CharTokenizer.from_text(text, max_vocab=3).itos == [UNK, "a", "b"]
    assert CharTokenizer.from_text(text, min_count=2).itos == [UNK, "a", "b", "c"]
    assert CharTokenizer.from_text(text, max_vocab=3).encode("d") == [0]


def test_word_tokenizer_splits_punctuation_and_handles_unknowns():
    tok = WordTokenizer.from_text("The cat sat. The dog's bowl, empty!", lowercase=True)
    assert tok.split("the dog's bowl, empty!") == ["the", "dog's", "bowl", ",", "empty", "!"]
    ids = tok.encode("The bird sat.")
    assert tok.decode(ids) == f"the {UNK} sat ."
    assert tok.kind == "word"


def test_save_load_roundtrip(tmp_path):
    for tok in (CharTokenizer.from_text(random_text(500, seed=2)),
                WordTokenizer.from_text("one two three two one", lowercase=True)):
        path = tmp_path / f"{tok.kind}" / "vocab.json"
        tok.save(path)
        back = Tokenizer.load(path)
        assert type(back) is type(tok) and back == tok
        assert back.encode("one two x") == tok.encode("one two x")
        assert json.loads(path.read_text(encoding="utf-8"))["format"] == "rnnkit.tokenizer/1"
        assert [p.name for p in path.parent.iterdir()] == ["vocab.json"]  # no temp file left
        # a file written before the format tag still loads
        path.write_text(json.dumps(tok.to_dict()), encoding="utf-8")
        assert Tokenizer.load(path) == tok


def test_load_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="no vocabulary file"):
        Tokenizer.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="not a valid vocabulary JSON"):
        Tokenizer.load(bad)
    bad.write_text(json.dumps({"kind": "bpe", "itos": ["a"]}), encoding="utf-8")
    with pytest.raises(ValueError, match="unknown tokenizer kind"):
        Tokenizer.load(bad)
    with pytest.raises(ValueError, match="'kind' and 'itos'"):
        tokenizer_from_dict({"itos": ["a"]})
    with pytest.raises(ValueError, match="list of strings"):
        tokenizer_from_dict({"kind": "char", "itos": [1, 2]})


def test_bad_inputs():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match="empty text"):
        CharTokenizer.from_text("")
    with pytest.raises(TypeError, match="expects a str"):
        tok.encode(123)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([1, 99])
    with pytest.raises(ValueError, match="decode each row"):
        tok.decode(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="duplicate"):
        CharTokenizer(["a", "a"])


def test_load_text_utf8_latin1_and_bad_files(tmp_path):
    good = tmp_path / "u.txt"
    good.write_text("héllo wörld", encoding="utf-8")
    assert load_text(good) == "héllo wörld"
    legacy = tmp_path / "l.txt"
    legacy.write_bytes("café naïve".encode("latin-1"))
    assert load_text(legacy) == "café naïve"
    assert load_text(good, max_bytes=3) == "hé"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_text(tmp_path / "nope.txt")
    empty = tmp_path / "e.txt"
    empty.write_text("  \n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty"):
        load_text(empty)
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"\x00\x01\x02abc")
    with pytest.raises(ValueError, match="binary"):
        load_text(binary)
    with pytest.raises(ValueError, match="directory"):
        load_text(tmp_path)


def test_split_tokens():
    ids = torch.randint(0, 50, (101,))
    train, val = split_tokens(ids, 0.1)
    assert torch.equal(torch.cat([train, val]), ids) and val.numel() == 10
    with pytest.raises(ValueError, match="too short"):
        split_tokens(torch.arange(3), 0.5)


def test_data_config_validation():
    assert TextDataConfig(level="word").build_tokenizer("a b a").kind == "word"
    with pytest.raises(ValueError, match="level must be"):
        TextDataConfig(level="byte")
    with pytest.raises(ValueError, match="val_fraction"):
        TextDataConfig(val_fraction=1.0)
    with pytest.raises(ValueError, match="bptt must be a positive integer"):
        TextDataConfig(bptt=0)


def test_stdlib_corpus_is_deterministic_capped_python_source():
    a = stdlib_corpus(max_bytes=100_000)
    b = stdlib_corpus(max_bytes=100_000)
    assert a == b and len(a) == 100_000
    assert "def " in a and "import " in a and "\t" not in a


def test_real_data_latin1_file_loads(shared_data):
    text = load_text(shared_data / "rt-polarity.neg")
    tok = WordTokenizer.from_text(text, lowercase=True, min_count=2)
    assert len(tok) > 1000 and tok.coverage(text) > 0.9


def test_load_lines_splits_only_at_line_ends(tmp_path):
    from rnnkit.data.text import load_lines

    p = tmp_path / "t.txt"
    p.write_bytes(b"a\tb\r\nc\x85d\re\x0cf\ng")          # \x85: cp1252's ellipsis, read as Latin-1
    assert load_lines(p) == ["a\tb", "c\x85d", "e\x0cf", "g"]
    assert load_lines(p) != p.read_text("latin-1").splitlines()


def test_every_vocabulary_follows_one_protocol():
    from rnnkit.data.vocab import Vocab, Vocabulary, vocabulary_from_dict, vocabulary_from_json

    text = random_text(300, seed=5)
    vocabs = [CharTokenizer.from_text(text), WordTokenizer.from_text("x y z x", lowercase=True),
              Vocab.build(["a b c", "b c d"]), Vocab.build(["ab", "cd"], level="char")]
    for v in vocabs:
        assert isinstance(v, Vocabulary)
        assert len(v) == v.vocab_size and v.unk_id is not None
        for name in ("pad_id", "bos_id", "eos_id"):
            value = getattr(v, name)
            assert value is None or 0 <= value < len(v)
        ids = v.encode("a b q")
        assert isinstance(ids, list) and all(isinstance(i, int) for i in ids)
        assert v.encode_batch(["a b q", "c"]) == [ids, v.encode("c")]
        assert isinstance(v.decode(ids), str)
        for back in (vocabulary_from_dict(v.to_dict()), vocabulary_from_json(v.to_json())):
            assert type(back) is type(v) and back.encode("a b q") == ids
    assert [v.pad_id for v in vocabs] == [None, None, 0, 0]
    assert [v.unk_id for v in vocabs] == [0, 0, 1, 1]
    # Vocab JSON written before the "kind" key (old checkpoints) still loads
    old = {"level": "word", "tokenizer": vocabs[2].tokenizer.to_str()}
    assert vocabulary_from_json(json.dumps(old)).encode("c d") == vocabs[2].encode("c d")
    with pytest.raises(ValueError, match="unknown vocabulary kind"):
        vocabulary_from_dict({"kind": "bpe"})
