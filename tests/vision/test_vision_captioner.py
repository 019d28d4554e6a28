"""Show-Attend-Tell: attention weights, the doubly stochastic term, stepping vs teacher forcing,
beam 1 == greedy, save/load, bad inputs, the CLI's refusals, and (slow) a tiny captioner that
learns a handful of scenes by heart."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.vision.captioner import (
    BOS,
    CaptionerConfig,
    ImageCaptioner,
    ShowAttendTell,
    doubly_stochastic_penalty,
    save_attention_png,
)
from rnnkit.vision.scenes import SceneConfig, fact_report, make_splits, render_batch


def _net(attention=True, V=15, C=6, **kw):
    torch.manual_seed(0)
    return ShowAttendTell(C, V, embed_size=5, hidden_size=7, annotation_size=4, attn_size=3,
                          attention=attention, **kw).eval()


def test_attention_weights_are_distributions():
    net = _net()
    f = torch.randn(3, 6, 2, 3)
    _, alphas = net(f, torch.randint(3, 15, (3, 5)))
    assert alphas.shape == (3, 5, 6)
    assert (alphas >= 0).all() and torch.allclose(alphas.sum(-1), torch.ones(3, 5))
    assert alphas.std() > 0  # not uniform
    _, flat = _net(attention=False)(f, torch.randint(3, 15, (3, 5)))
    assert torch.allclose(flat, torch.full_like(flat, 1 / 6))


def test_doubly_stochastic_penalty_vs_hand_formula():
    alphas = torch.softmax(torch.randn(2, 4, 5, dtype=torch.float64), -1)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    got = doubly_stochastic_penalty(alphas, mask)
    for b in range(2):
        want = 0.0
        for i in range(5):
            s = sum(float(alphas[b, t, i]) for t in range(4) if mask[b, t])
            want += (1 - s) ** 2
        assert float(got[b]) == pytest.approx(want)


def test_loss_adds_the_regulariser_and_reaches_every_parameter():
    net = _net(dsr_lambda=2.0).train()
    f = torch.randn(2, 6, 2, 2)
    toks = torch.tensor([[BOS, 5, 6, 7, 2], [BOS, 8, 9, 2, 0], [BOS, 4, 2, 0, 0]])
    out = net.loss((f, toks, torch.tensor([0, 1, 1])))
    assert out.weight == 4 + 3 + 2
    total = out.metrics["xent"] + 2 * out.metrics["dsr"]
    assert float(out.loss.detach()) == pytest.approx(float(total))
    out.loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_forward_equals_stepping_by_hand():
    net = _net()
    f = torch.randn(2, 6, 2, 2)
    toks = torch.randint(3, 15, (2, 6))
    logits, alphas = net(f, toks)
    state = net.initial_state(net.annotations(f))
    for t in range(6):  # the reference: one word at a time
        out, state, a = net.step(toks[:, t], state)
        assert torch.allclose(out, logits[:, t], atol=1e-6)
        assert torch.allclose(a, alphas[:, t], atol=1e-6)


def test_owner_shares_features():
    net = _net()
    f = torch.randn(2, 6, 2, 2)
    toks = torch.randint(3, 15, (3, 4))
    shared, _ = net(f, toks, torch.tensor([1, 0, 1]))
    direct, _ = net(f[[1, 0, 1]], toks)
    assert torch.allclose(shared, direct, atol=1e-6)


def _beam(net, f, K, max_len=12, constraint=None, counts=None, reading=None):
    from functools import partial

    from rnnkit.decoding import beam_search, index_state

    state = net.initial_state(net.annotations(f), counts)
    step = net.step_log_probs
    if constraint is not None:
        state = {**state, **constraint.init_state(counts if reading is None else reading)}
        step = constraint.wrap(step)
    return beam_search(step, state, len(f), bos=BOS, eos=2, beam_size=K,
                       max_len=max_len, length_penalty=0.0, pad=0,
                       reorder_state=partial(index_state, dim={"h": 1, "c": 1}))


def _greedy_scores(net, f, caps):
    toks = torch.nn.utils.rnn.pad_sequence([torch.tensor([BOS, *c]) for c in caps],
                                           batch_first=True)
    state, total = net.initial_state(net.annotations(f)), torch.zeros(len(f))
    for t in range(toks.shape[1]):  # score each caption word by word (+ EOS if it ended)
        lp, state = net.step_log_probs(toks[:, t], state)
        for b, c in enumerate(caps):
            if t < len(c):
                total[b] += lp[b, c[t]]
            elif t == len(c) and len(c) < 12:
                total[b] += lp[b, 2]
    return total


@pytest.mark.parametrize("attention", [True, False])
def test_beam_one_is_greedy(attention):
    # the shared beam search ends a hypothesis with EOS only from among the K best, so a beam
    # of 1 follows greedy token for token: captions that end early and ones that run to max_len
    net = _net(attention, V=9)
    f = torch.randn(12, 6, 3, 3) * 3
    for bias in (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0):  # EOS likely: some captions end early
        with torch.no_grad():
            net.L_o.bias[2] = bias
        if 0 < sum(len(c) < 12 for c in net.decode(f, beam_size=1, max_len=12)) < 12:
            break
    res = _beam(net, f, 1)
    via_beam = [res.tokens[b, 0, : int(res.lengths[b, 0])].tolist() for b in range(12)]
    greedy = net.decode(f, beam_size=1, max_len=12)
    assert greedy == via_beam
    assert 0 < sum(len(c) < 12 for c in greedy) < 12
    assert torch.allclose(_greedy_scores(net, f, greedy), res.scores[:, 0], atol=1e-5)


@pytest.mark.parametrize("attention", [True, False])
def test_beam_never_scores_below_greedy(attention):
    net = _net(attention, V=9)
    f = torch.randn(6, 6, 3, 3) * 3
    greedy = net.decode(f, beam_size=1, max_len=12)
    g_scores = _greedy_scores(net, f, greedy)
    for K in (1, 3):
        res = _beam(net, f, K)
        assert (res.scores[:, 0] >= g_scores - 1e-5).all()
        caps = [res.tokens[b, 0, : int(res.lengths[b, 0])].tolist() for b in range(6)]
        assert torch.allclose(_greedy_scores(net, f, caps), res.scores[:, 0], atol=1e-5)
    wide = net.decode(f, beam_size=4, max_len=12)
    assert len(wide) == 6 and all(all(2 < t < 9 for t in w) for w in wide)


def _tiny_config(**kw):
    return CaptionerConfig(embed_size=16, hidden_size=32, annotation_size=16, attn_size=16,
                           pretrained=False, image_size=64, batch_size=16, dropout=0.0, **kw)


@pytest.fixture(scope="module")
def tiny():
    splits = make_splits(SceneConfig(n_train=12, n_valid=4, n_test=4, seed=5, image_size=64))
    from rnnkit.train import TrainConfig

    cap = ImageCaptioner(_tiny_config()).fit(
        splits.train, splits.valid, TrainConfig(max_steps=3, progress=False, plot=False,
                                                compute=False, card=False))
    return cap, splits


def test_the_reader_depends_on_the_seed_not_on_the_decoder():
    # two captioners with different decoders (soft attention / mean-pooled, so different
    # parameter counts drawn before the reader) get the same layout reader from one seed
    from rnnkit.train import TrainConfig

    splits = make_splits(SceneConfig(n_train=10, n_valid=3, n_test=2, seed=7, image_size=64))
    feats, readers = ImageCaptioner(_tiny_config()).scene_features(splits.train), []
    vf = ImageCaptioner(_tiny_config()).scene_features(splits.valid)
    for attention, torch_seed in ((True, 1), (False, 2), (True, 3)):
        torch.manual_seed(torch_seed)  # the global RNG differs too
        cap = ImageCaptioner(_tiny_config(attention=attention, counter_epochs=3))
        cap.fit(splits.train, splits.valid, TrainConfig(
            max_steps=1, seed=11, progress=False, plot=False, compute=False, card=False),
            train_features=feats, valid_features=vf)
        assert cap.history["reader_epochs"] == 3 and cap.history["reader_steps"] == 3
        readers.append(cap.reader.state_dict())
    for other in readers[1:]:
        assert all(torch.equal(readers[0][k], other[k]) for k in readers[0])
    torch.manual_seed(1)
    cap = ImageCaptioner(_tiny_config(counter_epochs=3))
    cap.fit(splits.train, splits.valid, TrainConfig(
        max_steps=1, seed=12, progress=False, plot=False, compute=False, card=False),
        train_features=feats, valid_features=vf)
    assert not torch.equal(cap.reader.state_dict()["cell_head.weight"],
                           readers[0]["cell_head.weight"])  # another seed, another reader


def test_save_load_round_trip(tiny, tmp_path):
    cap, splits = tiny
    imgs = render_batch(splits.test, 64)
    before = cap.caption(imgs, beam_size=2)
    path = tmp_path / "cap.pt"
    rnnkit.save(cap, path)
    again = rnnkit.load(path)
    assert isinstance(again, ImageCaptioner) and again.words == cap.words
    assert again.caption(imgs, beam_size=2) == before
    feats = cap.features(imgs)  # the layout reader travels with the weights
    assert cap.counter is None and cap.reader is cap.model.layout
    for a, b in zip(again.read(feats), cap.read(feats)):
        assert torch.equal(a if torch.is_tensor(a) else a["cells"],
                           b if torch.is_tensor(b) else b["cells"])
    # files of the first layout (no counter, no checklist) and of the second (the object
    # counter) still load, as what they were
    from rnnkit.train import TrainConfig

    tc = TrainConfig(max_steps=2, progress=False, plot=False, compute=False, card=False)
    free = ImageCaptioner(_tiny_config(count_objects=False)).fit(splits.train, None, tc)
    counting = ImageCaptioner(_tiny_config(read_layout=False)).fit(splits.train, None, tc)
    for model, keys in ((free, ("count_objects", "read_layout", "counter_epochs")),
                        (counting, ("read_layout",))):
        blob = model.state()
        for key in keys:
            del blob["config"][key]
        old = ImageCaptioner.from_state(blob)
        assert old.caption(imgs, beam_size=2) == model.caption(imgs, beam_size=2)
        assert not old.config.read_layout and getattr(old.model, "layout", None) is None
    assert old.reader is old.counter is not None and old.config.count_objects
    # the no-attention ablation (mean-pooled decoder and reader) saves and loads as itself
    pooled = ImageCaptioner(_tiny_config(attention=False, spatial_reader=False)).fit(
        splits.train, None, tc)
    path = tmp_path / "pooled.pt"
    rnnkit.save(pooled, path)
    back = rnnkit.load(path)
    assert back.reader.pooled and not back.config.spatial_reader
    assert not back.config.attention and not back.model.attention
    blob = cap.state()  # a layout-reader file from before spatial_reader: a spatial reader
    del blob["config"]["spatial_reader"]
    old = ImageCaptioner.from_state(blob)
    assert not old.reader.pooled and old.caption(imgs, beam_size=2) == before
    assert back.caption(imgs, beam_size=2) == pooled.caption(imgs, beam_size=2)
    res = again.describe(imgs[:1])[0]
    assert res.alphas.shape == (len(res.words), 2, 2)
    png = tmp_path / "att.png"
    save_attention_png(imgs[0], res, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_caption_any_image(tiny, tmp_path):
    from PIL import Image

    cap, _ = tiny
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 90, 4), np.uint8),
                    "RGBA").save(rgba)
    gray = tmp_path / "gray.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (300, 40), np.uint8)).save(gray)
    out = cap.caption([rgba, gray])
    assert len(out) == 2 and all(isinstance(c, str) for c in out)


def test_bad_inputs(tiny, tmp_path):
    cap, _ = tiny
    from rnnkit.vision.images import ImageError

    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(ImageError):
        cap.caption(junk)
    with pytest.raises((FileNotFoundError, ImageError)):
        cap.caption(tmp_path / "missing.png")
    with pytest.raises(ImageError):
        cap.caption(torch.rand(1, 3, 4, 4))  # tiny
    with pytest.raises(ImageError):
        cap.caption(torch.full((1, 3, 40, 40), float("nan")))
    with pytest.raises(ValueError, match="beam_size"):
        cap.caption(torch.rand(1, 3, 40, 40), beam_size=0)
    with pytest.raises(ValueError, match=r"\[B, 1280"):
        cap.model.annotations(torch.rand(2, 7, 2, 2))
    with pytest.raises(RuntimeError, match="fit"):
        ImageCaptioner(_tiny_config()).caption(torch.rand(1, 3, 40, 40))
    with pytest.raises(ValueError):
        ImageCaptioner(_tiny_config()).fit([])
    from rnnkit.vision.captioner import SPECIALS

    with pytest.warns(UserWarning, match="image_size >= 65"):  # a 2 x 2 grid, 3 x 3 layout
        ImageCaptioner(_tiny_config(), words=[*SPECIALS, "a", "dog"])
    for kw in (dict(hidden_size=0), dict(image_size=16), dict(dropout=1.0),
               dict(scheduled_sampling=2.0), dict(length_penalty=-1.0)):
        with pytest.raises(ValueError):
            CaptionerConfig(**kw)
    for kw in (dict(read_layout=False), dict(count_objects=False)):  # no layout reader
        with pytest.raises(ValueError, match="spatial_reader=False .* read_layout=True"):
            CaptionerConfig(spatial_reader=False, **kw)


def _cli(*argv):
    from rnnkit.commands import vision_caption

    p = argparse.ArgumentParser()
    vision_caption.register(p.add_subparsers())
    args = p.parse_args(["caption", *map(str, argv)])
    return args.func(args)


def test_cli_refuses_foreign_and_corrupt_checkpoints(tiny, tmp_path):
    cap, _ = tiny
    from rnnkit.ngram import NGramLM

    other = tmp_path / "lm.pt"
    rnnkit.save(NGramLM(2).fit([["a", "b"]]), other)
    img = tmp_path / "x.png"
    from PIL import Image

    Image.new("RGB", (64, 64), (255, 0, 0)).save(img)
    with pytest.raises(ValueError, match="not an image captioner"):
        _cli(other, img)
    bad = tmp_path / "bad.pt"
    good = tmp_path / "good.pt"
    rnnkit.save(cap, good)
    bad.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match="corrupt|truncated"):
        _cli(bad, img)
    with pytest.raises(FileNotFoundError):
        _cli(good, tmp_path / "nope.png")
    with pytest.raises(ValueError, match="--beam"):
        _cli(good, img, "--beam", "0")
    out = tmp_path / "att.png"
    out.write_bytes(b"keep")
    with pytest.raises(FileExistsError, match="--overwrite"):
        _cli(good, img, "--attention-png", out)
    assert out.read_bytes() == b"keep"
    assert _cli(good, img, "--attention-png", out, "--overwrite") == 0
    with pytest.raises(ValueError, match="train, evaluate"):
        _cli("tarin")


@pytest.mark.slow
def test_tiny_captioner_learns_a_handful_of_scenes():
    from rnnkit.train import TrainConfig

    # 96 pixels: a 3 x 3 feature grid, one cell per layout cell for the layout reader
    splits = make_splits(SceneConfig(n_train=8, n_valid=2, n_test=2, seed=2, image_size=96,
                                     captions_per_image=1))
    torch.manual_seed(0)
    cap = ImageCaptioner(CaptionerConfig(embed_size=32, hidden_size=64, annotation_size=32,
                                         attn_size=32, pretrained=False, image_size=96,
                                         dropout=0.0, batch_size=8, counter_epochs=300))
    cap.fit(splits.train, None, TrainConfig(max_steps=250, lr=1e-2, progress=False,
                                            plot=False, compute=False, card=False))
    caps = cap.caption(render_batch(splits.train, 96))
    exact = sum(c == s.captions[0] for c, s in zip(caps, splits.train))
    assert exact >= 7, list(zip(caps, [s.captions[0] for s in splits.train]))
    assert sum(fact_report(c, s)["correct"] for c, s in zip(caps, splits.train)) >= 7
    # the trained model too, under its count constraint: a beam of 1 is exactly greedy
    feats = cap.features(render_batch(splits.train, 96))
    counts, reading = cap.read(feats)
    res = _beam(cap.model, feats, 1, 30, cap.constraint, counts, reading)
    beam1 = [res.tokens[b, 0, : int(res.lengths[b, 0])].tolist() for b in range(8)]
    assert cap.model.decode(feats, beam_size=1, constraint=cap.constraint, counts=counts,
                            reading=reading) == beam1


def test_resume_keeps_the_reader_and_old_runs_have_no_dev_split(tmp_path, monkeypatch):
    import dataclasses

    from rnnkit.train import TrainConfig

    splits = make_splits(SceneConfig(n_train=12, n_valid=4, n_test=4, n_dev=4, seed=5,
                                     image_size=64))
    tc = TrainConfig(max_steps=2, out_dir=str(tmp_path / "run"), progress=False, plot=False,
                     compute=False, card=False)
    data = dataclasses.asdict(splits.config)
    for key in ("n_dev", "dev_pairs"):  # a run from before the dev split
        del data[key]
    cap = ImageCaptioner(_tiny_config()).fit(splits.train, splits.valid, tc,
                                             run={"data_config": data})
    # a new process resumes: the optimizer state holds the decoder only, the counter is kept,
    # and the reader's seconds count against the run's max_time (the decoder's budget is
    # what is left, as in the first fit)
    import rnnkit.train

    budgets = []

    class Spy(rnnkit.train.Trainer):
        def __init__(self, model, config, *args, **kwargs):
            budgets.append(config.max_time)
            super().__init__(model, config, *args, **kwargs)

    monkeypatch.setattr(rnnkit.train, "Trainer", Spy)
    again = ImageCaptioner(_tiny_config()).fit(
        splits.train, splits.valid, dataclasses.replace(tc, max_steps=4, max_time=1000.0),
        resume=True, run={"data_config": data})
    spent = cap.history["counter_seconds"]
    assert spent > 0 and budgets == [pytest.approx(1000.0 - spent)]
    assert again.history["steps"] == 4
    for a, b in zip(cap.reader.state_dict().values(), again.reader.state_dict().values()):
        assert torch.equal(a, b)
    assert again.history["counter_seconds"] == pytest.approx(spent)
    with pytest.raises(ValueError, match="--split test or valid"):
        _cli("evaluate", tmp_path / "run" / "best.pt", "--split", "dev")


def test_an_interrupt_while_the_reader_trains_says_nothing_was_saved(tmp_path, monkeypatch):
    # Ctrl-C before the decoder's first checkpoint: the error names the stage and the fix
    # (the trainer's own message would say "no out_dir" though the run has one)
    import rnnkit.train
    from rnnkit.train import TrainConfig
    from rnnkit.train.interrupt import TrainingInterrupted

    class Stopped(rnnkit.train.Trainer):
        def fit(self, *args, **kwargs):
            raise TrainingInterrupted(3, None, "SIGINT")

    monkeypatch.setattr(rnnkit.train, "Trainer", Stopped)
    splits = make_splits(SceneConfig(n_train=6, n_valid=2, n_test=2, n_dev=0, seed=3,
                                     image_size=64))
    tc = TrainConfig(max_steps=2, out_dir=str(tmp_path / "run"), progress=False, plot=False,
                     compute=False, card=False)
    with pytest.raises(TrainingInterrupted, match="training the layout reader .step 3.*"
                       "nothing was saved: run the same command again") as err:
        ImageCaptioner(_tiny_config()).fit(splits.train, splits.valid, tc)
    assert err.value.checkpoint is None and not (tmp_path / "run" / "last.pt").exists()


def test_cli_resumes_a_run_of_the_counter_version(tmp_path, capsys):
    # a run trained before the layout reader (version 2: its config has no read_layout)
    # resumes as what it was, not as today's default model (whose weights would not load)
    from rnnkit.train import load_checkpoint
    from rnnkit.train.checkpoint import save_checkpoint

    run = tmp_path / "run"
    tiny = ["--n-train", "12", "--data.n_valid", "4", "--data.n_test", "4", "--data.n_dev",
            "4", "--data.image_size", "64", "--random-encoder", "--hidden", "16",
            "--model.embed_size", "8", "--model.annotation_size", "8", "--model.attn_size",
            "8", "--model.counter_epochs", "1"]
    assert _cli("train", "--out-dir", run, "--max-steps", "2", "--model.read_layout",
                "false", *tiny) == 0
    for name in ("last.pt", "best.pt"):
        ckpt = load_checkpoint(run / name)
        del ckpt["extra_state"]["config"]["read_layout"]
        save_checkpoint(ckpt, run / name)
    assert _cli("train", "--out-dir", run, "--max-steps", "4", "--resume") == 0
    again = load_checkpoint(run / "last.pt")
    assert again["step"] == 4 and any(k.startswith("counter.") for k in again["model"])
    assert "trained 4 steps" in capsys.readouterr().out
