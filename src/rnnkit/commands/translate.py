"""``rnnkit translate``: train an attention encoder-decoder and translate with beam search.

    rnnkit translate pairs --tgt fr --n 20000 --out pairs.tsv     # numbers in words (num2words)
    rnnkit translate train --pairs pairs.tsv --out-dir runs/en-fr --max-time 600
    rnnkit translate train --config en-fr.toml --model.hidden_size 256
    rnnkit translate run runs/en-fr/best.pt "one thousand, nine hundred and eighty-seven"
    rnnkit translate runs/en-fr/best.pt "twenty-one" --beam 5 --heatmap att.png  # = run

Every option of ``translate train`` is a field of a config dataclass (``[model]``:
Seq2SeqConfig, ``[data]``: TranslateDataConfig, ``[train]``: TrainConfig), settable as a
``[section]`` key of a TOML file given with ``--config``, as ``--section.field VALUE`` or with
its short alias (``--hidden 256``); later wins: default < TOML < flag.
"""

from __future__ import annotations

import argparse
import dataclasses

from .options import add_command_options, build_configs, with_defaults

__all__ = ["TranslateDataConfig", "register"]


@dataclasses.dataclass
class TranslateDataConfig:
    """The data settings of ``rnnkit translate train``.

    Attributes:
        pairs: UTF-8 file of source<TAB>target lines.
        level: target tokens: "word", or "char" (German number compounds).
        batch_size: sentence pairs per batch.
        val_fraction: share of the pairs held out for validation (and best.pt).
    """

    pairs: str | None = None
    level: str = "word"
    batch_size: int = 64
    val_fraction: float = 0.05


def _sections() -> dict[str, type]:
    from ..text.seq2seq import Seq2SeqConfig
    from ..train import TrainConfig

    return {"model": with_defaults(Seq2SeqConfig, src_vocab_size=5, tgt_vocab_size=5),
            "data": TranslateDataConfig,
            "train": with_defaults(TrainConfig, lr=3e-3, scheduler="cosine", warmup_steps=100)}


# today's short flags; every field also has --section.field
ALIASES = {
    "data.pairs": "--pairs", "data.level": "--level", "data.batch_size": "--batch-size",
    "data.val_fraction": "--val-fraction",
    "model.attention": "--attention", "model.cell": "--cell", "model.embed_size": "--embed",
    "model.hidden_size": "--hidden", "model.teacher_forcing": "--teacher-forcing",
    "model.dropout": "--dropout",
    "train.epochs": "--epochs", "train.max_time": "--max-time", "train.lr": "--lr",
    "train.seed": "--seed", "train.device": "--device", "train.out_dir": "--out-dir",
}
NOT_FLAGS = {"model.src_vocab_size", "model.tgt_vocab_size"}  # from the data


class _RunByDefault(argparse._SubParsersAction):
    """Subcommands ``train``, ``pairs``, ``run``; any other first word is a checkpoint of
    ``run`` (so ``rnnkit translate CHECKPOINT TEXT`` keeps working)."""

    class _Anything(dict):
        def __contains__(self, key: object) -> bool:  # argparse's choice check passes all
            return True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.choices = self._Anything()  # the subparsers stay in self._name_parser_map

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if values and values[0] not in self._name_parser_map:
            values = ["run", *values]
        super().__call__(parser, namespace, values, option_string)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("translate", help="sequence-to-sequence translation",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", metavar="{train,pairs,run}",
                                action=_RunByDefault)
    tr = sub.add_parser("train", help="train on source<TAB>target lines",
                        description="Train an attention encoder-decoder. Options come from the "
                        "defaults, then --config FILE.toml ([model], [data], [train] tables), "
                        "then flags.")
    add_command_options(tr, _sections(), ALIASES, NOT_FLAGS)
    tr.add_argument("--input-feeding", dest="model.input_feeding", action="store_const",
                    const=True, default=argparse.SUPPRESS,
                    help="feed the attentional state back (= --model.input_feeding true)")
    tr.set_defaults(func=_train)

    pa = sub.add_parser("pairs", help="write number-in-words pairs (num2words)")
    pa.add_argument("--out", required=True, help="TSV file to write")
    pa.add_argument("--src", default="en")
    pa.add_argument("--tgt", default="fr")
    pa.add_argument("--n", type=int, default=20000, help="numbers in the chosen split")
    pa.add_argument("--split", default="train", choices=["train", "valid", "test"])
    pa.add_argument("--seed", type=int, default=0)
    pa.set_defaults(func=_pairs)

    run = sub.add_parser("run", aliases=["predict"],
                         help="translate texts with a trained model (the default: "
                         "`rnnkit translate CHECKPOINT TEXT` is `run`)")
    run.add_argument("checkpoint", help="best.pt or last.pt from `rnnkit translate train`")
    run.add_argument("texts", nargs="+", help="one or more source texts (quote each)")
    run.add_argument("--beam", type=int, default=5, help="beam size (1 = greedy)")
    run.add_argument("--length-penalty", type=float, default=1.0)
    run.add_argument("--max-len", type=int, default=None)
    run.add_argument("--heatmap", default=None,
                     help="write the attention heatmap of the first translation to this PNG")
    run.set_defaults(func=_translate)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _train(args: argparse.Namespace) -> int:
    from ..text.translation import read_pairs_tsv, train_translator

    cfg = build_configs(args, _sections(), NOT_FLAGS,
                        {"data.pairs": "--pairs", "train.out_dir": "--out-dir"})
    data, train = cfg["data"], cfg["train"]
    pairs = read_pairs_tsv(data.pairs)
    tr, metrics = train_translator(pairs, cfg["model"], train, val_fraction=data.val_fraction,
                                   level=data.level, batch_size=data.batch_size,
                                   seed=train.seed)
    print(f"trained on {len(pairs)} pairs; vocab source {len(tr.src_vocab)}, target "
          f"{len(tr.tgt_vocab)}; validation loss {metrics['loss']:.4f}, token accuracy "
          f"{metrics['token_accuracy']:.4f}; checkpoints in {train.out_dir}")
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

    from ..text.translation import Translator, save_attention_heatmap

    tr = Translator.from_checkpoint(args.checkpoint)
    results = tr.translate(args.texts, beam_size=args.beam, max_len=args.max_len,
                           length_penalty=args.length_penalty)
    for (text, score) in results:
        print(f"{text}\t{score:.4f}")
    if args.heatmap:
        out = results[0][0]
        src = torch.tensor(tr.src_vocab.encode(args.texts[0]) or [tr.src_vocab.unk_id])
        tgt = torch.tensor(tr.tgt_vocab.encode(out, bos=True, eos=True))
        w = tr.model.attention_map(src, tgt)
        vocab = tr.src_vocab.tokenizer
        save_attention_heatmap(w, [vocab.id_to_token(i) for i in src.tolist()],
                               [tr.tgt_vocab.tokenizer.id_to_token(i) for i in tgt[1:].tolist()],
                               args.heatmap, title=args.texts[0])
        print(f"attention heatmap written to {args.heatmap}")
    return 0
