"""The audit of a real sentiment model: rt-polarity's data, its classifier's groups,
counterfactual swaps and robustness.

Data: movie-review snippets of Pang & Lee (2005), ``../shared/data/rt-polarity.*``, 10,662
sentences. A fixed stratified 90/10 split (seed 0, as ``benchmarks/classify.py``): the model
trains on the 90% (10% of it held out to pick the epoch) and is audited on the 10% it never
saw; no audit setting was tuned on any of it (the word lists, perturbations and thresholds are
fixed in ``rnnkit.audit``). The model is the `rnnkit classify train` default (bidirectional
LSTM, max pooling) with WordPiece embeddings from the packaged all-MiniLM-L6-v2 when installed.

Prints (and writes ``benchmarks/results/audit_rt_polarity.json``):

1. the data audit of the whole corpus (identity-term rates, label co-occurrence with Wilson
   intervals, sentiment words, lengths);
2. test accuracy, and accuracy / selection rate / error rates per gender group found in the
   test texts (fairlearn MetricFrame, bootstrap intervals);
3. counterfactual flip rates (Wilson 95%) for swapped gender words, first names by gender and
   first names by perceived race: on the test texts, and on every text of the corpus (training
   texts included: more texts mention names, so the interval is tighter);
4. the robustness scan of the test texts.

Run: ``python benchmarks/audit.py`` (about 5 minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

from rnnkit.audit.bias import SWAPPABLE, audit_classifier
from rnnkit.audit.data import audit_text
from rnnkit.data.sentiment import load_rt_polarity, stratified_split
from rnnkit.text.classifier import ClassifierConfig, train_text_classifier
from rnnkit.train import TrainConfig

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=ROOT)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                      "audit_rt_polarity.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    texts, ids = load_rt_polarity(args.data)
    labels = ["pos" if i == 1 else "neg" for i in ids]
    train_idx, test_idx = stratified_split(ids, 0.1, seed=0)

    t0 = time.perf_counter()
    data = audit_text(texts, labels)
    print(data.to_markdown())
    print(f"(data audit: {time.perf_counter() - t0:.1f} s)\n", flush=True)

    embed = "wordpiece"
    try:
        from rnnkit.data.pretrained import find_model_dir

        find_model_dir()
    except Exception:
        embed = "random"
    t0 = time.perf_counter()
    clf, val = train_text_classifier(
        [texts[i] for i in train_idx], [labels[i] for i in train_idx],
        ClassifierConfig(vocab_size=1, embed_dropout=0.5 if embed == "wordpiece" else 0.0),
        TrainConfig(epochs=args.epochs, lr=3e-3, progress=False, plot=False, card=False),
        embed_init=embed, seed=0)
    train_s = time.perf_counter() - t0
    print(f"trained ({embed} embeddings) in {train_s:.0f} s; validation accuracy "
          f"{val['accuracy']:.4f}", flush=True)

    test_texts = [texts[i] for i in test_idx]
    test_labels = [labels[i] for i in test_idx]
    t0 = time.perf_counter()
    with torch.no_grad():
        held_out = audit_classifier(clf.predict_proba, clf.classes, test_texts, test_labels,
                                    lists=SWAPPABLE, n_boot=args.bootstrap, seed=0)
        corpus = audit_classifier(clf.predict_proba, clf.classes, texts, None,
                                  lists=SWAPPABLE, robustness=False, n_boot=args.bootstrap,
                                  seed=0)
    audit_s = time.perf_counter() - t0
    print(f"\ntest accuracy {held_out['overall']['accuracy']:.4f} on {len(test_texts)} "
          f"held-out texts (audit {audit_s:.0f} s)")
    for name, g in held_out["groups"].items():
        print(f"\n### test texts by {name}\n{g['markdown']}")
    print("\n| swap | texts | applicable | flipped | flip rate [95% Wilson] | "
          "mean |shift| of P(pos) |")
    print("|---|---|---|---|---|---|")
    rows = []
    for where, report in (("test", held_out), ("corpus (incl. training)", corpus)):
        for name, p in report["counterfactual"].items():
            lo, hi = p["flip_rate_ci"]
            shift = p["shifts"].get("class_1", {}).get("mean_abs")
            flipped = round(p["flip_rate"] * p["n_applicable"]) if p["n_applicable"] else 0
            rate = f"{p['flip_rate']:.3f} [{lo:.3f}, {hi:.3f}]" if p["n_applicable"] else "-"
            print(f"| {name} | {where} | {p['n_applicable']} | {flipped} | {rate} | "
                  f"{shift:.4f} |" if shift is not None else "| - |")
            rows.append({"swap": name, "texts": where, "n_applicable": p["n_applicable"],
                         "flip_rate": p["flip_rate"], "flip_rate_ci": p["flip_rate_ci"],
                         "mean_abs_shift_p_pos": shift, "worst": p["worst"][:3]})
    print("\n" + held_out["robustness_markdown"])
    result = {
        "data": "rt-polarity (Pang & Lee 2005), stratified 90/10 split seed 0",
        "embeddings": embed, "train_s": train_s, "audit_s": audit_s,
        "validation_accuracy": val["accuracy"],
        "test_accuracy": held_out["overall"]["accuracy"],
        "data_flags": [str(f) for f in data.flagged()],
        "groups": {k: {kk: vv for kk, vv in v.items() if kk != "markdown"}
                   for k, v in held_out["groups"].items()},
        "counterfactual": rows,
        "robustness": {k: {kk: vv for kk, vv in v.items() if kk != "examples"}
                       for k, v in held_out["robustness"].items()},
        "command": "python benchmarks/audit.py",
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, default=str)
    print(f"\nwrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
