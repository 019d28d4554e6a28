"""Music: compose from real scores (Bach chorales, folk songs) with recurrent models.

The data layer, one module per concept, each imported on first use (``rnnkit.music.Piece``
loads only :mod:`~rnnkit.music.score`; music21 is imported only to read or write files):

* :mod:`~rnnkit.music.score`: :class:`Note` and :class:`Piece` (times in quarter notes),
  :func:`read_score` (MIDI, MusicXML, ABC, Humdrum), :func:`write_midi`,
  :func:`write_musicxml`. Plain data, no torch.
* :mod:`~rnnkit.music.corpus`: music21's four-part Bach :func:`chorales` and the Essen
  :func:`folk_melodies`, parsed once and cached; :func:`split` by a hash of each name.
* :mod:`~rnnkit.music.encoding`: what a model reads and writes (numpy): :class:`PianoRoll`
  (multi-hot frames, the JSB Chorales protocol), :class:`EventVocab` (Performance-RNN
  events), :class:`VoiceFrames` (a token per voice per 16th, as DeepBach); :func:`quantize`
  and :func:`transpositions` (augmentation).

Reading and writing files needs the ``music`` extra: ``pip install "rnnkit[music]"``
(music21, Python >= 3.11).

>>> import rnnkit.music as music
>>> piece = music.Piece([music.Note(60, 0, 1), music.Note(67, 1, 1)], name="fifth")
>>> music.VoiceFrames(grid=0.5, voices=1, low=60, high=67).encode(piece).ravel().tolist()
[2, 1, 9, 1]
"""

from __future__ import annotations

from .._lazy import lazy_names

_NAMES = {
    "Note": "score", "Piece": "score", "ScoreError": "score", "read_score": "score",
    "write_midi": "score", "write_musicxml": "score", "piece_from_music21": "score",
    "piece_to_music21": "score", "pitch_name": "score", "transpose_key": "score",
    "chorales": "corpus", "chorale": "corpus",
    "chorale_names": "corpus", "folk_melodies": "corpus", "split": "corpus",
    "split_of": "corpus", "cache_dir": "corpus", "PianoRoll": "encoding",
    "EventVocab": "encoding", "VoiceFrames": "encoding", "quantize": "encoding",
    "transpositions": "encoding",
}

__all__ = sorted(_NAMES)

__getattr__, __dir__ = lazy_names(__name__, _NAMES, submodules=("score", "corpus", "encoding"))
