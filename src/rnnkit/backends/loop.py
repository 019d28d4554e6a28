"""The reference backend: a plain Python loop over ``cell.step``. It defines what is correct."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from ..cells import Cell, State, state_map
from .base import Backend


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of ``x [B, T, F]`` within its own length; padding stays put.

    It is its own inverse, so the same call maps reversed outputs back.
    """
    if lengths is None:
        return x.flip(1)
    B, T = x.shape[:2]
    t = torch.arange(T, device=x.device).expand(B, T)
    n = lengths.to(x.device).unsqueeze(1)  # [B, 1]
    index = torch.where(t < n, n - 1 - t, t)  # [B, T]
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


def run_direction(cell: Cell, x: Tensor, state: State, mask: Tensor | None) -> tuple[Tensor, State]:
    """One direction of one layer: ``x [B, T, I]`` -> ``(out [B, T, O], final state)``.

    ``mask [B, T, 1]`` (bool) freezes the state and zeroes the output at padded steps.
    """
    begin = getattr(cell, "begin_sequence", None)
    if begin is not None:  # per-sequence setup, e.g. one variational recurrent-dropout mask
        begin()
    xp = cell.project_input(x)  # [B, T, G]: the time-parallel GEMM, hoisted out of the loop
    outs = []
    for t in range(x.shape[1]):
        out, new = cell.step(xp[:, t], state)
        if mask is not None:
            m = mask[:, t]  # [B, 1]
            new = state_map(lambda n, s, m=m: torch.where(m, n, s), new, state)
            out = out.masked_fill(~m, 0.0)
        state = new
        outs.append(out)
    return torch.stack(outs, dim=1), state


class LoopBackend(Backend):
    """Unrolls the recurrence step by step with autograd; runs any cell."""

    name = "loop"
    #: runs one direction of one layer; subclasses (``scan``, ``compiled``) swap in their own
    direction = staticmethod(run_direction)

    def run(
        self, rnn, x: Tensor, state: State, lengths: Tensor | None
    ) -> tuple[Tensor, State]:
        B, T = x.shape[:2]
        mask = None
        if lengths is not None:
            mask = (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)).to(x.device)
            mask = mask.unsqueeze(-1)  # [B, T, 1]
        D = rnn.num_directions
        finals = []
        inp = x
        for layer in range(rnn.num_layers):
            outs = []
            for d in range(D):
                k = layer * D + d
                s0 = state_map(lambda s, k=k: s[k], state)
                seq = inp if d == 0 else reverse_padded(inp, lengths)
                out, s = self.direction(rnn.cells[k], seq, s0, mask)
                outs.append(out if d == 0 else reverse_padded(out, lengths))
                finals.append(s)
            inp = outs[0] if D == 1 else torch.cat(outs, dim=-1)  # [B, T, D * O]
            if rnn.dropout and rnn.training and layer < rnn.num_layers - 1:
                inp = F.dropout(inp, rnn.dropout, training=True)
        final = state_map(lambda *s: torch.stack(s, dim=0), *finals)
        return inp, final
