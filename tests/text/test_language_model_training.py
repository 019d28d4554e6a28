"""The text application on the Trainer: vocabulary from the training split, overlap, exact
resume, samples while training, the time-budget lr schedule."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from rnnkit.data.text import TextDataConfig
from rnnkit.text.generation import (
    SampleCallback,
    SampleConfig,
    ThroughputMeter,
    TimeCosineLR,
    fit_text,
    split_text,
    validation_blocks,
)
from rnnkit.text.language_model import LanguageModelConfig, load_language_model
from rnnkit.train import TrainConfig, load_checkpoint

TINY = LanguageModelConfig(cell="lstm", embed_size=8, hidden_size=16, num_layers=1)


def corpus(n: int = 3000, seed: int = 0) -> str:
    g = torch.Generator().manual_seed(seed)
    words = ["to", "be", "or", "not", "that", "is", "the", "question", "\n"]
    return " ".join(words[int(i)] for i in torch.randint(0, len(words), (n // 4,), generator=g))


def test_vocabulary_comes_from_the_whole_file():
    """A symbol of the validation part alone is in the vocabulary (so a later test file that
    has it is not scored as <unk>), and validation scores it like any other token."""
    text = corpus() + " QQQ"  # 'Q' appears only in the last 10%
    run = fit_text(text, TINY, TextDataConfig(batch_size=4, bptt=16),
                   TrainConfig(max_steps=2, progress=False))
    assert "Q" in run.model.tokenizer.stoi
    _, val_text = split_text(text, 0.1)  # a short text's one validation block: its tail
    assert run.val_metrics["unk_rate"] == 0.0
    assert run.val_metrics["tokens"] == len(val_text) and run.val_metrics["blocks"] == 1
    # reference: one pass over the block after (up to 512 tokens of) the text before it
    ids = run.model.tokenizer.encode_tensor(text)
    lo, n = len(text) - len(val_text), len(text)
    start = max(0, lo - 1 - 512)
    with torch.no_grad():
        logits, _ = run.model.eval()(ids[start: n - 1][None])
    ref = torch.nn.functional.cross_entropy(logits[0, lo - 1 - start:], ids[lo:n]).item()
    assert run.val_metrics["loss"] == pytest.approx(ref, rel=1e-5)


def test_validation_blocks_are_spread_over_a_long_text():
    spans = validation_blocks(1_000_000, 0.05)
    held = sum(hi - lo for lo, hi in spans)
    assert held == 50_000 and len(spans) == round(50_000 / 2048)
    assert spans[0][0] < 50_000 and spans[-1][1] == 1_000_000  # from the start to the end
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # disjoint, in order


def test_overlap_scores_each_target_once():
    meter = ThroughputMeter()
    text = corpus()
    train_text, _ = split_text(text, 0.1)
    B, bptt = 4, 16
    fit_text(text, TINY, TextDataConfig(batch_size=B, bptt=bptt, overlap=8),
             TrainConfig(epochs=1, progress=False), callbacks=[meter])
    assert meter.items == B * (len(train_text) // B - 1)  # every target once per epoch


def test_resume_through_the_text_pipeline_is_exact(tmp_path):
    text = corpus()
    data = TextDataConfig(batch_size=4, bptt=16)
    straight = fit_text(text, TINY, data, TrainConfig(max_steps=8, progress=False, seed=3,
                                                      out_dir=str(tmp_path / "straight")))
    out = str(tmp_path / "run")
    fit_text(text, TINY, data, TrainConfig(max_steps=5, progress=False, seed=3, out_dir=out))
    # a resumed call that changes the model, the data settings or the text is refused,
    # naming the setting and both values (it used to take last.pt's silently)
    for model_cfg, data_cfg, body, match in (
            (replace(TINY, hidden_size=24), data, text, "hidden_size 16 .given 24"),
            (TINY, replace(data, batch_size=2), text, "batch_size 4 .given 2"),
            (TINY, data, text + " more", "not the one this run was trained on")):
        with pytest.raises(ValueError, match=match):
            fit_text(body, model_cfg, data_cfg,
                     TrainConfig(max_steps=8, progress=False, seed=3, out_dir=out), resume=True)
    resumed = fit_text(text, TINY, data,
                       TrainConfig(max_steps=8, progress=False, seed=3, out_dir=out),
                       resume=True)
    for name, a in load_checkpoint(tmp_path / "straight" / "last.pt")["model"].items():
        assert torch.equal(a, load_checkpoint(f"{out}/last.pt")["model"][name]), name
    # both return the weights that scored best on validation, with that one score
    assert resumed.val_metrics["loss"] == straight.val_metrics["loss"]
    assert resumed.val_metrics["step"] == straight.val_metrics["step"]
    for (name, a), b in zip(straight.model.state_dict().items(),
                            resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    back = load_language_model(f"{out}/best.pt")
    assert back.tokenizer == resumed.model.tokenizer
    assert torch.equal(back.head.weight, resumed.model.head.weight)


def test_sample_callback_prints_at_every_evaluation():
    printed: list[str] = []
    cb = SampleCallback(SampleConfig(prime="to ", length=12, seed=0), printer=printed.append)
    fit_text(corpus(), TINY, TextDataConfig(batch_size=4, bptt=16),
             TrainConfig(max_steps=6, eval_every=3, progress=False), callbacks=[cb])
    assert [s for s, _, _ in cb.samples] == [3, 6]
    assert all(len(t) == 12 for _, _, t in cb.samples)
    assert len(printed) == 2 and "val loss" in printed[0]
    # word models get a usable prime even when the default "\n" has no word tokens
    run = fit_text(corpus(), TINY, TextDataConfig(level="word", batch_size=4, bptt=8),
                   TrainConfig(max_steps=2, eval_every=2, progress=False),
                   SampleConfig(length=3))
    assert len(run.samples) == 1 and len(run.samples[0][2].split()) == 3


def test_time_cosine_lr_follows_the_clock():
    cb = TimeCosineLR(budget_s=1e-9, warmup_steps=2, floor=0.1)  # the budget is over at once
    run = fit_text(corpus(), TINY, TextDataConfig(batch_size=4, bptt=16),
                   TrainConfig(max_steps=4, lr=0.01, log_every=1, progress=False),
                   callbacks=[cb])
    lrs = [r["lr"] for r in run.history if r.get("split") == "train"]
    # the lr of step s is set after step s - 1: warm-up 0.5, 1.0, then the floor
    assert lrs == pytest.approx([0.005, 0.01, 0.001, 0.001])
    assert run.trainer.optimizer.param_groups[0]["lr"] == 0.01  # restored at the end
    with pytest.raises(ValueError, match="scheduler='none'"):
        fit_text(corpus(), TINY, TextDataConfig(batch_size=4, bptt=16),
                 TrainConfig(max_steps=1, warmup_steps=2, progress=False),
                 callbacks=[TimeCosineLR(10.0)])


def test_bad_text_inputs():
    with pytest.raises(ValueError, match="empty"):
        fit_text("   ", TINY, TextDataConfig(), TrainConfig(max_steps=1, progress=False))
    with pytest.raises(ValueError, match="too few"):
        fit_text("abcdefgh", TINY, TextDataConfig(batch_size=8, bptt=4),
                 TrainConfig(max_steps=1, progress=False))
    with pytest.raises(ValueError, match="overlap"):
        TextDataConfig(bptt=8, overlap=8)
    # sampling settings fail when the config is built, not at the first sample mid-training
    with pytest.raises(ValueError, match=r"top_p must lie in \(0, 1\]"):
        SampleConfig(top_p=1.5)
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        SampleConfig(top_k=0)
    with pytest.raises(ValueError, match="temperature"):
        SampleConfig(temperature=float("nan"))
