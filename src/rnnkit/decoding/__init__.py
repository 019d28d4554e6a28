"""One decoding toolkit for every autoregressive model, over one step function::

    step_fn(tokens: LongTensor[N], state) -> (scores: Tensor[N, V], state)

* :mod:`~rnnkit.decoding.sampling`: greedy, temperature, top-k and top-p sampling of one step's
  logits, and :func:`generate_tokens`, a stream of sampled tokens;
* :mod:`~rnnkit.decoding.beam`: batched greedy search and beam search (length penalty, EOS,
  scores) with :func:`index_state`, the one helper that reorders a decoder state.

>>> from rnnkit.decoding import beam_search, sample_logits
"""

from .beam import BeamResult, beam_search, greedy_search, index_state
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
    "beam_search",
    "check_sampling",
    "generate_tokens",
    "greedy",
    "greedy_search",
    "index_state",
    "sample_logits",
    "top_k_filter",
    "top_p_filter",
]
