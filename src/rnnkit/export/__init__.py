"""Export: ONNX graphs of recurrent layers with their state in and out, verified against
onnxruntime (:mod:`rnnkit.export.onnx`; needs the ``export`` extra)."""

from .onnx import FUSED_CELLS, ExportReport, export_recurrent, run_onnx

__all__ = ["FUSED_CELLS", "ExportReport", "export_recurrent", "run_onnx"]
