"""Real-language check (slow): English -> French number words, held-out numbers."""

import pytest

from rnnkit.data.numbers import number_pairs, split_numbers
from rnnkit.text.seq2seq import Seq2SeqConfig
from rnnkit.text.translation import train_translator
from rnnkit.train import TrainConfig


@pytest.mark.slow
def test_translates_held_out_numbers_en_fr():
    pytest.importorskip("num2words")
    split = split_numbers(n_train=4000, n_valid=100, n_test=300, seed=1)
    train = number_pairs(split["train"], "en", "fr")
    test = number_pairs(split["test"], "en", "fr")
    cfg = Seq2SeqConfig(5, 5, embed_size=32, hidden_size=64, attention="general")
    tcfg = TrainConfig(epochs=8, lr=5e-3, scheduler="cosine", warmup_steps=50,
                       progress=False)
    tr, metrics = train_translator(train, cfg, tcfg, val_fraction=0.05, batch_size=64)
    hyps = tr.translate([s for s, _ in test], beam_size=4)
    exact = sum(h == r for (h, _), (_, r) in zip(hyps, test)) / len(test)
    assert metrics["token_accuracy"] > 0.95
    assert exact >= 0.9, exact
