"""Inference: runners for torch, ONNX Runtime and OpenVINO."""
