"""A picture of one recognition: the log-mel spectrogram, the CTC emissions (probability of each
character per output frame; blank drawn apart) and the decoded characters at the times CTC
emitted them, on one time axis (seconds)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["plot_emissions"]


def plot_emissions(rec: Any, samples: Tensor, transcript: Any, path: str) -> None:
    """Write the PNG for ``samples`` (mono, model rate) and its ``transcript`` to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..saving import atomic_write_figure

    feats = rec.featurize(samples)  # [T, F]
    lp = transcript.log_probs if transcript.log_probs is not None else rec.log_probs(samples)
    probs = lp.exp()  # [T', V]
    hop = rec.config.hop_ms / 1000
    dur = len(feats) * hop
    fig, (a0, a1, a2) = plt.subplots(3, 1, figsize=(max(8.0, min(30.0, dur * 3)), 7),
                                     sharex=True, gridspec_kw={"height_ratios": [3, 3, 1]})
    a0.imshow(feats.T.numpy(), origin="lower", aspect="auto", extent=(0, dur, 0, feats.shape[1]),
              cmap="magma")
    a0.set_ylabel("mel band")
    a0.set_title(f"“{transcript.text}”")
    fs = rec.frame_seconds
    a1.imshow(probs[:, 1:].T.numpy(), origin="lower", aspect="auto", cmap="Blues",
              extent=(0, len(probs) * fs, 0.5, probs.shape[1] - 0.5), vmin=0, vmax=1)
    a1.plot((torch.arange(len(probs)) + 0.5).numpy() * fs,
            probs[:, 0].numpy() * (probs.shape[1] - 2) + 0.5, color="grey", lw=0.8,
            label="P(blank), scaled")
    labels = [("␣" if c == " " else c) for c in rec.alphabet[1:]]
    a1.set_yticks(range(1, len(labels) + 1), labels, fontsize=6)
    a1.set_ylabel("CTC emission")
    a1.legend(loc="upper right", fontsize=7)
    for ch, t in transcript.chars:
        a2.text(t, 0.5, "␣" if ch == " " else ch, ha="center", va="center", fontsize=9)
    a2.set_yticks([])
    a2.set_xlabel("time (s)")
    a2.set_xlim(0, dur)
    fig.tight_layout()
    atomic_write_figure(fig, path)
