"""Speech recognition: a DeepSpeech2-shaped BiRNN + CTC recogniser in plain torch.

* :mod:`~rnnkit.speech.audio`: reading audio of any rate and channels, checks, chunking;
* :mod:`~rnnkit.speech.features`: log-mel features (offline and streaming);
  :mod:`~rnnkit.speech.normalization`: their normalisation and SpecAugment;
* :mod:`~rnnkit.speech.augment`: speed, noise, gain and telephone-band perturbation;
* :mod:`~rnnkit.speech.text`: transcript normalisation and alphabets;
* :mod:`~rnnkit.speech.corpora`: the asterisk recordings (English) and the connected-digit
  builder; :mod:`~rnnkit.speech.fillets`: the Fish Fillets Dutch voices;
  :mod:`~rnnkit.speech.tts`: training sets synthesised with espeak-ng / flite;
* :mod:`~rnnkit.speech.model`: the acoustic model (conv front end + :class:`Recurrent` + CTC
  output), streaming for unidirectional models;
* :mod:`~rnnkit.speech.recognizer`: :class:`SpeechRecognizer`, the application (train,
  transcribe, stream, evaluate, save); decoding runs through :mod:`rnnkit.decoding.ctc`.

>>> from rnnkit.speech import SpeechRecognizer, SpeechConfig, load_audio
"""

from __future__ import annotations

from .._lazy import lazy_names

_NAMES = {
    "SilentAudioError": "audio", "check_audio": "audio", "iter_chunks": "audio",
    "load_audio": "audio", "resample": "audio", "DecodeConfig": "config",
    "SpeechConfig": "config", "speech_train": "config", "LogMel": "features",
    "mel_filterbank": "features", "AcousticModel": "model", "FeatureStats": "normalization",
    "normalize_utterance": "normalization", "spec_augment": "normalization",
    "EvalResult": "recognizer", "SpeechRecognizer": "recognizer", "Transcript": "recognizer",
    "ENGLISH_ALPHABET": "text", "alphabet_from_texts": "text", "normalize_transcript": "text",
}

__all__ = sorted(_NAMES)

__getattr__, __dir__ = lazy_names(__name__, _NAMES)
