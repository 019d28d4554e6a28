r"""Four-part harmonisation: alto, tenor and bass for a given soprano, frame by frame.

A chorale is ``T`` frames of four voice tokens :math:`(s_t, a_t, \tau_t, b_t)` (soprano, alto,
tenor, bass), each over one vocabulary of :math:`V = P + 2` ids: ``REST = 0``, ``HOLD = 1``
(the previous note continues) and ``2 + k``, the onset of pitch ``low + k``. The soprano is
given; the model reads all of it (and the optional per-frame features :math:`f_t`, e.g. beat
position and fermata) with a bidirectional encoder, and writes the three lower voices left to
right, each frame conditioned on the encoding of that frame and on the voices it wrote for the
frame before:

.. math::
    m_{1..T} &= \mathrm{BiRNN}\bigl(\mathrm{drop}([E s_t ; f_t])_{t=1..T}\bigr)
        \in \mathbb{R}^{T \times 2H} \\
    (h_t, q_t) &= \mathrm{RNN}\bigl(\mathrm{drop}([m_t ; E a_{t-1} ; E \tau_{t-1} ;
        E b_{t-1}]),\ q_{t-1}\bigr) \qquad (a_0 = \tau_0 = b_0 = \mathrm{START}) \\
    p(a_t \mid \cdot) &= \mathrm{softmax}(W_a\, \mathrm{drop}(h_t) + c_a)
    \quad\text{(likewise } \tau_t, b_t \text{ with their own heads)} \\
    p(A, \mathcal{T}, B \mid S) &= \prod_{t=1}^{T} p(a_t \mid \cdot)\,
        p(\tau_t \mid \cdot)\, p(b_t \mid \cdot)

(:math:`E` one embedding table of :math:`V + 1` rows shared by the voices, the extra row the
START symbol; the three voices of a frame are independent given :math:`h_t`). Training is
teacher-forced, on the mean cross-entropy over the valid frames and the three voices:
:math:`\mathcal{L} = -\frac{1}{3 \sum_b L_b} \sum_b \sum_{t \le L_b} \sum_{v \in \{a, \tau,
b\}} \log p(v_t \mid \cdot)`.

Decoding (:meth:`Harmonizer.harmonize`): greedy or sampled (each voice drawn from its head by
:func:`~rnnkit.decoding.sample_logits`), or a beam search over the joint choice of the three
voices per frame. Because the joint log-probability of a frame is the sum of the three heads'
(independent given :math:`h_t`), the ``K`` best joint choices of a hypothesis always lie in the
product of each head's ``K`` best tokens, so searching that product of ``K^3`` choices is exact:
the beam loses nothing to the restriction.

**Voice leading** (``voice_leading_penalty`` :math:`\lambda > 0`): the three heads know
nothing of the intervals they form together, and the greedy or beam harmonies move in
parallel blocks (23.6 parallel fifths per 100 chord changes on held-out sopranos, against
Bach's 0.07). Decoding can subtract :math:`\lambda` nats per fault that a frame's choice
commits, counted as :func:`~rnnkit.music.metrics.voice_leading` counts them (see
:func:`frame_faults`): parallel fifths, parallel octaves or unisons between any two of the
four voices, and a lower voice struck above the one over it. Each head then offers its
``max(K, 4)`` best tokens and the joint choice is made over their product with the penalty:
greedy (``beam_size=1``), beam, or a draw from the joint distribution reweighted by
:math:`e^{-\lambda\,\mathrm{faults}}` (sampling; the heads' ``top_k``/``top_p`` cut their
candidates first). With a penalty the product is a restriction (a fault-free token ranked
below the ``max(K, 4)`` best of its head is not seen); without one the search is as above.

Shapes: a batch is ``{"voices": [B, T, 4], "features": [B, T, F] (only when F > 0),
"lengths": [B]}``; logits ``[B, T, 3, V]`` (alto, tenor, bass).

>>> model = Harmonizer(HarmonizerConfig(n_pitches=5, hidden_size=8, embed_size=4))
>>> voices = torch.randint(0, 7, (2, 6, 4))
>>> out = model.loss({"voices": voices, "lengths": torch.tensor([6, 4])})
>>> out.weight  # 3 voices x (6 + 4) frames
30
>>> chorale = model.harmonize(voices[0, :, 0])
>>> chorale.shape, bool((chorale[:, 0] == voices[0, :, 0]).all())
(torch.Size([6, 4]), True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..cells import State, available_cells
from ..checks import choice, non_negative_ints, positive_ints, probabilities
from ..decoding import check_sampling, index_state, sample_logits, top_k_filter, top_p_filter
from ..recurrent import Recurrent
from ..train.protocol import LossOutput
from .models import MusicModel, check_features, check_ids, check_lengths, shape_of

__all__ = ["HOLD", "Harmonizer", "HarmonizerConfig", "REST", "VOICES", "frame_faults",
           "sounding_after"]

#: the two special ids of every voice (pitch onsets are 2 + k)
REST, HOLD = 0, 1
#: the voice columns of ``voices [B, T, 4]``
VOICES = ("soprano", "alto", "tenor", "bass")


def sounding_after(before: Tensor, tokens: Tensor) -> Tensor:
    """The pitch index each voice sounds after a frame: ``before [..., 4]`` (``-1``: silent)
    and the frame's tokens ``[..., 4]`` (``REST`` -> ``-1``, ``HOLD`` -> unchanged, onset
    ``2 + k`` -> ``k``), broadcast -> ``[..., 4]`` (int64).

    >>> sounding_after(torch.tensor([5, 3, -1, 0]), torch.tensor([HOLD, 9, REST, HOLD])).tolist()
    [5, 7, -1, 0]
    """
    before, tokens = torch.broadcast_tensors(before, tokens)
    now = torch.where(tokens == HOLD, before, tokens - 2)
    return torch.where(tokens == REST, torch.full_like(now, -1), now)


def frame_faults(before: Tensor, now: Tensor, struck: Tensor) -> Tensor:
    """Voice-leading faults a frame commits, per candidate: ``before`` and ``now`` ``[..., 4]``
    pitch indices (``-1`` silent; soprano, alto, tenor, bass), ``struck [..., 4]`` (bool, the
    voice has an onset in this frame) -> ``[...]`` int64, the number of

    * pairs of voices ``i < j`` that sound before and after, move in the same direction and
      stand a perfect fifth apart (``|p_i - p_j| mod 12 == 7``) or an octave or unison apart
      (``mod 12 == 0``) both before and after: parallel fifths and octaves, as
      :func:`~rnnkit.music.metrics.voice_leading` counts them between verticalities (a frame
      in which nothing moves changes nothing, so frames and verticalities agree);
    * adjacent voices ``v, v + 1`` where one of the two is struck and the lower one sounds
      strictly above the upper one: a crossing, counted once when it is made.

    >>> before = torch.tensor([12, 7, 0, -1])  # C, G below it, C an octave down; bass silent
    >>> now = torch.tensor([14, 9, 2, -1])  # all up a tone: parallel octave S-T, fifth A-T
    >>> int(frame_faults(before, now, torch.tensor([True, True, True, False])))
    2
    """
    faults = torch.zeros(now.shape[:-1], dtype=torch.long, device=now.device)
    before = before.expand_as(now)
    for i in range(4):
        for j in range(i + 1, 4):
            sound = (before[..., i] >= 0) & (before[..., j] >= 0) & (now[..., i] >= 0) \
                & (now[..., j] >= 0)
            di = torch.sign(now[..., i] - before[..., i])
            same = (di != 0) & (di == torch.sign(now[..., j] - before[..., j]))
            a = (before[..., i] - before[..., j]).abs() % 12
            b = (now[..., i] - now[..., j]).abs() % 12
            faults += (sound & same & (a == b) & ((a == 7) | (a == 0))).long()
    for v in range(3):
        crossed = (now[..., v] >= 0) & (now[..., v + 1] > now[..., v])
        faults += (crossed & (struck[..., v] | struck[..., v + 1])).long()
    return faults


@dataclass
class HarmonizerConfig:
    """Architecture of a :class:`Harmonizer`.

    Attributes:
        n_pitches: pitches ``P``; each voice's vocabulary is ``V = P + 2`` (REST, HOLD, onsets).
        n_features: per-frame features ``F`` read by the encoder (0: none).
        cell: any registered cell (``"gru"``, ``"lstm"``, ...).
        embed_size: width ``E`` of the voice-token embedding.
        hidden_size: state size ``H`` of the encoder (per direction) and of the decoder.
        enc_layers: stacked layers of the bidirectional encoder.
        dec_layers: stacked layers of the decoder.
        dropout: on the embeddings, between layers and before the heads.
        backend: :class:`~rnnkit.Recurrent` backend (``"auto"`` picks the fastest).
    """

    n_pitches: int
    n_features: int = 0
    cell: str = "gru"
    embed_size: int = 32
    hidden_size: int = 128
    enc_layers: int = 2
    dec_layers: int = 2
    dropout: float = 0.2
    backend: str = "auto"

    def __post_init__(self) -> None:
        positive_ints(n_pitches=self.n_pitches, embed_size=self.embed_size,
                      hidden_size=self.hidden_size, enc_layers=self.enc_layers,
                      dec_layers=self.dec_layers)
        non_negative_ints(n_features=self.n_features)
        probabilities(dropout=self.dropout)
        choice("cell", self.cell, available_cells())

    @property
    def vocab_size(self) -> int:
        """Ids per voice: ``REST``, ``HOLD`` and one onset per pitch."""
        return self.n_pitches + 2


class Harmonizer(MusicModel):
    """Soprano -> alto, tenor, bass; see the module docstring for the equations.

    Args:
        config: the architecture (:class:`HarmonizerConfig`).
    """

    KIND, VERSION, TASK, CONFIG = ("rnnkit.music_harmonizer", 1, "music_harmonizer",
                                   HarmonizerConfig)
    #: what the loss weight counts (the trainer's compute record)
    item_name = "voice tokens"

    def __init__(self, config: HarmonizerConfig) -> None:
        super().__init__()
        self.config = c = config
        V, E, H = c.vocab_size, c.embed_size, c.hidden_size
        self.start = V  # the embedding row of "no previous frame"
        self.embedding = nn.Embedding(V + 1, E)
        self.encoder = Recurrent(c.cell, E + c.n_features, H, num_layers=c.enc_layers,
                                 bidirectional=True, dropout=c.dropout, backend=c.backend)
        self.decoder = Recurrent(c.cell, self.encoder.output_size + 3 * E, H,
                                 num_layers=c.dec_layers, dropout=c.dropout, backend=c.backend)
        self.drop = nn.Dropout(c.dropout)
        self.heads = nn.Linear(self.decoder.output_size, 3 * V)  # alto | tenor | bass rows

    # -- the model ---------------------------------------------------------------------------
    def encode(self, soprano: Tensor, features: Tensor | None = None,
               lengths: Tensor | None = None) -> Tensor:
        """The memory ``m [B, T, 2H]`` of ``soprano [B, T]`` (and features ``[B, T, F]``);
        zeros past each length."""
        x = self.drop(self.embedding(soprano))
        if features is not None:
            x = torch.cat([x, features], -1)
        memory, _ = self.encoder(x, lengths=lengths)
        return memory

    def decode_step(self, previous: Tensor, memory_t: Tensor, state: State | None
                    ) -> tuple[Tensor, State]:
        """One frame: the previous frame's ``(alto, tenor, bass)`` ids ``[N, 3]`` (``start``
        before the first frame) and the memory at this frame ``[N, 2H]`` -> ``(logits [N, 3, V],
        state)``. The teacher-forced :meth:`forward` equals this step run frame by frame."""
        x = torch.cat([memory_t, self.embedding(previous).flatten(1)], -1)
        h, state = self.decoder.step(self.drop(x), state)
        return self._logits(h), state

    def _logits(self, h: Tensor) -> Tensor:
        return self.heads(self.drop(h)).unflatten(-1, (3, self.config.vocab_size))

    def forward(self, voices: Tensor, features: Tensor | None = None,
                lengths: Tensor | None = None) -> Tensor:
        """Teacher-forced logits ``[B, T, 3, V]`` of the alto, tenor and bass of
        ``voices [B, T, 4]`` (column 0, the soprano, is the condition)."""
        voices = self._check_voices(voices, "voices")
        B, T, _ = voices.shape
        features = check_features(features, self.config.n_features, B, T, self.dtype,
                                  self.device)
        if lengths is not None:
            lengths = check_lengths(lengths, B, T)
        memory = self.encode(voices[..., 0], features, lengths)
        start = voices.new_full((B, 1, 3), self.start)
        previous = torch.cat([start, voices[:, :-1, 1:]], 1)  # [B, T, 3]
        x = torch.cat([memory, self.embedding(previous).flatten(2)], -1)
        h, _ = self.decoder(self.drop(x), lengths=lengths)
        return self._logits(h)

    def loss(self, batch: Any, state: Any = None) -> LossOutput:
        """Mean cross-entropy (nats) over the valid frames and the three lower voices of a
        batch ``{"voices": [B, T, 4], "features" (optional), "lengths": [B]}``; metrics
        ``alto_accuracy``, ``tenor_accuracy``, ``bass_accuracy`` (the share of valid frames
        whose most likely token, rest, hold or onset, is the reference one); weight
        ``3 x frames``. A piece is read whole (the encoder looks ahead), so no state is
        carried: ``state`` must be ``None``."""
        if state is not None:
            raise ValueError("the Harmonizer reads whole pieces (its encoder is "
                             "bidirectional) and carries no state between batches; train it "
                             "on whole pieces, not a BPTT stream")
        if not isinstance(batch, dict) or "voices" not in batch:
            raise TypeError(f"a Harmonizer batch is a dict {{'voices': [B, T, 4], 'features': "
                            f"[B, T, F] (optional), 'lengths': [B]}}, got "
                            f"{sorted(batch) if isinstance(batch, dict) else type(batch).__name__}")
        voices = self._check_voices(batch["voices"], "batch['voices']")
        B, T, _ = voices.shape
        lengths = check_lengths(batch.get("lengths"), B, T)
        logits = self(voices, batch.get("features"), lengths)  # [B, T, 3, V]
        target = voices[..., 1:]  # [B, T, 3]
        mask = (torch.arange(T)[None, :] < lengths[:, None]).to(logits.device)  # [B, T]
        nll = F.cross_entropy(logits.flatten(0, 2), target.flatten(), reduction="none")
        frames = int(mask.sum())
        loss = (nll.view(B, T, 3) * mask[..., None]).sum() / (3 * frames)
        with torch.no_grad():
            hit = (logits.argmax(-1) == target) & mask[..., None]  # [B, T, 3]
            acc = hit.sum((0, 1)).double() / frames
        metrics = {f"{v}_accuracy": float(a) for v, a in zip(VOICES[1:], acc)}
        return LossOutput(loss, None, metrics, 3 * frames)

    def log_likelihood(self, voices: Tensor, features: Tensor | None = None,
                       lengths: Tensor | None = None) -> Tensor:
        """``log p(alto, tenor, bass | soprano)`` in nats of each chorale of ``voices
        [B, T, 4]`` (or ``[T, 4]``) over its valid frames: ``[B]`` (a 0-d tensor for one
        chorale), float64, in eval mode."""
        one = isinstance(voices, Tensor) and voices.dim() == 2
        if one:
            voices = voices[None]
            features = features[None] if isinstance(features, Tensor) else features
        with self.evaluating():
            logits = self(voices, features, lengths)
            B, T = logits.shape[:2]
            n = check_lengths(lengths, B, T).to(logits.device)
            logp = F.log_softmax(logits.double(), -1)
            picked = logp.gather(-1, voices[..., 1:, None].to(logits.device))[..., 0]
            mask = torch.arange(T, device=logits.device)[None, :] < n[:, None]
            total = (picked.sum(-1) * mask).sum(-1)
        return total[0] if one else total

    # -- decoding ----------------------------------------------------------------------------
    def harmonize(self, soprano: Tensor, features: Tensor | None = None,
                  temperature: float = 0.0, top_k: int | None = None,
                  top_p: float | None = None, seed: int | None = None,
                  beam_size: int = 1, voice_leading_penalty: float = 0.0) -> Tensor:
        r"""Alto, tenor and bass for ``soprano [T]``: the chorale ``[T, 4]`` (int64), whose
        column 0 is ``soprano`` exactly.

        With ``beam_size=1`` each frame's three voices are drawn from their heads by
        :func:`~rnnkit.decoding.sample_logits` (``temperature=0``, the default: greedy;
        ``top_k``/``top_p`` cuts; ``seed`` for reproducible draws) and fed back. With
        ``beam_size=K > 1`` a beam search keeps the ``K`` most probable partial chorales
        (by :math:`\log p`), extending each by the product of every head's ``K`` best tokens
        (exact, see the module docstring), and returns the best; it is deterministic, so it
        takes ``temperature=0`` and no ``top_k``/``top_p``. ``features``: ``[T, F]``.
        ``voice_leading_penalty``: nats subtracted per parallel fifth, parallel octave or
        crossing a frame's choice commits (see the module docstring; ``0``: none).
        """
        check_sampling(temperature, top_k, top_p)
        positive_ints(beam_size=beam_size)
        if not isinstance(voice_leading_penalty, (int, float)) or \
                not 0 <= voice_leading_penalty < float("inf"):
            raise ValueError(f"voice_leading_penalty must be a finite number of nats >= 0 "
                             f"(0: none), got {voice_leading_penalty!r}")
        if beam_size > 1 and (temperature != 0 or top_k is not None or top_p is not None):
            raise ValueError("beam search is deterministic: use it with temperature=0 and no "
                             "top_k/top_p, or sample with beam_size=1")
        if not isinstance(soprano, Tensor) or soprano.dim() != 1:
            raise ValueError(f"soprano must be one voice of token ids [T], got "
                             f"{shape_of(soprano)}; harmonise a batch one chorale at a time")
        if soprano.numel() == 0:
            raise ValueError("soprano is empty (T = 0); give at least one frame")
        check_ids(soprano, self.config.vocab_size, "soprano",
                  f"voice ids are REST=0, HOLD=1, 2+k for the model's {self.config.n_pitches} "
                  f"pitches")
        T = soprano.numel()
        sop = soprano.to(device=self.device, dtype=torch.long)
        if isinstance(features, Tensor) and features.dim() == 2:
            features = features[None]
        features = check_features(features, self.config.n_features, 1, T, self.dtype,
                                  self.device)
        with self.evaluating():
            memory = self.encode(sop[None], features)[0]  # [T, 2H]
            if voice_leading_penalty > 0:
                lower = self._search(memory, sop, beam_size, float(voice_leading_penalty),
                                     temperature, top_k, top_p, seed)
            elif beam_size == 1:
                lower = self._sample(memory, temperature, top_k, top_p, seed)
            else:
                lower = self._beam(memory, beam_size)
        chorale = torch.cat([sop[:, None], lower], 1).to(soprano.device)
        chorale[:, 0] = soprano  # the given soprano, untouched
        return chorale

    def _sample(self, memory: Tensor, temperature: float, top_k: int | None,
                top_p: float | None, seed: int | None) -> Tensor:
        """Greedy or sampled decoding over ``memory [T, 2H]`` -> ``[T, 3]``."""
        generator = None
        if seed is not None:
            generator = torch.Generator(device=memory.device)
            generator.manual_seed(int(seed))
        previous = torch.full((1, 3), self.start, dtype=torch.long, device=memory.device)
        state, out = None, []
        for t in range(memory.shape[0]):
            logits, state = self.decode_step(previous, memory[t: t + 1], state)  # [1, 3, V]
            previous = sample_logits(logits[0], temperature, top_k, top_p, generator)[None]
            out.append(previous)
        return torch.cat(out, 0)

    def _beam(self, memory: Tensor, K: int) -> Tensor:
        """Beam search over ``memory [T, 2H]`` -> the best ``[T, 3]``."""
        T, V, device = memory.shape[0], self.config.vocab_size, memory.device
        k = min(K, V)  # per-head candidates: enough, the joint K best lie in their product
        scores = torch.full((K,), float("-inf"), device=device, dtype=torch.float64)
        scores[0] = 0.0  # all hypotheses start equal: keep one
        previous = torch.full((K, 3), self.start, dtype=torch.long, device=device)
        history = torch.zeros(K, 0, 3, dtype=torch.long, device=device)
        state = None
        for t in range(T):
            logits, state = self.decode_step(previous, memory[t].expand(K, -1), state)
            top_lp, top_id = F.log_softmax(logits.double(), -1).topk(k, -1)  # [K, 3, k]
            joint = (scores[:, None, None, None] + top_lp[:, 0, :, None, None]
                     + top_lp[:, 1, None, :, None] + top_lp[:, 2, None, None, :])  # [K,k,k,k]
            scores, flat = joint.flatten().topk(K)
            beam, rest = flat // k ** 3, flat % k ** 3
            picks = torch.stack([rest // k ** 2, (rest // k) % k, rest % k], 1)  # [K, 3]
            previous = top_id[beam].gather(2, picks[..., None])[..., 0]  # [K, 3]
            history = torch.cat([history[beam], previous[:, None]], 1)
            state = index_state(state, beam, dim=1)  # the decoder state is [L, N, H]
        return history[0]  # topk sorts: the best first

    def _search(self, memory: Tensor, soprano: Tensor, K: int, penalty: float,
                temperature: float, top_k: int | None, top_p: float | None,
                seed: int | None) -> Tensor:
        """Decoding with the voice-leading penalty over ``memory [T, 2H]`` and the soprano
        ``[T]`` -> ``[T, 3]``: per frame, each hypothesis extends by the product of every
        head's ``max(K, 4)`` best tokens, scored by their summed log-probabilities minus
        ``penalty`` per :func:`frame_faults`; the ``K`` best are kept (``K = 1``: greedy), or,
        with ``temperature > 0`` (``K = 1``), one is drawn from the softmax of those scores
        over the heads' tempered, ``top_k``/``top_p``-cut distributions."""
        T, V, device = memory.shape[0], self.config.vocab_size, memory.device
        k = min(max(K, 4), V)
        generator = None
        if seed is not None:
            generator = torch.Generator(device=device)
            generator.manual_seed(int(seed))
        scores = torch.full((K,), float("-inf"), device=device, dtype=torch.float64)
        scores[0] = 0.0
        previous = torch.full((K, 3), self.start, dtype=torch.long, device=device)
        pitch = torch.full((K, 4), -1, dtype=torch.long, device=device)  # sounding, per voice
        history = torch.zeros(K, 0, 3, dtype=torch.long, device=device)
        state = None
        grid = torch.cartesian_prod(*[torch.arange(k, device=device)] * 3)  # [k^3, 3]
        for t in range(T):
            logits, state = self.decode_step(previous, memory[t].expand(K, -1), state)
            logits = logits.double()
            if temperature > 0:
                logits = logits / temperature
                flat = logits.flatten(0, 1)
                if top_k is not None:
                    flat = top_k_filter(flat, top_k)
                if top_p is not None:
                    flat = top_p_filter(flat, top_p)
                logits = flat.view_as(logits)
            top_lp, top_id = F.log_softmax(logits, -1).topk(k, -1)  # [K, 3, k]
            ids = top_id[:, [0, 1, 2], grid]  # [K, k^3, 3]: (alto, tenor, bass) per choice
            lp = top_lp[:, [0, 1, 2], grid].sum(-1)  # [K, k^3]
            tokens = torch.cat([soprano[t].expand(K, grid.shape[0], 1), ids], -1)
            now = sounding_after(pitch[:, None], tokens)  # [K, k^3, 4]
            faults = frame_faults(pitch[:, None], now, tokens >= 2)
            joint = scores[:, None] + lp - penalty * faults  # [K, k^3]
            if temperature > 0:
                flat = joint.flatten()
                pick = torch.multinomial(F.softmax(flat, 0).float(), 1,
                                         generator=generator)
                scores = flat[pick]
            else:
                scores, pick = joint.flatten().topk(K)
            beam, choice = pick // grid.shape[0], pick % grid.shape[0]
            previous = ids[beam, choice]  # [K, 3]
            pitch = now[beam, choice]
            history = torch.cat([history[beam], previous[:, None]], 1)
            state = index_state(state, beam, dim=1)
        return history[0]

    # -- checks ------------------------------------------------------------------------------
    def _check_voices(self, voices: Any, what: str) -> Tensor:
        if not isinstance(voices, Tensor) or voices.dim() != 3 or voices.shape[-1] != 4:
            raise ValueError(f"expected {what} of shape [B, T, 4] (soprano, alto, tenor, bass "
                             f"token ids per frame), got {shape_of(voices)}")
        if voices.shape[0] == 0 or voices.shape[1] == 0:
            raise ValueError(f"{what} is empty (shape {list(voices.shape)}); give at least one "
                             f"chorale of at least one frame")
        check_ids(voices, self.config.vocab_size, what,
                  f"voice ids are REST=0, HOLD=1, 2+k for the model's {self.config.n_pitches} "
                  f"pitches (V = {self.config.vocab_size})")
        return voices.to(device=self.device, dtype=torch.long)
