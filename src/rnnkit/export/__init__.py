"""Export: ONNX graphs of recurrent layers with their state in and out, verified against
onnxruntime (:mod:`rnnkit.export.onnx`; needs the ``export`` extra)."""

from .onnx import (
    FUSED_CELLS,
    ExportReport,
    checked_report,
    export_graph,
    export_recurrent,
    max_error,
    run_onnx,
    session,
)

__all__ = ["FUSED_CELLS", "ExportReport", "checked_report", "export_graph", "export_recurrent",
           "max_error", "run_onnx", "session"]
