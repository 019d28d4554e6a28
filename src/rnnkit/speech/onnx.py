"""A speech recogniser as ONNX: log-mel features in, CTC log-probabilities out.

Graph (built on :mod:`rnnkit.export.onnx`), dynamic batch and length:
``feats [B, T, n_mels], lengths [B] -> log_probs [B, T', V], out_lengths [B]``
(:class:`~rnnkit.speech.model.AcousticModel`: normalisation, convolutional front end, the
recurrent stack stopping at each row's length, the output layer; ``T' = ceil(T / 2)``, frames
past ``out_lengths`` are padding). The description (``<file>.json``) holds the alphabet and
the log-mel front end (window and filterbank as numbers), so
:class:`rnnkit.onnx.OnnxRecognizer` turns PCM WAV files (at the model's rate: it does not
resample) or sample arrays into text with numpy and onnxruntime alone (greedy CTC decoding).
"""

from __future__ import annotations

import os

import torch
from torch import Tensor, nn

from ..export.onnx import (
    FUSED_CELLS,
    ExportReport,
    _backend,
    check_destination,
    export_checked,
    random_lengths,
    write_metadata,
)
from .recognizer import SpeechRecognizer

__all__ = ["export_recognizer"]


class _AcousticGraph(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, feats: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        return self.model(feats, lengths)


def export_recognizer(recognizer: SpeechRecognizer, path: str, *,
                      tolerance: float = 1e-4) -> ExportReport:
    """Write ``recognizer``'s acoustic model as ONNX (see the module docstring), check it
    with onnxruntime against torch at two batch sizes and lengths, and describe it with its
    feature front end."""
    if not isinstance(recognizer, SpeechRecognizer):
        raise TypeError(f"expected a SpeechRecognizer, got {type(recognizer).__name__}")
    c, model, fe = recognizer.config, recognizer.model, recognizer.features
    if c.cell not in FUSED_CELLS:
        raise ValueError(f"the {c.cell} cell has no ONNX sequence operator; export recognisers "
                         f"built with one of {', '.join(FUSED_CELLS)}")
    check_destination(path)
    gen = torch.Generator().manual_seed(0)

    def inputs(batch: int, steps: int) -> dict[str, Tensor]:
        return {"feats": torch.randn(batch, steps, c.n_mels, generator=gen),
                "lengths": random_lengths(batch, steps, gen)}

    outputs = ["log_probs", "out_lengths"]
    dyn = {"feats": {0: "batch", 1: "frames"}, "lengths": {0: "batch"},
           "log_probs": {0: "batch", 1: "out_frames"}, "out_lengths": {0: "batch"}}
    was = model.training
    model.eval()
    try:
        with _backend(model.rnn, "fused"):
            report = export_checked(_AcousticGraph(model), os.fspath(path), inputs(3, 40),
                                    outputs, dyn, inputs, "acoustic", tolerance=tolerance,
                                    shapes=((1, 57), (4, 120)))
    finally:
        model.train(was)
    write_metadata(path, "speech", report.graph, inputs=report.inputs, outputs=outputs,
                   alphabet=recognizer.alphabet, rate=c.rate,
                   frame_seconds=recognizer.frame_seconds,
                   features={"n_fft": fe.n_fft, "win_length": fe.win_length,
                             "hop_length": fe.hop_length, "n_mels": fe.n_mels,
                             "preemphasis": fe.preemphasis, "eps": fe.eps,
                             "window": fe.window.tolist(), "filterbank": fe.fb.tolist()})
    return report
