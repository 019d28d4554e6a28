"""The Trainer against hand-written references: truncated BPTT (with and without overlap),
clipping, schedules, early stopping, checkpoints, logs, bf16, and bad input."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from rnnkit import Recurrent
from rnnkit.cells import state_map
from rnnkit.train import (
    BPTTStream,
    Callback,
    LossOutput,
    NonFiniteLossError,
    TrainConfig,
    Trainer,
    load_checkpoint,
)

V = 7  # vocabulary of the toy language model


class CharLM(nn.Module):
    def __init__(self, cell: str = "lstm", dropout: float = 0.0) -> None:
        super().__init__()
        self.emb = nn.Embedding(V, 6)
        self.rnn = Recurrent(cell, 6, 10)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(10, V)
        self.states_in: list = []

    def loss(self, batch, state=None):
        x, y = batch
        self.states_in.append(state)
        h, state = self.rnn(self.drop(self.emb(x)), state)
        logits = self.out(self.drop(h))
        loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        return LossOutput(loss, state, {"acc": (logits.argmax(-1) == y).float().mean()},
                          int((y != -100).sum()))


class Classifier(nn.Module):
    """GRU over ``x [B, T, 2]``; predicts whether channel 0 sums to more than 0."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.rnn = Recurrent("gru", 2, 12)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(12, 2)

    def loss(self, batch, state=None):
        x, y = batch
        _, h = self.rnn(self.drop(x))
        logits = self.head(h[-1])
        acc = (logits.argmax(-1) == y).float().mean()
        return LossOutput(F.cross_entropy(logits, y), None, {"acc": acc}, len(y))


def sign_task(n: int, seed: int, batch_size: int = 32, shuffle: bool = True) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, 2, generator=g)
    y = (x[:, :, 0].sum(1) > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle)


def cfg(**kw) -> TrainConfig:
    # the references below run on the CPU; "auto" would train on a GPU where there is one
    base = {"progress": False, "plot": False, "clip_norm": None, "log_every": 1,
            "device": "cpu"}
    return TrainConfig(**{**base, **kw})


def tokens(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, V, (n,), generator=torch.Generator().manual_seed(seed))


# -- BPTTStream --------------------------------------------------------------------------------
def test_bptt_stream_rows_are_contiguous_text_and_targets_shift_by_one():
    t = tokens(103)
    s = BPTTStream(t, batch_size=4, bptt=6)
    L = 103 // 4
    assert len(s) == math.ceil((L - 1) / 6) and s.num_tokens == 4 * (L - 1)
    xs, ys = zip(*s)
    x, y = torch.cat(xs, 1), torch.cat(ys, 1)
    for b in range(4):
        row = t[b * L:(b + 1) * L]
        assert torch.equal(x[b], row[:-1]) and torch.equal(y[b], row[1:])
    assert all(c.shape == (4, 6) for c in xs[:-1])


def test_bptt_stream_overlap_rereads_steps_and_scores_each_target_once():
    t = tokens(100)
    s = BPTTStream(t, batch_size=2, bptt=8, overlap=3)
    plain = BPTTStream(t, batch_size=2, bptt=8)
    scored = []
    for i, ((x, y), (px, py)) in enumerate(zip(s, plain)):
        if i == 0:
            assert torch.equal(x, px) and torch.equal(y, py)
            scored.append(y)
            continue
        assert x.shape[1] == px.shape[1] + 3  # k2 = k1 + overlap steps
        assert torch.equal(x[:, 3:], px) and (y[:, :3] == -100).all()
        assert torch.equal(y[:, 3:], py)
        scored.append(y[:, 3:])
    assert torch.cat(scored, 1).shape[1] == 100 // 2 - 1


