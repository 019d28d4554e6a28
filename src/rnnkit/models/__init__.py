"""Task models built on :class:`rnnkit.Recurrent`; import each from its own module
(``rnnkit.models.language_model``, ``rnnkit.models.classifier``, ...)."""
