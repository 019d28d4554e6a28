"""Export: any rnnkit model as ONNX with its recurrent state in and out, verified against
onnxruntime as it is written (needs the ``export`` extra).

``rnnkit.export(model, path)`` (this package is callable) picks the exporter of the model's
family; each writes the graph(s), checks them with onnxruntime against torch at several batch
sizes and lengths, writes the description :mod:`rnnkit.onnx` reads (``<path>.json``) and
returns the report(s):

=========================================  ==================================================
model                                      graph(s)
=========================================  ==================================================
:class:`~rnnkit.Recurrent`                 sequence (``stream=False``) or one step
                                           (:func:`~rnnkit.export.onnx.export_recurrent`)
``LanguageModel``                          one step (``stream=True``, default) or sequence
``TextClassifier``, ``SequenceClassifier`` probabilities (+ attention) with lengths
``SequenceTagger``                         per-step logits with lengths
``Translator``, ``Seq2Seq``                encoder + one decoder step (beam search outside)
``Forecaster``                             the network's forecast parameters
``SpeechRecognizer``                       CTC log-probabilities from log-mel features
=========================================  ==================================================

Building blocks for other models: :func:`~rnnkit.export.onnx.export_checked`,
:func:`~rnnkit.export.onnx.write_metadata`; :func:`register_exporter` adds a family.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from typing import Any

from .onnx import (
    FUSED_CELLS,
    ExportReport,
    checked_report,
    export_checked,
    export_graph,
    export_recurrent,
    max_error,
    run_onnx,
    session,
    write_metadata,
)

__all__ = ["EXPORTERS", "FUSED_CELLS", "ExportReport", "checked_report", "export",
           "export_checked", "export_graph", "export_recurrent", "max_error",
           "register_exporter", "run_onnx", "session", "write_metadata"]

#: "module:Class" of a model -> "module:function" that exports it (first match along the MRO)
EXPORTERS: dict[str, str] = {
    "rnnkit.recurrent:Recurrent": "rnnkit.export.onnx:export_recurrent",
    "rnnkit.text.language_model:LanguageModel": "rnnkit.text.onnx:export_language_model",
    "rnnkit.text.classifier:TextClassifier": "rnnkit.text.onnx_labels:export_text_classifier",
    "rnnkit.text.classifier:SequenceClassifier":
        "rnnkit.text.onnx_labels:export_sequence_classifier",
    "rnnkit.text.tagger:SequenceTagger": "rnnkit.text.onnx_labels:export_tagger",
    "rnnkit.text.translation:Translator": "rnnkit.text.onnx_seq2seq:export_translator",
    "rnnkit.text.seq2seq:Seq2Seq": "rnnkit.text.onnx_seq2seq:export_seq2seq",
    "rnnkit.forecast.forecaster:Forecaster": "rnnkit.forecast.onnx:export_forecaster",
    "rnnkit.speech.recognizer:SpeechRecognizer": "rnnkit.speech.onnx:export_recognizer",
}


def register_exporter(model_class: type | str, exporter: Any) -> None:
    """Make :func:`export` use ``exporter`` (a function ``(model, path, **options) ->
    report``, or ``"module:function"``) for ``model_class`` and its subclasses."""
    key = model_class if isinstance(model_class, str) else \
        f"{model_class.__module__}:{model_class.__qualname__}"
    EXPORTERS[key] = exporter


def exporter_for(model: Any) -> Any:
    """The export function of ``model``'s family; a model without one is a TypeError that
    lists the families."""
    for cls in type(model).__mro__:
        target = EXPORTERS.get(f"{cls.__module__}:{cls.__qualname__}")
        if target is not None:
            if isinstance(target, str):
                module, _, name = target.partition(":")
                target = getattr(importlib.import_module(module), name)
            return target
    known = ", ".join(sorted(k.rpartition(":")[2] for k in EXPORTERS))
    raise TypeError(f"rnnkit.export has no exporter for a {type(model).__name__} (it exports: "
                    f"{known}); build the graph from rnnkit.export.export_checked, or add "
                    f"one with rnnkit.export.register_exporter")


def export(model: Any, path: str | os.PathLike, **options: Any) -> Any:
    """Write ``model`` as ONNX at ``path`` with the exporter of its family (see the module
    docstring), verified with onnxruntime; ``options`` go to that exporter (``stream=`` for
    layers and language models, ``tolerance=`` for all). Returns its report(s)."""
    return exporter_for(model)(_on_cpu(model), os.fspath(path), **options)


def _on_cpu(model: Any) -> Any:
    """``model`` itself when all its tensors are on the CPU, else a copy there (the trace and
    its onnxruntime check run on the CPU; the caller's model stays where it is)."""
    import copy

    import torch

    modules = [model] if isinstance(model, torch.nn.Module) else \
        [v for v in vars(model).values() if isinstance(v, torch.nn.Module)]
    if all(t.device.type == "cpu" for m in modules
           for t in [*m.parameters(), *m.buffers()]):
        return model
    model = copy.deepcopy(model)
    if isinstance(model, torch.nn.Module):
        return model.cpu()
    for name, value in vars(model).items():
        if isinstance(value, torch.nn.Module):
            setattr(model, name, value.cpu())
    return model


class _CallableModule(types.ModuleType):
    """``rnnkit.export(model, path)`` calls :func:`export`: the package is the verb."""

    def __call__(self, model: Any, path: str | os.PathLike, **options: Any) -> Any:
        return export(model, path, **options)


sys.modules[__name__].__class__ = _CallableModule
