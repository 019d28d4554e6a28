"""The harmonizer's voice-leading penalty: the per-frame fault count against the voice-leading
metric on random four-part token sequences, and the penalised beam against an exhaustive search
over every two-frame harmony."""

from __future__ import annotations

import itertools

import pytest
import torch

from rnnkit.music.encoding import VoiceFrames
from rnnkit.music.harmonizer import (
    HOLD,
    REST,
    Harmonizer,
    HarmonizerConfig,
    frame_faults,
    sounding_after,
)
from rnnkit.music.metrics import voice_leading

P = 20  # pitch indices 0..19 (MIDI 48..67): room for fifths and octaves


def random_voices(T: int, gen: torch.Generator) -> torch.Tensor:
    """``[T, 4]`` tokens, mostly consonant chords moving in blocks (so parallels are common),
    with holds and re-strikes; a rest only in a frame where some voice is struck (a voice
    falling silent between verticalities is where frames and verticalities part)."""
    out = torch.empty(T, 4, dtype=torch.long)
    for t in range(T):
        root = int(torch.randint(0, 8, (1,), generator=gen))
        chord = [root + 12, root + 7, root + int(torch.randint(0, 8, (1,), generator=gen)),
                 root]
        row = [2 + min(p, P - 1) for p in chord]
        for v in range(4):
            r = float(torch.rand(1, generator=gen))
            if t and r < 0.35:
                row[v] = HOLD
            elif t and r < 0.4:
                row[v] = REST
        if all(x < 2 for x in row):
            row[0] = 2 + root + 12
        out[t] = torch.tensor(row)
    return out


def faults_by_frames(tokens: torch.Tensor) -> int:
    pitch = torch.full((4,), -1)
    total = 0
    for row in tokens:
        now = sounding_after(pitch, row)
        total += int(frame_faults(pitch, now, row >= 2))
        pitch = now
    return total


@pytest.mark.parametrize("seed", range(6))
def test_frame_faults_equal_the_voice_leading_metric(seed):
    gen = torch.Generator().manual_seed(seed)
    tokens = random_voices(60, gen)
    piece = VoiceFrames(grid=0.5, voices=4, low=48, high=48 + P - 1).decode(tokens.numpy())
    vl = voice_leading(piece)
    # the metric counts a held crossing at every verticality; the decoder charges it when made
    struck = {(t, v) for t, row in enumerate(tokens.tolist()) for v, x in enumerate(row)
              if x >= 2}
    made = sum(1 for time, v, w in vl["where"]["voice_crossings"]
               if (round(time / 0.5), v) in struck or (round(time / 0.5), w) in struck)
    expected = vl["parallel_fifths"] + vl["parallel_octaves"] + made
    assert vl["parallel_fifths"] + vl["parallel_octaves"] > 3  # the check has teeth
    assert faults_by_frames(tokens) == expected


def test_sounding_after_and_a_hand_made_progression():
    before = torch.tensor([-1, -1, -1, -1])
    c_major = torch.tensor([2 + 16, 2 + 12, 2 + 7, 2 + 0])  # E, C, G, C (indices)
    now = sounding_after(before, c_major)
    assert now.tolist() == [16, 12, 7, 0]
    assert int(frame_faults(before, now, c_major >= 2)) == 0  # nothing sounded before
    # every voice up a tone: tenor-bass fifth (7 -> 9, 0 -> 2), alto-bass octave: 2 faults
    d_minor = torch.tensor([2 + 17, 2 + 14, 2 + 9, 2 + 2])
    after = sounding_after(now, d_minor)
    assert int(frame_faults(now, after, d_minor >= 2)) == 2
    # contrary motion in the bass: none
    contrary = torch.tensor([2 + 17, 2 + 14, 2 + 9, 2 + 0 - 0])
    contrary[3] = HOLD
    assert int(frame_faults(now, sounding_after(now, contrary), contrary >= 2)) == 0
    # the tenor struck above the alto: one crossing
    crossed = torch.tensor([HOLD, HOLD, 2 + 14, HOLD])
    assert int(frame_faults(now, sounding_after(now, crossed), crossed >= 2)) == 1


