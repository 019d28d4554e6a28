r"""Batched greedy decoding and beam search over any step function.

A decoder is described by one function, called with the previous tokens of ``N`` hypotheses::

    step_fn(tokens: LongTensor[N], state) -> (log_probs: Tensor[N, V], state)

``state`` is whatever the decoder carries (recurrent state, encoder memory, masks). Beam search
reorders it as hypotheses are selected, with ``reorder_state(state, index)`` (default:
:func:`index_state`, ``index_select`` along dim 0 of every tensor in a tensor / tuple / list /
dict; ``functools.partial(index_state, dim={"dec": 1})`` for a state whose ``"dec"`` entry is
batch-second, like a recurrent ``[L, N, D]`` state).

Beam search keeps the ``K`` best unfinished hypotheses of every sequence. At each step it scores
all ``K * V`` extensions by their summed log-probability, moves the extensions that end in EOS
and rank among the ``K`` best extensions (fairseq's and Hugging Face's rule, so that a beam of 1
is greedy search) to a pool of finished hypotheses, ranked by the length-normalised score

.. math::
    \mathrm{score}(y) = \frac{\sum_{t=1}^{|y|} \log p(y_t \mid y_{<t}, x)}{|y|^{\alpha}}

(``|y|`` counts the EOS token; ``alpha = length_penalty``: 0 = raw sum, 1 = mean log-prob),
and continues with the best ``K`` extensions that did not end. A sequence is done when its
``K``-th finished score beats every score its live hypotheses can still reach (log-probs are
<= 0, so a live raw score ``s`` can at best become ``s / max_len^alpha``); at ``max_len`` the
live hypotheses are finished without EOS. With ``K`` at least the number of possible outputs
this is exhaustive search, which the tests check.

* **EOS**: a hypothesis ends when it emits ``eos``; the EOS token is scored (and counted in
  ``|y|``) but not returned: ``tokens`` hold the words only, padded with ``pad``, ``lengths``
  count them, and ``finished`` says whether EOS (rather than ``max_len``) ended it.
* **scores**: :func:`beam_search` returns the length-normalised score above, best first;
  :func:`greedy_search` and :func:`sample_search` return the raw sum of the chosen tokens'
  log-probabilities (EOS included). A score of ``-inf`` marks an empty slot (fewer than ``K``
  hypotheses exist, e.g. when n-gram blocking bans every continuation).
* **n-gram blocking** (``no_repeat_ngram_size=n > 0``, as Hugging Face ``generate`` and
  OpenNMT): a token that would repeat an ``n``-gram already in the hypothesis (BOS excluded)
  gets probability 0.

:func:`sample_search` draws each token instead (temperature, top-k, top-p; see
:mod:`rnnkit.decoding.sampling`) over the same ``step_fn``, so any decoder that can beam
search can also sample.

>>> table = torch.tensor([[1.0, 0.0, 0.0, 0.0],    # after EOS (unused)
...                       [0.2, 0.4, 0.4, 0.0],    # after token 1
...                       [0.9, 0.05, 0.05, 0.0],  # after token 2
...                       [0.1, 0.5, 0.4, 0.0]])   # after BOS (token 3); EOS is token 0
>>> def step(tokens, state):  # a bigram model: next-token log-probs depend on the last token
...     return table[tokens].log(), state
>>> out = beam_search(step, None, batch_size=1, bos=3, eos=0, beam_size=2, max_len=5,
...                   length_penalty=0.0)
>>> out.tokens[0, 0, : out.lengths[0, 0]].tolist(), round(out.scores[0, 0].exp().item(), 3)
([2], 0.36)
>>> greedy_search(step, None, batch_size=1, bos=3, eos=0, max_len=5).tokens[0].tolist()
[1, 1, 1, 1, 1]
>>> greedy_search(step, None, batch_size=1, bos=3, eos=0, max_len=5,
...               no_repeat_ngram_size=1).tokens[0].tolist()  # 1, 2, then EOS (as pad)
[1, 2, 0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor

from ..checks import positive_ints
from .sampling import check_sampling, sample_logits

__all__ = ["BeamResult", "beam_search", "greedy_search", "index_state", "ngram_ban_mask",
           "sample_search"]

StepFn = Callable[[Tensor, Any], tuple[Tensor, Any]]


class BeamResult(NamedTuple):
    """Decoded hypotheses, best first.

    Attributes:
        tokens: ``[B, K, L]`` token ids without BOS and EOS, padded with ``pad``
            (``[B, L]`` from :func:`greedy_search`).
        scores: ``[B, K]`` length-normalised log-probabilities (``[B]`` summed log-probs from
            :func:`greedy_search`).
        lengths: ``[B, K]`` (``[B]``) number of tokens before EOS.
        finished: ``[B, K]`` (``[B]``) whether the hypothesis ended with EOS before
            ``max_len``.
    """

    tokens: Tensor
    scores: Tensor
    lengths: Tensor
    finished: Tensor


def index_state(state: Any, index: Tensor, dim: int | dict[str, Any] = 0) -> Any:
    """``index_select(dim, index)`` on every tensor of a (nested) tensor / tuple / list / dict.

    ``dim`` is the batch dimension: one int for every tensor, or, for a dict state, a dict
    ``{key: dim}`` (nested the same way as the state; keys not named use 0).

    >>> s = {"h": torch.arange(6).view(3, 2), "mem": torch.arange(2)}
    >>> out = index_state(s, torch.tensor([1, 1]), dim={"h": 1})
    >>> out["h"].tolist(), out["mem"].tolist()
    ([[1, 1], [3, 3], [5, 5]], [1, 1])
    """
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.index_select(dim if isinstance(dim, int) else 0, index)
    if isinstance(state, dict):
        dims = dim if isinstance(dim, dict) else {}
        return {k: index_state(v, index, dims.get(k, 0) if dims else dim)
                for k, v in state.items()}
    if isinstance(state, (tuple, list)):
        parts = [index_state(s, index, dim) for s in state]
        if hasattr(state, "_fields"):
            return type(state)(*parts)
        return type(state)(parts)
    return state  # non-tensor leaves (ints, flags) are shared by every hypothesis


def ngram_ban_mask(history: Tensor, n: int, vocab_size: int) -> Tensor:
    """Tokens that would repeat an ``n``-gram of ``history [N, t]``: a bool mask ``[N, V]``
    (all ``False`` while ``t < n - 1`` or ``n == 0``).

    >>> ngram_ban_mask(torch.tensor([[1, 2, 1]]), 2, 4).nonzero().tolist()  # 1 2 .. 1 -> 2
    [[0, 2]]
    """
    N, t = history.shape
    ban = torch.zeros(N, vocab_size, dtype=torch.bool, device=history.device)
    if n <= 0 or t < n:
        return ban
    windows = history.unfold(1, n, 1)  # [N, t - n + 1, n]
    prefix = history[:, t - n + 1:]  # [N, n - 1]: the last n - 1 tokens
    match = (windows[:, :, : n - 1] == prefix[:, None, :]).all(-1)  # [N, W]
    hits = torch.zeros(N, vocab_size, device=history.device)
    hits.scatter_add_(1, windows[:, :, n - 1], match.float())
    return hits > 0


def _check(batch_size: int, beam_size: int, max_len: int, bos: int, eos: int,
           no_repeat_ngram_size: int = 0) -> None:
    positive_ints(batch_size=batch_size, beam_size=beam_size, max_len=max_len)
    if (isinstance(no_repeat_ngram_size, bool) or not isinstance(no_repeat_ngram_size, int)
            or no_repeat_ngram_size < 0):
        raise ValueError(f"no_repeat_ngram_size must be an integer >= 0 (0 = no blocking), "
                         f"got {no_repeat_ngram_size!r}")
    if not (isinstance(bos, int) and isinstance(eos, int)):
        raise TypeError(f"bos and eos must be token ids (int), got {bos!r} and {eos!r}")


def _log_probs(step_fn: StepFn, tokens: Tensor, state: Any, n: int) -> tuple[Tensor, Any]:
    logp, state = step_fn(tokens, state)
    if not isinstance(logp, Tensor) or logp.dim() != 2 or logp.shape[0] != n:
        raise ValueError(f"step_fn must return log-probabilities of shape [{n}, V], "
                         f"got {getattr(logp, 'shape', type(logp).__name__)}")
    return logp, state


@torch.no_grad()
def greedy_search(step_fn: StepFn, state: Any, batch_size: int, *, bos: int, eos: int,
                  max_len: int = 50, pad: int | None = None, no_repeat_ngram_size: int = 0,
                  device: torch.device | str | None = None) -> BeamResult:
    """Take the most probable token at every step until EOS or ``max_len``.

    Returns a :class:`BeamResult` with ``tokens [B, L]``, summed log-prob ``scores [B]``,
    ``lengths [B]`` and ``finished [B]``. (:func:`beam_search` with ``beam_size=1`` and
    ``length_penalty=0`` returns the same hypotheses and scores.)
    """
    _check(batch_size, 1, max_len, bos, eos, no_repeat_ngram_size)
    return _sequential_search(step_fn, state, batch_size, lambda logp: logp.max(-1), bos, eos,
                              max_len, pad, no_repeat_ngram_size, device)


@torch.no_grad()
def sample_search(step_fn: StepFn, state: Any, batch_size: int, *, bos: int, eos: int,
                  max_len: int = 50, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None, seed: int | None = None,
                  generator: torch.Generator | None = None, pad: int | None = None,
                  no_repeat_ngram_size: int = 0,
                  device: torch.device | str | None = None) -> BeamResult:
    """Sample every token from ``step_fn``'s distribution (temperature, top-k, top-p as in
    :func:`~rnnkit.decoding.sampling.sample_logits`) until EOS or ``max_len``.

    Returns a :class:`BeamResult` like :func:`greedy_search`'s; ``scores [B]`` are the summed
    log-probabilities of the drawn tokens under the model (before temperature and cuts).
    ``temperature=0`` is :func:`greedy_search`. ``seed`` (or a ``generator``) makes the draws
    reproducible.

    >>> table = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 1.0, 0.0]]).log()
    >>> out = sample_search(lambda t, s: (table[t], s), None, 2, bos=2, eos=0, seed=0)
    >>> out.tokens.shape[0], bool((out.tokens[:, 0] == 1).all())
    (2, True)
    """
    _check(batch_size, 1, max_len, bos, eos, no_repeat_ngram_size)
    check_sampling(temperature, top_k, top_p)
    if generator is None and seed is not None:
        generator = torch.Generator(device=device or "cpu")
        generator.manual_seed(int(seed))

    def pick(logp: Tensor) -> tuple[Tensor, Tensor]:
        tok = sample_logits(logp, temperature, top_k, top_p, generator)
        return logp.gather(1, tok[:, None])[:, 0], tok

    return _sequential_search(step_fn, state, batch_size, pick, bos, eos, max_len, pad,
                              no_repeat_ngram_size, device)


def _sequential_search(step_fn: StepFn, state: Any, batch_size: int,
                       pick: Callable[[Tensor], tuple[Tensor, Tensor]], bos: int, eos: int,
                       max_len: int, pad: int | None, no_repeat_ngram_size: int,
                       device: torch.device | str | None) -> BeamResult:
    """One hypothesis per sequence; ``pick(log_probs [B, V]) -> (log_prob [B], token [B])``."""
    pad = eos if pad is None else pad
    last = torch.full((batch_size,), bos, dtype=torch.long, device=device)
    done = torch.zeros(batch_size, dtype=torch.bool, device=device)
    scores = torch.zeros(batch_size, device=device)
    lengths = torch.zeros(batch_size, dtype=torch.long, device=device)
    out: list[Tensor] = []
    history = torch.zeros(batch_size, 0, dtype=torch.long, device=device)
    for _ in range(max_len):
        logp, state = _log_probs(step_fn, last, state, batch_size)
        if no_repeat_ngram_size:
            logp = logp.masked_fill(ngram_ban_mask(history, no_repeat_ngram_size,
                                                   logp.shape[-1]), float("-inf"))
        lp, tok = pick(logp)
        scores = scores + torch.where(done, torch.zeros_like(lp), lp.to(scores.dtype))
        ended = tok == eos
        lengths = lengths + (~done & ~ended).long()
        out.append(torch.where(done | ended, torch.full_like(tok, pad), tok))
        if no_repeat_ngram_size:
            history = torch.cat([history, tok[:, None]], 1)
        done = done | ended
        last = tok
        if bool(done.all()):
            break
    return BeamResult(torch.stack(out, 1), scores, lengths, done)


@torch.no_grad()
def beam_search(step_fn: StepFn, state: Any, batch_size: int, *, bos: int, eos: int,
                beam_size: int = 4, max_len: int = 50, length_penalty: float = 1.0,
                pad: int | None = None, no_repeat_ngram_size: int = 0,
                reorder_state: Callable[[Any, Tensor], Any] = index_state,
                device: torch.device | str | None = None) -> BeamResult:
    """Batched beam search; see the module docstring for the algorithm.

    Args:
        step_fn: ``(tokens [N], state) -> (log_probs [N, V], state)``.
        state: the decoder state of the ``batch_size`` sequences (one row each); it is
            expanded to ``batch_size * beam_size`` rows with ``reorder_state``.
        bos, eos: start and end token ids; ``pad`` fills unused positions (default ``eos``).
        beam_size: hypotheses ``K`` kept per sequence (and returned).
        max_len: most tokens per hypothesis, EOS included.
        length_penalty: ``alpha`` of the length normalisation ``score / |y|^alpha`` (``|y|``
            counts EOS); 0 ranks by the raw log-prob sum (favours short outputs), 1 by the
            mean log-prob per token.
        no_repeat_ngram_size: ``n > 0`` bans any token that would repeat an ``n``-gram of
            its hypothesis; 0 disables blocking.
        reorder_state: ``(state, index [N]) -> state`` selecting rows of the state.

    Returns:
        :class:`BeamResult` with ``tokens [B, K, L]`` (no BOS/EOS, ``pad`` after the end),
        ``scores [B, K]`` (length-normalised log-probs, ``-inf`` for an empty slot),
        ``lengths [B, K]`` (tokens before EOS), ``finished [B, K]`` (ended by EOS, not by
        ``max_len``), best first.
    """
    _check(batch_size, beam_size, max_len, bos, eos, no_repeat_ngram_size)
    if not length_penalty >= 0:
        raise ValueError(f"length_penalty must be >= 0 (0 = raw log-prob sum), got "
                         f"{length_penalty!r}")
    pad = eos if pad is None else pad
    B, K = batch_size, beam_size
    N = B * K
    state = reorder_state(state, torch.arange(B, device=device).repeat_interleave(K))
    base = (torch.arange(B, device=device) * K)[:, None]  # [B, 1] row offset of each sequence
    scores = torch.zeros(B, K, device=device)
    scores[:, 1:] = float("-inf")  # all beams start identical: keep one
    seqs = torch.zeros(B, K, 0, dtype=torch.long, device=device)  # live hypotheses
    last = torch.full((N,), bos, dtype=torch.long, device=device)
    fin_tokens = torch.full((B, K, max_len), pad, dtype=torch.long, device=device)
    fin_scores = torch.full((B, K), float("-inf"), device=device)
    fin_len = torch.zeros(B, K, dtype=torch.long, device=device)
    fin_eos = torch.zeros(B, K, dtype=torch.bool, device=device)
    for t in range(max_len):
        logp, state = _log_probs(step_fn, last, state, N)
        V = logp.shape[-1]
        if no_repeat_ngram_size:
            ban = ngram_ban_mask(seqs.reshape(N, t), no_repeat_ngram_size, V)
            logp = logp.masked_fill(ban, float("-inf"))
        cand = (scores[:, :, None] + logp.view(B, K, V).to(scores.dtype)).view(B, K * V)
        n_cand = min(2 * K, K * V)
        top_s, top_i = cand.topk(n_cand, dim=-1)  # [B, 2K]
        beam_i, tok = top_i // V, top_i % V
        is_eos = tok == eos
        last_step = t == max_len - 1
        rank = torch.arange(n_cand, device=top_s.device).expand(B, n_cand)
        # an EOS extension ends a hypothesis only from among the K best (fairseq's and Hugging
        # Face's rule: a beam of 1 is greedy search); every EOS extension leaves the live set
        ending = torch.ones_like(is_eos) if last_step else is_eos & (rank < K)
        # -- finished: merge the ending candidates into the pool, keep the K best ----------
        norm = top_s / (float(t + 1) ** length_penalty)  # t tokens + EOS, or t + 1 at the end
        hist = seqs.gather(1, beam_i[:, :, None].expand(B, n_cand, t))  # [B, 2K, t]
        new_tok = torch.where(is_eos, torch.full_like(tok, pad), tok)
        new_seq = torch.cat([hist, new_tok[:, :, None]], 2)
        new_seq = torch.nn.functional.pad(new_seq, (0, max_len - t - 1), value=pad)
        pool_s = torch.cat([fin_scores, torch.where(ending, norm, float("-inf"))], 1)
        pool_t = torch.cat([fin_tokens, new_seq], 1)
        pool_l = torch.cat([fin_len, torch.full_like(tok, t) + (~is_eos).long()], 1)
        pool_e = torch.cat([fin_eos, is_eos], 1)
        fin_scores, keep = pool_s.topk(K, dim=-1)
        fin_tokens = pool_t.gather(1, keep[:, :, None].expand(B, K, max_len))
        fin_len, fin_eos = pool_l.gather(1, keep), pool_e.gather(1, keep)
        if last_step:
            break
        # -- live: the K best candidates that are not EOS ----------------------------------
        sel = (rank + is_eos.long() * n_cand).topk(K, dim=-1, largest=False).indices  # [B, K]
        scores = top_s.gather(1, sel)
        src_beam = beam_i.gather(1, sel)
        seqs = torch.cat([seqs.gather(1, src_beam[:, :, None].expand(B, K, t)),
                          tok.gather(1, sel)[:, :, None]], 2)
        last = tok.gather(1, sel).reshape(N)
        state = reorder_state(state, (base + src_beam).reshape(N))
        # -- stop when no live hypothesis can still beat the K-th finished one --------------
        best_live = scores.max(-1).values / (float(max_len) ** length_penalty)
        if bool((fin_scores[:, -1] >= best_live).all()):
            break
    L = max(int(fin_len.max()), 1)
    return BeamResult(fin_tokens[:, :, :L], fin_scores, fin_len, fin_eos)
