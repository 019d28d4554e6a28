"""Text-line recognition (CRNN + CTC) on lines of real English never trained on, in fonts never
trained on.

Data (:mod:`rnnkit.vision.textlines`): Jane Austen's *Lady Susan* (music21's copy) cut into
lines of 3-8 words, split train/valid/test by a hash of each line; fonts from ``make
vision-data`` in three disjoint groups: the training fonts, held-out print fonts and held-out
handwriting-style fonts. The reader trains on the train lines in the training fonts (rendered
afresh every batch) for a wall-clock budget: the step count is set from a measured step time,
so the cosine schedule ends with the budget. The LM weight of beam search is chosen on the
validation lines (training fonts); the test lines are rendered in each group (each line once,
in a font of the group drawn by a fixed seed, with the training's random style: slant, blur,
noise, illumination and a capture height of 16-56 px scaled to the model's 32) and scored
with ``jiwer``.

Columns: CER and WER of greedy decoding (the baseline), of beam search (width 8) and of beam
search with the character 6-gram LM of the training lines, and the ratio of each beam CER to
the greedy CER. Target: CER <= 5% on the held-out print fonts.

The peer a user would pick instead is **Tesseract** 5 (LSTM engine, its English model, page
segmentation 7: one text line), through ``pytesseract`` (``make bench-data`` installs the
engine, ``pip install -e ".[bench]"`` the wrapper; without them the column is left out, saying
so). It reads the very images the reader reads (same lines, fonts and rendering seeds),
enlarged by a factor chosen on the validation lines (1-4, bicubic, on a white border: its
documentation asks for text over ~20 px high), and its output goes through the same
:func:`~rnnkit.vision.textlines.normalize_text` as the references (typographic quotes and
dashes to ASCII). Its time per line is printed beside ours (beam + LM), and their ratio.

Run from the project root::

    python benchmarks/vision_read.py            # 10-minute budget (~22 min in all, Tesseract too)
    python benchmarks/vision_read.py --quick    # a smoke run (1-minute budget, 60 lines)

Writes ``benchmarks/results/vision_read.json`` (``--quick``: ``vision_read_quick.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch

from rnnkit.atomic import atomic_write_text
from rnnkit.train import TrainConfig
from rnnkit.vision.reader import ReaderConfig, TextLineReader
from rnnkit.vision.textlines import (
    FONT_GROUPS,
    TextLineDataset,
    find_fonts,
    normalize_text,
    split_lines,
    text_lines,
)

GROUP_NAMES = {"train": "training fonts (seen)", "print": "held-out print",
               "handwriting": "held-out handwriting"}
TARGET_PRINT_CER = 0.05


class Tesseract:
    """The Tesseract 5 peer: one line image in, its text out (``--psm 7``, LSTM engine)."""

    why = ""

    def __init__(self, pytesseract, version: str) -> None:
        self.pt, self.version, self.scale = pytesseract, version, 3

    @classmethod
    def open(cls) -> Tesseract | None:
        try:
            import pytesseract

            version = str(pytesseract.get_tesseract_version())
        except (ImportError, OSError, RuntimeError) as err:  # no wrapper, or no engine
            cls.why = (f"{type(err).__name__}: {err}; install the engine with `make bench-data` "
                       f"and the wrapper with `pip install -e \".[bench]\"`")
            return None
        return cls(pytesseract, version)

    def read(self, image, scale: int | None = None) -> str:
        from PIL import Image, ImageOps

        img = Image.fromarray(image)
        k = scale or self.scale
        if k != 1:
            img = img.resize((img.width * k, img.height * k), Image.BICUBIC)
        img = ImageOps.expand(img, border=10 * k, fill=255)
        text = self.pt.image_to_string(img, lang="eng", config="--psm 7 --oem 1")
        return normalize_text(text)

    def score(self, data: TextLineDataset, scale: int | None = None) -> tuple[float, float]:
        import jiwer

        items = [data[i] for i in range(len(data))]
        hyps = [self.read(img, scale) for img, _, _ in items]
        refs = [text for _, text, _ in items]
        return float(jiwer.cer(refs, hyps)), float(jiwer.wer(refs, hyps))

    def choose_scale(self, data: TextLineDataset, scales=(1, 2, 3, 4)) -> dict[int, float]:
        cers = {k: self.score(data, k)[0] for k in scales}
        self.scale = min(cers, key=lambda k: (cers[k], k))
        return cers


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1-minute budget, 60 test lines")
    ap.add_argument("--minutes", type=float, default=None, help="training budget (default 10)")
    ap.add_argument("--lines", type=int, default=None, help="test lines per group (default 300)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--beam", type=int, default=8, help="beam width (default 8)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="JSON results path")
    args = ap.parse_args(argv)
    minutes = args.minutes if args.minutes is not None else (1.0 if args.quick else 10.0)
    n_test = args.lines if args.lines is not None else (60 if args.quick else 300)
    out = args.out or os.path.join("benchmarks", "results", "vision_read_quick.json"
                                   if args.quick else "vision_read.json")
    torch.set_num_threads(args.threads)

    parts = split_lines(text_lines())
    fonts = find_fonts("train")
    config = ReaderConfig()
    reader = TextLineReader(config)
    step_s = reader.step_seconds(parts["train"], fonts)
    steps = max(20, int(minutes * 60 / step_s))
    print(f"{len(parts['train'])} train / {len(parts['valid'])} valid / {len(parts['test'])} "
          f"test lines, {len(fonts)} training fonts; {step_s:.2f} s/step -> {steps} steps "
          f"for {minutes:g} min on {args.threads} threads", flush=True)
    train = TrainConfig(max_steps=steps, max_time=minutes * 60 * 1.15, epochs=10 ** 6,
                        lr=3e-3, scheduler="cosine", warmup_steps=min(100, steps // 10),
                        eval_every=max(50, steps // 6), seed=args.seed, device="cpu",
                        progress=False, plot=False, compute=False, card=False,
                        log_every=max(10, steps // 10))
    t0 = time.perf_counter()
    reader.fit(parts["train"], parts["valid"], fonts, train)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    weights = reader.tune_lm_weight(parts["valid"], fonts, beam=args.beam,
                                    n=50 if args.quick else 150)
    tune_s = time.perf_counter() - t0
    lm_weight = reader.config.lm_weight
    print(f"trained {reader.history['steps']} steps in {train_s:.0f} s; LM weight {lm_weight:g} "
          f"chosen on validation lines (CER by weight: "
          + ", ".join(f"{w:g}: {c:.2%}" for w, c in weights.items()) + ")", flush=True)

    test = parts["test"][:n_test]
    peer = Tesseract.open()
    if peer is None:
        print(f"Tesseract column left out: {Tesseract.why}", flush=True)
    else:
        t0 = time.perf_counter()
        scales = peer.choose_scale(TextLineDataset(parts["valid"][:100], fonts, seed=args.seed,
                                                   height=config.height))
        print(f"Tesseract {peer.version}: scale {peer.scale} chosen on 100 validation lines "
              f"(CER by scale: " + ", ".join(f"{k}: {v:.2%}" for k, v in scales.items())
              + f"; {time.perf_counter() - t0:.0f} s)", flush=True)
    rows = []
    for group in FONT_GROUPS:
        gf = find_fonts(group)
        row = {"fonts": group, "n_fonts": len(gf), "lines": len(test)}
        for name, beam, w in (("greedy", 1, 0.0), ("beam", args.beam, 0.0),
                              ("beam_lm", args.beam, lm_weight)):
            t0 = time.perf_counter()
            res = reader.evaluate(test, gf, seed=args.seed + 7, beam=beam, lm_weight=w)
            row[f"{name}_cer"], row[f"{name}_wer"] = res.cer, res.wer
            row[f"{name}_seconds"] = time.perf_counter() - t0
        per_font: dict[str, list[float]] = {}
        import jiwer

        for r in res.rows:  # beam+LM, per font: the spread inside the group
            per_font.setdefault(r["font"], []).append(jiwer.cer(r["reference"],
                                                                r["hypothesis"]))
        row["beam_lm_cer_median_font"] = statistics.median(
            statistics.mean(v) for v in per_font.values())
        if peer is not None:  # the same images: same lines, fonts and seeds as evaluate()
            data = TextLineDataset(test, gf, seed=args.seed + 7, height=config.height)
            t0 = time.perf_counter()
            cer, wer = peer.score(data)
            row["tesseract_cer"], row["tesseract_wer"] = cer, wer
            row["tesseract_seconds"] = time.perf_counter() - t0
        rows.append(row)

    print()
    print(f"{'test lines, fonts':<26}{'lines':>6}{'greedy CER':>12}{'beam CER':>10}"
          f"{'ratio':>7}{'beam+LM CER':>13}{'ratio':>7}{'greedy WER':>12}{'beam+LM WER':>13}")
    for r in rows:
        g = r["greedy_cer"]
        print(f"{GROUP_NAMES[r['fonts']]:<26}{r['lines']:>6}{g:>12.2%}{r['beam_cer']:>10.2%}"
              f"{r['beam_cer'] / g if g else float('nan'):>7.2f}{r['beam_lm_cer']:>13.2%}"
              f"{r['beam_lm_cer'] / g if g else float('nan'):>7.2f}{r['greedy_wer']:>12.2%}"
              f"{r['beam_lm_wer']:>13.2%}")
    if peer is not None:
        print(f"\n{'test lines, fonts':<26}{'rnnkit beam+LM CER':>20}{'Tesseract CER':>15}"
              f"{'ratio':>7}{'rnnkit WER':>12}{'Tesseract WER':>15}{'s/line rnnkit':>15}"
              f"{'s/line Tess.':>14}{'speed-up':>10}")
        for r in rows:
            ours_s = r["beam_lm_seconds"] / r["lines"]
            theirs_s = r["tesseract_seconds"] / r["lines"]
            t = r["tesseract_cer"]
            print(f"{GROUP_NAMES[r['fonts']]:<26}{r['beam_lm_cer']:>20.2%}{t:>15.2%}"
                  f"{r['beam_lm_cer'] / t if t else float('nan'):>7.2f}"
                  f"{r['beam_lm_wer']:>12.2%}{r['tesseract_wer']:>15.2%}{ours_s:>15.4f}"
                  f"{theirs_s:>14.4f}{theirs_s / ours_s:>10.1f}")
        print("(ratio < 1: rnnkit reads better; speed-up: Tesseract's time per line over "
              "rnnkit's beam+LM one, both on this machine; pytesseract starts the engine "
              "once per line)")
    best_print = min(rows[1][k] for k in ("greedy_cer", "beam_cer", "beam_lm_cer"))
    print(f"\nheld-out print CER (best decoding) {best_print:.2%}: target <= "
          f"{TARGET_PRINT_CER:.0%} {'met' if best_print <= TARGET_PRINT_CER else 'NOT met'}; "
          f"training {train_s:.0f} s, LM tuning {tune_s:.0f} s")
    result = {"benchmark": "vision_read", "quick": args.quick, "minutes": minutes,
              "threads": args.threads, "steps": reader.history["steps"],
              "train_seconds": train_s, "step_seconds_measured": step_s,
              "config": {**vars(config), "channels": list(config.channels)},
              "lm_weight": lm_weight, "lm_weight_valid_cer": weights, "beam": args.beam,
              "target_print_cer": TARGET_PRINT_CER, "target_met": best_print <= TARGET_PRINT_CER,
              "tesseract": None if peer is None else {"version": peer.version,
                                                      "scale": peer.scale,
                                                      "valid_cer_by_scale": scales},
              "rows": rows, "machine": platform.platform(), "torch": torch.__version__}
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    atomic_write_text(json.dumps(result, indent=2, default=str), out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
