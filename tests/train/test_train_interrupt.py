"""Ctrl-C and SIGTERM during training: the step in flight finishes, ``last.pt`` is written,
:class:`TrainingInterrupted` says where, and resuming from it ends with the weights of an
uninterrupted run; a second Ctrl-C stops at once; the time budget spans resumes."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnnkit import Recurrent
from rnnkit.train import (
    BPTTStream,
    Callback,
    LossOutput,
    TrainConfig,
    Trainer,
    TrainingInterrupted,
    load_checkpoint,
)

V = 7


class CharLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb, self.rnn = nn.Embedding(V, 6), Recurrent("lstm", 6, 10)
        self.drop, self.out = nn.Dropout(0.1), nn.Linear(10, V)

    def loss(self, batch, state=None):
        x, y = batch
        h, state = self.rnn(self.drop(self.emb(x)), state)
        loss = F.cross_entropy(self.out(self.drop(h)).reshape(-1, V), y.reshape(-1))
        return LossOutput(loss, state, {}, y.numel())


class SendSignal(Callback):
    """Sends ``signals`` to this process after step ``at`` (as a user or ``kill`` would)."""

    def __init__(self, at: int, *signals: int) -> None:
        self.at, self.signals = at, signals

    def on_step_end(self, trainer, step, logs):
        if step == self.at:
            for sig in self.signals:
                os.kill(os.getpid(), sig)


def _stream(seed: int) -> BPTTStream:
    g = torch.Generator().manual_seed(seed)
    return BPTTStream(torch.randint(0, V, (601,), generator=g), 4, 10)


def _trainer(out_dir, seed, callbacks=(), **kw) -> Trainer:
    torch.manual_seed(seed)
    cfg = TrainConfig(epochs=3, lr=0.01, eval_every=7, out_dir=str(out_dir), progress=False,
                      plot=False, seed=seed, **kw)
    return Trainer(CharLM(), cfg, _stream(seed), val_data=_stream(seed + 1),
                   callbacks=callbacks)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_finishes_the_step_saves_and_resumes_exactly(tmp_path, sig):
    seed = int(torch.randint(0, 10_000, ()))
    whole = _trainer(tmp_path / "whole", seed)
    whole.fit()
    stop_at = 11  # mid-epoch (15 chunks per epoch), between evaluations
    cut = _trainer(tmp_path / "cut", seed, [SendSignal(stop_at, sig)])
    with pytest.raises(TrainingInterrupted) as info:
        cut.fit()
    err = info.value
    assert err.step == stop_at and err.signal_name == signal.Signals(sig).name
    assert err.checkpoint == os.path.join(str(tmp_path / "cut"), "last.pt")
    assert load_checkpoint(err.checkpoint)["step"] == stop_at
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
    spent = json.loads((tmp_path / "cut" / "compute.json").read_text())
    assert spent["steps"] == stop_at and spent["stopped"].startswith("TrainingInterrupted")
    again = _trainer(tmp_path / "cut", seed)
    again.fit(resume=True)
    assert again.step == whole.step
    total = json.loads((tmp_path / "cut" / "compute.json").read_text())
    assert total["steps"] == whole.step and "stopped" not in total  # the resume adds to it
    for a, b in zip(whole.model.state_dict().values(), again.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_second_ctrl_c_stops_at_once(tmp_path):
    trainer = _trainer(tmp_path, 0, [SendSignal(3, signal.SIGINT, signal.SIGINT)])
    with pytest.raises(KeyboardInterrupt) as info:
        trainer.fit()
    assert not isinstance(info.value, TrainingInterrupted)
    assert trainer.step == 3


def test_the_time_budget_spans_a_resume(tmp_path):
    trainer = _trainer(tmp_path, 0, [SendSignal(2, signal.SIGINT)], max_time=3600.0)
    with pytest.raises(TrainingInterrupted):
        trainer.fit()
    spent = load_checkpoint(tmp_path / "last.pt")["elapsed"]
    assert 0 < spent < 3600
    again = _trainer(tmp_path, 0, max_time=spent)  # nothing of the budget is left
    again.fit(resume=True)
    assert again.step == 3  # the one step after which the clock is checked
