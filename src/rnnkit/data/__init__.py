"""Data: tokenizers, windowed series, and registries of bundled or package-shipped data sets.
Import each from its own module (``rnnkit.data.text``, ``rnnkit.data.timeseries``, ...)."""
