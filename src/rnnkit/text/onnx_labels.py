"""Sequence classifiers and taggers as ONNX: variable lengths without ``PackedSequence``.

Graphs (built on :mod:`rnnkit.export.onnx`), dynamic batch and length:

* classifier: ``tokens [B, T] (int64) | x [B, T, F], lengths [B] -> probs [B, C]`` and, for
  attention pooling, ``attention [B, T]`` (each row sums to 1 over its length);
* tagger: ``tokens | x, lengths -> logits [B, T, C]`` (rows past a length are padding).

The recurrent layer runs on torch's fused kernel, which the exporter turns into ONNX's
LSTM/GRU/RNN operators with ``sequence_lens``: each row stops at its own length, both
directions included, so padding never reaches a result. The graph is traced on a batch whose
lengths differ (the all-full batch would record the path without lengths) and checked with
onnxruntime at two other batch sizes and lengths. Cells without a fused kernel would be
unrolled to the example's length and are refused.

A :class:`~rnnkit.text.classifier.TextClassifier` also writes its vocabulary and class names
into the description (``<file>.json``), so :class:`rnnkit.onnx.OnnxClassifier` classifies
texts with onnxruntime alone.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor, nn

from ..attention import lengths_to_mask
from ..export.onnx import (
    FUSED_CELLS,
    ExportReport,
    _backend,
    check_destination,
    export_checked,
    random_lengths,
    write_metadata,
)
from .classifier import SequenceClassifier, TextClassifier, encode_sequence
from .tagger import SequenceTagger

__all__ = ["export_sequence_classifier", "export_tagger", "export_text_classifier"]


class _ClassifierGraph(nn.Module):
    """``(x, lengths) -> probs`` (and attention weights when the model pools with them)."""

    def __init__(self, model: SequenceClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        m = self.model
        out, state, lengths = encode_sequence(m.embed, m.rnn, x, lengths, m.in_drop)
        if m.attention is None:
            return torch.softmax(m.head(m.pool(out, state, lengths)), -1)
        mask = lengths_to_mask(lengths, out.shape[1], device=out.device)
        context, weights = m.attention(m.query.expand(out.shape[0], -1), out, mask=mask)
        return torch.softmax(m.head(context), -1), weights.reshape(out.shape[0], -1)


class _TaggerGraph(nn.Module):
    def __init__(self, model: SequenceTagger) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        return self.model(x, lengths)


def _export(model: nn.Module, graph: nn.Module, path: str, outputs: list[str], kind: str,
            tolerance: float) -> ExportReport:
    c = model.config
    if c.cell not in FUSED_CELLS:
        raise ValueError(f"the {c.cell} cell has no ONNX sequence operator, so a {kind} "
                         f"graph would be unrolled to one length; export models built with "
                         f"one of {', '.join(FUSED_CELLS)}")
    check_destination(path)
    gen = torch.Generator().manual_seed(0)
    tokens = c.vocab_size is not None
    name = "tokens" if tokens else "x"

    def inputs(batch: int, steps: int) -> dict[str, Tensor]:
        x = (torch.randint(1, c.vocab_size, (batch, steps), generator=gen) if tokens
             else torch.randn(batch, steps, c.input_size, generator=gen))
        return {name: x, "lengths": random_lengths(batch, steps, gen)}

    dyn = {name: {0: "batch", 1: "time"}, "lengths": {0: "batch"}}
    for out in outputs:
        dyn[out] = {0: "batch"} if out == "probs" else {0: "batch", 1: "time"}
    was = model.training
    model.eval()
    try:
        with _backend(model.rnn, "fused"):
            return export_checked(graph, os.fspath(path), inputs(3, 5), outputs, dyn, inputs,
                                  "sequence", tolerance=tolerance)
    finally:
        model.train(was)


def export_sequence_classifier(model: SequenceClassifier, path: str, *,
                               tolerance: float = 1e-4) -> ExportReport:
    """Write ``model`` as ONNX (see the module docstring), check it and describe it."""
    if not isinstance(model, SequenceClassifier):
        raise TypeError(f"expected a SequenceClassifier, got {type(model).__name__}")
    outputs = ["probs"] + (["attention"] if model.attention is not None else [])
    report = _export(model, _ClassifierGraph(model), path, outputs, "classifier", tolerance)
    write_metadata(path, "sequence_classifier", report.graph, inputs=report.inputs,
                   outputs=outputs, num_classes=model.config.num_classes)
    return report


def export_text_classifier(classifier: TextClassifier, path: str, *,
                           tolerance: float = 1e-4) -> ExportReport:
    """Write ``classifier``'s model as ONNX with its vocabulary and class names in the
    description, for :class:`rnnkit.onnx.OnnxClassifier`."""
    if not isinstance(classifier, TextClassifier):
        raise TypeError(f"expected a TextClassifier, got {type(classifier).__name__}")
    model = classifier.model
    outputs = ["probs"] + (["attention"] if model.attention is not None else [])
    report = _export(model, _ClassifierGraph(model), path, outputs, "classifier", tolerance)
    write_metadata(path, "classifier", report.graph, inputs=report.inputs, outputs=outputs,
                   vocab=classifier.vocab.to_dict(), classes=classifier.classes)
    return report


def export_tagger(model: SequenceTagger, path: str, *, tolerance: float = 1e-4) -> ExportReport:
    """Write a :class:`~rnnkit.text.tagger.SequenceTagger` as ONNX (logits per step), check
    it and describe it."""
    if not isinstance(model, SequenceTagger):
        raise TypeError(f"expected a SequenceTagger, got {type(model).__name__}")
    report = _export(model, _TaggerGraph(model), path, ["logits"], "tagger", tolerance)
    write_metadata(path, "tagger", report.graph, inputs=report.inputs, outputs=["logits"],
                   num_tags=model.config.num_tags)
    return report
