"""rnnkit.music.metrics against references computed another way: the frame NLL against a
float64 loop, accuracy against hand counts, voice-leading faults in hand-made progressions,
statistics of hand-made pieces; and the detectors on real chorales (voice leading, keys)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from rnnkit.music.metrics import (
    SATB_RANGES,
    STATISTICS,
    FrameScores,
    estimate_key,
    frame_scores,
    in_key_ratio,
    jensen_shannon,
    musical_statistics,
    pitch_class_histogram,
    statistics_distance,
    voice_accuracy,
    voice_leading,
)
from rnnkit.music.score import Note, Piece


def brute_nll(prob, target) -> float:
    """Nats per frame by the definition, one term at a time in Python floats."""
    total = 0.0
    for p_row, v_row in zip(prob.tolist(), target.tolist()):
        for p, v in zip(p_row, v_row):
            total -= math.log(p) if v else math.log(1.0 - p)
    return total / len(prob)


def random_rolls(T, P):
    prob = torch.rand(T, P, dtype=torch.float64).clamp(1e-6, 1 - 1e-6).numpy()
    target = (torch.rand(T, P) < 0.3).numpy().astype(np.float32)
    return prob, target


# -- frame scores ------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (40, 46)])
def test_frame_nll_matches_float64_loop(shape):
    prob, target = random_rolls(*shape)
    assert frame_scores(prob, target)["nll"] == pytest.approx(brute_nll(prob, target),
                                                              rel=1e-12)
    logits = np.log(prob) - np.log1p(-prob)
    assert frame_scores(logits, target, logits=True)["nll"] == pytest.approx(
        brute_nll(prob, target), rel=1e-9)


def test_accuracy_counts_by_hand():
    prob = np.array([[0.9, 0.1, 0.6], [0.5, 0.7, 0.2]])
    target = np.array([[1, 0, 0], [1, 1, 0]])
    # predicted (p > 0.5): [1 0 1], [0 1 0]; TP (0,0) (1,1); FP (0,2); FN (1,0): 0.5 is not > 0.5
    s = frame_scores(prob, target)
    assert (s["tp"], s["fp"], s["fn"], s["frames"]) == (2, 1, 1, 2)
    assert s["accuracy"] == 0.5
    assert frame_scores(prob, target, logits=True)["accuracy"] == 3 / 6  # as logits all > 0
    silent = frame_scores(np.full((3, 2), 0.1), np.zeros((3, 2)))
    assert silent["accuracy"] == 1.0 and (silent["tp"], silent["fp"], silent["fn"]) == (0, 0, 0)
    assert frame_scores([[0.0]], [[1]])["nll"] == math.inf  # certain and wrong


def test_corpus_scores_sum_over_pieces_then_divide():
    pieces = [random_rolls(T, 6) for T in (3, 11, 1)]
    acc = FrameScores()
    for prob, target in pieces:
        acc.add(prob, target)
    whole = frame_scores(np.concatenate([p for p, _ in pieces]),
                         np.concatenate([t for _, t in pieces]))
    got = acc.result()
    assert got["frames"] == 15 and got["nll"] == pytest.approx(whole["nll"], rel=1e-12)
    assert (got["tp"], got["fp"], got["fn"], got["accuracy"]) == \
        (whole["tp"], whole["fp"], whole["fn"], whole["accuracy"])
    mean_of_pieces = np.mean([frame_scores(p, t)["nll"] for p, t in pieces])
    assert got["nll"] != pytest.approx(mean_of_pieces)  # long pieces weigh more
    with pytest.raises(ValueError, match="no frames"):
        FrameScores().result()


def test_frame_scores_match_the_frame_model():
    from rnnkit.music.frames import FrameModel, FrameModelConfig

    model = FrameModel(FrameModelConfig(n_pitches=5, hidden_size=8, embed_size=8, num_layers=1))
    frames = (torch.rand(9, 5) < 0.4).float()
    out = model.evaluate(frames)
    with torch.no_grad(), model.evaluating():
        logits, _ = model(frames[None, :-1])
    mine = frame_scores(logits[0].double().numpy(), frames[1:].numpy(), logits=True)
    assert mine["frames"] == out["frames"] == 8
    assert mine["nll"] == pytest.approx(out["nll_per_frame"], rel=1e-5)
    assert (mine["tp"], mine["fp"], mine["fn"]) == (out["tp"], out["fp"], out["fn"])


def test_frame_scores_refuse_bad_input():
    with pytest.raises(ValueError, match="one shape"):
        frame_scores(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="only 0 and 1"):
        frame_scores(np.zeros((1, 2)), [[0.5, 1]])
    with pytest.raises(ValueError, match="logits=True"):
        frame_scores([[1.5]], [[1]])


# -- keys and statistics -----------------------------------------------------------------------
C_SCALE = [60, 62, 64, 65, 67, 69, 71, 72]


def melody(pitches, durations=None, key=None, start=0.0):
    durations = durations or [1.0] * len(pitches)
    notes, t = [], start
    for p, d in zip(pitches, durations):
        if p is not None:
            notes.append(Note(p, t, d))
        t += d
    return Piece(notes, name="m", key=key)


def test_pitch_class_histogram_of_a_known_piece():
    piece = melody([60, 64, 67, 72, 61], [2, 1, 1, 3.5, 0.5])  # C 5.5, E 1, G 1, C# 0.5 of 8
    h = pitch_class_histogram(piece)
    expected = np.zeros(12)
    expected[[0, 1, 4, 7]] = [5.5 / 8, 0.5 / 8, 1 / 8, 1 / 8]
    np.testing.assert_allclose(h, expected, rtol=1e-15)


def test_in_key_ratio():
    scale = melody(C_SCALE, key="C major")
    assert in_key_ratio(scale) == 1.0
    assert in_key_ratio(melody(C_SCALE)) == 1.0  # no key: estimated (C major or A minor)
    assert in_key_ratio(scale, "F# major") == pytest.approx(2 / 8)  # only F and B: E#, B
    chromatic = melody(list(range(60, 72)), key="C major")
    assert in_key_ratio(chromatic) == pytest.approx(7 / 12)
    assert in_key_ratio(chromatic, "A minor") == pytest.approx(9 / 12)  # + F#, G#


def test_estimate_key_follows_transposition():
    piece = melody([60, 64, 67, 72, 67, 65, 62, 59, 60], [2, 1, 1, 2, 1, 1, 1, 1, 4])
    assert estimate_key(piece) == "C major"
    names = [estimate_key(piece.transpose(s)) for s in range(-5, 7)]
    assert names == ["G major", "Ab major", "A major", "Bb major", "B major", "C major",
                     "Db major", "D major", "Eb major", "E major", "F major", "F# major"]
    minor = melody([57, 60, 64, 69, 68, 69, 64, 57], [2, 1, 1, 2, 1, 1, 1, 3])
    assert estimate_key(minor) == "A minor"


def test_musical_statistics_of_hand_made_pieces():
    # bar: a C major triad for 2 beats, a rest beat, E alone for a beat; played twice
    notes = []
    for bar in (0, 4):
        notes += [Note(p, bar, 2) for p in (48, 52, 55)] + [Note(64, bar + 3, 1)]
    piece = Piece(notes, name="twice", key="C major")
    stats = musical_statistics([piece])
    mean = stats["mean"]
    assert stats["pieces"] == 1 and set(mean) == {"pitch_class_histogram", *STATISTICS}
    assert mean["pitch_range"] == 16.0
    assert mean["polyphony"] == pytest.approx((3 + 3 + 1) * 2 / 6)  # frames with sound only
    assert mean["empty_beats"] == pytest.approx(2 / 8)
    assert mean["note_density"] == pytest.approx(8 / 8)
    assert mean["in_key"] == 1.0
    # 8 frames ABCDABCD: 5 windows of 4, ABCD twice -> 2 of 5 windows repeat
    assert mean["repetition"] == pytest.approx(2 / 5)
    np.testing.assert_allclose(mean["pitch_class_histogram"][[0, 4, 7]], [4 / 14, 6 / 14, 4 / 14])

    two = musical_statistics([piece, melody(C_SCALE, key="C major")])
    np.testing.assert_allclose(two["per_piece"]["pitch_range"], [16, 12])
    assert two["mean"]["pitch_range"] == 14 and two["std"]["pitch_range"] == 2
    assert two["per_piece"]["pitch_class_histogram"].shape == (2, 12)
    assert two["mean"]["pitch_class_histogram"].sum() == pytest.approx(1.0)
    assert two["per_piece"]["repetition"][1] == 0.0
    with pytest.raises(ValueError, match="no notes"):
        musical_statistics([Piece([], name="silence")])


def test_statistics_distance_in_reference_units():
    ref = [melody(C_SCALE, key="C major"), melody(C_SCALE[:5], key="C major"),
           melody([60, 64, 67, 72], key="C major")]
    assert statistics_distance(ref, ref)["overall"] == 0.0
    wide = [melody([48, 72, 84], key="C major")]
    d = statistics_distance(wide, ref)
    r, s = musical_statistics(wide)["mean"], musical_statistics(ref)
    assert d["pitch_range"] == pytest.approx(abs(36 - s["mean"]["pitch_range"])
                                             / s["std"]["pitch_range"])
    assert d["raw"]["note_density"] == pytest.approx(abs(r["note_density"] - 1.0))
    js = jensen_shannon(r["pitch_class_histogram"], s["mean"]["pitch_class_histogram"])
    spread = np.mean([jensen_shannon(h, s["mean"]["pitch_class_histogram"])
                      for h in s["per_piece"]["pitch_class_histogram"]])
    assert d["pitch_class_histogram"] == pytest.approx(js / spread)
    assert d["overall"] == pytest.approx(np.mean([d[k] for k in ("pitch_class_histogram",
                                                                   *STATISTICS)]))
    # no spread in note_density (all 1 a beat) nor in_key (all 1.0): raw differences, named
    assert {"note_density", "in_key", "empty_beats"} <= set(d["unscaled"])
    closer = [melody([60, 62, 64, 67, 72], key="C major")]
    assert statistics_distance(closer, ref)["overall"] < d["overall"]


def test_jensen_shannon():
    assert jensen_shannon([1, 0, 0], [0, 0, 1]) == 1.0
    p, q = np.array([0.2, 0.3, 0.5]), np.array([0.4, 0.4, 0.2])
    m = (p + q) / 2
    kl = lambda a: sum(x * math.log2(x / y) for x, y in zip(a, m))  # noqa: E731
    assert jensen_shannon(p, q) == pytest.approx(0.5 * kl(p) + 0.5 * kl(q), rel=1e-12)


# -- voice leading -----------------------------------------------------------------------------
def satb(*chords, duration=1.0):
    """A 4-voice piece of block chords ``(S, A, T, B)``, one per beat; None = a rest."""
    notes = [Note(p, i * duration, duration, voice=v)
             for i, chord in enumerate(chords) for v, p in enumerate(chord) if p is not None]
    return Piece(notes, name="satb")


#: C major (T-B a fifth) to a chord with tenor and bass both up a tone: one parallel fifth
ONE_FIFTH = [(72, 64, 55, 48), (71, 65, 57, 50)]


def test_exactly_one_parallel_fifth():
    vl = voice_leading(satb(*ONE_FIFTH))
    assert (vl["parallel_fifths"], vl["parallel_octaves"], vl["voice_crossings"]) == (1, 0, 0)
    assert vl["where"]["parallel_fifths"] == [(1.0, 2, 3)]
    assert vl["transitions"] == 1 and vl["verticalities"] == 2 and vl["notes"] == 8
    phrase_end = satb(*ONE_FIFTH)
    phrase_end.fermatas = [0.0]  # the first chord ends a phrase
    assert voice_leading(phrase_end)["parallel_fifths"] == 1
    assert voice_leading(phrase_end, across_fermatas=False)["parallel_fifths"] == 0


def test_no_parallel_fifth():
    for second in [(71, 65, 53, 50),   # tenor down, bass up: T-B a third
                   (71, 65, 57, 38),   # T up, B down: a fifth to a 12th by contrary motion
                   (72, 64, 55, 48)]:  # nothing moves (a repeated chord)
        vl = voice_leading(satb(ONE_FIFTH[0], second))
        assert vl["parallel_fifths"] == vl["parallel_octaves"] == 0, second
    # oblique: the bass holds while the tenor moves; and a rest in between breaks the pair
    held = Piece([Note(72, 0, 1, 0), Note(64, 0, 1, 1), Note(55, 0, 1, 2), Note(48, 0, 2, 3),
                  Note(71, 1, 1, 0), Note(65, 1, 1, 1), Note(57, 1, 1, 2)])
    assert voice_leading(held)["parallel_fifths"] == 0
    assert voice_leading(satb(ONE_FIFTH[0], (72, 64, None, 48), ONE_FIFTH[1])
                         )["parallel_fifths"] == 0


def test_parallel_octaves_and_unisons():
    # S-B octaves (two octaves apart) both up a tone; A and T move contrary to avoid others
    vl = voice_leading(satb((72, 67, 64, 48), (74, 65, 62, 50)))
    assert (vl["parallel_fifths"], vl["parallel_octaves"]) == (0, 1)
    assert vl["where"]["parallel_octaves"] == [(1.0, 0, 3)]
    unison = voice_leading(satb((72, 64, 64, 48), (72, 65, 65, 41)))  # A = T, both up
    assert unison["where"]["parallel_octaves"] == [(1.0, 1, 2)]


def test_voice_crossing_and_ranges():
    vl = voice_leading(satb((67, 69, 60, 48), (67, 64, 60, 48)))  # alto above soprano once
    assert vl["voice_crossings"] == 1 and vl["where"]["voice_crossings"] == [(0.0, 0, 1)]
    assert voice_leading(satb(*ONE_FIFTH))["voice_crossings"] == 0
    low = voice_leading(satb((84, 64, 55, 36), (72, 52, 55, 48)))
    # S C6 > A5, B C2 < E2, A E3 < F3: three notes out of SATB_RANGES
    assert low["out_of_range"] == 3 and low["out_of_range_by_voice"] == [1, 1, 0, 1]
    assert SATB_RANGES == ((60, 81), (53, 74), (48, 69), (40, 62))
    with pytest.raises(ValueError, match="5 voices"):
        voice_leading(Piece([Note(60, 0, 1, voice=4)]))


def test_voice_accuracy():
    ref = satb((72, 67, 64, 48), (74, 65, 62, 50), (76, 67, 60, 48), (77, 69, 60, 53),
               duration=0.5)
    gen = satb((72, 67, 64, 48), (74, 65, 62, 50), (76, 64, 60, 48), (77, 65, 60, 53),
               duration=0.5)  # the alto wrong in the second half
    out = voice_accuracy(ref, gen)
    assert out["frames"] == 8 and out["per_voice"] == [1.0, 0.5, 1.0, 1.0]
    assert out["mean"] == pytest.approx(3.5 / 4)
    assert voice_accuracy(ref, ref, grid=1.0)["per_voice"] == [1.0] * 4
    with pytest.raises(ValueError, match="differ in length"):
        voice_accuracy(ref, satb((72, 67, 64, 48)))


# -- real chorales -----------------------------------------------------------------------------
EIGHT = ["bach/bwv269", "bach/bwv347", "bach/bwv153.1", "bach/bwv86.6", "bach/bwv267",
         "bach/bwv281", "bach/bwv17.7", "bach/bwv40.8"]


def test_real_chorales():
    pytest.importorskip("music21", reason="rnnkit[music] (music21) not installed")
    from rnnkit.music import corpus

    t = time.perf_counter()
    pieces = [corpus.chorale(name) for name in EIGHT]  # parsed, no cache
    counts = {k: 0 for k in ("parallel_fifths", "parallel_octaves", "voice_crossings",
                             "out_of_range", "transitions")}
    for p in pieces:
        vl = voice_leading(p)
        for k in counts:
            counts[k] += vl[k]
        if p.name == "bach/bwv153.1":  # tenor F#3-B3 over bass B2-E3, both up a fourth
            assert (24.0, 2, 3) in vl["where"]["parallel_fifths"]
    print(f"voice leading of {len(pieces)} chorales: {counts}")
    # Bach avoids them: well under 1 in 100 chord changes
    assert counts["parallel_fifths"] + counts["parallel_octaves"] < counts["transitions"] / 100
    assert counts["out_of_range"] < sum(len(p.notes) for p in pieces) / 100
    stats = musical_statistics(pieces)
    assert min(stats["per_piece"]["in_key"]) > 0.85
    assert 3.5 < stats["mean"]["polyphony"] <= 4.0 and stats["mean"]["empty_beats"] < 0.05
    agree = sum(estimate_key(p) == p.key for p in pieces)
    print(f"keys estimated as labelled: {agree} of {len(pieces)}; {time.perf_counter() - t:.1f} s")
    assert agree >= len(pieces) // 2
    assert statistics_distance(pieces[:4], pieces[4:])["overall"] < 1.0
