"""The speed paths of issue 20 compute what the plain ones do: OpenVINO's per-batch-size static
compilations and streams, the one-pass normalisation, the constant-shape channel shuffle in
exported LiteHRNets, and int8-stored quantised weights."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from hrpose.data.transforms import normalize
from hrpose.inference.backends import OpenVINORunner
from hrpose.inference.options import RuntimeOptions
from hrpose.models.litehrnet import channel_shuffle

from .helpers import TINYPOSE_XML as TINYPOSE
from .helpers import shared_data


def test_normalize_equals_the_textbook_formula():
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (3, 32, 24, 3), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    expected = ((crops / 255.0 - np.array(mean)) / np.array(std)).transpose(0, 3, 1, 2)
    out = normalize(crops, mean, std)
    assert out.dtype == np.float32 and out.shape == (3, 3, 32, 24) and out.flags.c_contiguous
    np.testing.assert_allclose(out, expected, atol=2e-6)
    assert normalize(crops[:0], mean, std).shape == (0, 3, 32, 24)
    gray = normalize(crops[..., :1], (0.5,), (0.25,))
    np.testing.assert_allclose(gray[:, 0], (crops[..., 0] / 255.0 - 0.5) / 0.25, atol=2e-6)


def test_openvino_static_shapes_and_streams_give_the_dynamic_graphs_heatmaps():
    path = shared_data(TINYPOSE)
    x = np.random.default_rng(1).standard_normal((8, 3, 256, 192)).astype(np.float32)
    fp32 = RuntimeOptions(precision="fp32")
    plain = OpenVINORunner(path, fp32.resolve("openvino"))
    assert plain.static                      # a light model: one compilation per batch size
    two = OpenVINORunner(path, replace(fp32, streams=2).resolve("openvino"))
    for n in (1, 3, 8):
        expected = plain(x[:n])
        np.testing.assert_allclose(two(x[:n]), expected, atol=1e-4)
        # row by row equals the batch (no padding or cross-talk between rows)
        np.testing.assert_allclose(np.concatenate([plain(x[i : i + 1]) for i in range(n)]),
                                   expected, atol=1e-4)
    # one compilation per input shape: batch sizes here (two streams split a batch in two)
    assert set(plain.requests) == {(n, 3, 256, 192) for n in (1, 3, 8)}
    assert set(two.requests) == {(n, 3, 256, 192) for n in (1, 2, 4)}
    assert all(len(r) == 2 for r in two.requests.values())


def test_channel_shuffle_exports_with_constant_shapes(tmp_path):
    import onnx

    from hrpose.export.onnx import export_onnx
    from hrpose.models.zoo import create_model

    x = torch.arange(2 * 8 * 3 * 2, dtype=torch.float32).reshape(2, 8, 3, 2)
    shuffled = channel_shuffle(x)
    assert torch.equal(shuffled[:, 1], x[:, 4]) and torch.equal(shuffled[:, 2], x[:, 1])
    model = create_model("litehrnet_18_256x192").eval()
    path = export_onnx(model, (128, 96), tmp_path / "lite.onnx", {})
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    # no shape arithmetic per shuffle: 2903 nodes with 326 Gathers before, for LiteHRNet-30
    assert "Gather" not in ops and ops.count("Shape") <= 3
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batch = torch.randn(3, 3, 128, 96)
    with torch.no_grad():
        expected = model(batch).numpy()
    np.testing.assert_allclose(session.run(None, {"image": batch.numpy()})[0], expected,
                               atol=1e-4)


def test_device_rendering_gives_the_cpu_pipelines_crops_and_targets(tmp_path):
    """The GPU path's code on CPU tensors: the same plans rendered by grid_sample + torch
    encoding against cv2 + numpy, on the synthetic people set with the published augmentation
    (rotations, flips, half-body, scale) and on all three codecs."""
    from torch.utils.data import DataLoader

    from hrpose.codecs.heatmap import HeatmapCodec
    from hrpose.data.coco import load_keypoints
    from hrpose.data.device_augment import TopDownSources, collate_sources, render_batch
    from hrpose.data.synthetic import write_split
    from hrpose.data.topdown import TopDownDataset

    write_split(tmp_path / "synthetic", "train", 12, seed=3, progress=False)
    root = tmp_path / "synthetic"
    data = load_keypoints(root / "annotations" / "person_keypoints_train2017.json")
    for method in ("classic", "dark", "udp"):
        codec = HeatmapCodec((192, 256), (48, 64), method=method)
        cpu = TopDownDataset(data, root / "train2017", codec, seed=1)
        loader = DataLoader(TopDownSources(cpu), batch_size=8, collate_fn=collate_sources)
        for batch in loader:
            rendered = render_batch(batch, codec, "cpu")
            for row, i in enumerate(batch["index"].tolist()):
                expected = cpu[i]
                got = rendered["image"][row].round().clamp(0, 255).to(torch.uint8)
                diff = (got.int() - expected["image"].int()).abs()
                # cv2 interpolates uint8 on a 1/32-pixel grid; grid_sample exactly
                assert diff.float().mean() < 0.05 and diff.max() <= 2, (
                    method, i, diff.float().mean(), diff.max())
                torch.testing.assert_close(rendered["heatmaps"][row], expected["heatmaps"],
                                           atol=1e-6, rtol=0)
                torch.testing.assert_close(rendered["weights"][row], expected["weights"])


@pytest.mark.slow
def test_the_gpu_campaign_script_runs_every_cpu_path(tmp_path):
    """benchmarks/gpu.py at toy sizes on the CPU: every inference, training and data-loading
    path it times on a GPU runs (torch.compile, CUDA graphs and ONNX Runtime's GPU providers
    need a GPU and are not reached here)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "gpu.json"
    run = subprocess.run([sys.executable, str(root / "benchmarks" / "gpu.py"), "--device", "cpu",
                          "--smoke", "--json", str(out)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "failed" not in run.stderr
    figures = json.loads(out.read_text())["figures"]
    paths = {name for section in figures.values() for name in section}
    assert {"plain PyTorch fp32", "fp16 + channels_last",
            "fp16 AMP + channels_last, GPU augmentation"} <= paths
    assert all(v > 0 for section in figures.values() for v in section.values())
