"""Exact resume: a training run killed with SIGKILL mid-epoch and resumed from ``last.pt`` ends
with bit-identical weights (and log) to an uninterrupted run.

This file is also the child program: ``python tests/test_train_resume.py SCENARIO OUT_DIR
[HANG_AT_STEP]`` trains one scenario and writes ``final.pt``; with ``HANG_AT_STEP`` it prints
``HANG`` at that step and sleeps, so the test can SIGKILL it at a known point (after a
checkpoint, with unsaved progress that the resumed run must redo).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from rnnkit import Recurrent
from rnnkit.train import BPTTStream, Callback, LossOutput, TrainConfig, Trainer, load_checkpoint

HANG_STEP = {"loader": 11, "stream": 13}  # just after a checkpoint (10 and 12), mid-epoch


class SeqClassifier(nn.Module):
    """GRU over a sequence, dropout, linear on the final state: full BPTT."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = Recurrent("gru", 3, 16)
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(16, 2)

    def loss(self, batch, state=None):
        x, y = batch
        _, h = self.rnn(self.drop(x))
        logits = self.head(self.drop(h[-1]))
        acc = (logits.argmax(-1) == y).float().mean()
        return LossOutput(F.cross_entropy(logits, y), None, {"acc": acc}, len(y))


class CharLM(nn.Module):
    """Embedding -> LSTM -> linear, with dropout; returns its state for truncated BPTT."""

    def __init__(self, vocab: int = 11) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, 12)
        self.rnn = Recurrent("lstm", 12, 16)
        self.drop = nn.Dropout(0.2)
        self.out = nn.Linear(16, vocab)

    def loss(self, batch, state=None):
        x, y = batch
        h, state = self.rnn(self.drop(self.emb(x)), state)
        logits = self.out(self.drop(h))
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        return LossOutput(loss, state, {}, int((y != -100).sum()))


def build(scenario: str, out_dir: str, callbacks=()) -> Trainer:
    g = torch.Generator().manual_seed(1234)
    if scenario == "loader":
        x = torch.randn(120, 9, 3, generator=g)
        y = (x[:, :, 0].sum(1) > 0).long()
        train = DataLoader(TensorDataset(x[:96], y[:96]), batch_size=16, shuffle=True)
        val = DataLoader(TensorDataset(x[96:], y[96:]), batch_size=12)
        cfg = TrainConfig(epochs=3, lr=1e-2, scheduler="cosine", warmup_steps=2, eval_every=5,
                          save_every=3, log_every=2, progress=False, out_dir=out_dir,
                          clip_norm=0.5, plot=False)
    else:
        tokens = torch.randint(0, 11, (1300,), generator=g)
        train = BPTTStream(tokens[:1000], batch_size=4, bptt=30, overlap=5)
        val = BPTTStream(tokens[1000:], batch_size=2, bptt=30)
        cfg = TrainConfig(epochs=3, lr=5e-3, scheduler="plateau", plateau_patience=0,
                          eval_every=4, save_every=3, log_every=3, progress=False,
                          out_dir=out_dir, optimizer="sgd", clip_value=0.5, plot=False)
    torch.manual_seed(0)
    model = SeqClassifier() if scenario == "loader" else CharLM()
    return Trainer(model, cfg, train, val, callbacks=callbacks, extra_state={"s": scenario})


class HangAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer, step, logs):
        if step == self.step:
            print("HANG", flush=True)
            time.sleep(120)


def child(scenario: str, out_dir: str, hang_at: int | None, resume: bool) -> None:
    torch.set_num_threads(1)
    trainer = build(scenario, out_dir, [HangAt(hang_at)] if hang_at else [])
    trainer.fit(resume=resume)
    torch.save(trainer.model.state_dict(), os.path.join(out_dir, "final.pt"))


def _run(args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)


def _records(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        r = json.loads(line)
        r.pop("time"), r.pop("items_per_s", None)
        out.append(r)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["loader", "stream"])
def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path, scenario):
    ref_dir, cut_dir = tmp_path / "reference", tmp_path / "killed"
    ref = _run([scenario, str(ref_dir), "0", "fresh"])
    victim = _run([scenario, str(cut_dir), str(HANG_STEP[scenario]), "fresh"])
    line = victim.stdout.readline()
    assert line.strip() == "HANG", victim.stderr.read()
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    ckpt = load_checkpoint(cut_dir / "last.pt")
    assert 0 < ckpt["step"] < HANG_STEP[scenario]  # progress after the checkpoint was lost
    assert 0 < ckpt["batch_in_epoch"]  # ... in the middle of an epoch
    assert not (cut_dir / "final.pt").exists()
    resumed = _run([scenario, str(cut_dir), "0", "resume"])
    for proc in (ref, resumed):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    want = torch.load(ref_dir / "final.pt", weights_only=True)
    got = torch.load(cut_dir / "final.pt", weights_only=True)
    assert want.keys() == got.keys()
    for name in want:
        assert torch.equal(want[name], got[name]), name
    # The log is continued as if never interrupted: same records, same values.
    assert _records(ref_dir / "log.jsonl") == _records(cut_dir / "log.jsonl")
    last = load_checkpoint(cut_dir / "last.pt")
    assert last["step"] == load_checkpoint(ref_dir / "last.pt")["step"]
    assert not [p for p in os.listdir(cut_dir) if p.startswith(".tmp")]


@pytest.mark.parametrize("scenario", ["loader", "stream"])
def test_stop_and_resume_in_process_is_bit_identical(tmp_path, scenario):
    """The same property without subprocesses: stop cleanly at a mid-epoch step, resume."""
    full = build(scenario, str(tmp_path / "full"))
    full.fit()

    class StopAt(Callback):
        def on_step_end(self, trainer, step, logs):
            if step == 7:
                trainer.should_stop = True

    part = build(scenario, str(tmp_path / "part"), [StopAt()])
    part.fit()
    assert part.step == 7 and load_checkpoint(tmp_path / "part" / "last.pt")["batch_in_epoch"]
    rest = build(scenario, str(tmp_path / "part"))
    rest.fit(resume=True)
    assert rest.step == full.step and rest.epoch == full.epoch
    for (name, a), b in zip(full.model.state_dict().items(), rest.model.state_dict().values()):
        assert torch.equal(a, b), name


if __name__ == "__main__":
    scenario_arg, out_arg, hang_arg, mode = sys.argv[1:5]
    child(scenario_arg, out_arg, int(hang_arg) or None, mode == "resume")
