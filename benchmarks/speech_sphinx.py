"""PocketSphinx peer for the speech benchmark: an off-the-shelf recogniser to compare with.

``SphinxRecognizer("lm")`` decodes with the bundled US-English acoustic model, dictionary and
trigram language model (``pocketsphinx/model/en-us``); ``SphinxRecognizer("digits")`` swaps
the language model for a JSGF grammar that accepts only digit strings::

    public <digits> = (zero | oh | one | two | three | four | five | six | seven | eight | nine)+ ;

and reports ``oh`` as ``zero``. Input is 16 kHz mono float audio in [-1, 1] (the model's rate);
output is lowercase words separated by single spaces (fillers such as ``<sil>`` dropped).

Run ``python benchmarks/speech_sphinx.py`` to hear it on a few Asterisk prompts.
Needs ``pip install pocketsphinx`` (5.x).
"""

from __future__ import annotations

import re

import numpy as np

DIGITS_JSGF = (
    "#JSGF V1.0;\n"
    "grammar digits;\n"
    "public <digits> = (zero | oh | one | two | three | four | five | six | seven | eight"
    " | nine)+ ;\n"
)


class SphinxRecognizer:
    """PocketSphinx 5 decoder in ``mode`` ``"lm"`` (open vocabulary) or ``"digits"``."""

    rate = 16000

    def __init__(self, mode: str = "lm"):
        if mode not in ("lm", "digits"):
            raise ValueError(f"mode must be 'lm' or 'digits', got {mode!r}")
        try:
            from pocketsphinx import Decoder
        except ImportError as err:
            raise ImportError("SphinxRecognizer needs `pip install pocketsphinx`") from err
        self.mode = mode
        # the default config loads model/en-us: acoustic model, cmudict and the en-us trigram LM
        self.decoder = Decoder(loglevel="ERROR")
        if mode == "digits":
            self.decoder.add_jsgf_string("digits", DIGITS_JSGF)
            self.decoder.activate_search("digits")

    def transcribe(self, samples_16k: np.ndarray) -> str:
        """Words heard in ``samples_16k`` (float, 16 kHz mono, about [-1, 1])."""
        x = np.asarray(samples_16k, dtype=np.float64).reshape(-1)
        pcm = (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        d = self.decoder
        d.start_utt()
        d.process_raw(pcm, no_search=False, full_utt=True)
        d.end_utt()
        hyp = d.hyp()
        text = hyp.hypstr if hyp is not None else ""
        words = [re.sub(r"\(\d+\)$", "", w) for w in text.lower().split()]  # drop "(2)" variants
        words = [w for w in words if not (w.startswith("<") or w.startswith("["))]
        if self.mode == "digits":
            words = ["zero" if w == "oh" else w for w in words]
        return " ".join(words)


def _demo() -> None:  # pragma: no cover - manual check
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from rnnkit.speech.corpora import _read_audio, asterisk_corpus, asterisk_split, connected_digits

    utts = {u.id: u for u in asterisk_corpus()}
    lm, digits = SphinxRecognizer("lm"), SphinxRecognizer("digits")
    for cid in ("auth-thankyou", "vm-goodbye", "conf-getpin", "digits/7"):
        if cid in utts:
            u = utts[cid]
            x = _read_audio(u.path, 16000)
            print(f"{cid}: ref={u.text!r}")
            print(f"  lm={lm.transcribe(x)!r} digits={digits.transcribe(x)!r}")
    split = asterisk_split(list(utts.values()))
    from rnnkit.speech.corpora import asterisk_digit_clips

    for x, text in connected_digits(asterisk_digit_clips(split["digits"]), n=3):
        print(f"connected: ref={text!r} digits={digits.transcribe(x.numpy())!r}")


if __name__ == "__main__":
    _demo()
