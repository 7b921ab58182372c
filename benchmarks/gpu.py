"""The GPU campaign in one run (about 6 minutes on one data-centre GPU), each figure beside plain
PyTorch fp32 measured in the same run:

1. HRNet-W32 256x192 inference at batch 32 and 256: plain fp32 (the baseline); fp16 and bf16
   autocast; fp16 + channels_last; torch.compile of that (mode max-autotune-no-cudagraphs);
   CUDA graphs (the fp16 channels_last model captured once, replayed); ONNX Runtime's CUDA and
   TensorRT execution providers when onnxruntime-gpu is installed (skipped, and said, if not).
2. HRNet-W32 256x192 training, batch 32, images/s including data loading from the synthetic
   people set (JPEG files, the published augmentation): plain fp32 with the CPU loader (the
   baseline); fp16 AMP + channels_last with the CPU loader (cv2 warp + numpy targets in the
   workers); the same with the crops warped (`affine_grid` + `grid_sample`) and the targets
   encoded on the GPU (data/device_augment.py). Loader workers = the CPU's cores, pinned memory.
3. HigherHRNet-W32 512 inference, batch 8: plain fp32 against fp16 + channels_last.

Anchors from elsewhere (not run here): 1831 img/s FP16 batch 32 (HRNetPose on an MR-V100,
ONNX/IGIE) and 45 img/s per GPU training (PaddleDetection, V100).

    python benchmarks/gpu.py [--device cuda] [--seconds 2] [--no-report] [--json FILE]
    python benchmarks/gpu.py --device cpu --smoke     # every code path at toy sizes (make test)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median, report

from hrpose.codecs.heatmap import HeatmapCodec
from hrpose.data.coco import load_keypoints
from hrpose.data.device_augment import TopDownSources, collate_sources, render_batch
from hrpose.data.synthetic import write_split
from hrpose.data.topdown import TopDownDataset
from hrpose.data.transforms import normalize_tensor
from hrpose.engine.losses import joints_mse
from hrpose.models.zoo import IMAGENET_MEAN, IMAGENET_STD, create_model


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rate(step: Callable[[], int], device: torch.device, seconds: float, warmup: int = 3
         ) -> float:
    """Items/s of `step` (returns the items it did): warm-up calls, then calls for about
    `seconds`, timed with the device synchronised; median of three such windows."""
    for _ in range(warmup):
        step()
    sync(device)
    windows = []
    for _ in range(3):
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 3:
            done += step()
        sync(device)
        windows.append(done / (time.perf_counter() - start))
    return median(windows)


def inference_paths(model: torch.nn.Module, device: torch.device, batch: int, input_hw: tuple,
                    smoke: bool) -> dict[str, Callable[[], int]]:
    x = torch.randn(batch, 3, *input_hw, device=device)
    fp16 = torch.float16 if device.type == "cuda" else torch.bfloat16
    last = model.to(memory_format=torch.channels_last)
    x_last = x.contiguous(memory_format=torch.channels_last)

    def run(m: torch.nn.Module, inp: torch.Tensor, dtype: torch.dtype | None) -> Callable:
        @torch.inference_mode()
        def step() -> int:
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                m(inp)
            return batch
        return step

    paths = {"plain PyTorch fp32": run(model.to(memory_format=torch.contiguous_format), x, None),
             "fp16 autocast": run(model, x, fp16),
             "bf16 autocast": run(model, x, torch.bfloat16),
             "fp16 + channels_last": run(last, x_last, fp16)}
    if not smoke:
        compiled = torch.compile(last, mode="max-autotune-no-cudagraphs")
        paths["fp16 + channels_last + torch.compile"] = run(compiled, x_last, fp16)
    if device.type == "cuda":
        paths["fp16 + channels_last + CUDA graph"] = cuda_graph(last, x_last, fp16, batch)
    return paths


def cuda_graph(model: torch.nn.Module, x: torch.Tensor, dtype: torch.dtype, batch: int
               ) -> Callable[[], int]:
    """The model captured once into a CUDA graph and replayed (no per-kernel launch cost)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream), torch.inference_mode(), torch.autocast("cuda", dtype):
        for _ in range(3):
            model(x)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.inference_mode(), torch.autocast("cuda", dtype):
        model(x)

    def step() -> int:
        graph.replay()
        return batch
    return step


def onnxruntime_paths(model: torch.nn.Module, batch: int, work: Path) -> dict[str, Callable]:
    """ONNX Runtime's CUDA and TensorRT providers, where onnxruntime-gpu offers them."""
    try:
        import onnxruntime as ort
    except ImportError:
        return {}
    wanted = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider")
              if p in ort.get_available_providers()]
    if not wanted:
        return {}
    from hrpose.export.onnx import export_onnx

    path = export_onnx(model.float().cpu(), (256, 192), work / "w32.onnx", {})
    x = torch.randn(batch, 3, 256, 192).numpy()
    paths = {}
    for provider in wanted:
        options = {"trt_fp16_enable": True} if provider.startswith("Tensorrt") else {}
        session = ort.InferenceSession(str(path), providers=[(provider, options)])
        binding = session.io_binding()
        binding.bind_cpu_input("image", x)
        binding.bind_output("heatmaps", "cuda")

        def step(session: object = session, binding: object = binding) -> int:
            session.run_with_iobinding(binding)
            return batch
        paths[f"ONNX Runtime {provider.removesuffix('ExecutionProvider')}"] = step
    return paths


