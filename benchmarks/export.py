"""ONNX export of recurrent layers: export time, max error vs torch, and latency in
onnxruntime vs torch eager, in one process.

Per cell: the streaming step (B=1, one step with state in/out; the call a streaming app makes
per frame or token) and, for the fused cells, the whole sequence (B=1, T=1000). I=32, H=128,
one layer. Each latency is the median of ``--repeats`` timed runs of ``--calls`` calls;
torch runs the same layer with ``torch.no_grad()`` (``Recurrent.step`` for the step).
Threads: torch and onnxruntime both limited to 1, then 2.

Then greedy text generation of a character language model (E=64, H=256, 300 tokens after a
prime) with :meth:`LanguageModel.generate` against :class:`rnnkit.text.onnx.OnnxLM` over the
exported step graph, in tokens per second (1 thread each).

Run: ``python benchmarks/export.py`` (about a minute on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from functools import partial

import torch

import rnnkit
from rnnkit.cells import state_tensors
from rnnkit.export import FUSED_CELLS, export_recurrent


def timed(fn, calls: int, repeats: int) -> float:
    fn()  # warm-up
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        runs.append((time.perf_counter() - t0) / calls)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", default="lstm,gru,elman,mingru,minlstm,indrnn,layernorm_lstm")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--input", type=int, default=32)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    import onnxruntime as ort

    print(f"I={args.input}, H={args.hidden}, 1 layer, B=1; median of {args.repeats}")
    print("| cell | graph | export s | max error | threads | torch ms | onnxruntime ms | "
          "ort / torch |")
    print("|---|---|---|---|---|---|---|---|")
    tmp = tempfile.mkdtemp()
    for cell in args.cells.split(","):
        torch.manual_seed(0)
        rnn = rnnkit.Recurrent(cell, args.input, args.hidden).eval()
        graphs = [("step", True)] + ([("sequence", False)] if cell in FUSED_CELLS else [])
        for graph, stream in graphs:
            path = f"{tmp}/{cell}_{graph}.onnx"
            report = export_recurrent(rnn, path, stream=stream)
            x = torch.randn(1, args.input) if stream else torch.randn(1, args.steps, args.input)
            state = [torch.zeros(1, *t.shape) for t in
                     state_tensors(rnn.cells[0].initial_state(1))]
            s = state[0] if len(state) == 1 else rnnkit.LSTMState(*state)
            feeds = {"x": x.numpy(), **{f"state_in_{k}": t.numpy() for k, t in enumerate(state)}}
            calls = args.calls if stream else max(3, args.calls // 50)
            for threads in (1, 2):
                torch.set_num_threads(threads)
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = threads
                opts.inter_op_num_threads = 1
                sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
                with torch.no_grad():
                    t_torch = timed(partial(rnn.step if stream else rnn, x, s), calls,
                                    args.repeats)
                t_ort = timed(partial(sess.run, None, feeds), calls, args.repeats)
                print(f"| {cell} | {graph} | {report.seconds:.2f} | {report.max_error:.1e} | "
                      f"{threads} | {1000 * t_torch:.3f} | {1000 * t_ort:.3f} | "
                      f"{t_ort / t_torch:.2f} |", flush=True)
    generation(["lstm", "gru", "mingru"], min(args.repeats, 5))


def generation(cells: list[str], repeats: int) -> None:
    from rnnkit.data.text import CharTokenizer
    from rnnkit.text.language_model import LanguageModel, LanguageModelConfig
    from rnnkit.text.onnx import OnnxLM, export_language_model

    torch.set_num_threads(1)
    tok = CharTokenizer.from_text("".join(chr(c) for c in range(32, 127)) + "\n")
    print("\n| cell | torch tokens/s | onnxruntime tokens/s | ort / torch time |")
    print("|---|---|---|---|")
    for cell in cells:
        torch.manual_seed(0)
        lm = LanguageModel(LanguageModelConfig(vocab_size=len(tok), cell=cell, embed_size=64,
                                               hidden_size=256, num_layers=1), tok).eval()
        path = f"{tempfile.mkdtemp()}/lm.onnx"
        export_language_model(lm, path)
        ort_lm = OnnxLM(path, threads=1)
        a = timed(partial(lm.generate, "ROMEO:", 300, 0.0), 1, repeats)
        b = timed(partial(ort_lm.generate, "ROMEO:", 300, 0.0), 1, repeats)
        print(f"| {cell} | {300 / a:.0f} | {300 / b:.0f} | {b / a:.2f} |", flush=True)


if __name__ == "__main__":
    main()
