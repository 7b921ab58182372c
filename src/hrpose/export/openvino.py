"""OpenVINO IR export: from an ONNX file (hrpose's own export, or one from elsewhere) or another
IR; FP16 weights (compressed; inference precision stays a runtime choice); INT8 by NNCF's
post-training quantisation calibrated on real crops. Metadata goes in rt_info["hrpose"]."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import HrposeError
from ..runtimes import set_openvino_metadata


def save_openvino(model: object, path: str | Path, metadata: dict[str, str],
                  fp16: bool = False) -> Path:
    """Writes PATH (.xml) and its .bin: written in a temporary folder beside them, then moved
    into place, the .bin first, so a reader never sees a new .xml with an old .bin."""
    import openvino as ov

    path = Path(path)
    if path.suffix.lower() != ".xml":
        raise HrposeError(f"{path}: an OpenVINO model is written as a .xml file (+ .bin)")
    path.parent.mkdir(parents=True, exist_ok=True)
    set_openvino_metadata(model, metadata)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.stem}.") as work:
        tmp = Path(work) / "model.xml"
        ov.save_model(model, str(tmp), compress_to_fp16=fp16)
        os.replace(tmp.with_suffix(".bin"), path.with_suffix(".bin"))
        os.replace(tmp, path)
    return path


# Left in float in models with depthwise convolutions (the LiteHRNet family, PP-TinyPose):
# quantised, PP-TinyPose loses 0.12 COCO AP on coco-mini-train (0.58 -> 0.46; the sums alone
# in float 0.52, the depthwise alone 0.48; both, as here, 0.56: benchmarks/int8_tinypose.py).
DEPTHWISE_FLOAT_TYPES = ("Add", "GroupConvolution")


def quantize_openvino(model: object, calibration: Sequence[np.ndarray]) -> object:
    """INT8 by NNCF post-training quantisation: per-channel int8 weights, int8 activations
    with ranges from `calibration` (normalised float32 batches), then NNCF's bias correction.
    Models with depthwise convolutions keep `DEPTHWISE_FLOAT_TYPES` in float."""
    types = {op.get_type_name() for op in model.get_ordered_ops()}  # type: ignore[attr-defined]
    ignored = ({"types": list(DEPTHWISE_FLOAT_TYPES)} if "GroupConvolution" in types else None)
    return nncf_quantize(model, list(calibration), ignored)


def nncf_quantize(model: object, items: list, ignored: dict | None) -> object:
    """NNCF's post-training quantisation of an OpenVINO or ONNX model on calibration `items`
    (what the model's inference takes), leaving `ignored` (IgnoredScope fields) in float."""
    try:
        import nncf
    except ImportError:
        raise HrposeError("INT8 export needs nncf: pip install 'hrpose[export]'") from None
    logging.getLogger("nncf").setLevel(logging.ERROR)
    scope = nncf.IgnoredScope(**ignored, validate=False) if ignored else None
    # NNCF draws its progress bars on stdout; stdout is for results (--json)
    # MIXED: symmetric weights, asymmetric activations (most activations here follow a ReLU or
    # are skewed). The overflow fix keeps weights in 7 bits so that CPUs without VNNI, whose
    # int8 kernels sum u8 x s8 pairs in int16, do not saturate: the file then runs alike on
    # every x86 CPU. PP-TinyPose, coco-mini-train AP gap to fp32 (default preset and fix ->
    # these): OpenVINO 0.028 -> 0.028 with VNNI and 0.032 -> 0.026 without, ONNX 0.059 -> 0.025.
    # Activation ranges from histograms (the range that minimises the quantisation error)
    # rather than min-max: PP-TinyPose on coco-mini-train 0.550 -> 0.560 (fp32 0.581), at the
    # same speed (benchmarks/int8_tinypose.py).
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        OverflowFix,
    )
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    with contextlib.redirect_stdout(sys.stderr):
        return nncf.quantize(model, nncf.Dataset(items), subset_size=len(items),
                             ignored_scope=scope, preset=nncf.QuantizationPreset.MIXED,
                             advanced_parameters=AdvancedQuantizationParameters(
                                 overflow_fix=OverflowFix.ENABLE,
                                 activations_range_estimator_params=(
                                     RangeEstimatorParametersSet.HISTOGRAM)))
