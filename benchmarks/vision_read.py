"""Text-line recognition (CRNN + CTC) on lines of real English never trained on, in fonts never
trained on.

Data (:mod:`rnnkit.vision.textlines`): Jane Austen's *Lady Susan* (music21's copy) cut into
lines of 3-8 words, split train/valid/test by a hash of each line; fonts from ``make
vision-data`` in three disjoint groups: the training fonts, held-out print fonts and held-out
handwriting-style fonts. The reader trains on the train lines in the training fonts (rendered
afresh every batch) for a wall-clock budget: the step count is set from a measured step time,
so the cosine schedule ends with the budget. The LM weight of beam search is chosen on the
validation lines (training fonts); the test lines are rendered in each group (each line once,
in a font of the group drawn by a fixed seed) and scored with ``jiwer``.

Columns: CER and WER of greedy decoding (the baseline), of beam search (width 8) and of beam
search with the character 6-gram LM of the training lines, and the ratio of each beam CER to
the greedy CER. Target: CER <= 5% on the held-out print fonts. Run from the project root::

    python benchmarks/vision_read.py            # 10-minute budget (~14 min in all)
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
from rnnkit.vision.textlines import FONT_GROUPS, find_fonts, split_lines, text_lines

GROUP_NAMES = {"train": "training fonts (seen)", "print": "held-out print",
               "handwriting": "held-out handwriting"}
TARGET_PRINT_CER = 0.05


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
              "rows": rows, "machine": platform.platform(), "torch": torch.__version__}
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    atomic_write_text(json.dumps(result, indent=2, default=str), out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
