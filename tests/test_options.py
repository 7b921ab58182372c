"""The options value: built once from the command line (or Python keywords), resolved once by
the one precision policy, passed whole to the estimator, the service and batch jobs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from hrpose import hardware
from hrpose.cli import build_parser
from hrpose.cli.common import estimator_options
from hrpose.errors import HrposeError
from hrpose.inference.backends import TorchRunner
from hrpose.inference.options import (
    EstimatorOptions,
    RuntimeOptions,
    split_threads,
)
from hrpose.serve.settings import ServeSettings
from hrpose.skeletons import get_skeleton

from .helpers import tiny_hrnet

NATIVE = frozenset({"avx2", "avx512f", "avx512_bf16"})
PLAIN = frozenset({"avx2"})


def resolved(runtime: str, asked: str, flags: frozenset[str], monkeypatch) -> tuple[str, list]:
    monkeypatch.setattr(hardware, "cpu_flags", lambda: flags)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        precision = RuntimeOptions(precision=asked).resolve(runtime).precision
    return precision, [str(w.message) for w in caught]


@pytest.mark.parametrize("runtime, asked, flags, effective, warns", [
    ("torch", "auto", NATIVE, "bf16", False), ("torch", "auto", PLAIN, "fp32", False),
    ("torch", "bf16", NATIVE, "bf16", False), ("torch", "bf16", PLAIN, "bf16", True),
    ("torch", "fp32", NATIVE, "fp32", False),
    ("openvino", "auto", NATIVE, "bf16", False), ("openvino", "auto", PLAIN, "fp32", False),
    ("openvino", "bf16", NATIVE, "bf16", False), ("openvino", "bf16", PLAIN, "fp32", True),
    ("onnxruntime", "auto", NATIVE, "file", False), ("onnxruntime", "fp32", PLAIN, "file", False),
])
def test_one_precision_policy_says_what_runs(runtime, asked, flags, effective, warns,
                                             monkeypatch):
    precision, said = resolved(runtime, asked, flags, monkeypatch)
    assert precision == effective and bool(said) == warns
    assert hardware.PRECISION_POLICY[(runtime, "cpu+bf16" if flags == NATIVE else "cpu")][
        asked].effective == effective


@pytest.mark.parametrize("runtime, asked, reason", [
    ("torch", "fp16", "fp16 needs a CUDA device"),
    ("onnxruntime", "bf16", "ONNX Runtime runs the file's own precision"),
    ("onnxruntime", "fp16", "ONNX Runtime runs the file's own precision"),
])
def test_the_policy_refuses_in_one_line(runtime, asked, reason, monkeypatch):
    with pytest.raises(HrposeError, match=reason) as e:
        resolved(runtime, asked, NATIVE, monkeypatch)
    assert "\n" not in str(e.value)


def test_options_are_checked_when_built():
    for bad, message in (({"backend": "tensorrt"}, "unknown backend 'tensorrt'"),
                         ({"precision": "int4"}, "unknown precision 'int4'"),
                         ({"threads": 0}, "threads must be at least 1"),
                         ({"streams": 0}, "streams must be at least 1"),
                         ({"batch": 0}, "batch must be at least 1"),
                         ({"box_threshold": 2.0}, r"box_threshold must be in \[0, 1\]"),
                         ({"scales": ()}, "scales must be positive"),
                         ({"decode": "argmax"}, "unknown decode 'argmax'"),
                         ({"flipp": True}, "unknown estimator option 'flipp'")):
        with pytest.raises(HrposeError, match=message):
            EstimatorOptions.build(**bad)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_streams_are_refused_where_the_runtime_would_ignore_them(backend):
    with pytest.raises(HrposeError, match="streams are OpenVINO's"):
        RuntimeOptions(streams=2).resolve(backend)
    assert RuntimeOptions(streams=2).resolve("openvino").streams == 2


def test_a_torch_runner_uses_its_threads_and_leaves_the_process_setting_alone():
    before = torch.get_num_threads()
    runner = TorchRunner(tiny_hrnet(), (64, 64), RuntimeOptions(threads=1).resolve("torch"))
    seen = []
    runner.model.register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
    runner(np.zeros((1, 3, 64, 64), np.float32))
    assert seen == [1] and torch.get_num_threads() == before


def test_threads_not_given_are_every_core_and_the_service_splits_them():
    import os

    assert RuntimeOptions().resolve("openvino").threads == len(os.sched_getaffinity(0))
    assert RuntimeOptions().resolve("torch").threads == torch.get_num_threads()
    for total, pose, detector in ((1, 1, 1), (2, 2, 1), (4, 3, 1), (8, 6, 2), (16, 11, 5)):
        a, b = split_threads(RuntimeOptions(threads=total))
        assert (a.threads, b.threads) == (pose, detector)
        assert b.backend is None and b.device == "cpu" and b.streams == 1


def test_the_detector_runs_fp32_or_bf16_when_asked_else_its_own_choice():
    for asked, detector in (("auto", "auto"), ("fp32", "fp32"), ("bf16", "bf16"),
                            ("fp16", "auto")):
        assert RuntimeOptions(precision=asked).for_detector().precision == detector


def parse(command: str, *flags: str):
    args = {"infer": ["infer", "in.jpg", "--model", "m.xml", "--out", "o"],
            "serve": ["serve", "m.xml"]}[command]
    return build_parser().parse_args([*args, *flags])


def test_infer_and_serve_build_the_same_options_from_the_same_flags():
    flags = ["--detector", "none", "--precision", "fp32", "--threads", "2", "--flip",
             "--decode", "dark", "--box-threshold", "0.4", "--batch", "4", "--keypoints",
             "coco", "--weights", "w.safetensors", "--backend", "openvino", "--streams", "2"]
    infer = estimator_options(parse("infer", *flags))
    serve = estimator_options(parse("serve", *flags), batch=parse("serve", *flags).max_batch)
    assert infer == serve == EstimatorOptions(
        RuntimeOptions("openvino", "cpu", "fp32", 2, 2), weights="w.safetensors",
        detector=None, box_threshold=0.4, flip=True, decode="dark", batch=4, keypoints="coco")
    # no --detector: the zoo's default one; the Python keyword says the same
    assert estimator_options(parse("infer")).detector == "default" == EstimatorOptions().detector
    assert EstimatorOptions.build(detector="none") == EstimatorOptions.build(detector=None)


def test_every_model_flag_is_an_option_name():
    """The command line's flags and the Python keywords are one vocabulary."""
    from dataclasses import fields

    commands = build_parser()._subparsers._group_actions[0].choices
    names = {f.name for f in (*fields(EstimatorOptions), *fields(RuntimeOptions))} - {"runtime"}
    for command in ("infer", "serve"):
        dests = {a.dest for a in commands[command]._actions}
        assert names - {"batch"} <= dests, command
    assert "batch" in {a.dest for a in commands["infer"]._actions}
    assert "--batch" in next(a for a in commands["serve"]._actions
                             if a.dest == "max_batch").option_strings
    options = EstimatorOptions.build(**{"flip": True, "threads": 3})
    assert (options.flip, options.runtime.threads) == (True, 3)


def test_options_travel_whole_to_worker_processes():
    options = EstimatorOptions.build(detector="picodet.xml", precision="bf16", threads=2,
                                     flip=True, scales=(0.5, 1), keypoints=get_skeleton("mpii"))
    assert EstimatorOptions.from_dict(options.to_dict()) == options
    settings = ServeSettings(model="m.xml", options=options, max_batch=4)
    assert ServeSettings.from_json(settings.to_json()) == settings
    with pytest.raises(HrposeError, match="cannot be sent to another process"):
        EstimatorOptions(detector=lambda images: []).to_dict()
