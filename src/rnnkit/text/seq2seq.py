r"""Encoder-decoder with attention (Bahdanau et al., 2015; Luong et al., 2015).

Encoder: a bidirectional :class:`~rnnkit.Recurrent` over the source embeddings gives the memory
:math:`m_{1..S}` (``[B, S, 2H]``, zeros past each source length). Its last layer's final
forward and backward states, concatenated, initialise every decoder layer through a bridge
:math:`s_0 = \tanh(W_b [\overrightarrow{h}_S; \overleftarrow{h}_1] + b_b)` (for LSTM a second
bridge gives the cell state).

Decoder (Luong's global attention, optionally with input feeding), for target step ``t``:

.. math::
    h_t &= \mathrm{Recurrent}([E y_{t-1};\ \tilde h_{t-1}],\ h_{t-1})
          \quad(\tilde h_{t-1} \text{ only with input feeding})\\
    c_t, \alpha_t &= \mathrm{Attention}(h_t,\ m_{1..S},\ \mathrm{mask}) \\
    \tilde h_t &= \tanh(W_c [c_t; h_t]) \quad(\tanh(W_c h_t) \text{ without attention}) \\
    p(y_t \mid y_{<t}, x) &= \mathrm{softmax}(W_o\, \mathrm{dropout}(\tilde h_t) + b_o)

With ``attention="none"`` the decoder sees the source only through :math:`s_0`, the classic
fixed-vector bottleneck (Sutskever et al., 2014) that attention removes.

Training is teacher-forced (``y_{t-1}`` is the reference); with ``teacher_forcing < 1`` each
step feeds the model's own previous prediction with probability ``1 - teacher_forcing``.
Without input feeding and with full teacher forcing the decoder runs over all steps at once.
Decoding: :meth:`Seq2Seq.greedy`, :meth:`Seq2Seq.sample` and batched :meth:`Seq2Seq.beam`, all
:mod:`rnnkit.decoding.beam` searches over :meth:`Seq2Seq.decode_step` (the step the
teacher-forced loop of :meth:`Seq2Seq.forward` uses too).

Shapes: ``src [B, S]`` ids, ``src_lengths [B]``; ``tgt [B, T + 1]`` ids framed as
``BOS y_1 .. y_T EOS`` and padded with ``PAD``; logits ``[B, T, V]``; attention ``[B, T, S]``.
A batch for :meth:`Seq2Seq.loss` is ``(src, src_lengths, tgt)`` or a dict with those keys.

>>> cfg = Seq2SeqConfig(src_vocab_size=12, tgt_vocab_size=9, embed_size=8, hidden_size=8)
>>> model = Seq2Seq(cfg)
>>> src, lengths = torch.randint(4, 12, (2, 5)), torch.tensor([5, 3])
>>> out = model.beam(src, lengths, beam_size=3, max_len=6)
>>> tuple(out.scores.shape)
(2, 3)
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..attention import lengths_to_mask, make_attention
from ..cells import LSTMState
from ..data.vocab import BOS, EOS, PAD  # the special ids of the Vocab both sides use
from ..decoding import BeamResult, beam_search, greedy_search, index_state, sample_search
from ..recurrent import Recurrent
from ..train.protocol import LossOutput
from .config import Seq2SeqConfig

__all__ = ["Seq2Seq", "Seq2SeqConfig"]


class Seq2Seq(nn.Module):
    """Attention encoder-decoder; see the module docstring for the equations."""

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.config = c = config
        H, D = c.hidden_size, 2 * c.hidden_size
        self.src_embed = nn.Embedding(c.src_vocab_size, c.embed_size, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(c.tgt_vocab_size, c.embed_size, padding_idx=PAD)
        self.encoder = Recurrent(c.cell, c.embed_size, H, num_layers=c.enc_layers,
                                 bidirectional=True, dropout=c.dropout if c.enc_layers > 1
                                 else 0.0, backend=c.backend)
        dec_in = c.embed_size + (D if c.input_feeding else 0)
        self.decoder = Recurrent(c.cell, dec_in, D, num_layers=c.dec_layers,
                                 dropout=c.dropout if c.dec_layers > 1 else 0.0,
                                 backend=c.backend)
        self.bridge_h = nn.Linear(D, D)
        self.bridge_c = nn.Linear(D, D) if c.cell == "lstm" else None
        self.attention = (make_attention(c.attention, D, D) if c.attention != "none" else None)
        self.combine = nn.Linear(2 * D if self.attention is not None else D, D, bias=False)
        self.drop = nn.Dropout(c.dropout)
        self.out = nn.Linear(D, c.tgt_vocab_size)

    # -- encoder ----------------------------------------------------------------------------
    def encode(self, src: Tensor, src_lengths: Tensor | None) -> dict[str, Any]:
        """Memory ``[B, S, 2H]``, its mask ``[B, S]`` and the decoder's initial state."""
        src, src_lengths = self._check_src(src, src_lengths)
        memory, final = self.encoder(self.drop(self.src_embed(src)), lengths=src_lengths.cpu())
        mask = lengths_to_mask(src_lengths, src.shape[1], device=src.device)
        h = final.h if isinstance(final, LSTMState) else final  # [L * 2, B, H]
        last = torch.cat([h[-2], h[-1]], -1)  # [B, 2H]: forward at S_b, backward at step 1
        L = self.config.dec_layers
        h0 = torch.tanh(self.bridge_h(last)).unsqueeze(0).expand(L, -1, -1).contiguous()
        if self.bridge_c is not None:
            c0 = torch.tanh(self.bridge_c(last)).unsqueeze(0).expand(L, -1, -1).contiguous()
            dec = LSTMState(h0, c0)
        else:
            dec = h0
        feed = memory.new_zeros(src.shape[0], memory.shape[-1]) if self.config.input_feeding \
            else None
        return {"memory": memory, "mask": mask, "dec": dec, "feed": feed}

    # -- decoder ----------------------------------------------------------------------------
    def _readout(self, h: Tensor, memory: Tensor, mask: Tensor) -> tuple[Tensor, Tensor | None]:
        """Decoder outputs ``h [B, T, D]`` -> attentional states ``[B, T, D]`` and weights."""
        if self.attention is None:
            return torch.tanh(self.combine(h)), None
        context, weights = self.attention(h, memory, mask=mask)  # [B, T, D], [B, T, S]
        return torch.tanh(self.combine(torch.cat([context, h], -1))), weights

    def decode_step(self, y_prev: Tensor, enc: dict[str, Any]) -> tuple[Tensor, dict, Tensor]:
        """One step: previous tokens ``[B]`` -> (logits ``[B, V]``, new state, weights)."""
        x = self.drop(self.tgt_embed(y_prev))  # [B, E]
        if enc["feed"] is not None:
            x = torch.cat([x, enc["feed"]], -1)
        h, dec = self.decoder.step(x, enc["dec"])  # [B, D]
        ht, w = self._readout(h[:, None], enc["memory"], enc["mask"])
        ht = ht[:, 0]
        state = dict(enc, dec=dec, feed=ht if enc["feed"] is not None else None)
        return self.out(self.drop(ht)), state, (w[:, 0] if w is not None else None)

    def forward(self, src: Tensor, src_lengths: Tensor | None, tgt_in: Tensor,
                teacher_forcing: float | None = None) -> tuple[Tensor, Tensor | None]:
        """Logits ``[B, T, V]`` for decoder inputs ``tgt_in [B, T]`` (``BOS y_1 .. y_{T-1}``)
        and the attention weights ``[B, T, S]`` (``None`` without attention)."""
        tf = self.config.teacher_forcing if teacher_forcing is None else teacher_forcing
        if tgt_in.dim() != 2 or tgt_in.shape[0] != src.shape[0] or tgt_in.dtype != torch.long:
            raise ValueError(f"expected target ids of shape [{src.shape[0]}, T] (long), got "
                             f"{tgt_in.dtype} of shape {list(tgt_in.shape)}")
        _check_ids(tgt_in, self.config.tgt_vocab_size, "target")
        enc = self.encode(src, src_lengths)
        if tf >= 1.0 and not self.config.input_feeding:  # all steps at once
            h, _ = self.decoder(self.drop(self.tgt_embed(tgt_in)), enc["dec"])
            ht, weights = self._readout(h, enc["memory"], enc["mask"])
            return self.out(self.drop(ht)), weights
        logits, weights, y_prev = [], [], tgt_in[:, 0]
        for t in range(tgt_in.shape[1]):
            if t > 0:
                y_prev = tgt_in[:, t]
                if tf < 1.0 and self.training:
                    own = logits[-1].argmax(-1)
                    use_own = torch.rand(y_prev.shape, device=y_prev.device) >= tf
                    y_prev = torch.where(use_own, own, y_prev)
            lg, enc, w = self.decode_step(y_prev, enc)
            logits.append(lg)
            weights.append(w)
        stacked = torch.stack(weights, 1) if weights[0] is not None else None
        return torch.stack(logits, 1), stacked

    def loss(self, batch, state=None) -> LossOutput:
        """Token cross-entropy over non-pad target tokens; metrics: ``token_accuracy``
        (teacher-forced). Sentence-level exact match comes from decoding, see
        :meth:`greedy` / :meth:`beam`."""
        if isinstance(batch, dict):
            src, src_lengths, tgt = batch["src"], batch.get("src_lengths"), batch["tgt"]
        elif isinstance(batch, (tuple, list)) and len(batch) == 3:
            src, src_lengths, tgt = batch
        else:
            raise ValueError("a batch must be (src, src_lengths, tgt) or a dict with keys src, "
                             f"src_lengths, tgt; got {type(batch).__name__}"
                             + (f" of length {len(batch)}" if isinstance(batch, (tuple, list))
                                else ""))
        if not isinstance(tgt, Tensor) or tgt.dim() != 2 or tgt.shape[1] < 2:
            raise ValueError(f"expected targets [B, T + 1] framed as BOS .. EOS (at least 2 "
                             f"steps), got shape {list(getattr(tgt, 'shape', []))}")
        _check_ids(tgt, self.config.tgt_vocab_size, "target")
        logits, _ = self(src, src_lengths, tgt[:, :-1])
        gold = tgt[:, 1:]
        valid = gold != PAD
        n = int(valid.sum())
        loss = F.cross_entropy(logits.flatten(0, 1), gold.flatten(), ignore_index=PAD)
        acc = ((logits.argmax(-1) == gold) & valid).sum().float() / max(n, 1)
        return LossOutput(loss, None, {"token_accuracy": acc.detach()}, n)

    # -- decoding ---------------------------------------------------------------------------
    def _step_fn(self):
        def step(tokens: Tensor, state: dict) -> tuple[Tensor, dict]:
            logits, state, _ = self.decode_step(tokens, state)
            return torch.log_softmax(logits.float(), -1), state
        return step

    @torch.no_grad()
    def greedy(self, src: Tensor, src_lengths: Tensor | None = None,
               max_len: int | None = None, no_repeat_ngram_size: int = 0) -> BeamResult:
        """Greedy decoding: ``tokens [B, L]`` (no BOS/EOS), summed log-prob ``scores [B]``."""
        return self._search(greedy_search, src, src_lengths, max_len,
                            no_repeat_ngram_size=no_repeat_ngram_size)

    @torch.no_grad()
    def sample(self, src: Tensor, src_lengths: Tensor | None = None,
               max_len: int | None = None, temperature: float = 1.0, top_k: int | None = None,
               top_p: float | None = None, seed: int | None = None,
               no_repeat_ngram_size: int = 0) -> BeamResult:
        """Sampled translations (:func:`~rnnkit.decoding.beam.sample_search`): ``tokens
        [B, L]``, summed model log-prob ``scores [B]``; ``temperature=0`` is :meth:`greedy`."""
        return self._search(sample_search, src, src_lengths, max_len, temperature=temperature,
                            top_k=top_k, top_p=top_p, seed=seed,
                            no_repeat_ngram_size=no_repeat_ngram_size)

    @torch.no_grad()
    def beam(self, src: Tensor, src_lengths: Tensor | None = None, beam_size: int = 5,
             max_len: int | None = None, length_penalty: float = 1.0,
             no_repeat_ngram_size: int = 0) -> BeamResult:
        """Batched beam search: ``tokens [B, K, L]``, length-normalised ``scores [B, K]``,
        best first. ``max_len`` defaults to ``2 S + 10``; see
        :func:`~rnnkit.decoding.beam.beam_search` for ``length_penalty``, EOS and
        ``no_repeat_ngram_size``."""
        return self._search(beam_search, src, src_lengths, max_len, beam_size=beam_size,
                            length_penalty=length_penalty,
                            # the recurrent state "dec" is [L, N, D]; the rest is batch-first
                            reorder_state=partial(index_state, dim={"dec": 1}),
                            no_repeat_ngram_size=no_repeat_ngram_size)

    def _search(self, search, src: Tensor, src_lengths: Tensor | None, max_len: int | None,
                **kw: Any) -> BeamResult:
        """Encode in eval mode and run ``greedy_search`` / ``beam_search`` from BOS."""
        was = self.training
        self.eval()
        try:
            enc = self.encode(src, src_lengths)
            max_len = max_len or 2 * src.shape[1] + 10
            return search(self._step_fn(), enc, src.shape[0], bos=BOS, eos=EOS,
                          max_len=max_len, pad=PAD, device=src.device, **kw)
        finally:
            self.train(was)

    @torch.no_grad()
    def attention_map(self, src: Tensor, tgt: Tensor) -> Tensor:
        """Teacher-forced attention weights ``[T, S]`` of one pair: ``src [S]`` ids and
        ``tgt [T + 1]`` framed as ``BOS .. EOS``; row ``t`` is where the decoder looked while
        writing ``tgt[t + 1]``."""
        if self.attention is None:
            raise ValueError("this model has no attention (attention='none'); train one with "
                             "attention to draw a heatmap")
        was = self.training
        self.eval()
        try:
            _, w = self(src[None], torch.tensor([src.shape[0]]), tgt[None, :-1],
                        teacher_forcing=1.0)
        finally:
            self.train(was)
        return w[0]

    def _check_src(self, src: Tensor, src_lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        if not isinstance(src, Tensor) or src.dim() != 2 or src.dtype != torch.long:
            raise ValueError(f"expected source ids of shape [B, S] (long), got "
                             f"{getattr(src, 'dtype', type(src).__name__)} of shape "
                             f"{list(getattr(src, 'shape', []))}")
        if src.shape[1] == 0:
            raise ValueError("the source is empty (S = 0); give at least one token")
        _check_ids(src, self.config.src_vocab_size, "source")
        if src_lengths is None:
            src_lengths = torch.full((src.shape[0],), src.shape[1], dtype=torch.long)
        return src, torch.as_tensor(src_lengths, device=src.device).long()


def _check_ids(ids: Tensor, vocab_size: int, what: str) -> None:
    """Token ids outside ``[0, vocab_size)`` would reach ``nn.Embedding`` as a bare
    ``IndexError``; name the side and the fix instead."""
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(f"{what} ids must lie in [0, {vocab_size}), got {int(ids.min())}.."
                         f"{int(ids.max())}; encode with the model's {what} vocabulary")
