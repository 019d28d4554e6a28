"""``rnnkit export``: a trained model as ONNX with its recurrent state in and out.

  rnnkit export runs/text/best.pt --out lm.onnx              # the streaming step (any cell)
  rnnkit export runs/text/best.pt --out lm.onnx --sequence   # the whole sequence (lstm/gru/elman)

The export is checked with onnxruntime against the torch model as it is written (the largest
difference is printed). Language models write their tokenizer beside the graph
(``lm.onnx.tokenizer.json``); ``rnnkit.text.onnx.OnnxLM`` generates text from the two files.
Layers: ``rnnkit.export.export_recurrent``.
"""

from __future__ import annotations

import argparse

from .runs import check_output

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="a trained model as ONNX with its state in and out",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="best.pt or last.pt of `rnnkit train text`")
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument("--sequence", action="store_true",
                   help="export the whole-sequence graph (dynamic length; lstm, gru, elman) "
                   "instead of the streaming step")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from ..saving import load

    check_output(args.out, args.overwrite, "--out")
    model = load(args.checkpoint)
    kind = type(model).__name__
    if kind != "LanguageModel":
        raise ValueError(f"{args.checkpoint} holds a {kind}; `rnnkit export` writes language "
                         f"models (`rnnkit train text`) so far; export a layer from Python with "
                         f"rnnkit.export.export_recurrent")
    from ..text.onnx import export_language_model, tokenizer_path

    report = export_language_model(model, args.out, stream=not args.sequence)
    print(report.describe())
    print(f"inputs {report.inputs}, outputs {report.outputs}; tokenizer: "
          f"{tokenizer_path(args.out)}")
    return 0
