"""The ground floor for runtimes: the process's one OpenVINO Core, reading OpenVINO and ONNX
files with one-line errors, and the hrpose metadata they carry (OpenVINO rt_info "hrpose"
section; ONNX metadata_props)."""

from __future__ import annotations

import functools
from pathlib import Path

from .errors import HrposeError


@functools.cache
def openvino_core() -> object:
    """The process's one OpenVINO Core. Each Core's CPU plugin installs a signal alt-stack (for
    AMX) and puts back the previous one when it is destroyed; two Cores destroyed out of order
    leave the thread on freed memory, and the next Python signal handler (Ctrl-C, a child's
    exit) then crashes the process. One Core that lives as long as the process avoids that."""
    try:
        import openvino as ov
    except ImportError:
        raise HrposeError("OpenVINO models need openvino: pip install 'hrpose[runtimes]'") \
            from None
    return ov.Core()


def openvino_metadata(model: object) -> dict[str, str]:
    """The "hrpose" section of an OpenVINO model's rt_info, as strings."""
    try:
        info = model.get_rt_info()  # type: ignore[attr-defined]
        if "hrpose" not in info:
            return {}
        section = model.get_rt_info(["hrpose"]).astype(dict)  # type: ignore[attr-defined]
        return {str(k): v.astype(str) if hasattr(v, "astype") else str(v)
                for k, v in section.items()}
    except Exception:  # a model without rt_info, or an older OpenVINO API
        return {}


def read_openvino(path: str | Path) -> object:
    """An ONNX or IR file as an OpenVINO model, with a one-line error for a bad file: the one
    place hrpose reads a model with OpenVINO."""
    core = openvino_core()
    try:
        return core.read_model(str(path))  # type: ignore[attr-defined]
    except Exception as e:  # OpenVINO raises RuntimeError with long multi-line text
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise HrposeError(f"{path}: cannot read the OpenVINO model ({first})") from None


def onnx_metadata(path: str | Path) -> dict[str, str]:
    """An ONNX file's metadata_props, which OpenVINO's reader leaves out of rt_info ({} for
    a file onnx cannot parse: the runtime that opens it says why)."""
    try:
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # no onnx package, or a file only the runtime's own reader takes
        return {}
    return {p.key: p.value for p in proto.metadata_props}


def set_openvino_metadata(model: object, metadata: dict[str, str]) -> None:
    for key, value in metadata.items():
        model.set_rt_info(str(value), ["hrpose", key])  # type: ignore[attr-defined]




# PaddleDetection's deployment config (infer_cfg.yml, beside an exported model) names the
# evaluation the model was trained for; for keypoint models that is its keypoint set.
DEPLOY_CONFIG = "infer_cfg.yml"
DEPLOY_METRICS = {"KeyPointTopDownCOCOEval": "coco", "KeyPointTopDownMPIIEval": "mpii"}


def deploy_keypoint_set(model: str | Path) -> str | None:
    """The built-in keypoint set a PaddleDetection deployment config beside `model` (a file,
    or its folder) states by its `metric`; None when there is no such config or it names
    another metric."""
    path = Path(model)
    config = (path if path.is_dir() else path.parent) / DEPLOY_CONFIG
    if not config.is_file():
        return None
    from .io import read_yaml  # io loads the image codecs: only when a file is read

    value = read_yaml(config, "deployment config")
    return DEPLOY_METRICS.get(value.get("metric")) if isinstance(value, dict) else None
