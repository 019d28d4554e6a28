"""The music models (rnnkit.music.frames / events / harmonizer) against references computed
independently: float64 formulas by hand, brute-force counts, torch's cross-entropy, step loops
over the full forward pass, exhaustive search; plus save/load, bad inputs and small learning
tasks."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

import rnnkit
from rnnkit.music.events import BOS, EOS, PAD, EventModel, EventModelConfig
from rnnkit.music.frames import FrameModel, FrameModelConfig
from rnnkit.music.harmonizer import Harmonizer, HarmonizerConfig
from rnnkit.train import LossOutput, TrainConfig, Trainer, load_checkpoint


# -- fixtures ----------------------------------------------------------------------------------
def frame_model(cell: str = "gru", n_features: int = 0, P: int = 6) -> FrameModel:
    cfg = FrameModelConfig(n_pitches=P, n_features=n_features, cell=cell, embed_size=8,
                           hidden_size=12, num_layers=2, dropout=0.0)
    return FrameModel(cfg).eval()


def event_model(cell: str = "lstm", V: int = 11) -> EventModel:
    cfg = EventModelConfig(vocab_size=V, cell=cell, embed_size=8, hidden_size=12,
                           num_layers=2, dropout=0.0)
    return EventModel(cfg).eval()


def harmonizer(cell: str = "gru", n_features: int = 0, P: int = 5) -> Harmonizer:
    cfg = HarmonizerConfig(n_pitches=P, n_features=n_features, cell=cell, embed_size=4,
                           hidden_size=8, enc_layers=2, dec_layers=2, dropout=0.0)
    return Harmonizer(cfg).eval()


def random_frames(B: int, T: int, P: int, density: float = 0.3) -> torch.Tensor:
    return (torch.rand(B, T, P) < density).float()


def sigmoid64(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def train(model, batches, steps: int, lr: float) -> float:
    """Plain Adam over ``batches`` (cycled); returns the last loss."""
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss = None
    for step in range(steps):
        out = model.loss(batches(step))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        loss = out.loss.item()
    model.eval()
    return loss


# -- FrameModel --------------------------------------------------------------------------------
@pytest.mark.parametrize("n_features", [0, 2])
def test_frame_nll_equals_float64_reference(n_features):
    model = frame_model(n_features=n_features)
    B, T1, P = 3, 7, 6
    frames = random_frames(B, T1, P)
    feats = torch.randn(B, T1, n_features) if n_features else None
    lengths = torch.tensor([7, 4, 2])
    batch = {"frames": frames, "lengths": lengths}
    if feats is not None:
        batch["features"] = feats
    out = model.loss(batch)
    # reference: the logits of the full, unpadded forward pass, scored by hand in float64
    with torch.no_grad():
        logits, _ = model(frames[:, :-1], feats[:, 1:] if feats is not None else None)
    total, n = 0.0, 0
    for b in range(B):
        for t in range(int(lengths[b]) - 1):  # logits[b, t] scores frame t + 1
            n += 1
            for i in range(P):
                p, v = sigmoid64(float(logits[b, t, i])), float(frames[b, t + 1, i])
                total -= v * math.log(p) + (1 - v) * math.log(1 - p)
    assert out.weight == n == 6 + 3 + 1
    assert out.loss.item() == pytest.approx(total / n, rel=1e-5)
    nats, count = model.frame_nll(frames, feats, lengths)
    assert count == n and nats == pytest.approx(total, rel=1e-5)


def test_frame_padding_does_not_change_the_loss():
    model = frame_model(n_features=1)
    lengths = [5, 3, 8]
    pieces = [random_frames(1, n, 6) for n in lengths]
    feats = [torch.randn(1, n, 1) for n in lengths]
    T1 = max(lengths)
    frames = random_frames(3, T1, 6, density=0.5)  # the padding is garbage, not zeros
    features = torch.randn(3, T1, 1)
    for b, (p, f) in enumerate(zip(pieces, feats)):
        frames[b, : p.shape[1]], features[b, : f.shape[1]] = p[0], f[0]
    out = model.loss({"frames": frames, "features": features, "lengths": torch.tensor(lengths)})
    alone = [model.loss({"frames": p, "features": f}) for p, f in zip(pieces, feats)]
    assert out.weight == sum(a.weight for a in alone) == sum(lengths) - 3
    total = sum(a.loss.item() * a.weight for a in alone)
    assert out.loss.item() * out.weight == pytest.approx(total, rel=1e-5)


def test_frame_accuracy_equals_brute_force_count():
    model = frame_model(P=5)
    # a bias that puts about half the logits above 0, so every count is non-trivial
    with torch.no_grad():
        model.head.bias.fill_(0.0)
    frames, lengths = random_frames(4, 9, 5, density=0.5), torch.tensor([9, 6, 3, 2])
    out = model.loss({"frames": frames, "lengths": lengths})
    with torch.no_grad():
        logits, _ = model(frames[:, :-1])
    tp = fp = fn = 0
    for b in range(4):
        for t in range(int(lengths[b]) - 1):
            for i in range(5):
                pred, gold = float(logits[b, t, i]) > 0, bool(frames[b, t + 1, i])
                tp += pred and gold
                fp += pred and not gold
                fn += gold and not pred
    assert tp > 0 and fp + fn > 0
    assert out.metrics["frame_accuracy"] == pytest.approx(tp / (tp + fp + fn))
    ev = model.evaluate(frames, lengths=lengths)
    assert (ev["tp"], ev["fp"], ev["fn"]) == (tp, fp, fn)
    assert ev["frame_accuracy"] == pytest.approx(tp / (tp + fp + fn))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_frame_greedy_sampling_equals_argmax_loop_over_full_forward(cell):
    model = frame_model(cell=cell, n_features=2)
    prime, steps = random_frames(1, 3, 6)[0], 6
    feats = torch.randn(3 + steps, 2)
    with torch.no_grad():  # make the model emit notes: threshold near the middle
        model.head.bias.copy_(torch.randn(6) * 0.5)
    got = model.sample(prime, steps, temperature=0.0, features=feats)
    frames = prime.clone()
    for _ in range(steps):
        with torch.no_grad():
            T = frames.shape[0]
            logits, _ = model(frames[None], feats[None, 1: T + 1])  # the whole piece again
        frames = torch.cat([frames, (logits[0, -1] > 0).float()[None]], 0)
    assert torch.equal(got, frames)
    assert torch.equal(got[:3], prime)
    assert torch.equal(model.sample(prime, steps, temperature=0.0, features=feats), got)


def test_frame_sampling_is_seeded_and_draws_bernoulli_with_temperature():
    model = frame_model(P=4)
    prime = random_frames(1, 4, 4)[0]
    a = model.sample(prime, 20, temperature=1.0, seed=3)
    assert torch.equal(a, model.sample(prime, 20, temperature=1.0, seed=3))
    assert not torch.equal(a, model.sample(prime, 20, temperature=1.0, seed=4))
    # one step many times: the frequency of each pitch is sigmoid(z / tau)
    tau, n = 2.0, 400
    with torch.no_grad():
        model.head.bias.copy_(torch.tensor([-3.0, -0.5, 0.5, 3.0]))
        z = model(prime[None])[0][0, -1]
    draws = torch.stack([model.sample(prime, 1, temperature=tau, seed=s)[-1] for s in range(n)])
    freq, p = draws.mean(0), torch.sigmoid(z / tau)
    assert torch.all((freq - p).abs() < 4 * torch.sqrt(p * (1 - p) / n) + 0.01), (freq, p)


def test_frame_max_voices_keeps_the_most_probable():
    model = frame_model(P=6)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0, -9.0]))
    out = model.sample(random_frames(1, 2, 6)[0], 3, temperature=0.0, max_voices=2)
    assert out[2:].tolist() == [[1.0, 1.0, 0.0, 0.0, 0.0, 0.0]] * 3


# -- EventModel --------------------------------------------------------------------------------
def test_event_loss_equals_torch_cross_entropy():
    model = event_model(V=11)
    tokens = torch.randint(3, 11, (3, 8))
    lengths = torch.tensor([8, 5, 2])
    tokens[:, 0] = BOS
    tokens[1, 3] = PAD  # a PAD target inside the length is not scored either
    for b, n in enumerate(lengths.tolist()):
        tokens[b, n - 1] = EOS
        tokens[b, n:] = PAD
    out = model.loss({"tokens": tokens, "lengths": lengths})
    with torch.no_grad():
        logits, _ = model(tokens)
    rows, targets = [], []
    for b, n in enumerate(lengths.tolist()):
        for t in range(n - 1):
            if tokens[b, t + 1] != PAD:
                rows.append(logits[b, t])
                targets.append(int(tokens[b, t + 1]))
    ref = F.cross_entropy(torch.stack(rows).double(), torch.tensor(targets))
    assert out.weight == len(targets) == 7 + 3 + 1
    assert out.loss.item() == pytest.approx(float(ref), rel=1e-5)
    acc = sum(int(r.argmax()) == y for r, y in zip(rows, targets)) / len(targets)
    assert float(out.metrics["accuracy"]) == pytest.approx(acc)
    # the same as a stream chunk (x, y), and log_likelihood of the first sequence
    xy = model.loss((tokens[:1, :-1], tokens[:1, 1:]))
    ll, n = model.log_likelihood(tokens[0].tolist())
    assert n == 7 and -ll / n == pytest.approx(xy.loss.item(), rel=1e-5)


def test_event_stream_chunks_carry_the_state():
    model = event_model()
    x = torch.randint(1, 11, (2, 12))
    y = torch.randint(3, 11, (2, 12))
    whole = model.loss((x, y))
    a = model.loss((x[:, :5], y[:, :5]))
    b = model.loss((x[:, 5:], y[:, 5:]), a.state)
    total = a.loss.item() * a.weight + b.loss.item() * b.weight
    assert whole.loss.item() * whole.weight == pytest.approx(total, rel=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_event_greedy_generation_equals_argmax_loop(cell):
    model = event_model(cell=cell)
    with torch.no_grad():  # PAD and BOS attractive: generation must still never emit them
        model.lm.head.bias[PAD] += 3.0
        model.lm.head.bias[BOS] += 3.0
        model.lm.head.bias[EOS] -= 5.0
    prime = [BOS, 4, 7]
    got = model.generate(prime, length=15, temperature=0)
    ids = list(prime)
    for _ in range(15):
        with torch.no_grad():
            logits = model(torch.tensor([ids]))[0][0, -1]
        logits[[PAD, BOS]] = float("-inf")
        ids.append(int(logits.argmax()))
        if ids[-1] == EOS:
            break
    assert got == ids[len(prime):]
    assert all(t not in (PAD, BOS) for t in got)


def test_event_generation_stops_at_eos_and_is_seeded():
    model = event_model()
    a = model.generate([BOS], length=30, temperature=1.0, top_k=5, seed=11)
    assert a == model.generate([BOS], length=30, temperature=1.0, top_k=5, seed=11)
    assert len(a) <= 30 and all(t not in (PAD, BOS) for t in a)
    assert EOS not in a[:-1]
    with torch.no_grad():
        model.lm.head.bias[EOS] += 100.0
    assert model.generate(length=30, temperature=1.0, seed=0) == [EOS]


# -- Harmonizer --------------------------------------------------------------------------------
def random_voices(B: int, T: int, V: int) -> torch.Tensor:
    return torch.randint(0, V, (B, T, 4))


@pytest.mark.parametrize("cell,n_features", [("gru", 0), ("lstm", 3)])
def test_harmonizer_loss_equals_manual_decoding_loop(cell, n_features):
    model = harmonizer(cell=cell, n_features=n_features)
    V, lengths = model.config.vocab_size, [6, 3, 1]
    voices = random_voices(3, 6, V)
    feats = torch.randn(3, 6, n_features) if n_features else None
    batch = {"voices": voices, "lengths": torch.tensor(lengths)}
    if feats is not None:
        batch["features"] = feats
    out = model.loss(batch)
    total, hits = 0.0, torch.zeros(3)
    with torch.no_grad():
        for b, L in enumerate(lengths):  # each piece alone, unpadded, one step at a time
            f = feats[b: b + 1, :L] if feats is not None else None
            memory = model.encode(voices[b: b + 1, :L, 0], f)
            prev, state = torch.full((1, 3), model.start), None
            for t in range(L):
                logits, state = model.decode_step(prev, memory[:, t], state)
                logp = F.log_softmax(logits[0].double(), -1)  # [3, V]
                ref = voices[b, t, 1:]
                total -= float(logp[torch.arange(3), ref].sum())
                hits += (logits[0].argmax(-1) == ref).float()
                prev = voices[b: b + 1, t, 1:]
    frames = sum(lengths)
    assert out.weight == 3 * frames
    assert out.loss.item() == pytest.approx(total / (3 * frames), rel=1e-5)
    for v, h in zip(("alto", "tenor", "bass"), hits):
        assert out.metrics[f"{v}_accuracy"] == pytest.approx(float(h) / frames)
    ll = model.log_likelihood(voices, feats, torch.tensor(lengths))
    assert float(-ll.sum()) == pytest.approx(total, rel=1e-6)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_harmonizer_greedy_equals_argmax_loop_and_keeps_soprano(cell):
    model = harmonizer(cell=cell, n_features=2)
    T, V = 7, model.config.vocab_size
    soprano = torch.randint(0, V, (T,))
    feats = torch.randn(T, 2)
    got = model.harmonize(soprano, feats)
    chorale = torch.zeros(T, 4, dtype=torch.long)
    chorale[:, 0] = soprano
    for t in range(T):  # the full teacher-forced pass over what is decided so far
        with torch.no_grad():
            logits = model(chorale[None], feats[None])[0, t]  # [3, V]
        chorale[t, 1:] = logits.argmax(-1)
    assert torch.equal(got, chorale)
    for kwargs in ({"temperature": 1.0, "seed": 0}, {"temperature": 0.7, "top_p": 0.9, "seed": 1},
                   {"beam_size": 3}):
        out = model.harmonize(soprano, feats, **kwargs)
        assert out.shape == (T, 4) and out.dtype == torch.long
        assert torch.equal(out[:, 0], soprano)
        assert int(out.min()) >= 0 and int(out.max()) < V


def test_harmonizer_sampling_is_seeded():
    model = harmonizer(P=8)
    soprano = torch.randint(0, 10, (12,))
    a = model.harmonize(soprano, temperature=1.5, seed=5)
    assert torch.equal(a, model.harmonize(soprano, temperature=1.5, seed=5))
    assert not torch.equal(a, model.harmonize(soprano, temperature=1.5, seed=6))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_harmonizer_wide_beam_equals_exhaustive_search(cell):
    model = harmonizer(cell=cell, P=1)  # V = 3: 27 choices per frame
    with torch.no_grad():  # sharpen the distributions so the best chorale is unique
        model.heads.weight.mul_(8.0)
    soprano = torch.tensor([2, 1, 0])
    combos = torch.tensor(list(itertools.product(range(3), repeat=9))).view(-1, 3, 3)
    every = torch.cat([soprano.expand(len(combos), 3)[..., None], combos], -1)  # [27^3, 3, 4]
    ll = model.log_likelihood(every)
    best = every[int(ll.argmax())]
    wide = model.harmonize(soprano, beam_size=27 * 27)  # keeps every prefix: exhaustive
    assert torch.equal(wide, best)
    # (float32 logits: a batch of one and one of 27^3 round differently)
    assert float(model.log_likelihood(wide)) == pytest.approx(float(ll.max()), abs=1e-5)
    # any beam scores at most the optimum; the greedy chorale is one of the 27^3
    for k in (1, 2, 5):
        assert float(model.log_likelihood(model.harmonize(soprano, beam_size=k))) <= \
            float(ll.max()) + 1e-5


# -- all three: save/load, the trainer ----------------------------------------------------------
def _frame_batch():
    return {"frames": random_frames(2, 6, 6), "features": torch.randn(2, 6, 2),
            "lengths": torch.tensor([6, 4])}


def _event_batch():
    tokens = torch.randint(3, 11, (2, 6))
    tokens[:, 0], tokens[1, 4:] = BOS, PAD
    return {"tokens": tokens, "lengths": torch.tensor([6, 4])}


def _voice_batch():
    return {"voices": random_voices(2, 6, 7), "lengths": torch.tensor([6, 4])}


CASES = {
    "frames": (lambda: frame_model(n_features=2), _frame_batch, "rnnkit.music_frames"),
    "events": (event_model, _event_batch, "rnnkit.music_events"),
    "harmonizer": (harmonizer, _voice_batch, "rnnkit.music_harmonizer"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_save_load_round_trip(name, tmp_path):
    make, batch, kind = CASES[name]
    model, data = make(), batch()
    with torch.no_grad():  # move off the initialisation: the file must carry the weights
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    path = tmp_path / "model.pt"
    rnnkit.save(model, path)
    assert rnnkit.saving.file_kind(path) == (kind, 1)
    loaded = rnnkit.load(path)
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.config == model.config
    assert loaded.loss(data).loss.item() == model.loss(data).loss.item()
    assert type(model).load(path).config == model.config
    if name == "frames":
        prime, feats = random_frames(1, 2, 6)[0], torch.randn(7, 2)
        assert torch.equal(loaded.sample(prime, 5, features=feats, seed=1),
                           model.sample(prime, 5, features=feats, seed=1))
    elif name == "events":
        assert loaded.generate([BOS], 20, seed=1) == model.generate([BOS], 20, seed=1)
    else:
        sop = torch.randint(0, 7, (9,))
        assert torch.equal(loaded.harmonize(sop, beam_size=2), model.harmonize(sop, beam_size=2))
    other = {"frames": Harmonizer, "events": FrameModel, "harmonizer": EventModel}[name]
    with pytest.raises(ValueError, match=f"not a {other.KIND} file.*{kind}"):
        other.load(path)


@pytest.mark.parametrize("name", list(CASES))
def test_trainer_trains_and_checkpoint_rebuilds_the_model(name, tmp_path):
    make, batch, _ = CASES[name]
    model = make()
    data = [batch() for _ in range(3)]
    cfg = TrainConfig(epochs=1, lr=1e-2, out_dir=str(tmp_path), progress=False, plot=False,
                      compute=False, card=False, device="cpu", log_every=1)
    trainer = Trainer(model, cfg, train_data=data, val_data=data[:1],
                      extra_state=model.extra_state())
    trainer.fit()
    assert isinstance(model.loss(data[0]), LossOutput)
    rebuilt = type(model).from_state(load_checkpoint(tmp_path / "last.pt"))
    model.eval()
    assert rebuilt.loss(data[0]).loss.item() == model.loss(data[0]).loss.item()


# -- bad inputs ----------------------------------------------------------------------------------
def test_frame_model_bad_inputs():
    model, plain = frame_model(n_features=2), frame_model()
    ok = random_frames(2, 5, 6)
    feats = torch.randn(2, 5, 2)
    cases = [
        ({"frames": ok[..., :4], "features": feats}, ValueError, r"\[B, T, 6\]"),
        ({"frames": ok.long(), "features": feats}, TypeError, r"\.float\(\)"),
        ({"frames": ok * 0.5, "features": feats}, ValueError, "only 0 and 1"),
        ({"frames": ok.masked_fill(ok > 0, float("nan")), "features": feats}, ValueError,
         "NaN"),
        ({"frames": ok[:, :1], "features": feats[:, :1]}, ValueError, "at least 2"),
        ({"frames": ok[:, :0], "features": feats[:, :0]}, ValueError, "empty"),
        ({"frames": ok}, ValueError, "n_features=2"),
        ({"frames": ok, "features": feats[..., :1]}, ValueError, r"\[2, 5, 2\]"),
        ({"frames": ok, "features": feats.masked_fill(feats > 0, float("inf"))}, ValueError,
         "NaN or infinite"),
        ({"frames": ok, "features": feats, "lengths": torch.tensor([5, 1])}, ValueError,
         "shorter than 2"),
        ({"frames": ok, "features": feats, "lengths": torch.tensor([5, 6])}, ValueError,
         r"\[2, 5\]"),
        ({"frames": ok, "features": feats, "lengths": torch.tensor([5.0, 3.0])}, TypeError,
         "integers"),
        ((ok, feats), TypeError, "dict"),
    ]
    for batch, err, match in cases:
        with pytest.raises(err, match=match):
            model.loss(batch)
    with pytest.raises(ValueError, match="n_features=0 but features"):
        plain.loss({"frames": ok, "features": feats})
    with pytest.raises(ValueError, match=r"\[T0, 6\]"):
        plain.sample(ok, 3)
    with pytest.raises(ValueError, match="temperature"):
        plain.sample(ok[0], 3, temperature=-1.0)
    with pytest.raises(ValueError, match=r"\[1, 9, 2\]"):
        model.sample(ok[0], 4, features=torch.randn(5, 2))  # needs T0 + steps = 9 rows
    with pytest.raises(ValueError, match="max_voices"):
        plain.sample(ok[0], 3, max_voices=0)
    with pytest.raises(ValueError, match="cell must be one of"):
        FrameModelConfig(n_pitches=4, cell="nope")
    with pytest.raises(ValueError, match="n_pitches"):
        FrameModelConfig(n_pitches=0)


def test_event_model_bad_inputs():
    model = event_model(V=11)
    tokens = torch.tensor([[BOS, 4, 5, EOS]])
    cases = [
        ({"tokens": tokens.float()}, TypeError, "integer ids"),
        ({"tokens": tokens + 10}, ValueError, r"\[0, 11\).*11 event ids"),
        ({"tokens": tokens[0]}, ValueError, r"\[B, T\]"),
        ({"tokens": tokens[:, :1]}, ValueError, "at least 2"),
        ({"tokens": tokens[:, :0]}, ValueError, "empty"),
        ({"tokens": tokens, "lengths": torch.tensor([1])}, ValueError, "shorter than 2"),
        ({"tokens": torch.tensor([[BOS, PAD, PAD]])}, ValueError, "no target"),
        ((tokens, tokens[:, :2]), ValueError, "shape of the inputs"),
        ((tokens, tokens + 20), ValueError, "target ids"),
        ({"wrong": tokens}, TypeError, "tokens"),
    ]
    for batch, err, match in cases:
        with pytest.raises(err, match=match):
            model.loss(batch)
    with pytest.raises(ValueError, match="prime is empty"):
        model.generate([], 5)
    with pytest.raises(ValueError, match="PAD"):
        model.generate([BOS, PAD], 5)
    with pytest.raises(TypeError, match="integer ids"):
        model.generate(["a"], 5)
    with pytest.raises(ValueError, match="top_p"):
        model.generate([BOS], 5, top_p=1.5)
    with pytest.raises(ValueError, match="at least 2"):
        model.log_likelihood([BOS])
    with pytest.raises(ValueError, match=">= 4"):
        EventModelConfig(vocab_size=3)
    with pytest.raises(ValueError, match="tie_weights"):
        EventModelConfig(vocab_size=8, tie_weights=True, embed_size=4, hidden_size=8)


def test_harmonizer_bad_inputs():
    model = harmonizer(n_features=1)
    V = model.config.vocab_size
    voices, feats = random_voices(2, 5, V), torch.randn(2, 5, 1)
    cases = [
        ({"voices": voices[..., :3], "features": feats}, ValueError, r"\[B, T, 4\]"),
        ({"voices": voices + V, "features": feats}, ValueError, r"REST=0, HOLD=1.*V = 7"),
        ({"voices": voices.float(), "features": feats}, TypeError, "integer ids"),
        ({"voices": voices[:, :0], "features": feats[:, :0]}, ValueError, "empty"),
        ({"voices": voices}, ValueError, "n_features=1"),
        ({"voices": voices, "features": feats, "lengths": torch.tensor([0, 5])}, ValueError,
         r"\[1, 5\]"),
    ]
    for batch, err, match in cases:
        with pytest.raises(err, match=match):
            model.loss(batch)
    with pytest.raises(ValueError, match="whole pieces"):
        model.loss({"voices": voices, "features": feats}, state=torch.zeros(1))
    sop = voices[0, :, 0]
    with pytest.raises(ValueError, match=r"\[T\]"):
        model.harmonize(voices[0], feats[0])
    with pytest.raises(ValueError, match="empty"):
        model.harmonize(sop[:0], feats[0, :0])
    with pytest.raises(ValueError, match="beam search is deterministic"):
        model.harmonize(sop, feats[0], temperature=1.0, beam_size=3)
    with pytest.raises(ValueError, match="beam_size"):
        model.harmonize(sop, feats[0], beam_size=0)
    with pytest.raises(ValueError, match=r"soprano must lie in \[0, 7\)"):
        model.harmonize(sop + V, feats[0])


# -- learning: tiny synthetic tasks (about a second each; fresh data every session) ------------
PATTERN = torch.tensor([[1, 0, 0, 0, 1, 0, 0, 0], [0, 1, 0, 0, 0, 1, 0, 1],
                        [0, 0, 1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 1, 0]]).float()


def test_frame_model_learns_a_repeating_pattern():
    model = FrameModel(FrameModelConfig(n_pitches=8, embed_size=16, hidden_size=32,
                                        num_layers=1, dropout=0.0))

    def batch(step):
        phase = torch.randint(0, 4, (16,))
        idx = (phase[:, None] + torch.arange(13)[None]) % 4
        return {"frames": PATTERN[idx], "lengths": torch.randint(5, 14, (16,))}

    train(model, batch, 150, lr=0.02)
    ev = model.evaluate(PATTERN[(torch.arange(40) + 1) % 4])
    print(f"frames: nll/frame {ev['nll_per_frame']:.4f}, frame accuracy {ev['frame_accuracy']}")
    assert ev["nll_per_frame"] < 0.05 and ev["frame_accuracy"] == 1.0
    out = model.sample(PATTERN[2:3], 15, temperature=0.0)
    assert torch.equal(out, PATTERN[(torch.arange(16) + 2) % 4])


def test_event_model_learns_counting_up_to_eos():
    V = 12  # events 3..11; a piece counts up from a random start to 11, then EOS
    model = EventModel(EventModelConfig(vocab_size=V, cell="lstm", embed_size=16,
                                        hidden_size=32, num_layers=1, dropout=0.0))

    def piece(start):
        return [BOS, *range(start, V), EOS]

    def batch(step):
        starts = torch.randint(3, V, (16,)).tolist()
        seqs = [piece(s) for s in starts]
        tokens = torch.full((16, V - 1), PAD)
        for b, s in enumerate(seqs):
            tokens[b, : len(s)] = torch.tensor(s)
        return {"tokens": tokens, "lengths": torch.tensor([len(s) for s in seqs])}

    train(model, batch, 200, lr=0.02)
    worst = 0.0
    for start in range(3, V):  # all but the (random) first event is determined
        ll, n = model.log_likelihood(piece(start))
        first, _ = model.log_likelihood([BOS, start])
        worst = max(worst, -(ll - first) / (n - 1))
        assert model.generate([BOS, start], 20, temperature=0) == piece(start)[2:]
    print(f"events: worst nats/event after the first {worst:.4f}")
    assert worst < 0.05


def test_harmonizer_learns_parallel_voices():
    P = 20  # onsets 2 + k; soprano in k = 15..19; alto -3, tenor -8, bass -15 semitones
    model = Harmonizer(HarmonizerConfig(n_pitches=P, embed_size=8, hidden_size=32,
                                        enc_layers=1, dec_layers=1, dropout=0.0))

    def chorale(B, T):
        kind = torch.rand(B, T)
        sop = torch.randint(2 + 15, 2 + 20, (B, T))
        sop = torch.where(kind < 0.15, 0, torch.where(kind < 0.4, 1, sop))
        lower = [torch.where(sop >= 2, sop - d, sop) for d in (3, 8, 15)]
        return torch.stack([sop, *lower], -1)

    def batch(step):
        return {"voices": chorale(16, 12), "lengths": torch.randint(4, 13, (16,))}

    loss = train(model, batch, 200, lr=0.02)
    test = chorale(1, 24)[0]
    out = model.loss({"voices": test[None]})
    print(f"harmonizer: train loss {loss:.4f}, held-out loss {out.loss.item():.4f}, "
          f"{out.metrics}")
    assert out.loss.item() < 0.05 and min(out.metrics.values()) == 1.0
    assert torch.equal(model.harmonize(test[:, 0]), test)
    assert torch.equal(model.harmonize(test[:, 0], beam_size=3), test)


def test_nade_output_is_a_normalised_joint_distribution_over_a_frame():
    """RNN-NADE: exp(-NLL) of every possible next frame (all 2^P, brute force) sums to 1,
    and the frame decided at temperature 0 is the pitch-by-pitch threshold of the
    conditionals."""
    import itertools

    P = 4
    model = FrameModel(FrameModelConfig(n_pitches=P, hidden_size=8, embed_size=8,
                                        output="nade", nade_hidden=5)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    prev = (torch.rand(1, 3, P) < 0.5).float()
    candidates = torch.tensor(list(itertools.product([0.0, 1.0], repeat=P)))  # [16, P]
    total = 0.0
    for frame in candidates:
        frames = torch.cat([prev, frame[None, None]], 1)
        out = model.evaluate(frames)
        # the last frame's NLL: the whole minus the part before it
        before = model.evaluate(prev)["nats"] if prev.shape[1] > 1 else 0.0
        total += float(torch.exp(torch.tensor(-(out["nats"] - before), dtype=torch.float64)))
    assert abs(total - 1.0) < 1e-5
    with torch.no_grad():
        y, _ = model.rnn(model._embed(prev, None))
        decided = model._decide(y[:, -1])
        z = model._logits(y[:, -1], decided)
    assert torch.equal(decided, (z > 0).float())  # each pitch: its conditional above 0.5
