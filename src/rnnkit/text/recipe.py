r"""The time-budgeted recipe of ``rnnkit train text --max-time T``: a model sized for the
budget *and the machine*, a schedule that decays over the budget, regularisation that grows
with the passes over the data, and the best-on-validation weights kept.

Why: a fixed architecture is wrong at both ends. A 2 x 512 LSTM reads ~2,250 chars/s on one
CPU thread, so in 4 minutes it sees half a megabyte and loses to a 5-gram model; a small
model on a fast machine makes many passes over a 1 MB text and over-fits. The plan below is
measured, not guessed:

1. **Measure** the training speed (tokens/s: forward, backward, AdamW step on
   ``batch_size x bptt`` chunks) of 1-layer LSTMs of growing width ``H`` in
   :data:`WIDTHS`, on this machine and training device, with its current load and threads.
2. **Size**: the widest ``H`` whose planned tokens ``rate_H x usable time`` are at least
   :data:`TOKENS_PER_PARAM` per parameter (a small-compute version of the compute-optimal
   rule: below it a smaller model learns more in the same time).
3. **Regularise** by the planned passes over the training text
   ``epochs = tokens / train_tokens``: dropout 0 up to 1.5 passes, then 0.1, 0.2 (> 4) and
   0.3 (> 10); the weights kept are those of the best validation score, so a faster machine
   (more passes) can over-fit late but never report it.
4. **Schedule**: AdamW at ``lr = 4e-3 * sqrt(256 / H)`` (at most 4e-3), 50 linear warm-up steps,
   then cosine decay over the remaining budget to 5% (:class:`TimeCosineLR`); about
   :data:`EVALUATIONS` validation passes over the budget; validation at most
   :data:`MAX_VAL_CHARS` characters so evaluating costs a small share of the budget.

Every setting the user gives explicitly wins (``--hidden``, ``--lr``, ``--dropout``, ...); the
plan fills in the rest and :meth:`BudgetPlan.describe` says what it picked and why.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from .language_model import LanguageModel, LanguageModelConfig

__all__ = ["EVALUATIONS", "MAX_VAL_CHARS", "TOKENS_PER_PARAM", "WIDTHS", "BudgetPlan",
           "measure_rate", "model_params", "plan_budget"]

#: Candidate widths of the 1-layer LSTM, smallest first.
WIDTHS = (128, 192, 256, 384, 512, 768, 1024)
#: Planned training tokens per parameter the chosen width must reach.
TOKENS_PER_PARAM = 8.0
#: Validation passes over the budget.
EVALUATIONS = 8
#: Validation text cap (characters) when the recipe chooses the split.
MAX_VAL_CHARS = 100_000
#: Share of the budget left for training steps (the rest: evaluation, samples, saving).
USABLE = 0.85
EMBED, BATCH, BPTT, WARMUP, FLOOR = 64, 16, 64, 50, 0.05


def model_params(hidden: int, vocab: int, *, cell: str = "lstm", layers: int = 1,
                 embed: int = EMBED) -> int:
    """Parameters of the language model of this shape (any registered cell).

    >>> model_params(256, 100) == 100 * 64 + 4 * 256 * (64 + 256 + 2) + 256 * 100 + 100
    True
    """
    model = LanguageModel(LanguageModelConfig(vocab_size=vocab, cell=cell, embed_size=embed,
                                              hidden_size=hidden, num_layers=layers))
    return sum(p.numel() for p in model.parameters())


def measure_rate(hidden: int, vocab: int, *, cell: str = "lstm", layers: int = 1,
                 embed: int = EMBED, batch: int = BATCH, bptt: int = BPTT,
                 steps: int = 3, device: str | torch.device = "cpu") -> float:
    """Training tokens per second of this language model on ``device`` now: ``steps`` timed
    AdamW steps on random tokens after one untimed step (the median step time)."""
    device = torch.device(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LanguageModel(LanguageModelConfig(vocab_size=vocab, cell=cell, embed_size=embed,
                                                  hidden_size=hidden, num_layers=layers))
        model.to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        x = torch.randint(0, vocab, (batch, bptt + 1), device=device)
        times = []
        for i in range(steps + 1):
            sync()
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            model.loss(x).loss.backward()
            opt.step()
            sync()
            if i:
                times.append(time.perf_counter() - t0)
    return batch * bptt / sorted(times)[len(times) // 2]


@dataclass
class BudgetPlan:
    """What :func:`plan_budget` chose (every field may be overridden by the user).

    Attributes:
        hidden_size, num_layers, embed_size, dropout, cell: the model.
        batch_size, bptt: the truncated-BPTT stream.
        lr, warmup_steps, floor: AdamW peak lr, warm-up steps, final lr share of the cosine.
        eval_every: steps between validation passes.
        rate: measured training tokens/s of the chosen model.
        tokens: planned training tokens; ``epochs``: planned passes over the training text.
        params: parameters of the chosen model.
        measured: ``{H: tokens/s}`` of every width measured.
        calibration_s: seconds the measurement took (spent from the budget).
        schedule: how the lr moves, in words.
    """

    hidden_size: int
    num_layers: int
    embed_size: int
    dropout: float
    cell: str
    batch_size: int
    bptt: int
    lr: float
    warmup_steps: int
    floor: float
    eval_every: int
    rate: float
    tokens: float
    epochs: float
    params: int
    measured: dict[int, float]
    calibration_s: float
    schedule: str = "cosine over the budget"

    def describe(self) -> str:
        """One line for the user: what was picked, and from what measurement."""
        speeds = ", ".join(f"H={h}: {r / 1e3:.1f}k" for h, r in self.measured.items())
        return (f"recipe: {self.num_layers}x{self.hidden_size} {self.cell.upper()} "
                f"({self.params / 1e6:.2f}M parameters), dropout {self.dropout:g}, lr "
                f"{self.lr:.2g} {self.schedule}, {self.batch_size}x{self.bptt} chunks, "
                f"validation every {self.eval_every} steps; measured tokens/s ({speeds}, "
                f"{self.calibration_s:.1f} s of the budget) plan ~{self.tokens / 1e6:.1f}M "
                f"tokens = {self.epochs:.1f} passes over the text")


def plan_budget(budget_s: float, train_tokens: int, vocab: int, *, cell: str = "lstm",
                num_layers: int = 1, embed_size: int = EMBED, hidden_size: int | None = None,
                batch_size: int = BATCH, bptt: int = BPTT, device: str = "cpu",
                rate_fn=measure_rate) -> BudgetPlan:
    """Plan a ``budget_s``-second run on ``train_tokens`` tokens of a ``vocab``-symbol text
    (see the module docstring). ``hidden_size`` given: only that width is measured.
    ``device``: where training will run (the speed is measured there).
    ``rate_fn(hidden, vocab, ...) -> tokens/s`` is the speed measurement (tests pass a
    stand-in)."""
    if budget_s <= 0:
        raise ValueError(f"the time budget must be positive, got {budget_s}")
    if train_tokens < 1:
        raise ValueError("no training tokens to plan for")
    t0 = time.perf_counter()
    widths = (hidden_size,) if hidden_size else WIDTHS
    measured: dict[int, float] = {}
    chosen = widths[0]
    for h in widths:
        rate = rate_fn(h, vocab, cell=cell, layers=num_layers, embed=embed_size,
                       batch=batch_size, bptt=bptt, device=device)
        measured[h] = rate
        left = budget_s - (time.perf_counter() - t0)
        params = model_params(h, vocab, cell=cell, layers=num_layers, embed=embed_size)
        if h != widths[0] and rate * left * USABLE < TOKENS_PER_PARAM * params:
            break  # wider ones are slower and larger still
        chosen = h
    calibration = time.perf_counter() - t0
    rate = measured[chosen]
    tokens = rate * max(0.0, budget_s - calibration) * USABLE
    epochs = tokens / train_tokens
    dropout = 0.0 if epochs <= 1.5 else 0.1 if epochs <= 4 else 0.2 if epochs <= 10 else 0.3
    steps = tokens / (batch_size * bptt)
    return BudgetPlan(
        hidden_size=chosen, num_layers=num_layers, embed_size=embed_size, dropout=dropout,
        cell=cell, batch_size=batch_size, bptt=bptt,
        lr=min(4e-3, 4e-3 * math.sqrt(256 / chosen)), warmup_steps=WARMUP, floor=FLOOR,
        eval_every=max(50, int(steps / EVALUATIONS)), rate=rate, tokens=tokens, epochs=epochs,
        params=model_params(chosen, vocab, cell=cell, layers=num_layers, embed=embed_size),
        measured=measured,
        calibration_s=calibration)
