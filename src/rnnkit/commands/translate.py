"""``rnnkit translate``: train an attention encoder-decoder and translate with beam search.

    rnnkit translate pairs --tgt fr --n 20000 --out pairs.tsv     # numbers in words (num2words)
    rnnkit translate train --pairs pairs.tsv --out-dir runs/en-fr --max-time 600
    rnnkit translate runs/en-fr/best.pt "one thousand, nine hundred and eighty-seven"
    rnnkit translate runs/en-fr/best.pt "twenty-one" --beam 5 --heatmap att.png
"""

from __future__ import annotations

import argparse

__all__ = ["register"]


def _train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rnnkit translate train",
                                description="train on source<TAB>target lines")
    p.add_argument("--pairs", required=True, help="UTF-8 file of source<TAB>target lines")
    p.add_argument("--out-dir", required=True, help="where best.pt, last.pt and logs go")
    p.add_argument("--level", default="word", choices=["word", "char"],
                   help="target tokens: words, or characters (German number compounds)")
    p.add_argument("--attention", default="general",
                   choices=["general", "dot", "additive", "none"])
    p.add_argument("--cell", default="lstm")
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--input-feeding", action="store_true")
    p.add_argument("--teacher-forcing", type=float, default=1.0)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--max-time", type=float, default=None, help="training budget in seconds")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--val-fraction", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", action="store_true")
    return p


def _pairs_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rnnkit translate pairs",
                                description="write number-in-words pairs (num2words)")
    p.add_argument("--out", required=True, help="TSV file to write")
    p.add_argument("--src", default="en")
    p.add_argument("--tgt", default="fr")
    p.add_argument("--n", type=int, default=20000, help="numbers in the chosen split")
    p.add_argument("--split", default="train", choices=["train", "valid", "test"])
    p.add_argument("--seed", type=int, default=0)
    return p


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rnnkit translate",
                                description="translate texts with a trained model")
    p.add_argument("checkpoint", help="best.pt or last.pt from `rnnkit translate train`")
    p.add_argument("texts", nargs="+", help="one or more source texts (quote each)")
    p.add_argument("--beam", type=int, default=5, help="beam size (1 = greedy)")
    p.add_argument("--length-penalty", type=float, default=1.0)
    p.add_argument("--max-len", type=int, default=None)
    p.add_argument("--heatmap", default=None,
                   help="write the attention heatmap of the first translation to this PNG")
    return p


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("translate", help="sequence-to-sequence translation",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("argv", nargs=argparse.REMAINDER,
                        help="train ... | pairs ... | CHECKPOINT TEXT [TEXT ...] [--beam K]")
    parser.set_defaults(func=lambda args: _dispatch(args.argv, parser))


def _dispatch(argv: list[str], parser: argparse.ArgumentParser) -> int:
    if not argv:
        parser.print_help()
        return 2
    if argv[0] == "train":
        return _train(_train_parser().parse_args(argv[1:]))
    if argv[0] == "pairs":
        return _pairs(_pairs_parser().parse_args(argv[1:]))
    return _translate(_run_parser().parse_args(argv))


def _train(args: argparse.Namespace) -> int:
    from ..text.seq2seq import Seq2SeqConfig, read_pairs_tsv, train_translator
    from ..train import TrainConfig

    pairs = read_pairs_tsv(args.pairs)
    cfg = Seq2SeqConfig(src_vocab_size=5, tgt_vocab_size=5, embed_size=args.embed,
                        hidden_size=args.hidden, cell=args.cell, attention=args.attention,
                        input_feeding=args.input_feeding,
                        teacher_forcing=args.teacher_forcing, dropout=args.dropout)
    tcfg = TrainConfig(epochs=args.epochs, max_time=args.max_time, lr=args.lr,
                       scheduler="cosine", warmup_steps=100, seed=args.seed,
                       out_dir=args.out_dir, progress=not args.no_progress, device=args.device)
    tr, metrics = train_translator(pairs, cfg, tcfg, val_fraction=args.val_fraction,
                                   level=args.level, batch_size=args.batch_size, seed=args.seed)
    print(f"trained on {len(pairs)} pairs; vocab source {len(tr.src_vocab)}, target "
          f"{len(tr.tgt_vocab)}; validation loss {metrics['loss']:.4f}, token accuracy "
          f"{metrics['token_accuracy']:.4f}; checkpoints in {args.out_dir}")
    return 0


def _pairs(args: argparse.Namespace) -> int:
    from ..data.numbers import number_pairs, split_numbers, write_pairs_tsv

    sizes = {"train": 1, "valid": 1, "test": 1, args.split: args.n}
    split = split_numbers(sizes["train"], sizes["valid"], sizes["test"], seed=args.seed)
    pairs = number_pairs(split[args.split], args.src, args.tgt)
    write_pairs_tsv(pairs, args.out)
    print(f"wrote {len(pairs)} {args.src}->{args.tgt} pairs to {args.out}")
    return 0


def _translate(args: argparse.Namespace) -> int:
    import torch

    from ..text.seq2seq import Translator, save_attention_heatmap

    tr = Translator.from_checkpoint(args.checkpoint)
    results = tr.translate(args.texts, beam_size=args.beam, max_len=args.max_len,
                           length_penalty=args.length_penalty)
    for (text, score) in results:
        print(f"{text}\t{score:.4f}")
    if args.heatmap:
        out = results[0][0]
        src = torch.tensor(tr.src_vocab.encode(args.texts[0]) or [1])
        tgt = torch.tensor(tr.tgt_vocab.encode(out, bos=True, eos=True))
        w = tr.model.attention_map(src, tgt)
        vocab = tr.src_vocab.tokenizer
        save_attention_heatmap(w, [vocab.id_to_token(i) for i in src.tolist()],
                               [tr.tgt_vocab.tokenizer.id_to_token(i) for i in tgt[1:].tolist()],
                               args.heatmap, title=args.texts[0])
        print(f"attention heatmap written to {args.heatmap}")
    return 0
