"""``rnnkit vision``: CNN + RNN hybrids.

    rnnkit vision caption train --out-dir runs/cap          # captioning on pictogram scenes
    rnnkit vision caption runs/cap/best.pt image.png        # caption any image
    rnnkit vision read train --out-dir runs/ocr             # text-line recognition (CRNN + CTC)
    rnnkit vision read runs/ocr/best.pt line.png            # (= read text CKPT IMAGE...)
    rnnkit vision video train --out-dir runs/video          # ConvLSTM next-frame prediction
    rnnkit vision video predict runs/video/best.pt --out pred.png

Each action lives in its own module (``vision_caption``, ``vision_read``, ``vision_video``),
registered here under one ``vision`` parser. Needs the ``vision`` extra and ``make
vision-data`` (fonts).
"""

from __future__ import annotations

import argparse
import importlib

__all__ = ["register"]

#: action -> the module under rnnkit.commands that defines ``register(subparsers)``
ACTIONS = {"caption": "vision_caption", "read": "vision_read", "video": "vision_video"}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``vision caption|read|video``."""
    parser = subparsers.add_parser("vision", help="vision: image captioning, text-line "
                                   "recognition, ConvLSTM video", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="vision_action", metavar="ACTION")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
    for module in ACTIONS.values():
        try:
            mod = importlib.import_module(f"{__package__}.{module}")
        except ModuleNotFoundError as e:
            if e.name != f"{__package__}.{module}":
                raise
            continue  # not built yet
        mod.register(sub)