@pytest.mark.parametrize("bad, match", [
    (lambda: BPTTStream(torch.randn(50), 2, 5), "integer ids"),
    (lambda: BPTTStream(tokens(50).reshape(5, 10), 2, 5), "one flat stream"),
    (lambda: BPTTStream(tokens(3), 2, 5), "too few"),
    (lambda: BPTTStream(tokens(50), 2, 5, overlap=5), "smaller than bptt"),
    (lambda: BPTTStream(tokens(50), 0, 5), "batch_size must be"),
    (lambda: BPTTStream([1, 2, 3], 1, 2), "LongTensor"),
])
def test_bptt_stream_bad_input(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        bad()


# -- truncated BPTT against hand-written loops ----------------------------------------------
def test_truncated_bptt_matches_a_hand_written_loop():
    t = tokens(400)
    torch.manual_seed(1)
    model = CharLM()
    ref = CharLM()
    ref.load_state_dict(model.state_dict())
    stream = BPTTStream(t, batch_size=4, bptt=9)
    trainer = Trainer(model, cfg(epochs=2, optimizer="sgd", lr=0.5, momentum=0.0), stream)
    trainer.fit()

    opt = torch.optim.SGD(ref.parameters(), lr=0.5)
    for _ in range(2):
        state = None  # reset every epoch
        for x, y in stream:
            out = ref.loss((x, y), state)
            opt.zero_grad()
            out.loss.backward()
            opt.step()
            state = state_map(lambda s: s.detach(), out.state)
    for (name, a), b in zip(model.state_dict().items(), ref.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)
    # The carried state is detached and reset at each epoch start.
    per_epoch = len(stream)
    assert model.states_in[0] is None and model.states_in[per_epoch] is None
    assert all(not s.h.requires_grad for s in model.states_in[1:per_epoch])


def test_overlapping_chunks_backpropagate_k2_steps_like_a_step_by_step_reference():
    """k2 > k1: each chunk re-reads ``overlap`` steps; checked against a per-step loop that
    takes the carried state at the right position and scores only the new targets."""
    t, k1, o = tokens(150, seed=3), 7, 3
    torch.manual_seed(2)
    model, ref = CharLM(), CharLM()
    ref.load_state_dict(model.state_dict())
    stream = BPTTStream(t, batch_size=3, bptt=k1, overlap=o)
    Trainer(model, cfg(epochs=1, optimizer="sgd", lr=0.3, momentum=0.0), stream).fit()

    data = stream.data  # [B, L]
    n = data.shape[1] - 1
    opt = torch.optim.SGD(ref.parameters(), lr=0.3)
    carry = None
    for i in range(len(stream)):
        start, stop = i * k1, min(i * k1 + k1, n)
        lo = max(start - o, 0)
        state, logits = carry, []
        for pos in range(lo, stop):
            h, state = ref.rnn.step(ref.emb(data[:, pos]), state)
            logits.append(ref.out(h))
            if pos == start + k1 - o - 1:  # the next chunk starts re-reading after this step
                carry = state_map(lambda s: s.detach(), state)
        scored = torch.stack(logits[start - lo:], 1)  # [B, stop - start, V]
        loss = F.cross_entropy(scored.reshape(-1, V), data[:, start + 1:stop + 1].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    for (name, a), b in zip(model.state_dict().items(), ref.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


# -- learning, determinism ----------------------------------------------------------------------
def test_trainer_solves_a_sequence_task_and_reports_weighted_metrics():
    torch.manual_seed(0)
    train, val = sign_task(512, seed=1), sign_task(256, seed=2, batch_size=100)
    trainer = Trainer(Classifier(), cfg(epochs=6, lr=1e-2, log_every=8), train, val)
    history = trainer.fit()
    assert trainer.step == 6 * 16 and trainer.epoch == 6
    metrics = trainer.evaluate(val)
    assert metrics["acc"] > 0.9 and metrics["loss"] < 0.3
    # evaluate() weights batches by their size: the last batch has 56 rows, not 100.
    model = trainer.model.eval()
    with torch.no_grad():
        outs = [model.loss(b) for b in val]
    want = sum(float(o.loss) * o.weight for o in outs) / 256
    assert metrics["loss"] == pytest.approx(want, rel=1e-6)
    vals = [r for r in history if r["split"] == "val"]
    assert [r["step"] for r in vals] == [16 * e for e in range(1, 7)]
    assert trainer.best_metric == min(r["loss"] for r in vals)


def test_same_seed_same_run_and_eval_frequency_does_not_change_training():
    def run(seed, eval_every):
        torch.manual_seed(5)
        trainer = Trainer(Classifier(dropout=0.3),
                          cfg(epochs=2, seed=seed, eval_every=eval_every, lr=1e-2),
                          sign_task(128, seed=1), sign_task(64, seed=2))
        trainer.fit()
        return torch.cat([p.detach().flatten() for p in trainer.model.parameters()])

    a = run(seed=0, eval_every=0)
    assert torch.equal(a, run(seed=0, eval_every=0))
    assert torch.equal(a, run(seed=0, eval_every=1))  # evaluation forks the RNG streams
    assert not torch.equal(a, run(seed=1, eval_every=0))  # shuffle and dropout follow the seed


# -- clipping -----------------------------------------------------------------------------------
class Record(Callback):
    def __init__(self) -> None:
        self.logs: list[dict] = []

    def on_step_end(self, trainer, step, logs):
        self.logs.append(dict(logs))


@pytest.mark.parametrize("clip", [{"clip_norm": 0.05}, {"clip_value": 0.01}, {}])
def test_clipping_and_logged_pre_clip_norm_match_autograd(clip):
    torch.manual_seed(3)
    model = Classifier()
    batch = next(iter(sign_task(32, seed=4)))
    ref = Classifier()
    ref.load_state_dict(model.state_dict())
    ref.loss(batch).loss.backward()
    grads = [p.grad.clone() for p in ref.parameters()]
    norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
    rec = Record()
    before = [p.detach().clone() for p in model.parameters()]
    Trainer(model, cfg(epochs=1, optimizer="sgd", lr=1.0, momentum=0.0, **clip), [batch],
            callbacks=[rec]).fit()
    assert rec.logs[0]["grad_norm"] == pytest.approx(float(norm), rel=1e-5)
    for p0, p, g in zip(before, model.parameters(), grads):
        if "clip_norm" in clip:
            want = g * min(1.0, clip["clip_norm"] / float(norm))
        elif "clip_value" in clip:
            want = g.clamp(-clip["clip_value"], clip["clip_value"])
        else:
            want = g
        torch.testing.assert_close(p0 - p.detach(), want, rtol=1e-4, atol=1e-7)


# -- schedules, early stopping ------------------------------------------------------------------
def test_cosine_schedule_with_warmup_follows_the_formula():
    rec = Record()
    batches = list(sign_task(64, seed=1, batch_size=8))
    Trainer(Classifier(), cfg(max_steps=20, lr=0.1, scheduler="cosine", warmup_steps=4,
                              min_lr=0.01), batches, callbacks=[rec]).fit()
    got = [r["lr"] for r in rec.logs]
    want = []
    for s in range(20):
        if s < 4:
            want.append(0.1 * (s + 1) / 4)
        else:
            want.append(0.01 + 0.09 * 0.5 * (1 + math.cos(math.pi * (s - 4) / 16)))
    assert got == pytest.approx(want, rel=1e-9)
    assert len(got) == 20  # max_steps overrides epochs (8 batches per epoch)


def test_max_steps_on_an_epoch_boundary_completes_the_epoch():
    trainer = Trainer(Classifier(), cfg(max_steps=4), sign_task(64, 1, batch_size=16),
                      sign_task(16, 2))
    history = trainer.fit()
    assert (trainer.step, trainer.epoch, trainer._batch_in_epoch) == (4, 1, 0)
    assert [r["step"] for r in history if r["split"] == "val"] == [4]  # one epoch-end eval


class FlatVal(nn.Module):
    """Trains normally; in eval mode its loss is a constant, so it never improves."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 1)

    def loss(self, batch, state=None):
        x, _ = batch
        if not self.training:
            return LossOutput(torch.tensor(1.0), weight=len(x))
        return LossOutput(self.lin(x).pow(2).mean(), weight=len(x))


def test_plateau_halves_the_lr_and_early_stopping_stops():
    x = torch.randn(8, 2)
    data = [(x, x)] * 4
    rec = Record()
    trainer = Trainer(FlatVal(), cfg(epochs=50, lr=0.1, scheduler="plateau",
                                     plateau_patience=0, plateau_factor=0.5, eval_every=2,
                                     early_stop_patience=3), data, data, callbacks=[rec])
    trainer.fit()
    # eval 1 sets the best; evals 2, 3, 4 do not improve -> stop after step 8.
    assert trainer.step == 8 and trainer.should_stop
    assert [r["lr"] for r in rec.logs] == pytest.approx([0.1] * 4 + [0.05] * 2 + [0.025] * 2)


# -- checkpoints, logs, files ----------------------------------------------------------------
def test_checkpoints_are_atomic_complete_and_load_with_weights_only(tmp_path):
    torch.manual_seed(0)
    trainer = Trainer(Classifier(), cfg(epochs=2, out_dir=str(tmp_path), save_every=3,
                                        scheduler="cosine", plot=True, log_every=2),
                      sign_task(96, seed=1), sign_task(32, seed=2),
                      extra_state={"model": {"hidden": 12}, "vocab": ["a", "b"]})
    trainer.fit()
    assert sorted(os.listdir(tmp_path)) == ["best.pt", "compute.json", "curves.png", "last.pt",
                                            "log.csv", "log.jsonl", "model_card.md"]
    raw = torch.load(tmp_path / "last.pt", weights_only=True)
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert raw.keys() == ckpt.keys()
    for key in ("model", "optimizer", "scheduler", "config", "extra_state", "step", "epoch",
                "batch_in_epoch", "ranks"):
        assert key in ckpt
    assert ckpt["extra_state"] == {"model": {"hidden": 12}, "vocab": ["a", "b"]}
    assert ckpt["step"] == 6 and ckpt["epoch"] == 2 and ckpt["config"]["scheduler"] == "cosine"
    assert set(ckpt["ranks"][0]["rng"]) >= {"python", "numpy", "torch"}
    rebuilt = Classifier()
    rebuilt.load_state_dict(ckpt["model"])
    for a, b in zip(rebuilt.parameters(), trainer.model.parameters()):
        assert torch.equal(a, b)
    assert load_checkpoint(tmp_path / "best.pt")["best_metric"] == trainer.best_metric
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train] == [2, 4, 6]
    assert all(len(r["grad_norms"]) == 2 and r["grad_norm_max"] >= r["grad_norm"] > 0
               for r in train)  # every step's pre-clip norm is in the log
    header = (tmp_path / "log.csv").read_text().splitlines()[0].split(",")
    assert {"split", "step", "loss", "acc", "lr", "grad_norm"} <= set(header)
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_load_checkpoint_rejects_missing_corrupt_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nope.pt")
    trainer = Trainer(Classifier(), cfg(epochs=1, out_dir=str(tmp_path)), sign_task(32, 1))
    trainer.fit()
    blob = (tmp_path / "last.pt").read_bytes()
    (tmp_path / "torn.pt").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_checkpoint(tmp_path / "torn.pt")
    torch.save({"weights": torch.ones(2)}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not an rnnkit trainer checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_max_time_stops_cleanly_evaluates_and_saves(tmp_path):
    trainer = Trainer(Classifier(), cfg(epochs=100, max_time=1e-6, out_dir=str(tmp_path)),
                      sign_task(64, 1, batch_size=8), sign_task(16, 2))
    history = trainer.fit()
    assert trainer.step == 1
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["step"] == 1 and ckpt["batch_in_epoch"] == 1
    assert history[-1]["split"] == "val" and history[-1]["step"] == 1


def test_resume_drops_log_records_after_the_checkpoint_and_a_torn_last_line(tmp_path):
    trainer = Trainer(Classifier(), cfg(epochs=1, out_dir=str(tmp_path)), sign_task(64, 1, 16))
    trainer.fit()  # 4 steps, last.pt at step 4
    log = tmp_path / "log.jsonl"
    lines = log.read_text().splitlines()
    assert len(lines) == 4
    # A killed run may have logged steps after its checkpoint, and torn the last line.
    after = json.loads(lines[-1]) | {"step": 5}
    log.write_text("\n".join(lines + [json.dumps(after), '{"split": "tr']) + "\n")
    with pytest.warns(UserWarning, match=r"changed settings \(lr\)"):
        again = Trainer(Classifier(), cfg(epochs=1, lr=0.5, out_dir=str(tmp_path)),
                        sign_task(64, 1, 16))
        again.fit(resume=True)
    assert [r["step"] for r in again.history] == [1, 2, 3, 4]
    assert log.read_text().splitlines() == lines


def test_resume_auto_and_resume_without_checkpoint(tmp_path):
    trainer = Trainer(Classifier(), cfg(epochs=1, out_dir=str(tmp_path / "x")), sign_task(32, 1))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        trainer.fit(resume=True)
    trainer.fit(resume="auto")  # nothing to resume: starts afresh
    again = Trainer(Classifier(), cfg(epochs=1, out_dir=str(tmp_path / "x")), sign_task(32, 1))
    again.fit(resume="auto")  # already finished: nothing left to do
    assert again.step == trainer.step == 1


# -- mixed precision ----------------------------------------------------------------------------
def test_bf16_autocast_runs_the_forward_in_bfloat16_and_learns():
    seen = []

    class Spy(CharLM):
        def loss(self, batch, state=None):
            out = super().loss(batch, state)
            seen.append((torch.is_autocast_enabled("cpu"), self.out(torch.ones(1, 10)).dtype))
            return out

    torch.manual_seed(0)
    t = torch.arange(600) % V  # a cycle: easy to predict
    trainer = Trainer(Spy(), cfg(epochs=3, lr=1e-2, amp="bf16"), BPTTStream(t, 4, 10))
    history = trainer.fit()
    assert seen[0] == (True, torch.bfloat16)
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    losses = [r["loss"] for r in history if r["split"] == "train"]
    assert losses[-1] < 0.5 * losses[0]


# -- bad input ------------------------------------------------------------------------------------
class NaNLoss(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def loss(self, batch, state=None):
        return LossOutput(self.w.sum() * float("nan"))


def test_a_step_with_an_infinite_gradient_is_skipped_and_logged():
    class Cusp(nn.Module):  # loss sqrt(w - 1): finite at w = 1, its gradient is not
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(1))

        def loss(self, batch, state=None):
            return LossOutput((self.w - 1).abs().sqrt().sum() + batch.sum() * 0)

    rec = Record()
    model = Cusp()
    with pytest.warns(UserWarning, match="update was skipped"):
        Trainer(model, cfg(epochs=1, clip_norm=1.0), [torch.ones(1)], callbacks=[rec]).fit()
    assert rec.logs[0]["skipped"] and not math.isfinite(rec.logs[0]["grad_norm"])
    assert float(model.w.detach()) == 1.0 and model.w.grad is None


def test_bad_input_errors_name_the_fix():
    data = [torch.randn(2, 3)]
    with pytest.raises(TypeError, match="loss\\(batch, state=None\\)"):
        Trainer(nn.Linear(2, 2), cfg(), data)
    with pytest.raises(TypeError, match="one-shot iterator"):
        Trainer(Classifier(), cfg(), (b for b in data))
    with pytest.raises(TypeError, match="JSON-able"):
        Trainer(Classifier(), cfg(), data, extra_state={"t": torch.ones(1)})
    with pytest.raises(ValueError, match="pass val_data"):
        Trainer(Classifier(), cfg(early_stop_patience=2), data)
    with pytest.raises(TypeError, match="TrainConfig"):
        Trainer(Classifier(), {"epochs": 2}, data)
    with pytest.raises(NonFiniteLossError, match="lower the lr"):
        Trainer(NaNLoss(), cfg(), data).fit()
    with pytest.raises(ValueError, match="no batches"):
        Trainer(Classifier(), cfg(), []).fit()

    class NotLossOutput(NaNLoss):
        def loss(self, batch, state=None):
            return self.w.sum()

    with pytest.raises(TypeError, match="LossOutput"):
        Trainer(NotLossOutput(), cfg(), data).fit()

    class Unreduced(NaNLoss):
        def loss(self, batch, state=None):
            return LossOutput(self.w * torch.ones(3))

    with pytest.raises(ValueError, match="scalar"):
        Trainer(Unreduced(), cfg(), data).fit()


@pytest.mark.parametrize("kw, match", [
    ({"optimizer": "rmsprop"}, "optimizer must be one of"),
    ({"lr": 0}, "lr must be a positive number"),
    ({"epochs": 0}, "epochs must be an integer >= 1"),
    ({"clip_norm": -1.0}, "clip_norm"),
    ({"scheduler": "plateau", "warmup_steps": 5}, "warmup_steps works with"),
    ({"amp": "fp16"}, "amp must be one of"),
])
def test_train_config_rejects_bad_values(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kw)


def test_train_config_from_dict_names_unknown_keys():
    assert TrainConfig.from_dict({"epochs": 3}).epochs == 3
    with pytest.raises(ValueError, match="unknown TrainConfig field"):
        TrainConfig.from_dict({"epoch": 3})


def test_keep_best_remembers_the_best_weights_their_step_and_the_curve():
    from types import SimpleNamespace

    from rnnkit.train.callbacks import KeepBest

    model = torch.nn.Linear(2, 1)
    keep, trainer = KeepBest(), SimpleNamespace(model=model)
    losses = [3.0, 2.0, 2.5]
    for step, loss in zip((10, 20, 30), losses):
        with torch.no_grad():
            model.weight.fill_(loss)
        keep.on_eval_end(trainer, step, {"loss": loss})
    assert (keep.best, keep.best_step) == (2.0, 20)
    assert keep.curve == [(10, 3.0), (20, 2.0), (30, 2.5)]
    assert torch.equal(keep.state["weight"], torch.full((1, 2), 2.0))
