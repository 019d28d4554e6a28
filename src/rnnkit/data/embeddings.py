r"""Word vectors from co-occurrence counts (PPMI + truncated SVD), to initialise embeddings.

Without downloadable pretrained vectors, a model can still start from distributional word
vectors computed on its own training text (Levy, Goldberg & Dagan, 2015): count word pairs
within a window, weight them by positive pointwise mutual information with context
distribution smoothing,

.. math::
    \mathrm{PPMI}(w, c) = \max\Big(0,\ \log \frac{P(w, c)}{P(w)\, P_\alpha(c)}\Big), \qquad
    P_\alpha(c) = \frac{\#(c)^\alpha}{\sum_{c'} \#(c')^\alpha},\ \alpha = 0.75

and keep the top ``dim`` singular directions: :math:`W = U_d \Sigma_d^{1/2}`, rescaled to a
given standard deviation. Special tokens (ids below ``skip``) and unseen words get zeros.

>>> seqs = [[4, 5, 6], [4, 5, 7], [8, 9, 10], [8, 9, 11]] * 5
>>> W = ppmi_svd_vectors(seqs, vocab_size=12, dim=2, window=2)
>>> tuple(W.shape), float(W[:4].abs().sum())
((12, 2), 0.0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["ppmi_svd_vectors"]


def ppmi_svd_vectors(seqs: Sequence[Sequence[int]], vocab_size: int, dim: int,
                     window: int = 4, alpha: float = 0.75, std: float = 1.0,
                     skip: int = 4, seed: int = 0) -> Tensor:
    """``[vocab_size, dim]`` word vectors from token-id sequences; see the module docstring.

    Needs scipy. ``dim`` must be smaller than the number of distinct words seen.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import svds

    flat = np.concatenate([np.asarray(q, dtype=np.int64) for q in seqs if len(q)] or
                          [np.zeros(0, dtype=np.int64)])
    sent = np.concatenate([np.full(len(q), k) for k, q in enumerate(seqs) if len(q)] or
                          [np.zeros(0, dtype=np.int64)])
    rows_l, cols_l = [], []
    for d in range(1, window + 1):  # pairs d apart inside one sequence, both directions
        same = sent[d:] == sent[:-d]
        a, b = flat[:-d][same], flat[d:][same]
        rows_l += [a, b]
        cols_l += [b, a]
    rows = np.concatenate(rows_l) if rows_l else np.zeros(0, dtype=np.int64)
    cols = np.concatenate(cols_l) if cols_l else np.zeros(0, dtype=np.int64)
    if len(rows) == 0:
        raise ValueError("no co-occurrences: give sequences with at least two tokens")
    data = np.ones(len(rows), dtype=np.float64)
    counts = coo_matrix((data, (rows, cols)), shape=(vocab_size, vocab_size)).tocsr()
    counts.sum_duplicates()
    total = counts.sum()
    pw = np.asarray(counts.sum(1)).ravel() / total
    cc = np.asarray(counts.sum(0)).ravel() ** alpha
    pc = cc / cc.sum()
    coo = counts.tocoo()
    with np.errstate(divide="ignore"):
        pmi = np.log(coo.data / total) - np.log(pw[coo.row]) - np.log(pc[coo.col])
    keep = (pmi > 0) & (coo.row >= skip) & (coo.col >= skip)
    ppmi = coo_matrix((pmi[keep], (coo.row[keep], coo.col[keep])),
                      shape=(vocab_size, vocab_size)).tocsr()
    seen = int((np.asarray(ppmi.sum(1)).ravel() > 0).sum())
    if dim >= seen:
        raise ValueError(f"dim={dim} must be smaller than the {seen} words with co-occurrences; "
                         f"lower dim or give more text")
    rng = np.random.default_rng(seed)
    u, s, _ = svds(ppmi, k=dim, v0=rng.standard_normal(vocab_size))
    vectors = u * np.sqrt(s)[None, :]
    vectors[:skip] = 0.0
    nz = np.abs(vectors).sum(1) > 0
    if nz.any():
        vectors[nz] *= std / vectors[nz].std()
    return torch.from_numpy(vectors.astype(np.float32))
