"""The text wing: language models and generation, classifiers, taggers and translation.

* :mod:`~rnnkit.text.language_model`: the network (embedding, :class:`~rnnkit.Recurrent`, tied
  softmax), loss, sampling;
* :mod:`~rnnkit.text.generation`: the language-model application (fit on a text file, sample
  while training, the demo);
* :mod:`~rnnkit.text.classifier` / :mod:`~rnnkit.text.tagger`: sequence classification and
  per-token tagging;
* :mod:`~rnnkit.text.seq2seq`: the attention encoder-decoder network;
* :mod:`~rnnkit.text.translation`: the :class:`Translator` application and its training.

Import each from its own module, e.g. ``from rnnkit.text.classifier import TextClassifier``.
"""
