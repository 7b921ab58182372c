"""Export to ONNX and OpenVINO (fp32, FP16, INT8), verification, and the runtime benchmark."""

from .exporter import FORMATS, ExportResult, default_output, export_model

__all__ = ["FORMATS", "ExportResult", "default_output", "export_model"]
