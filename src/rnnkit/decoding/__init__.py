"""One decoding toolkit for every autoregressive model, over one step function::

    step_fn(tokens: LongTensor[N], state) -> (scores: Tensor[N, V], state)

* :mod:`~rnnkit.decoding.sampling`: greedy, temperature, top-k and top-p sampling of one step's
  logits, and :func:`generate_tokens`, a stream of sampled tokens;
* :mod:`~rnnkit.decoding.beam`: batched searches over ``step_fn``: :func:`greedy_search`,
  :func:`sample_search` (temperature / top-k / top-p) and :func:`beam_search` (length
  penalty, EOS, scores), all with optional n-gram blocking (``no_repeat_ngram_size``), and
  :func:`index_state`, the one helper that reorders a decoder state (per-entry batch dim);
* :mod:`~rnnkit.decoding.ctc`: CTC decoding of per-frame label log-probs (speech, OCR):
  :func:`ctc_greedy` (best path), :func:`ctc_prefix_beam_search` (prefix beam search with an
  optional n-gram LM, word bonus and lexicon, n-best, per-token frames) and
  :func:`ctc_beam_search_batch`, returning :class:`CTCHypothesis` lists.

>>> from rnnkit.decoding import beam_search, ctc_prefix_beam_search, sample_logits
"""

from .beam import (
    BeamResult,
    beam_search,
    greedy_search,
    index_state,
    ngram_ban_mask,
    sample_search,
)
from .ctc import (
    CTCGreedyStream,
    CTCHypothesis,
    ctc_beam_search_batch,
    ctc_greedy,
    ctc_prefix_beam_search,
)
from .sampling import (
    check_sampling,
    generate_tokens,
    greedy,
    sample_logits,
    top_k_filter,
    top_p_filter,
)

__all__ = [
    "BeamResult",
    "CTCGreedyStream",
    "CTCHypothesis",
    "beam_search",
    "check_sampling",
    "ctc_beam_search_batch",
    "ctc_greedy",
    "ctc_prefix_beam_search",
    "generate_tokens",
    "greedy",
    "greedy_search",
    "index_state",
    "ngram_ban_mask",
    "sample_logits",
    "sample_search",
    "top_k_filter",
    "top_p_filter",
]