def test_penalised_wide_beam_equals_exhaustive_search():
    torch.manual_seed(3)
    cfg = HarmonizerConfig(n_pitches=8, embed_size=4, hidden_size=8, enc_layers=1,
                           dec_layers=1, dropout=0.0)
    model = Harmonizer(cfg).eval()
    V, penalty = cfg.vocab_size, 2.5
    soprano = torch.tensor([2 + 3, 2 + 4])  # a step up: an alto in unison would move with it
    with torch.no_grad():
        memory = model.encode(soprano[None])[0]
        choices = torch.tensor(list(itertools.product(range(V), repeat=3)))  # [V^3, 3]
        start = torch.full((1, 3), model.start)
        l1, s1 = model.decode_step(start, memory[:1], None)
        lp1 = torch.log_softmax(l1.double(), -1)[0]  # [3, V]
        first = lp1[[0, 1, 2], choices].sum(-1)  # [V^3]
        l2, _ = model.decode_step(choices, memory[1].expand(len(choices), -1),
                                  s1.expand(-1, len(choices), -1).contiguous())
        lp2 = torch.log_softmax(l2.double(), -1)  # [V^3, 3, V]
        second = lp2[:, [0, 1, 2], choices].sum(-1)  # [V^3 (first), V^3 (second)]
    tok1 = torch.cat([soprano[0].expand(len(choices), 1), choices], 1)  # [V^3, 4]
    tok2 = torch.cat([soprano[1].expand(len(choices), 1), choices], 1)
    none = torch.full((4,), -1)
    p1 = sounding_after(none, tok1)
    f1 = frame_faults(none, p1, tok1 >= 2)
    p2 = sounding_after(p1[:, None], tok2[None])  # [V^3, V^3, 4]
    f2 = frame_faults(p1[:, None], p2, (tok2 >= 2)[None].expand_as(p2))
    total = first[:, None] + second - penalty * (f1[:, None] + f2)
    assert int((f1[:, None] + f2).max()) > 0 and int((f1[:, None] + f2).min()) == 0
    best = int(total.argmax())
    expect = torch.stack([choices[best // len(choices)], choices[best % len(choices)]])
    got = model.harmonize(soprano, beam_size=V ** 3, voice_leading_penalty=penalty)
    assert torch.equal(got[:, 0], soprano)
    assert torch.equal(got[:, 1:], expect)
    # without the penalty the same search is the unpenalised optimum
    plain = int((first[:, None] + second).argmax())
    assert plain != best  # the penalty changes the answer: the check has teeth
    got0 = model.harmonize(soprano, beam_size=V ** 3)
    assert torch.equal(got0[:, 1:], torch.stack([choices[plain // len(choices)],
                                                 choices[plain % len(choices)]]))


def test_penalised_sampling_is_seeded_keeps_the_soprano_and_refuses_bad_penalties():
    torch.manual_seed(0)
    model = Harmonizer(HarmonizerConfig(n_pitches=12, hidden_size=8, embed_size=4,
                                        dropout=0.0)).eval()
    soprano = torch.randint(2, 14, (24,))
    a = model.harmonize(soprano, temperature=1.0, seed=4, voice_leading_penalty=3.0)
    assert torch.equal(a, model.harmonize(soprano, temperature=1.0, seed=4,
                                          voice_leading_penalty=3.0))
    assert torch.equal(a[:, 0], soprano)
    draws = {tuple(model.harmonize(soprano, temperature=1.0, seed=s, top_k=3,
                                   voice_leading_penalty=3.0).flatten().tolist())
             for s in range(4)}
    assert len(draws) > 1
    for bad in (-1.0, float("nan"), float("inf"), "3"):
        with pytest.raises(ValueError, match="voice_leading_penalty"):
            model.harmonize(soprano, voice_leading_penalty=bad)


def test_the_cli_default_penalty_is_the_library_default():
    import inspect

    from rnnkit.commands.music import VOICE_LEADING_PENALTY
    from rnnkit.music.training import harmonize_melody

    default = inspect.signature(harmonize_melody).parameters["voice_leading_penalty"].default
    assert default == VOICE_LEADING_PENALTY > 0
