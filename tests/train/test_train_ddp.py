"""Data-parallel training: ``torchrun --nproc_per_node=2`` (gloo on CPU) gives the same weights
as one process on the same global batches, and only rank 0 writes files.

This file is also the torchrun program: ``python -m torch.distributed.run --standalone
--nproc_per_node=2 tests/test_train_ddp.py OUT_DIR RESULT_DIR``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from rnnkit import Recurrent
from rnnkit.train import BPTTStream, Callback, LossOutput, TrainConfig, Trainer
from rnnkit.train.distributed import split_batch

SCENARIOS = ("loader", "stream")


class Regressor(nn.Module):
    """GRU over a sequence -> linear on the last output; no dropout (masks are per rank)."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = Recurrent("gru", 3, 8)
        self.head = nn.Linear(8, 1)

    rows_seen = 0

    def loss(self, batch, state=None):
        x, y = batch
        if self.training:
            self.rows_seen += len(y)
        out, _ = self.rnn(x)
        err = (self.head(out[:, -1]).squeeze(-1) - y) ** 2
        return LossOutput(err.mean(), None, {"mae": err.sqrt().mean()}, len(y))


class CharLM(nn.Module):
    def __init__(self, vocab: int = 9) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, 8)
        self.rnn = Recurrent("lstm", 8, 8)
        self.out = nn.Linear(8, vocab)

    def loss(self, batch, state=None):
        x, y = batch
        h, state = self.rnn(self.emb(x), state)
        logits = self.out(h)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        return LossOutput(loss, state, {}, y.numel())


class StopAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer, step, logs):
        if step == self.step:
            trainer.should_stop = True


def build(scenario: str, out_dir: str | None, callbacks=()) -> Trainer:
    g = torch.Generator().manual_seed(7)
    if scenario == "loader":
        x = torch.randn(75, 6, 3, generator=g)
        y = x[:, :, 0].mean(1)
        # 15 rows per batch: 7 + 8 per rank, exercising the weighted combination.
        train = DataLoader(TensorDataset(x[:60], y[:60]), batch_size=15, shuffle=True)
        val = DataLoader(TensorDataset(x[60:], y[60:]), batch_size=15)
    else:
        tokens = torch.randint(0, 9, (600,), generator=g)
        train = BPTTStream(tokens[:480], batch_size=4, bptt=20)
        val = BPTTStream(tokens[480:], batch_size=2, bptt=20)
    cfg = TrainConfig(epochs=2, lr=1e-2, optimizer="adam", progress=False, out_dir=out_dir,
                      eval_every=3, log_every=2, plot=False, device="cpu")
    torch.manual_seed(0)
    model = Regressor() if scenario == "loader" else CharLM()
    return Trainer(model, cfg, train, val, callbacks=callbacks)


def _watch_writes(root: str) -> list:
    """Record every file-system write under ``root`` made by this process (audit hook)."""
    root = os.path.abspath(root)
    writes: list = []
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def hook(event, args):
        paths = []
        if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            mode, flags = args[1], args[2]
            if (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
                    (isinstance(flags, int) and flags & write_flags):
                paths = [args[0]]
        elif event in ("os.rename", "os.remove", "os.mkdir", "os.rmdir", "os.truncate"):
            paths = [a for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
        for p in paths:
            p = os.path.abspath(os.fsdecode(p))
            if p.startswith(root):
                writes.append((event, p))

    sys.addaudithook(hook)
    return writes


def ddp_child(out_dir: str, result_dir: str) -> None:
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    writes = _watch_writes(out_dir) if rank != 0 else []
    full = {}
    for scenario in SCENARIOS:
        trainer = full[scenario] = build(scenario, os.path.join(out_dir, scenario))
        assert trainer.world_size == 2 and trainer.rank == rank
        trainer.fit()
        metrics = trainer.evaluate()
        if rank == 0:
            torch.save(trainer.model.state_dict(), os.path.join(result_dir, f"{scenario}.pt"))
            with open(os.path.join(result_dir, f"{scenario}.json"), "w") as f:
                json.dump({"step": trainer.step, "metrics": metrics}, f)
        if scenario == "loader":
            rows = trainer.model.rows_seen
    # Exact resume under DDP: each rank's carried state and RNG come back from last.pt.
    part_dir = os.path.join(out_dir, "part")
    build("stream", part_dir, [StopAt(5)]).fit()
    resumed = build("stream", part_dir)
    resumed.fit(resume=True)
    if rank == 0:
        ckpt = torch.load(os.path.join(part_dir, "last.pt"), weights_only=True)
        same = all(torch.equal(a, b) for a, b in zip(
            resumed.model.state_dict().values(), full["stream"].model.state_dict().values()))
        with open(os.path.join(result_dir, "resume.json"), "w") as f:
            json.dump({"bit_identical": same, "ranks_saved": len(ckpt["ranks"])}, f)
    report = {"writes": list(writes), "rows": rows}  # outside out_dir
    with open(os.path.join(result_dir, f"rank{rank}.json"), "w") as f:
        json.dump(report, f)
    trainer.dist.close()


def test_split_batch_shares_rows_and_keeps_structure():
    x, lengths = torch.randn(5, 4, 2), torch.tensor([4, 3, 2, 2, 1])
    parts = [split_batch({"x": x, "lengths": lengths, "n": 3}, r, 2) for r in range(2)]
    assert torch.equal(torch.cat([p["x"] for p in parts]), x)
    assert [len(p["lengths"]) for p in parts] == [2, 3] and parts[1]["n"] == 3
    a, b = (split_batch([x, ["s"] * 5], r, 2) for r in range(2))
    assert a[1] == ["s"] * 2 and b[0].shape == (3, 4, 2)
    with pytest.raises(ValueError, match="batch size of at least 3"):
        split_batch(torch.zeros(2, 1), 0, 3)


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process(tmp_path):
    out_dir, result_dir = tmp_path / "out", tmp_path / "result"
    result_dir.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           __file__, str(out_dir), str(result_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    reports = [json.loads((result_dir / f"rank{r}.json").read_text()) for r in range(2)]
    assert reports[1]["writes"] == []  # only rank 0 writes
    # Each rank trained on its own rows: 2 epochs x 4 batches x (7 | 8 of 15 rows).
    assert [r["rows"] for r in reports] == [2 * 4 * 7, 2 * 4 * 8]
    assert json.loads((result_dir / "resume.json").read_text()) == {
        "bit_identical": True, "ranks_saved": 2}
    for scenario in SCENARIOS:
        files = set(os.listdir(out_dir / scenario))
        assert {"last.pt", "best.pt", "log.jsonl", "log.csv"} <= files
        single = build(scenario, None)
        single.fit()
        got = torch.load(result_dir / f"{scenario}.pt", weights_only=True)
        for name, want in single.model.state_dict().items():
            torch.testing.assert_close(got[name], want, rtol=1e-4, atol=1e-5, msg=name)
        result = json.loads((result_dir / f"{scenario}.json").read_text())
        assert result["step"] == single.step
        for key, value in single.evaluate().items():
            assert result["metrics"][key] == pytest.approx(value, rel=1e-4, abs=1e-6), key


if __name__ == "__main__":
    ddp_child(sys.argv[1], sys.argv[2])
