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

from .audio import SilentAudioError, check_audio, iter_chunks, load_audio, resample
from .config import DecodeConfig, SpeechConfig, speech_train
from .features import LogMel, mel_filterbank
from .model import AcousticModel
from .normalization import FeatureStats, normalize_utterance, spec_augment
from .recognizer import EvalResult, SpeechRecognizer, Transcript
from .text import ENGLISH_ALPHABET, alphabet_from_texts, normalize_transcript

__all__ = [
    "AcousticModel",
    "DecodeConfig",
    "ENGLISH_ALPHABET",
    "EvalResult",
    "FeatureStats",
    "LogMel",
    "SilentAudioError",
    "SpeechConfig",
    "SpeechRecognizer",
    "Transcript",
    "alphabet_from_texts",
    "check_audio",
    "iter_chunks",
    "load_audio",
    "mel_filterbank",
    "normalize_utterance",
    "normalize_transcript",
    "resample",
    "spec_augment",
    "speech_train",
]
