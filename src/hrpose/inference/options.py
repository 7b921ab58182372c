"""How a pose model is opened and run, as two typed values built once and passed whole.

`RuntimeOptions` (backend, device, precision, threads, streams) says where and how a model runs;
`EstimatorOptions` (the runtime, weights, detector, box threshold, flip, decode, batch, scales,
keypoints) says what `PoseEstimator` does around it. The command line builds them in one place
(`cli/common.estimator_options`); `PoseEstimator`, `open_model`, `ServeSettings`, batch jobs
and Ray actors take them whole. `RuntimeOptions.resolve(backend)` turns what was asked into
what runs (`Runtime`): the precision from the one policy (`hardware.PRECISION_POLICY`), the
threads as a number, streams refused where the runtime would ignore them. Runners take a
`Runtime` and trust it.

Nothing here imports torch or numpy (the command line builds these before any model loads).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..errors import HrposeError
from ..hardware import PRECISION_CHOICES, check_device, cpu_threads, effective_precision

BACKENDS = ("torch", "onnxruntime", "openvino")
DECODE_METHODS = ("classic", "dark", "udp")       # codecs.heatmap.METHODS (a test holds them)
DEFAULT = "default"          # the detector: the zoo's person detector, loaded on use


@dataclass(frozen=True)
class Runtime:
    """A runtime as it runs: `precision` is what the runtime computes in ("file": the
    exported graph's own types), `threads` a number. Made by `RuntimeOptions.resolve`."""

    backend: str
    device: str
    precision: str
    threads: int
    streams: int = 1
    asked: str = "auto"          # the precision asked (auto may step down if a graph needs)


@dataclass(frozen=True)
class RuntimeOptions:
    """Where and how a model runs, as asked. backend None: by the model (torch for zoo names
    and checkpoints, ONNX Runtime for .onnx, OpenVINO for .xml); precision auto: bf16 where
    the hardware has it natively, else fp32; threads None: every core this process may use
    (PyTorch: its own setting, torch.set_num_threads); streams: OpenVINO only (the CPU split
    into that many streams, a batch across them)."""

    backend: str | None = None
    device: str = "cpu"
    precision: str = "auto"
    threads: int | None = None
    streams: int = 1

    def __post_init__(self) -> None:
        if self.backend is not None and self.backend not in BACKENDS:
            raise HrposeError(f"unknown backend {self.backend!r}; choose one of "
                              f"{', '.join(BACKENDS)}")
        if self.precision not in PRECISION_CHOICES:
            raise HrposeError(f"unknown precision {self.precision!r}; choose one of "
                              f"{', '.join(PRECISION_CHOICES)}")
        if self.threads is not None and self.threads < 1:
            raise HrposeError(f"threads must be at least 1, got {self.threads}")
        if self.streams < 1:
            raise HrposeError(f"streams must be at least 1, got {self.streams}")

    def resolve(self, backend: str, *, warn: bool = True) -> Runtime:
        """What runs on `backend` (the model's, when `self.backend` is None): checked and
        resolved here, once; a refusal is one line, a change one warning."""
        if self.backend is not None and self.backend != backend:
            raise HrposeError(f"backend {self.backend!r} asked, {backend!r} chosen")
        device = check_device(self.device)
        if backend != "torch" and device != "cpu":
            raise HrposeError(f"exported files run on the CPU (ONNX Runtime, OpenVINO); "
                              f"device {device!r} is for zoo models and checkpoints")
        if self.streams > 1 and backend != "openvino":
            raise HrposeError(f"--streams {self.streams}: streams are OpenVINO's; {backend} "
                              "would ignore them (drop --streams, or run an exported file on "
                              "--backend openvino)")
        precision = effective_precision(backend, self.precision, device, warn=warn)
        return Runtime(backend, device, precision, self._threads(backend), self.streams,
                       self.precision)

    def _threads(self, backend: str) -> int:
        """The threads given; else PyTorch keeps its own setting (torch.set_num_threads, by
        default the cores), and ONNX Runtime and OpenVINO take every core of the process."""
        if self.threads:
            return self.threads
        if backend == "torch":
            import torch

            return torch.get_num_threads()
        return cpu_threads()

    def for_detector(self) -> RuntimeOptions:
        """The person detector's: an exported file on the CPU, by its own file's runtime, one
        stream; fp32 or bf16 when one of them was asked, else its own choice (auto)."""
        precision = self.precision if self.precision in ("fp32", "bf16") else "auto"
        return RuntimeOptions(None, "cpu", precision, self.threads, 1)


def split_threads(runtime: RuntimeOptions) -> tuple[RuntimeOptions, RuntimeOptions]:
    """The pose model's and the detector's runtimes when both run at once (the service's
    two batchers): the detector a third of the threads (at least one), the pose model the
    rest, or all of them below three (1 core: 1 and 1; 2: 2 and 1; 4: 3 and 1; 8: 6 and 2)."""
    total = cpu_threads(runtime.threads)
    detector = max(1, total // 3)
    pose = total - detector if total >= 3 else total
    return (replace(runtime, threads=pose), replace(runtime.for_detector(), threads=detector))


@dataclass(frozen=True)
class EstimatorOptions:
    """What `PoseEstimator` does around its model.

    weights: a zoo model's weights (a file, URL, "imagenet", "none"; None: published).
    detector: "default" (the zoo's PicoDet pedestrian detector, downloaded on first use), a zoo
    detector name, an exported detector file or a `Detector`; None: the whole image is one
    person (the command line's `--detector none`). box_threshold: the detector's score
    threshold. flip: the flip test. decode: classic | dark | udp (None: the model's own).
    batch: crops per model call (None: 8 on a CPU, 32 on a GPU). scales: bottom-up test
    scales. keypoints: the set of a model file that states none (a name or a set file)."""

    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)
    weights: str | None = None
    detector: Any = DEFAULT
    box_threshold: float = 0.5
    flip: bool = False
    decode: str | None = None
    batch: int | None = None
    scales: tuple[float, ...] = (1.0,)
    keypoints: Any = None

    def __post_init__(self) -> None:
        if self.detector == "none":
            object.__setattr__(self, "detector", None)
        elif isinstance(self.detector, Path):
            object.__setattr__(self, "detector", str(self.detector))
        object.__setattr__(self, "scales", tuple(float(s) for s in self.scales))
        if self.batch is not None and self.batch < 1:
            raise HrposeError(f"batch must be at least 1, got {self.batch}")
        if not 0 <= self.box_threshold <= 1:
            raise HrposeError(f"box_threshold must be in [0, 1], got {self.box_threshold}")
        if not self.scales or min(self.scales) <= 0:
            raise HrposeError(f"scales must be positive numbers, got {self.scales}")
        if self.decode is not None and self.decode not in DECODE_METHODS:
            raise HrposeError(f"unknown decode {self.decode!r}; choose one of "
                              f"{', '.join(DECODE_METHODS)}")

    @property
    def model_batch(self) -> int:
        """Crops per model call. On a CPU, HRNet-W32 runs fastest at 4-8 (measured: 11.3
        images/s at 8, 8.0 at 32, whose activations spill out of the caches); GPUs want more."""
        if self.batch is not None:
            return self.batch
        return 8 if self.runtime.device == "cpu" else 32

    def changed(self, **values: Any) -> EstimatorOptions:
        """These options with some changed, by keywords of either type (`backend=`, `flip=`,
        ...; or `runtime=` whole): the Python vocabulary of `PoseEstimator(model, **keywords)`,
        the command line's flags with _ for -. Checked as a new value is."""
        runtime_names = {f.name for f in fields(RuntimeOptions)}
        own = {f.name for f in fields(self)}
        unknown = sorted(set(values) - runtime_names - own)
        if unknown:
            raise HrposeError(f"unknown estimator option {unknown[0]!r}; the options are "
                              f"{', '.join(sorted(runtime_names | own - {'runtime'}))}")
        runtime = values.pop("runtime", self.runtime)
        runtime = replace(runtime, **{k: values.pop(k) for k in list(values)
                                      if k in runtime_names})
        return replace(self, runtime=runtime, **values)

    @classmethod
    def build(cls, **values: Any) -> EstimatorOptions:
        """The defaults changed by keywords (`changed`)."""
        return cls().changed(**values)

    def to_dict(self) -> dict:
        """Plain values (JSON), for worker processes and Ray actors; a `Detector` object does
        not travel."""
        if self.detector is not None and not isinstance(self.detector, str):
            raise HrposeError("a Detector object cannot be sent to another process; give a "
                              "detector name or file")
        keypoints = self.keypoints
        if keypoints is not None and not isinstance(keypoints, str):
            keypoints = keypoints.to_dict()          # a Skeleton: its serial form
        return {**dataclasses.asdict(replace(self, keypoints=None)), "keypoints": keypoints}

    @classmethod
    def from_dict(cls, values: dict) -> EstimatorOptions:
        from ..skeletons import parse_skeleton

        values = dict(values)
        runtime = RuntimeOptions(**values.pop("runtime", {}))
        if isinstance(values.get("keypoints"), dict):
            values["keypoints"] = parse_skeleton(values["keypoints"])
        return cls(runtime=runtime, **values)
