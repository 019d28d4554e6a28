"""``rnnkit export``: a trained model as ONNX with its recurrent state in and out.

  rnnkit export runs/text/best.pt --out lm.onnx              # language model: one step
  rnnkit export runs/text/best.pt --out lm.onnx --sequence   # ... or the whole sequence
  rnnkit export runs/sst/best.pt --out sentiment.onnx        # classifier: texts + lengths
  rnnkit export runs/de/best.pt --out de.onnx                # translator: de.onnx (encoder)
                                                             #   + de.decoder.onnx (one step)
  rnnkit export model.forecaster --out sales.onnx            # forecaster's network
  rnnkit export speech.pt --out asr.onnx                     # recogniser: log-mel -> CTC

Every export is checked with onnxruntime against the torch model as it is written (the
largest difference is printed). A description goes beside each graph (``lm.onnx.json``:
vocabulary, class names, scaler ...), so ``rnnkit.onnx.load(path)`` runs the model with
onnxruntime alone (no torch): ``generate`` text, ``predict`` classes, ``translate`` with beam
search, ``predict`` forecasts, ``transcribe`` WAV files. Layers and other modules:
``rnnkit.export(model, path)``.
"""

from __future__ import annotations

import argparse
import os

from .runs import check_output

__all__ = ["register"]

#: what `rnnkit export` writes, and the command that trains each
EXPORTABLE = {"LanguageModel": "rnnkit train text", "TextClassifier": "rnnkit classify train",
              "Translator": "rnnkit translate train", "Forecaster": "rnnkit forecast train",
              "SpeechRecognizer": "rnnkit speech train"}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="a trained model as ONNX with its state in and out",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a model file: best.pt / last.pt of `rnnkit train text`, "
                   "`classify train` or `translate train`, or a `forecast train` or `speech "
                   "train` model")
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument("--format", choices=["onnx"], default="onnx",
                   help="the exchange format (ONNX, opset 17)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--stream", action="store_true",
                     help="language models: export one step with the state in and out (the "
                     "default; any cell)")
    how.add_argument("--sequence", action="store_true",
                     help="language models: export the whole-sequence graph instead (dynamic "
                     "length; lstm, gru, elman)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing output files (the graph and its .json description)")
    p.set_defaults(func=_export)


def _outputs(kind: str, out: str) -> list[str]:
    from ..onnx import metadata_path

    files = [out, metadata_path(out)]
    if kind == "Translator":
        from ..text.onnx_seq2seq import decoder_path

        files.append(decoder_path(out))
    return files


def _export(args: argparse.Namespace) -> int:
    from ..saving import load

    check_output(args.out, args.overwrite, "--out")
    model = load(args.checkpoint)
    kind = type(model).__name__
    if kind not in EXPORTABLE:
        makers = "; ".join(f"{k}: `{v}`" for k, v in EXPORTABLE.items())
        raise ValueError(f"{args.checkpoint} holds a {kind}, which `rnnkit export` does not "
                         f"write (it exports {makers}); use it with the command that made it, "
                         f"or export its layers from Python with rnnkit.export(layer, path)")
    if (args.stream or args.sequence) and kind != "LanguageModel":
        raise ValueError(f"--stream/--sequence choose a language model's graph; a {kind} has "
                         f"one export, so drop the flag")
    for path in _outputs(kind, args.out)[1:]:
        check_output(path, args.overwrite, "--out (the file written beside it)")
    from ..export import export

    options = {"stream": not args.sequence} if kind == "LanguageModel" else {}
    reports = export(model, args.out, **options)
    for report in reports if isinstance(reports, tuple) else (reports,):
        print(report.describe())
        print(f"  inputs {report.inputs}, outputs {report.outputs}")
    files = [f for f in _outputs(kind, args.out) if os.path.exists(f)]
    print(f"wrote {', '.join(files)}; run it without torch: rnnkit.onnx.load({args.out!r})")
    return 0
