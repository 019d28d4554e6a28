"""Number-to-words translation (English -> French or German) with an attention encoder-decoder.

Pairs come from num2words for integers in 0..999,999, split by number (no overlap; stratified
by digit count, see ``rnnkit.data.numbers``). Prints exact match (greedy and beam search),
BLEU and chrF (sacrebleu) on the held-out test numbers, writes an attention heatmap PNG, and
compares exact match by source length for attention and a no-attention baseline trained for
the same number of steps. Run from the project root::

    python benchmarks/translate.py --compare-steps 0    # en -> fr main model
    python benchmarks/translate.py --skip-main           # attention vs none, 300 steps each
    python benchmarks/translate.py --tgt de --level char --compare-steps 0
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict

import sacrebleu
import torch

from rnnkit.data.batching import pair_loader
from rnnkit.data.numbers import number_pairs, split_numbers
from rnnkit.data.vocab import Vocab
from rnnkit.text.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.text.translation import Translator, save_attention_heatmap
from rnnkit.train import TrainConfig, Trainer


def buckets(n_words: int) -> str:
    return "1-4" if n_words <= 4 else "5-7" if n_words <= 7 else "8-9" if n_words <= 9 \
        else "10+"


def evaluate(tr: Translator, pairs, beam_size: int) -> dict:
    """Exact match, BLEU and chrF; BLEU counts character n-grams for character-level targets
    (a German number is one word, so word 4-grams do not exist)."""
    srcs = [s for s, _ in pairs]
    refs = [t for _, t in pairs]
    t0 = time.perf_counter()
    hyps = [h for h, _ in tr.translate(srcs, beam_size=beam_size)]
    dt = time.perf_counter() - t0
    exact = [h == r for h, r in zip(hyps, refs)]
    by_len: dict[str, list[bool]] = {}
    for (s, _), e in zip(pairs, exact):
        by_len.setdefault(buckets(len(s.split())), []).append(e)
    return {"exact": sum(exact) / len(exact),
            "bleu": sacrebleu.corpus_bleu(hyps, [refs], tokenize="char" if
                                          tr.tgt_vocab.level == "char" else "13a").score,
            "chrf": sacrebleu.corpus_chrf(hyps, [refs]).score,
            "by_len": {k: (sum(v) / len(v), len(v)) for k, v in sorted(by_len.items())},
            "seconds": dt, "hyps": hyps}


def train(args, attention: str, data, max_steps: int | None = None) -> tuple[Translator, float]:
    sv, tv, train_ld, valid_ld = data
    cfg = Seq2SeqConfig(len(sv), len(tv), embed_size=args.embed, hidden_size=args.hidden,
                        cell=args.cell, attention=attention, input_feeding=args.input_feeding,
                        dropout=args.dropout)
    torch.manual_seed(0)
    model = Seq2Seq(cfg)
    tcfg = TrainConfig(epochs=args.epochs, lr=args.lr, scheduler="cosine",
                       warmup_steps=100, clip_norm=1.0, seed=0, progress=False,
                       max_time=None if max_steps else args.budget, max_steps=max_steps,
                       eval_every=0)
    t0 = time.perf_counter()
    trainer = Trainer(model, tcfg, train_ld, valid_ld)
    trainer.fit()
    secs = time.perf_counter() - t0
    val = trainer.evaluate(valid_ld)
    print(f"  trained attention={attention}: {trainer.step} steps, {trainer.epoch} epochs, "
          f"{secs:.0f} s; valid teacher-forced token acc {val['token_accuracy']:.4f}",
          flush=True)
    longest = max(len(t) for _, t in train_ld.dataset)  # framed targets, BOS + EOS included
    return Translator(model.eval(), sv, tv, max_len=longest + longest // 2 + 5), secs


def report(name: str, res: dict) -> None:
    lens = "  ".join(f"{k} words: {v:.3f} (n={n})" for k, (v, n) in res["by_len"].items())
    print(f"  {name}: exact match {res['exact']:.4f}  BLEU {res['bleu']:.2f}  "
          f"chrF {res['chrf']:.2f}  ({res['seconds']:.1f} s to decode)\n    by source length: "
          f"{lens}", flush=True)


def main_model(args, data, test, sv, tv) -> None:
    tr, secs = train(args, args.attention, data)
    print(f"model: {asdict(tr.model.config)} lr={args.lr} batch={args.batch_size} "
          f"cosine schedule over {args.epochs} epochs, stopped at the {args.budget:.0f} s "
          f"budget", flush=True)
    report(f"attention={args.attention}, greedy", evaluate(tr, test, 1))
    res = evaluate(tr, test, args.beam)
    report(f"attention={args.attention}, beam {args.beam}", res)
    wrong = [(s, r, h) for (s, r), h in zip(test, res["hyps"]) if h != r][:3]
    for s, r, h in wrong:
        print(f"    error: {s!r} -> {h!r} (reference {r!r})")
    os.makedirs(args.out, exist_ok=True)
    src, ref = max(test, key=lambda p: len(p[0].split()))
    s_ids = torch.tensor(sv.encode(src))
    t_ids = torch.tensor(tv.encode(ref, bos=True, eos=True))
    w = tr.model.attention_map(s_ids, t_ids)
    src_toks = [sv.tokenizer.id_to_token(i) for i in s_ids.tolist()]
    tgt_toks = [tv.tokenizer.id_to_token(i) for i in t_ids[1:].tolist()]
    png = save_attention_heatmap(w, src_toks, tgt_toks,
                                 os.path.join(args.out, f"attention_{args.src}_{args.tgt}.png"),
                                 title=f"{args.src} -> {args.tgt}")
    print(f"  attention heatmap: {png}", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--src", default="en")
    p.add_argument("--tgt", default="fr")
    p.add_argument("--level", default="word", choices=["word", "char"],
                   help="target tokens (German compounds need 'char')")
    p.add_argument("--n-train", type=int, default=20000)
    p.add_argument("--n-valid", type=int, default=500)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--cell", default="lstm")
    p.add_argument("--input-feeding", action="store_true")
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--budget", type=float, default=420.0,
                   help="training wall-clock seconds per model (stops early when reached)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--attention", default="general")
    p.add_argument("--skip-main", action="store_true", help="only the comparison")
    p.add_argument("--compare-steps", type=int, default=300,
                   help="steps for each model of the attention vs none comparison (0 = skip)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=os.path.join("runs", "translate"),
                   help="folder for the heatmap PNG (runs/ is git-ignored)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t_all = time.perf_counter()
    split = split_numbers(args.n_train, args.n_valid, args.n_test, seed=0)
    pairs = {k: number_pairs(v, args.src, args.tgt) for k, v in split.items()}
    print(f"{args.src} -> {args.tgt}: {len(pairs['train'])} train / {len(pairs['valid'])} "
          f"valid / {len(pairs['test'])} test numbers (disjoint), e.g. {pairs['test'][0]}; "
          f"pairs built in {time.perf_counter() - t_all:.0f} s", flush=True)
    sv = Vocab.build([s for s, _ in pairs["train"]])
    tv = Vocab.build([t for _, t in pairs["train"]], level=args.level)
    enc = {k: ([sv.encode(s) for s, _ in v], [tv.encode(t, bos=True, eos=True) for _, t in v])
           for k, v in pairs.items()}
    train_ld = pair_loader(*enc["train"], batch_size=args.batch_size, shuffle=True)
    valid_ld = pair_loader(*enc["valid"], batch_size=256, shuffle=False)
    data = (sv, tv, train_ld, valid_ld)
    print(f"vocab: source {len(sv)}, target {len(tv)} ({args.level}); max target length "
          f"{max(len(t) for t in enc['train'][1])}", flush=True)
    test = pairs["test"]
    if not args.skip_main:
        main_model(args, data, test, sv, tv)
    if args.compare_steps:
        print(f"attention vs no attention, same training: {args.compare_steps} steps each "
              f"(batch {args.batch_size}), beam {args.beam}", flush=True)
        for attention in (args.attention, "none"):
            tr, _ = train(args, attention, data, max_steps=args.compare_steps)
            report(f"attention={attention}", evaluate(tr, test, args.beam))
    print(f"total {time.perf_counter() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
