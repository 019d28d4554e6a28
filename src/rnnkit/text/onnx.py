"""A language model as ONNX: the streaming step (every cell) or the whole sequence (fused
cells), with the recurrent state in and out, and text generation in onnxruntime.

Graphs (built on :mod:`rnnkit.export.onnx`):

* step: ``tokens [B] (int64), state_in_k -> logits [B, V], state_out_k``; generation feeds the
  sampled token and the state back in, one call per token;
* sequence (``lstm``/``gru``/``elman``): ``tokens [B, T] -> logits [B, T, V]`` with dynamic
  batch and length.

The tokenizer goes into the description beside the graph (``<file>.json``), so
:class:`rnnkit.onnx.OnnxLanguageModel` generates text from the two files with onnxruntime and
numpy alone: greedy decoding gives the same text as :meth:`LanguageModel.generate` with
``temperature=0`` (tested).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..export.onnx import (
    FUSED_CELLS,
    ExportReport,
    check_destination,
    checked_report,
    export_graph,
    max_error,
    write_metadata,
)
from .language_model import LanguageModel

__all__ = ["export_language_model"]


class _LMGraph(nn.Module):
    def __init__(self, lm: LanguageModel, step: bool) -> None:
        super().__init__()
        self.lm, self.step = lm, step

    def forward(self, tokens: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        from ..cells import LSTMState, state_tensors

        s = state[0] if len(state) == 1 else LSTMState(*state)
        x = self.lm.embedding(tokens)  # eval: no dropout
        y, new = self.lm.rnn.step(x, s) if self.step else self.lm.rnn(x, s)
        return (self.lm.head(y), *state_tensors(new))


def export_language_model(lm: LanguageModel, path: str, *, stream: bool = True,
                          tolerance: float = 1e-4) -> ExportReport:
    """Write ``lm`` as ONNX (see the module docstring) and its description beside it, then check
    the graph with onnxruntime against torch: logits and state after streaming (step) or
    running (sequence) 1 x 7 and 3 x 23 tokens. Returns the report."""
    from ..cells import state_tensors
    from ..export.onnx import _backend, _example_state, session

    if not isinstance(lm, LanguageModel):
        raise TypeError(f"export_language_model takes a LanguageModel, got {type(lm).__name__}")
    cell = lm.config.cell
    if not stream and cell not in FUSED_CELLS:
        raise ValueError(f"the {cell} cell has no ONNX sequence operator; export the streaming "
                         f"step (the default) and generate token by token")
    check_destination(path)
    gen = torch.Generator().manual_seed(0)
    rnn = lm.rnn
    n_state = len(_example_state(rnn, 1, gen))
    names = ["tokens"] + [f"state_in_{k}" for k in range(n_state)]
    outs = ["logits"] + [f"state_out_{k}" for k in range(n_state)]
    dyn = {"tokens": {0: "batch"} if stream else {0: "batch", 1: "time"},
           "logits": {0: "batch"} if stream else {0: "batch", 1: "time"},
           **{n: {1: "batch"} for n in names[1:] + outs[1:]}}
    V = lm.config.vocab_size
    graph = _LMGraph(lm, stream)
    was = lm.training
    lm.eval()
    try:
        with _backend(rnn, "loop" if stream else "fused"):
            tokens = torch.randint(0, V, (2,) if stream else (2, 3), generator=gen)
            seconds = export_graph(graph, (tokens, *_example_state(rnn, 2, gen)), path, names,
                                   outs, dyn)
            sess = session(path)
            checks = []
            for batch, steps in ((1, 7), (3, 23)):
                ids = torch.randint(0, V, (batch, steps), generator=gen)
                s0 = _example_state(rnn, batch, gen)
                with torch.no_grad():
                    from ..cells import LSTMState

                    logits, s = lm(ids, s0[0] if len(s0) == 1 else LSTMState(*s0))
                ref = [logits, *state_tensors(s)]
                feeds = {n: t.numpy() for n, t in zip(names[1:], s0)}
                if stream:
                    import numpy as np

                    steps_out = []
                    for t in range(steps):
                        out = sess.run(None, {"tokens": ids[:, t].numpy(), **feeds})
                        steps_out.append(out[0])
                        feeds = dict(zip(names[1:], out[1:]))
                    got = [np.stack(steps_out, 1), *feeds.values()]
                else:
                    got = sess.run(None, {"tokens": ids.numpy(), **feeds})
                checks.append({"batch": batch, "steps": steps, "max_error": max_error(ref, got),
                               "float32_noise": _float32_noise(lm, ids, s0, ref)})
    finally:
        lm.train(was)
    report = checked_report(path, "step" if stream else "sequence", names, outs, checks,
                            seconds, tolerance)
    write_metadata(path, "language_model", report.graph, cell=cell,
                   tokenizer=lm.tokenizer.to_dict() if lm.tokenizer is not None else None)
    return report


def _float32_noise(lm: LanguageModel, ids: Tensor, state: list[Tensor],
                   ref: list[Tensor]) -> float:
    """torch's own float32-vs-float64 error on the same tokens (see
    :func:`rnnkit.export.onnx.checked_report`)."""
    import copy

    from ..cells import LSTMState, state_tensors

    lm64 = copy.deepcopy(lm).double()
    s = [t.double() for t in state]
    with torch.no_grad():
        logits, new = lm64(ids, s[0] if len(s) == 1 else LSTMState(*s))
    return max_error(ref, [logits, *state_tensors(new)])
