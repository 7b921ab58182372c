"""Runners: one small interface over PyTorch, ONNX Runtime and OpenVINO.

A runner takes a float32 batch (N, 3, H, W), already normalised, and returns the model's heatmaps
(N, K, h, w) as float32 numpy. Exported files state their input size; a file with a fixed batch
size is reshaped to a dynamic batch where the runtime allows, else run in chunks of its size.
`run_all` gives every output of an exported file (a person detector has boxes and scores), and
`metadata` its key/value metadata (ONNX metadata_props, OpenVINO rt_info "hrpose" section).

`open_model` turns a zoo name, checkpoint or exported file into a `LoadedModel`: the runner and
what running it needs (normalisation, keypoint set, codec), read from the model itself.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ..errors import HrposeError, first_line
from ..models.card import ModelCard
from ..models.loading import CHECKPOINTS, load_model
from ..models.zoo import MODEL_FILES, MODELS, unknown_model
from ..runtimes import (
    deploy_keypoint_set,
    onnx_metadata,
    openvino_core,
    openvino_metadata,
    read_openvino,
)
from ..skeletons import Skeleton, get_skeleton, unnamed_skeleton
from .options import Runtime, RuntimeOptions

STATIC_SHAPE_BYTES = 32 * 2**20    # models with fewer weight bytes get a compilation per batch size
MAX_SHAPES = 8                     # compilations kept for a model whose input H and W vary


class Runner(Protocol):
    """What every runner (and wrapper of one) has: `run_all` gives every output of the model
    (a bottom-up model's two heatmap maps, a detector's boxes and scores), a call its heatmaps;
    `backend` and `precision` say what runs (precision "file": an exported graph's own)."""

    input_hw: tuple[int, int]
    backend: str
    precision: str

    def run_all(self, batch: np.ndarray) -> list[np.ndarray]: ...

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


def check_finite(output: np.ndarray) -> np.ndarray:
    """A model output, passed on only when finite: NaN must never reach keypoints, results
    files or drawings."""
    if not np.isfinite(output).all():
        raise HrposeError("the model's output holds NaN or infinite values (broken weights, "
                          "or an fp16 overflow: try --precision fp32)")
    return output


class TorchRunner:
    """A PyTorch module; bf16 / fp16 run under autocast, outputs come back as float32. Its
    calls use `runtime.threads` CPU threads and give the process's setting back after, so
    opening a model changes nothing for the rest of the program."""

    backend = "torch"

    def __init__(self, model: torch.nn.Module, input_hw: tuple[int, int],
                 runtime: Runtime | None = None) -> None:
        runtime = runtime or RuntimeOptions().resolve("torch")
        self.device = torch.device(runtime.device)
        self.model = model.to(self.device).eval()
        self.input_hw, self.precision, self.threads = tuple(input_hw), runtime.precision, \
            runtime.threads

    @torch.inference_mode()
    def run_all(self, batch: np.ndarray) -> list[np.ndarray]:
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        before = torch.get_num_threads()
        if before != self.threads:
            torch.set_num_threads(self.threads)
        try:
            with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
                out = self.model(x)
        finally:
            if before != self.threads:
                torch.set_num_threads(before)
        outs = out if isinstance(out, (list, tuple)) else [out]
        return [o.float().cpu().numpy() for o in outs]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.run_all(batch)[0]


class OnnxRunner:
    """An ONNX file through ONNX Runtime on the CPU. `heatmaps=False` opens a model whose
    outputs are not heatmaps (a detector): use `run_all`."""

    backend = "onnxruntime"
    precision = "file"             # the graph's own types: ONNX Runtime takes no hint

    def __init__(self, path: str | Path, runtime: Runtime | None = None,
                 heatmaps: bool = True) -> None:
        runtime = runtime or RuntimeOptions().resolve("onnxruntime")
        try:
            import onnxruntime as ort
        except ImportError:
            raise HrposeError("ONNX models need onnxruntime: pip install 'hrpose[runtimes]'") \
                from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = runtime.threads
        try:
            self.session = ort.InferenceSession(str(path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as e:  # ORT raises its own exception types for bad files
            raise HrposeError(f"{path}: cannot load the ONNX model ({first_line(e)})") \
                from None
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.input_hw = _input_hw(path, inp.shape, self.metadata)
        self.fixed_batch = inp.shape[0] if isinstance(inp.shape[0], int) else None
        self.output_shapes = [list(o.shape) for o in self.session.get_outputs()]
        self.heatmap_index = _first_4d(path, self.output_shapes) if heatmaps else None
        self.path = path

    def run_all(self, batch: np.ndarray) -> list[np.ndarray]:
        try:
            outs = [self.session.run(None, {self.input_name: c}) for c in
                    _chunks(batch, self.fixed_batch)]
        except Exception as e:           # a broken graph that loaded
            raise _run_failure(self.path, e) from None
        return _merge(outs, len(batch))

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.run_all(batch)[self.heatmap_index]


class OpenVINORunner:
    """An OpenVINO IR (.xml + .bin) or ONNX file through OpenVINO on the CPU.

    The runtime's precision is the inference precision hint: fp32 asks for f32 (OpenVINO's CPU
    default on bf16-capable CPUs is bf16), bf16 for bf16. `auto`: what was asked was auto (a
    graph that will not build in bf16 then runs with the f32 hint). `heatmaps=False` opens a
    model whose outputs are not heatmaps."""

    backend = "openvino"

    def __init__(self, path: str | Path, runtime: Runtime | None = None,
                 heatmaps: bool = True) -> None:
        runtime = runtime or RuntimeOptions().resolve("openvino")
        self.auto, precision, streams = runtime.asked == "auto", runtime.precision, \
            runtime.streams
        model = read_openvino(path)
        import openvino as ov

        shape = model.inputs[0].get_partial_shape()
        dims = [d.get_length() if d.is_static else None for d in shape]
        self.metadata = openvino_metadata(model) or (
            onnx_metadata(path) if Path(path).suffix.lower() == ".onnx" else {})
        self.input_hw = _input_hw(path, dims, self.metadata)
        self.fixed_batch = None
        if dims[0] is not None:
            try:                             # most heatmap models take any batch size
                model.reshape({model.inputs[0]: ov.PartialShape(
                    [-1, *(-1 if d is None else d for d in dims[1:])])})
            except Exception:
                self.fixed_batch = dims[0]
        hint = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}[precision]
        self.precision, self.path, self.model = precision, path, model
        self.config = {"INFERENCE_PRECISION_HINT": hint,
                       "INFERENCE_NUM_THREADS": runtime.threads}
        # A light model runs 10-25% faster compiled for one batch size than for any (PP-TinyPose
        # bf16: 6.8 against 8.6 ms at batch 1, 6.1 against 7.2 at 2); each size costs a
        # compilation (0.4 s) and a copy of the weights, so only small models get them.
        # A model whose input height and width vary (bottom-up: whole images) is compiled for
        # each input shape it meets (a few: the short side is fixed, the long side a multiple
        # of 64), the last MAX_SHAPES kept: OpenVINO's dynamic-shape kernels are slower.
        self.dynamic_hw = None in dims[2:]
        self.static = self.dynamic_hw or (self.fixed_batch is None and
                                          _constant_bytes(model) <= STATIC_SHAPE_BYTES)
        # streams > 1: the CPU split into that many streams of threads, a batch into as many
        # parts run at once (a light model's memory-bound layers scale better so than across
        # threads: PP-TinyPose bf16 batch 8, 166 against 142 images/s with 2 streams on 2 cores)
        self.streams = streams
        if streams > 1:
            self.config["NUM_STREAMS"] = streams
        self.requests: dict[tuple[int, ...], list] = {}
        if not self.static:
            compiled = self._compile(model)
            self.requests[()] = [compiled.create_infer_request() for _ in range(streams)]
        # compiled now: a graph that will not build fails on opening
        self._request((self.fixed_batch or 1, 3, *self.input_hw))
        self.output_shapes = [[d.get_length() if d.is_static else None
                               for d in o.get_partial_shape()] for o in model.outputs]
        self.heatmap_index = _first_4d(path, self.output_shapes) if heatmaps else None

    def _compile(self, model: object) -> object:
        try:
            return openvino_core().compile_model(model, "CPU", self.config)
        except Exception as e:           # a graph OpenVINO reads but cannot build
            if self.auto and self.precision == "bf16":
                # OpenVINO 2026.4 builds no bf16 kernels for some QDQ graphs (PP-TinyPose's
                # INT8 ONNX): "auto" then means the f32 hint, said once
                warnings.warn(f"{self.path}: OpenVINO cannot build this graph in bf16; it runs "
                              "with the fp32 hint", stacklevel=3)
                self.precision = "fp32"
                self.config["INFERENCE_PRECISION_HINT"] = "f32"
                return self._compile(model)
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise HrposeError(f"{self.path}: cannot compile the OpenVINO model ({first})") \
                from None

    def _request(self, shape: tuple[int, ...], stream: int = 0) -> object:
        """The infer request for an input shape and stream: its own static compilation (light
        models and varying image sizes, compiled on first use), else the dynamic one's."""
        key = tuple(shape) if self.static else ()
        if key in self.requests:
            self.requests[key] = self.requests.pop(key)          # the most recently used
        else:
            import openvino as ov

            shaped = self.model.clone()
            shaped.reshape({shaped.inputs[0]: ov.PartialShape(list(shape))})
            compiled = self._compile(shaped)
            if self.dynamic_hw and len(self.requests) >= MAX_SHAPES:
                del self.requests[next(iter(self.requests))]
            self.requests[key] = [compiled.create_infer_request() for _ in range(self.streams)]
        return self.requests[key][stream]

    def run_all(self, batch: np.ndarray) -> list[np.ndarray]:
        outs = []
        try:
            for chunk in _chunks(batch, self.fixed_batch):
                parts = np.array_split(chunk, min(self.streams, len(chunk))) \
                    if self.fixed_batch is None else [chunk]
                requests = [self._request(p.shape, i) for i, p in enumerate(parts)]
                if len(parts) == 1:
                    requests[0].infer({0: np.ascontiguousarray(chunk)})
                else:
                    for request, part in zip(requests, parts):
                        request.start_async({0: np.ascontiguousarray(part)})
                    for request in requests:
                        request.wait()
                outs.extend([np.array(r.get_output_tensor(i).data)
                             for i in range(len(r.model_outputs))] for r in requests)
        except HrposeError:
            raise
        except Exception as e:           # a broken graph that compiled
            raise _run_failure(self.path, e) from None
        return _merge(outs, len(batch))

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.run_all(batch)[self.heatmap_index]


def _constant_bytes(model: object) -> int:
    """The bytes of a model's weights (its Constant nodes)."""
    return sum(op.get_byte_size() for op in model.get_ops() if op.get_type_name() == "Constant")


def _run_failure(path: str | Path, error: Exception) -> HrposeError:
    first = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
    return HrposeError(f"{path}: the model failed to run ({first})")


def _merge(outs: list[list[np.ndarray]], n: int) -> list[np.ndarray]:
    """Per-chunk output lists -> one float32 array per output, padded rows dropped."""
    return [np.concatenate([o[i] for o in outs])[:n].astype(np.float32, copy=False)
            for i in range(len(outs[0]))]


def _input_hw(path: str | Path, shape: list, metadata: dict[str, str]) -> tuple[int, int]:
    """The model's input size: its input's fixed H and W, or for an input whose H and W vary
    (a bottom-up model's whole images) the size its card states (the test-time short side)."""
    if len(shape) == 4 and all(isinstance(d, int) for d in shape[2:]):
        return int(shape[2]), int(shape[3])
    if len(shape) == 4 and not any(isinstance(d, int) for d in shape[2:]) and \
            metadata.get("input_hw"):
        return ModelCard.from_metadata(metadata, str(path)).input_hw    # checked there
    raise HrposeError(f"{path}: the model's input {list(shape)} is not N x 3 x H x W with a "
                      "fixed H and W (or a varying H and W and an input_hw in its metadata)")


def _first_4d(path: str | Path, shapes: list[list]) -> int:
    for i, shape in enumerate(shapes):
        if len(shape) == 4:
            return i
    raise HrposeError(f"{path}: not a heatmap model: no output is N x K x h x w heatmaps "
                      f"(outputs {shapes})")


def _chunks(batch: np.ndarray, size: int | None) -> list[np.ndarray]:
    """Split for a model with a fixed batch size; a short last chunk is padded with zeros (runners
    keep only the real rows)."""
    if size is None or len(batch) == size:
        return [batch]
    out = []
    for i in range(0, len(batch), size):
        chunk = batch[i : i + size]
        if len(chunk) < size:
            chunk = np.concatenate([chunk, np.zeros((size - len(chunk), *chunk.shape[1:]),
                                                    chunk.dtype)])
        out.append(chunk)
    return out


@dataclass(frozen=True)
class ExportedRuntime:
    """A runtime of exported files: its runner, and the file suffixes it opens (the first
    runtime in RUNTIMES that opens a suffix is that suffix's default)."""

    name: str
    runner: type
    opens: tuple[str, ...]
    title: str = ""                  # its name in tables ("ONNX Runtime"); default `name`


RUNTIMES: tuple[ExportedRuntime, ...] = (
    ExportedRuntime("onnxruntime", OnnxRunner, (".onnx",), "ONNX Runtime"),
    ExportedRuntime("openvino", OpenVINORunner, (".xml", ".onnx"), "OpenVINO"),
)
EXPORTED_SUFFIXES = tuple(dict.fromkeys(s for r in RUNTIMES for s in r.opens))


def exported_file(path: str | Path) -> Path:
    """An exported model file, or a folder holding exactly one (.onnx or .xml)."""
    path = Path(path)
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix.lower() in EXPORTED_SUFFIXES)
        if len(found) != 1:
            raise HrposeError(f"{path}: a model folder must hold exactly one .onnx or .xml "
                              f"file; found {[p.name for p in found] or 'none'}")
        return found[0]
    if not path.is_file():
        beside = sorted(p.name for p in path.parent.glob("*")
                        if p.suffix.lower() in EXPORTED_SUFFIXES) if path.parent.is_dir() else []
        raise HrposeError(f"{path}: no such file" + (f" (the folder has {', '.join(beside)})"
                                                      if beside else ""))
    return path


def exported_runtime(path: Path, backend: str | None) -> ExportedRuntime:
    """The runtime of an exported file: the one asked, else its suffix's default."""
    suffix = path.suffix.lower()
    if suffix not in EXPORTED_SUFFIXES:
        raise HrposeError(f"{path}: an exported model is a .onnx or an OpenVINO .xml file")
    runtime = next((r for r in RUNTIMES if r.name == backend) if backend else
                   (r for r in RUNTIMES if suffix in r.opens), None)
    if runtime is None or suffix not in runtime.opens:
        raise HrposeError(f"{path}: backend {backend!r} cannot run a {suffix} file")
    return runtime


def open_exported(path: str | Path, options: RuntimeOptions = RuntimeOptions(),
                  heatmaps: bool = True) -> Runner:
    """A runner for an exported file: .onnx runs on ONNX Runtime (or OpenVINO when asked),
    .xml on OpenVINO."""
    path = exported_file(path)
    chosen = exported_runtime(path, options.backend)
    try:
        runtime = options.resolve(chosen.name)
    except HrposeError as e:
        raise HrposeError(f"{path}: {e}") from None
    return chosen.runner(path, runtime, heatmaps)


class BGRInput:
    """For a model trained on BGR images: normalise in RGB as usual, then swap the channels."""

    def __init__(self, runner: Runner) -> None:
        self.runner, self.input_hw = runner, runner.input_hw
        self.backend, self.precision = runner.backend, runner.precision

    def run_all(self, batch: np.ndarray) -> list[np.ndarray]:
        return self.runner.run_all(np.ascontiguousarray(batch[:, ::-1]))

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.runner(np.ascontiguousarray(batch[:, ::-1]))


@dataclass
class LoadedModel:
    """A runnable heatmap model and its card (normalisation, keypoint set, codec, kind)."""

    runner: Runner
    card: ModelCard

    def bottomup_keypoint_set(self) -> Skeleton:
        """A bottom-up model's keypoint set: its card's, else its joints unnamed."""
        return self.card.keypoints or unnamed_skeleton(bottomup_joints(self.runner))


def runner_record(runner: Runner) -> dict[str, str]:
    """What runs, as resolved (never "auto"): backend, precision and device (what
    metrics.json records)."""
    return {"backend": runner.backend, "precision": runner.precision,
            "device": str(getattr(runner, "device", "cpu"))}


def describe_model(source: str, loaded: LoadedModel) -> str:
    """What runs, for a start-up line: "tinypose_256x192.xml (top-down 256x192, 17 joints,
    int8 weights) on openvino, cpu, fp32". The runner's precision is the one it computes in
    ("file": an exported graph's own types)."""
    card, runner = loaded.card, loaded.runner
    h, w = card.input_hw
    joints = f", {card.keypoints.num_joints} joints" if card.keypoints else ""
    weights = f", {card.precision} weights" if card.precision != "fp32" else ""
    streams = getattr(runner, "streams", 1)
    kind = "bottom-up" if card.bottomup else "top-down"
    ran = runner_record(runner)
    return (f"{Path(source).name or source} ({kind} {h}x{w}{joints}{weights}) on "
            f"{ran['backend']}, {ran['device']}, {ran['precision']}"
            f"{f', {streams} streams' if streams > 1 else ''}")


def bottomup_joints(runner: Runner) -> int:
    """The joints a bottom-up model predicts: an exported file's last output states them (a
    run at a new image size would cost OpenVINO a compilation); a PyTorch model runs once on
    a small image."""
    shapes = getattr(runner, "output_shapes", None)
    if shapes and isinstance(shapes[-1][1], int):
        return shapes[-1][1]
    return runner.run_all(np.zeros((1, 3, 64, 64), np.float32))[-1].shape[1]


def open_model(model: str, options: RuntimeOptions = RuntimeOptions(),
               weights: str | None = None) -> LoadedModel:
    """A runner for a zoo model name (its published weights; `weights`: a file, URL,
    "imagenet", or "none" for random initialisation), a checkpoint file, or an exported .onnx /
    .xml file, run as `options` say. Each states its card (models/card.py); an exported file
    without hrpose metadata gets ImageNet mean/std and the classic codec, and the keypoint set
    its PaddleDetection deployment config (infer_cfg.yml) names, if any."""
    suffix = Path(model).suffix.lower()
    if model in MODELS or (suffix in CHECKPOINTS and Path(model).is_file()):
        if options.backend not in (None, "torch"):
            raise HrposeError(f"{model}: a PyTorch model runs on torch; export it for "
                              f"{options.backend}")
        runtime = options.resolve("torch")
        net, card = load_model(model, weights)
        return LoadedModel(TorchRunner(net, card.input_hw, runtime), card)
    if weights is not None:
        raise HrposeError(f"{model}: --weights is for zoo models; an exported file carries its "
                          "own weights")
    if not suffix and not Path(model).is_dir():
        raise unknown_model(model, MODEL_FILES)
    runner = open_exported(model, options)
    card = ModelCard.from_metadata(runner.metadata, str(model))
    stated = deploy_keypoint_set(model) if card.keypoints is None else None
    if stated:                                   # PaddleDetection's export (infer_cfg.yml)
        card = replace(card, keypoints=get_skeleton(stated))
    return LoadedModel(runner, replace(card, input_hw=runner.input_hw))
