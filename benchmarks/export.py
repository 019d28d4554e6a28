"""ONNX export of recurrent layers: export time, max error vs torch, and latency in
onnxruntime vs torch eager, in one process.

Per cell: the streaming step (B=1, one step with state in/out; the call a streaming app makes
per frame or token) and, for the fused cells, the whole sequence (B=1, T=1000). I=32, H=128,
one layer. Each latency is the median of ``--repeats`` timed runs of ``--calls`` calls;
torch runs the same layer with ``torch.no_grad()`` (``Recurrent.step`` for the step).
Threads: torch and onnxruntime both limited to 1, then 2.

Then greedy text generation of a character language model (E=64, H=256, 300 tokens after a
prime) with :meth:`LanguageModel.generate` against :class:`rnnkit.onnx.OnnxLanguageModel` over
the exported step graph, in tokens per second (1 thread each).

Then each model family through ``rnnkit.export`` and the torch-free runtime
(:mod:`rnnkit.onnx`) against the torch model's own method, 1 thread each, E=64, H=128:
classifier (2-layer bidirectional LSTM with attention pooling, one 40-word text, and a batch
of 32), translator (GRU encoder-decoder with attention, beam 5 over 12-word sentences, text
in and text out on both sides), forecaster (gaussian head, input 48, horizon 12), speech
recogniser (2-layer bidirectional GRU, 3 s of audio in, text out). Export time, the export's
max error, and per-call latency.

Run: ``python benchmarks/export.py`` (about two minutes on 2 CPU cores).
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
    families(min(args.repeats, 5))


def generation(cells: list[str], repeats: int) -> None:
    from rnnkit.data.text import CharTokenizer
    from rnnkit.onnx import OnnxLanguageModel
    from rnnkit.text.language_model import LanguageModel, LanguageModelConfig
    from rnnkit.text.onnx import export_language_model

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
        ort_lm = OnnxLanguageModel(path, threads=1)
        a = timed(partial(lm.generate, "ROMEO:", 300, 0.0), 1, repeats)
        b = timed(partial(ort_lm.generate, "ROMEO:", 300, 0.0), 1, repeats)
        print(f"| {cell} | {300 / a:.0f} | {300 / b:.0f} | {b / a:.2f} |", flush=True)


def families(repeats: int) -> None:
    import random

    import numpy as np

    import rnnkit.onnx as ro
    from rnnkit.data.vocab import Vocab
    from rnnkit.forecast.config import ForecasterConfig
    from rnnkit.forecast.forecaster import Forecaster
    from rnnkit.speech.config import SpeechConfig
    from rnnkit.speech.recognizer import SpeechRecognizer
    from rnnkit.text.classifier import ClassifierConfig, SequenceClassifier, TextClassifier
    from rnnkit.text.seq2seq import Seq2Seq, Seq2SeqConfig
    from rnnkit.text.translation import Translator

    rng = random.Random(0)
    words = [f"w{i}" for i in range(2000)]

    def text(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n))

    vocab = Vocab.build([" ".join(words)])
    tmp = tempfile.mkdtemp()
    torch.manual_seed(0)
    clf = TextClassifier(SequenceClassifier(ClassifierConfig(
        num_classes=2, vocab_size=len(vocab), embed_size=64, hidden_size=128,
        bidirectional=True, pooling="attention")).eval(), vocab, ["neg", "pos"])
    tr = Translator(Seq2Seq(Seq2SeqConfig(len(vocab), len(vocab), embed_size=64,
                                          hidden_size=128, cell="gru")).eval(),
                    vocab, vocab, max_len=16)
    t = np.arange(600)
    y = 50 + 10 * np.sin(2 * np.pi * t / 24) + np.random.default_rng(0).normal(0, 1, len(t))
    fc = Forecaster(ForecasterConfig(input_len=48, horizon=12, hidden_size=128, calendar=(),
                                     head="gaussian", max_steps=20)).fit(y)
    rec = SpeechRecognizer(SpeechConfig(hidden_size=128, num_layers=2, channels=8))
    reports = {name: rnnkit.export(model, f"{tmp}/{name}.onnx")
               for name, model in (("c", clf), ("t", tr), ("f", fc), ("s", rec))}
    reports["t"] = reports["t"][1]  # the decoder step: the graph beam search calls
    audio = torch.randn(3 * 16000) * 0.1
    one, batch = [text(40)], [text(rng.randint(5, 60)) for _ in range(32)]
    sentences = [text(12) for _ in range(8)]
    # (row, graph, torch call, runtime call given the loaded runner)
    rows = [
        ("classifier, 1 text", "c", lambda: clf.predict_proba(one),
         lambda r: r.predict_proba(one)),
        ("classifier, 32 texts", "c", lambda: clf.predict_proba(batch),
         lambda r: r.predict_proba(batch)),
        ("translator, beam 5, 1 sentence", "t", lambda: tr.translate(sentences[:1], 5),
         lambda r: r.translate(sentences[:1], 5)),
        ("translator, beam 5, 8 sentences", "t", lambda: tr.translate(sentences, 5),
         lambda r: r.translate(sentences, 5)),
        ("forecaster, 1 series, 80% interval", "f", lambda: fc.predict(y, levels=(80,)),
         lambda r: r.predict(y, levels=(80,))),
        ("speech, 3 s of audio (features + model + greedy CTC)", "s",
         lambda: rec.transcribe(audio), lambda r: r.transcribe(audio.numpy())),
    ]
    print("\n| model, call | export s | max error | threads | torch ms | onnxruntime ms | "
          "ort / torch |")
    print("|---|---|---|---|---|---|---|")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        runners = {k: ro.load(f"{tmp}/{k}.onnx", threads=threads) for k in reports}
        for name, key, torch_call, ort_call in rows:
            with torch.no_grad():
                a = timed(torch_call, 5, repeats)
            b = timed(partial(ort_call, runners[key]), 5, repeats)
            rep = reports[key]
            print(f"| {name} | {rep.seconds:.2f} | {rep.max_error:.1e} | {threads} | "
                  f"{1000 * a:.2f} | {1000 * b:.2f} | {b / a:.2f} |", flush=True)

if __name__ == "__main__":
    main()