def training_paths(device: torch.device, root: Path, batch: int, workers: int, smoke: bool
                   ) -> dict[str, Callable[[], int]]:
    data = load_keypoints(root / "annotations" / "person_keypoints_train2017.json")
    codec = HeatmapCodec((192, 256), (48, 64))
    cpu_set = TopDownDataset(data, root / "train2017", codec)
    mean = torch.tensor(IMAGENET_MEAN, device=device)
    std = torch.tensor(IMAGENET_STD, device=device)
    loader_args = {"batch_size": batch, "shuffle": True, "drop_last": True,
                   "num_workers": workers, "pin_memory": device.type == "cuda",
                   "persistent_workers": workers > 0}
    cpu_loader = DataLoader(cpu_set, **loader_args)
    device_loader = DataLoader(TopDownSources(cpu_set), collate_fn=collate_sources,
                               **loader_args)
    fp16 = torch.float16 if device.type == "cuda" else torch.bfloat16

    def trainer(loader: DataLoader, amp: bool, on_device: bool) -> Callable[[], int]:
        model = create_model("hrnet_w32_256x192", device=device).train()
        if amp:
            model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        scaler = torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda")
        batches = iter(())

        def step() -> int:
            nonlocal batches
            item = next(batches, None)
            if item is None:
                batches = iter(loader)
                item = next(batches)
            if on_device:
                item = render_batch(item, codec, device)
                images = item["image"] / 255
                images = (images - mean[:, None, None]) / std[:, None, None]
            else:
                images = normalize_tensor(item["image"].to(device, non_blocking=True),
                                          mean, std)
            if amp:
                images = images.contiguous(memory_format=torch.channels_last)
            target = item["heatmaps"].to(device, non_blocking=True)
            weights = item["weights"].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=fp16, enabled=amp):
                loss = joints_mse(model(images).float(), target, weights).mean()
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            return len(images)
        return step

    return {"plain PyTorch fp32, CPU augmentation": trainer(cpu_loader, False, False),
            "fp16 AMP + channels_last, CPU augmentation": trainer(cpu_loader, True, False),
            "fp16 AMP + channels_last, GPU augmentation": trainer(device_loader, True, True)}


def measure(paths: dict[str, Callable[[], int]], device: torch.device, seconds: float
            ) -> dict[str, float]:
    out = {}
    for name, step in paths.items():
        try:
            out[name] = rate(step, device, seconds)
        except Exception as e:           # one path that fails (a compiler, a provider) is said
            print(f"{name}: failed ({type(e).__name__}: {str(e).splitlines()[0][:120]})",
                  file=sys.stderr)
            continue
        print(f"{name}: {out[name]:.1f}/s", flush=True)
    return out


def table(title: str, figures: dict[str, float], unit: str) -> list[str]:
    base = next(iter(figures.values()), None)
    lines = [f"**{title}**", "", f"| path | {unit} | vs plain PyTorch fp32 |", "|---|---:|---:|"]
    for name, value in figures.items():
        lines.append(f"| {name} | {value:.1f} | {value / base:.2f}x |")
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--seconds", type=float, default=2.0, help="timing per path")
    parser.add_argument("--smoke", action="store_true",
                        help="toy sizes: check that every path runs (CPU tests)")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device: run on a GPU machine, or --device cpu --smoke to check the "
                 "script")
    torch.backends.cudnn.benchmark = True
    started = time.perf_counter()
    batches = (2,) if args.smoke else (32, 256)
    seconds = 0.3 if args.smoke else args.seconds
    figures: dict[str, dict[str, float]] = {}
    work = Path(tempfile.mkdtemp(prefix="hrpose-gpu-"))
    w32 = create_model("hrnet_w32_256x192", device=device).eval()
    for batch in batches:
        paths = inference_paths(w32, device, batch, (256, 192), args.smoke)
        if device.type == "cuda":
            with contextlib.suppress(Exception):
                paths |= onnxruntime_paths(create_model("hrnet_w32_256x192"), batch, work)
        figures[f"HRNet-W32 256x192 inference, batch {batch}"] = measure(paths, device, seconds)
    del w32
    images = 40 if args.smoke else 2000
    write_split(work / "synthetic", "train", images, seed=0, progress=False)
    workers = 0 if args.smoke else min(os.cpu_count() or 1, 16)
    train_batch = 2 if args.smoke else 32
    figures[f"HRNet-W32 256x192 training, batch {train_batch}, with data loading ({workers} "
            "workers)"] = measure(training_paths(device, work / "synthetic", train_batch,
                                                 workers, args.smoke), device, seconds * 2)
    higher = create_model("higherhrnet_w32_512", device=device).eval()
    size = (128, 128) if args.smoke else (512, 512)
    paths = inference_paths(higher, device, 2 if args.smoke else 8, size, True)
    figures["HigherHRNet-W32 512 inference, batch " + ("2" if args.smoke else "8")] = measure(
        {k: v for k, v in paths.items() if k in ("plain PyTorch fp32", "fp16 + channels_last")},
        device, seconds)
    total = time.perf_counter() - started
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    lines = [f"`python benchmarks/gpu.py` on {name} (torch {torch.__version__}); medians of "
             f"three timing windows per path; whole run {total / 60:.1f} min. Anchors from "
             "elsewhere: 1831 img/s FP16 batch 32 inference (HRNetPose, MR-V100, ONNX/IGIE), "
             "45 img/s per GPU training (PaddleDetection, V100).", ""]
    for title, values in figures.items():
        lines += table(title, values, "images/s")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": name, "seconds": total,
                                               "figures": figures}, indent=1))
    report("GPU campaign: HRNet-W32 and HigherHRNet-W32", lines,
           append=not (args.no_report or args.smoke))


if __name__ == "__main__":
    main()
