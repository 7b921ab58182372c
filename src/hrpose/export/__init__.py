"""Export to ONNX and OpenVINO (fp32, FP16, INT8), verification, and the runtime benchmark."""

from .exporter import ExportResult, default_output, export_model
from .formats import FORMATS, ExportFormat

__all__ = ["FORMATS", "ExportFormat", "ExportResult", "default_output", "export_model"]
