"""A translator (attention encoder-decoder) as two ONNX graphs, so beam search runs outside.

* encoder ``<file>``: ``src [B, S] (int64), src_lengths [B] -> memory [B, S, 2H],
  dec_k [L, B, 2H]`` (the decoder's initial state: ``h`` and, for LSTM, ``c``); dynamic batch
  and source length, the bidirectional encoder stopping at each row's length (ONNX
  ``sequence_lens``);
* decoder step ``<stem>.decoder.onnx``: ``y_prev [N], [memory [N, S, 2H], src_lengths [N],]
  [feed_in [N, 2H],] state_in_k -> logits [N, V], state_out_k, [feed_out,] [attention
  [N, S]]`` — one target step of :meth:`Seq2Seq.decode_step`, with input feeding and
  attention as the model has them (without attention the step reads neither the memory nor
  the lengths, and the graph has no such inputs).

Both are checked with onnxruntime against torch at two batch sizes and source lengths; the
description (``<file>.json``) holds both vocabularies, the special ids and the decoder file's
name, so :class:`rnnkit.onnx.OnnxTranslator` translates with onnxruntime alone (its beam
search gives the translations of :meth:`Translator.translate`, tested).
"""

from __future__ import annotations

import os

import torch
from torch import Tensor, nn

from ..attention import lengths_to_mask
from ..cells import LSTMState, state_tensors
from ..data.vocab import BOS, EOS
from ..export.onnx import (
    FUSED_CELLS,
    ExportReport,
    _backend,
    check_destination,
    export_checked,
    random_lengths,
    write_metadata,
)
from .seq2seq import Seq2Seq
from .translation import Translator

__all__ = ["decoder_path", "export_seq2seq", "export_translator"]


def decoder_path(path: str) -> str:
    """The decoder-step graph written beside the encoder graph ``path``."""
    path = os.fspath(path)
    stem = path[:-5] if path.endswith(".onnx") else path
    return stem + ".decoder.onnx"


class _Encoder(nn.Module):
    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model

    def forward(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, ...]:
        enc = self.model.encode(src, src_lengths)
        return (enc["memory"], *state_tensors(enc["dec"]))


class _DecoderStep(nn.Module):
    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model
        self.feeding = model.config.input_feeding

    def forward(self, y_prev: Tensor, memory: Tensor, src_lengths: Tensor,
                *rest: Tensor) -> tuple[Tensor, ...]:
        feed, state = (rest[0], rest[1:]) if self.feeding else (None, rest)
        enc = {"memory": memory, "feed": feed,
               "mask": lengths_to_mask(src_lengths, memory.shape[1], device=memory.device),
               "dec": state[0] if len(state) == 1 else LSTMState(*state)}
        logits, new, weights = self.model.decode_step(y_prev, enc)
        out = [logits, *state_tensors(new["dec"])]
        if self.feeding:
            out.append(new["feed"])
        if weights is not None:
            out.append(weights)
        return tuple(out)


def export_seq2seq(model: Seq2Seq, path: str, *, tolerance: float = 1e-4,
                   ) -> tuple[ExportReport, ExportReport]:
    """Write the encoder to ``path`` and the decoder step to :func:`decoder_path`, each
    checked with onnxruntime, and a ``seq2seq`` description (the graphs run as
    :class:`rnnkit.onnx.OnnxGraph`); returns both reports (encoder, decoder)."""
    if not isinstance(model, Seq2Seq):
        raise TypeError(f"expected a Seq2Seq, got {type(model).__name__}")
    c = model.config
    if c.cell not in FUSED_CELLS:
        raise ValueError(f"the {c.cell} cell has no ONNX sequence operator; export "
                         f"translators built with one of {', '.join(FUSED_CELLS)}")
    check_destination(path)
    gen = torch.Generator().manual_seed(0)
    n_state = 2 if c.cell == "lstm" else 1
    D, L = 2 * c.hidden_size, c.dec_layers

    def enc_inputs(batch: int, steps: int) -> dict[str, Tensor]:
        return {"src": torch.randint(4, c.src_vocab_size, (batch, steps), generator=gen),
                "src_lengths": random_lengths(batch, steps, gen)}

    def dec_inputs(batch: int, steps: int) -> dict[str, Tensor]:
        feeds = {"y_prev": torch.randint(4, c.tgt_vocab_size, (batch,), generator=gen),
                 "memory": torch.randn(batch, steps, D, generator=gen),
                 "src_lengths": random_lengths(batch, steps, gen)}
        if c.input_feeding:
            feeds["feed_in"] = torch.randn(batch, D, generator=gen)
        for k in range(n_state):
            feeds[f"state_in_{k}"] = torch.randn(L, batch, D, generator=gen)
        return feeds

    enc_out = ["memory"] + [f"dec_{k}" for k in range(n_state)]
    enc_dyn = {"src": {0: "batch", 1: "source"}, "src_lengths": {0: "batch"},
               "memory": {0: "batch", 1: "source"}, **{n: {1: "batch"} for n in enc_out[1:]}}
    dec_out = (["logits"] + [f"state_out_{k}" for k in range(n_state)]
               + (["feed_out"] if c.input_feeding else [])
               + (["attention"] if model.attention is not None else []))
    example = dec_inputs(3, 5)
    dec_dyn = {n: {0: "batch"} for n in [*example, *dec_out]}
    for n in ("memory", "attention"):
        dec_dyn[n] = {0: "batch", 1: "source"}
    for n in [*example, *dec_out]:
        if n.startswith("state_"):
            dec_dyn[n] = {1: "batch"}
    was = model.training
    model.eval()
    try:
        with _backend(model.encoder, "fused"), _backend(model.decoder, "loop"):
            enc = export_checked(_Encoder(model), os.fspath(path), enc_inputs(3, 5), enc_out,
                                 enc_dyn, enc_inputs, "encoder", tolerance=tolerance)
            dec = export_checked(_DecoderStep(model), decoder_path(path), example, dec_out,
                                 dec_dyn, dec_inputs, "decoder step", tolerance=tolerance)
    finally:
        model.train(was)
    write_metadata(path, "seq2seq", "encoder", decoder=os.path.basename(decoder_path(path)),
                   bos=BOS, eos=EOS, inputs=enc.inputs, outputs=enc.outputs,
                   decoder_inputs=dec.inputs, decoder_outputs=dec.outputs)
    return enc, dec


def export_translator(translator: Translator, path: str, *, tolerance: float = 1e-4,
                      ) -> tuple[ExportReport, ExportReport]:
    """:func:`export_seq2seq` of the translator's model, with its vocabularies, special ids
    and longest output in the description, for :class:`rnnkit.onnx.OnnxTranslator`."""
    if not isinstance(translator, Translator):
        raise TypeError(f"expected a Translator, got {type(translator).__name__}")
    enc, dec = export_seq2seq(translator.model, path, tolerance=tolerance)
    write_metadata(path, "translator", "encoder", decoder=os.path.basename(decoder_path(path)),
                   src_vocab=translator.src_vocab.to_dict(),
                   tgt_vocab=translator.tgt_vocab.to_dict(), bos=BOS, eos=EOS,
                   max_len=translator.max_len, inputs=enc.inputs, outputs=enc.outputs,
                   decoder_inputs=dec.inputs, decoder_outputs=dec.outputs)
    return enc, dec
