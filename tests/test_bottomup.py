"""Bottom-up HigherHRNet: sizes, checkpoints, targets, loss, grouping, training, inference."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hrpose import PoseEstimator
from hrpose.cli import main
from hrpose.codecs.associative_embedding import (
    GroupingSettings,
    gaussian_maps,
    group,
    heatmap_nms,
    joint_indices,
    map_coords,
    quarter_offset,
    refine_missing,
)
from hrpose.config import load_config
from hrpose.data.bottomup import BottomUpDataset, stride_matrix
from hrpose.data.coco import load_keypoints
from hrpose.data.synthetic import SynthConfig, write_dataset, write_split
from hrpose.data.transforms import apply_affine, invert_affine
from hrpose.engine.losses import associative_embedding_loss
from hrpose.engine.train import train
from hrpose.errors import HrposeError
from hrpose.inference.bottomup import bottomup_keypoints, scale_matrix
from hrpose.io import read_image
from hrpose.metrics.coco import KeypointResults, evaluate_keypoints
from hrpose.models.arch import HigherHRNetArch
from hrpose.models.complexity import measure
from hrpose.models.convert import convert_checkpoint
from hrpose.models.layouts import load_weights
from hrpose.models.loading import build_model
from hrpose.models.zoo import MODELS, create_model
from hrpose.skeletons import COCO

from .helpers import randomize

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "model.width=8", "model.stem_channels=16", "model.layer1_channels=8",
    "model.layer1_blocks=1", "model.stage_modules=[1,1,1]", "model.num_blocks=1",
    "model.deconv_blocks=1", "model.init=kaiming", "data.input_wh=[128,128]",
    "data.heatmap_wh=[32,32]", "train.epochs=1", "train.batch=4", "train.max_iters=3",
    "train.warmup_iters=2", "train.eval_every=1", "train.draw_images=1", "train.threads=1",
    "train.device=cpu",
]


@pytest.mark.parametrize("name, params, gmacs, paper", [
    ("higherhrnet_w32_512", 28_645_331, 46.20, 47.9),
    ("higherhrnet_w32_640", 28_645_331, 72.19, 74.8),
    ("higherhrnet_w48_640", 63_827_139, 149.47, 154.3),
])
def test_sizes_equal_the_official_code(name, params, gmacs, paper):
    """Measured on the official code: W32 512 has 28,645,331 parameters and 46.20 G MACs (the
    transposed convolution counted over its input positions); the paper's 47.9 and 154.3
    (W48 640, 63.8M) count it over its 4x output positions."""
    spec = MODELS[name]
    c = measure(create_model(name, device="meta"), (3, *spec.input_hw), spec.paper_unit)
    side = spec.input_hw[0]
    assert c.params == params and round(c.gmacs, 2) == gmacs
    assert round(c.paper_gflops, 1) == paper
    assert c.output_shapes == [(1, 34, side // 4, side // 4), (1, 17, side // 2, side // 2)]


def test_info_shows_both_counts_and_says_which_is_which(capsys):
    assert main(["info", "higherhrnet_w32_512", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["kind"], info["params"], info["gmacs"], info["paper_gflops"]) == (
        "bottomup", 28_645_331, 46.2, 47.9)
    assert info["output_shapes"] == [[1, 34, 128, 128], [1, 17, 256, 256]]
    assert main(["info", "higherhrnet_w32_512"]) == 0
    text = capsys.readouterr().out
    assert "17 heatmaps + 17 tags at 1/4" in text and "output positions, 4x" in text


def test_head_layers_are_the_published_ones():
    model = create_model("higherhrnet_w32_512", device="meta")
    deconv = model.head.deconv_layers[0][0][0]
    assert isinstance(deconv, torch.nn.ConvTranspose2d) and deconv.bias is None
    assert (deconv.in_channels, deconv.out_channels, deconv.kernel_size, deconv.stride,
            deconv.padding) == (66, 32, (4, 4), (2, 2), (1, 1))
    assert all(layer.bias is not None for layer in model.head.final_layers)
    assert len(model.head.deconv_layers[0]) == 5          # upsampling + 4 basic blocks


def tiny_higher(seed: int = 0) -> torch.nn.Module:
    model = HigherHRNetArch(width=8, deconv_blocks=2, layer1_blocks=1, num_blocks=1,
                            stage_modules=(1, 1, 1)).create()
    return randomize(model, seed)


def test_official_and_mmpose0_checkpoints_give_the_outputs_of_the_tensors_loaded_by_hand(
        tmp_path):
    source = tiny_higher(1)
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    by_hand = tiny_higher(2)
    by_hand.load_state_dict(source.state_dict())
    expected = by_hand(x)
    official = {k.removeprefix("backbone.").removeprefix("head."): v
                for k, v in source.state_dict().items()}
    assert "final_layers.1.weight" in official and "deconv_layers.0.1.0.conv1.weight" in official
    mmpose0 = {k.replace("head.", "keypoint_head.", 1): v for k, v in source.state_dict().items()}
    for layout, state in (("official", official), ("mmpose0", {"state_dict": mmpose0})):
        path = tmp_path / f"{layout}.pth"
        torch.save(state, path)
        model = tiny_higher(3)
        assert load_weights(model, path) == layout
        for got, want in zip(model(x), expected):
            torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_the_official_w32_512_file_converts_to_the_zoo_model(tmp_path):
    model = randomize(create_model("higherhrnet_w32_512"), seed=4)
    path = tmp_path / "pose_higher_hrnet_w32_512.pth"
    torch.save({k.removeprefix("backbone.").removeprefix("head."): v
                for k, v in model.state_dict().items()}, path)
    meta = convert_checkpoint(path, tmp_path / "w32.safetensors")
    assert (meta["model"], meta["source_layout"]) == ("higherhrnet_w32_512", "official")
    loaded = build_model("higherhrnet_w32_512", tmp_path / "w32.safetensors")
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        for got, want in zip(loaded(x), model(x)):
            torch.testing.assert_close(got, want)


def test_associative_embedding_loss_by_hand():
    """Two people, two joint types: tags 1 and 3 (mean 2, pull 1) and 0 and 0 (pull 0): pull
    0.5; push over the 2 ordered pairs of distinct people: exp(-(2 - 0)^2) x 2 / 2 x 0.5."""
    tags = torch.tensor([[[[1.0, 0.0]], [[3.0, 0.0]]]])           # (1, K=2, H=1, W=2)
    joints = torch.zeros(1, 3, 2, 2, dtype=torch.int64)
    joints[0, 0] = torch.tensor([[0, 1], [2, 1]])                  # person A: pixel 0 of each
    joints[0, 1] = torch.tensor([[1, 1], [3, 1]])                  # person B: pixel 1
    pull, push = associative_embedding_loss(tags, joints)
    assert pull.item() == pytest.approx(0.5)
    assert push.item() == pytest.approx(0.5 * np.exp(-4.0))
    lonely = joints.clone()
    lonely[0, 1, :, 1] = 0                                         # only person A left
    pull, push = associative_embedding_loss(tags, lonely)
    assert (pull.item(), push.item()) == (pytest.approx(1.0), 0.0)
    none = torch.zeros_like(joints)
    assert [v.item() for v in associative_embedding_loss(tags, none)] == [0.0, 0.0]


def _crowd_root(tmp_path: Path) -> Path:
    """One 200x160 image: two people and a crowd region (a polygon), COCO layout."""
    import cv2

    root = tmp_path / "crowd"
    (root / "train2017").mkdir(parents=True)
    (root / "annotations").mkdir()
    cv2.imwrite(str(root / "train2017" / "1.jpg"), np.full((160, 200, 3), 128, np.uint8))
    people = []
    for i, (x0, y0) in enumerate([(40, 30), (120, 40)]):
        kp = np.zeros((17, 3))
        kp[:, 0] = x0 + np.arange(17) % 4 * 5
        kp[:, 1] = y0 + np.arange(17) * 5
        kp[:, 2] = 2
        kp[3, 2] = 0
        people.append({"id": i + 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                       "bbox": [x0, y0, 20, 85], "area": 1700, "num_keypoints": 16,
                       "keypoints": kp.ravel().tolist()})
    people.append({"id": 3, "image_id": 1, "category_id": 1, "iscrowd": 1,
                   "bbox": [150, 100, 40, 40], "area": 1600, "num_keypoints": 0,
                   "segmentation": [[150, 100, 190, 100, 190, 140, 150, 140]],
                   "keypoints": [0] * 51})
    category = {"id": 1, "name": "person", "keypoints": list(COCO.joints),
                "skeleton": [[a + 1, b + 1] for a, b in COCO.links]}
    (root / "annotations" / "person_keypoints_train2017.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "1.jpg", "width": 200, "height": 160}],
        "annotations": people, "categories": [category]}))
    return root


def test_targets_peak_on_the_joints_and_the_mask_ignores_crowds_and_padding(tmp_path):
    root = _crowd_root(tmp_path)
    data = load_keypoints(root / "annotations" / "person_keypoints_train2017.json")
    dataset = BottomUpDataset(data, root / "train2017", input_size=128, max_people=30, seed=1)
    for epoch in range(3):
        dataset.set_epoch(epoch)
        sample = dataset[0]
        matrix, flip = dataset.matrix(0, (160, 200))
        keypoints = data.keypoints[:2].astype(np.float64)
        keypoints[..., :2] = apply_affine(matrix, keypoints[..., :2])
        if flip:
            keypoints = keypoints[:, COCO.flip_index]
        assert sample["heatmaps_4"].shape == (17, 32, 32)
        assert sample["heatmaps_2"].shape == (17, 64, 64) and sample["mask_2"].shape == (64, 64)
        for stride in (4, 2):
            maps = sample[f"heatmaps_{stride}"].numpy()
            for person in keypoints:
                for j in np.flatnonzero(person[:, 2] > 0):
                    x, y = np.rint(map_coords(person[j, :2], stride)).astype(int)
                    if 0 <= x < maps.shape[2] and 0 <= y < maps.shape[1]:
                        assert maps[j, y, x] > 0.85
        joints = sample["joints"].numpy()
        assert joints.shape == (30, 17, 2) and joints[2:].sum() == 0
        expected = joint_indices(keypoints, (32, 32), 4, 30)
        np.testing.assert_array_equal(joints, expected)
        # The crowd polygon's centre and the padding outside the image are ignored.
        mask = sample["mask_4"].numpy()
        cx, cy = np.rint(apply_affine(stride_matrix(matrix, 4), np.array([170.0, 120.0])))
        if 0 <= cx < 32 and 0 <= cy < 32:
            assert mask[int(cy), int(cx)] == 0
        inside = apply_affine(stride_matrix(matrix, 4), np.array([100.0, 20.0]))
        ix, iy = np.rint(inside).astype(int)
        if 0 <= ix < 32 and 0 <= iy < 32:
            assert mask[iy, ix] == 1
        ys, xs = np.mgrid[:32, :32]
        grid = np.stack([xs, ys], -1).reshape(-1, 2).astype(np.float64)
        pts = apply_affine(invert_affine(stride_matrix(matrix, 4)), grid).reshape(32, 32, 2)
        outside = ((pts[..., 0] < -8) | (pts[..., 0] > 207) | (pts[..., 1] < -8)
                   | (pts[..., 1] > 167))
        assert (mask[outside] == 0).all()
    dataset.augmentation = None          # the short side (160 px) fills the input: no padding
    plain = dataset[0]["mask_4"].numpy()
    matrix, _ = dataset.matrix(0, (160, 200))
    cx, cy = np.rint(apply_affine(stride_matrix(matrix, 4), np.array([170.0, 120.0]))).astype(int)
    assert plain[cy, cx] == 0 and 0.85 < plain.mean() < 1


class OracleRunner:
    """A 'model' that outputs the ideal maps of known people: heatmaps at 1/4 and 1/2 and, at
    1/4, tags = 3 x the person's index around each of their joints. It knows, for each input
    size, the image -> input matrix; a flipped batch row gets the mirrored people."""

    def __init__(self, keypoints: np.ndarray, image_hw: tuple[int, int], input_size: int,
                 scales: tuple[float, ...]) -> None:
        self.people = keypoints
        self.matrices = {}
        for s in scales:
            m, wh = scale_matrix(image_hw, input_size * s)
            self.matrices[wh] = m

    def maps(self, keypoints: np.ndarray, w: int, h: int) -> list[np.ndarray]:
        k = keypoints.shape[1]
        tags = np.zeros((k, h // 4, w // 4), np.float32)
        for p, person in enumerate(keypoints):
            xy = np.rint(map_coords(person[:, :2], 4)).astype(int)
            for j in np.flatnonzero(person[:, 2] > 0):
                x0, y0 = xy[j]
                tags[j, max(y0 - 1, 0): y0 + 2, max(x0 - 1, 0): x0 + 2] = 3.0 * p
        low = np.concatenate([gaussian_maps(keypoints, (w // 4, h // 4), 4), tags])
        return [low, gaussian_maps(keypoints, (w // 2, h // 2), 2)]

    def run_all(self, x: np.ndarray) -> list[np.ndarray]:
        n, _, h, w = x.shape
        people = self.people.copy()
        people[..., :2] = apply_affine(self.matrices[(w, h)], people[..., :2])
        rows = [self.maps(people, w, h)]
        if n == 2:                                   # the mirrored image
            mirrored = people[:, COCO.flip_index].copy()
            mirrored[..., 0] = w - 1 - mirrored[..., 0]
            rows.append(self.maps(mirrored, w, h))
        return [np.stack([r[i] for r in rows]) for i in range(2)]


@pytest.fixture(scope="module")
def crowded_set(tmp_path_factory) -> Path:
    """Synthetic images with up to 8 people side by side (overlapping, truncated at borders)."""
    root = tmp_path_factory.mktemp("crowded")
    write_split(root, "val", 24, seed=3, config=SynthConfig(max_people=8), workers=1,
                progress=False)
    return root


def _oracle_ap(root: Path, flip: bool, scales: tuple[float, ...], limit: int | None = None
               ) -> float:
    data = load_keypoints(root / "annotations" / "person_keypoints_val2017.json")
    ids = sorted(data.images)[:limit]
    keep = np.isin(data.image_ids, ids)
    ids_out, found, scores = [], [], []
    for image_id in ids:
        image = read_image(root / "val2017" / data.images[image_id].file_name)
        gt = data.keypoints[data.image_ids == image_id].astype(np.float64)
        runner = OracleRunner(gt, image.shape[:2], 256, scales)
        people, s = bottomup_keypoints(runner, image, (0, 0, 0), (1, 1, 1), 256,
                                       COCO.flip_index if flip else None, scales)
        ids_out += [image_id] * len(people)
        found.append(people)
        scores.append(s)
    subset = load_keypoints(root / "annotations" / "person_keypoints_val2017.json")
    for field in ("ids", "image_ids", "boxes", "keypoints", "iscrowd", "areas", "num_keypoints"):
        setattr(subset, field, getattr(data, field)[keep])
    subset.images = {i: data.images[i] for i in ids}
    results = KeypointResults(np.array(ids_out), np.concatenate(found), np.concatenate(scores))
    return evaluate_keypoints(subset, results)["AP"]


def test_grouping_oracle_decodes_crowded_and_truncated_people_to_ap_099(crowded_set):
    data = load_keypoints(crowded_set / "annotations" / "person_keypoints_val2017.json")
    per_image = np.bincount(data.image_ids)
    assert per_image.max() >= 6                                        # crowded
    assert ((data.keypoints[..., 2] == 0).sum(1) > 3).any()            # truncated
    assert _oracle_ap(crowded_set, flip=False, scales=(1.0,)) >= 0.99


def test_flip_and_multi_scale_keep_the_oracle_exact(crowded_set):
    """Mirrored maps flipped back and other scales brought to the input scale: a wrong joint
    swap or a scale misaligned by a pixel would cost AP. Scale 0.5 alone decodes at 0.97 (its
    1/4 maps have 8-pixel cells at the input scale), so the three scales are held to 0.96."""
    assert _oracle_ap(crowded_set, flip=True, scales=(1.0,), limit=8) >= 0.99
    assert _oracle_ap(crowded_set, flip=True, scales=(1.0, 2.0), limit=4) >= 0.99
    assert _oracle_ap(crowded_set, flip=True, scales=(0.5, 1.0, 2.0), limit=4) >= 0.96


def test_grouping_caps_people_and_survives_empty_maps():
    """120 people's joints in one map: at most max_people come back; flat maps: nobody."""
    rng = np.random.default_rng(0)
    k = 17
    people = np.zeros((120, k, 3))
    people[..., 0] = rng.uniform(0, 383, (120, 1)) + rng.normal(0, 2, (120, k))
    people[..., 1] = rng.uniform(0, 383, (120, 1)) + rng.normal(0, 2, (120, k))
    people[..., 2] = 2
    heat = torch.from_numpy(gaussian_maps(people, (384, 384), 1))[None]
    tags = torch.zeros(1, k, 384, 384, 1)
    settings = GroupingSettings()
    (found, scores), = group(heat, tags, settings)
    assert 0 < len(found) <= settings.max_people and len(scores) == len(found)
    (found, scores), = group(torch.zeros(1, k, 32, 32), torch.zeros(1, k, 32, 32, 1))
    assert found.shape == (0, k, 3) and scores.shape == (0,)


def refine_person_by_person(heatmaps: torch.Tensor, tags: torch.Tensor, people: np.ndarray,
                            adjust: bool) -> np.ndarray:
    """The refinement as the official code loops it, one person at a time: what
    `refine_missing` (one joint type at a time for everyone) must equal."""
    w = heatmaps.shape[-1]
    out = people.copy()
    for person in out:
        found = person[:, 2] > 0
        if found.all() or not found.any():
            continue
        xs, ys = person[found, 0].astype(np.int64), person[found, 1].astype(np.int64)
        mean_tag = tags[torch.from_numpy(np.flatnonzero(found)), torch.from_numpy(ys),
                        torch.from_numpy(xs)].mean(0)
        missing = torch.from_numpy(np.flatnonzero(~found))
        distance = (tags[missing] - mean_tag).norm(dim=-1)
        score = (heatmaps[missing] - distance.round()).reshape(len(missing), -1)
        best = score.argmax(1)
        value = heatmaps[missing].reshape(len(missing), -1).gather(1, best[:, None])[:, 0]
        rows = np.c_[(best % w).numpy(), (best // w).numpy(), value.numpy()].astype(np.float32)
        if adjust:
            rows = quarter_offset(heatmaps[missing].numpy(), rows[None])[0]
        for j, row in zip(missing.tolist(), rows):
            if row[2] > 0:
                person[j] = row
    return out


def test_grouping_speed_ups_give_exactly_the_results_of_the_plain_code():
    """Maps with many ties (values and tags on a coarse grid), any number of people and tag
    dimensions: the refinement equals the person-by-person loop, and the heatmap NMS (OpenCV's
    dilation) equals torch's max pool, bit for bit."""
    rng = np.random.default_rng(0)
    for trial in range(120):
        k, h, w, dims = (int(rng.integers(1, 18)), int(rng.integers(2, 40)),
                         int(rng.integers(2, 40)), int(rng.integers(1, 4)))
        heat = torch.from_numpy(np.round(rng.random((k, h, w)), 1).astype(np.float32) - 0.1)
        tags = torch.from_numpy((np.round(rng.normal(0, 1, (k, h, w, dims)) * 2) / 2)
                                .astype(np.float32))
        p = int(rng.integers(0, 12))
        people = np.zeros((p, k, 3), np.float32)
        people[..., 0], people[..., 1] = rng.integers(0, w, (p, k)), rng.integers(0, h, (p, k))
        people[..., 2] = rng.random((p, k)) * (rng.random((p, k)) < 0.6)
        for adjust in (True, False):
            assert np.array_equal(refine_missing(heat, tags, people, adjust),
                                  refine_person_by_person(heat, tags, people, adjust)), trial
        for kernel in (1, 3, 5, 7):
            pooled = F.max_pool2d(heat[None], kernel, 1, kernel // 2)
            assert torch.equal(heatmap_nms(heat[None], kernel),
                               heat[None] * (pooled == heat[None])), (trial, kernel)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny HigherHRNet trained for 3 steps with bf16 autocast on synthetic data."""
    root = tmp_path_factory.mktemp("synthetic_bu")
    write_dataset(root, train=16, val=3, seed=5, workers=1, progress=False)
    run = tmp_path_factory.mktemp("bu_run")
    config = load_config(ROOT / "configs/synthetic/bottomup_quickstart.yaml",
                         [*TINY, f"data.root={root}", "train.amp=bf16"])
    metrics = train(config, run, progress=False)
    assert "AP" in metrics
    return root, run


def test_bf16_training_writes_a_checkpoint_that_evaluates_and_infers_alone(trained, tmp_path,
                                                                            capsys):
    root, run = trained
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if r["kind"] == "train"]
    assert losses and all(np.isfinite(losses))
    assert (run / "best.safetensors").is_file() and (run / "predictions.jpg").is_file()
    assert main(["eval", str(run / "best.safetensors"), "--data", str(root), "--out",
                 str(tmp_path / "eval"), "--scales", "0.5,1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["AP"] == out["AP"] and metrics["boxes"] == "none (bottom-up)"
    assert metrics["settings"]["scales"] == [0.5, 1.0]
    image = root / "val2017" / "000000000001.jpg"
    assert main(["infer", str(image), "--model", str(run / "best.safetensors"), "--out",
                 str(tmp_path / "infer"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["images"] == 1 and (tmp_path / "infer" / image.name).is_file()
    results = json.loads((tmp_path / "infer" / "results.json").read_text())
    assert len(results) == summary["people"] <= 30
    assert all(len(r["keypoints"]) == 51 for r in results)


def test_bgr_input_evaluates_a_bottom_up_model(trained, tmp_path, capsys):
    """--bgr wraps the runner; a bottom-up model needs all its outputs through the wrapper
    (this ended in an AttributeError traceback before the Runner protocol had run_all)."""
    root, run = trained
    assert main(["eval", str(run / "best.safetensors"), "--data", str(root), "--out",
                 str(tmp_path / "bgr"), "--bgr", "--draw", "0", "--json"]) == 0
    assert "AP" in json.loads((tmp_path / "bgr" / "metrics.json").read_text())


def test_bad_inputs_give_results_or_one_line_errors(trained, tmp_path, capsys):
    _, run = trained
    est = PoseEstimator(run / "best.safetensors", flip=True)
    assert est.kind == "bottomup" and est.codec is None
    tiny = np.full((3, 2, 3), 200, np.uint8)                 # smaller than one stride
    assert isinstance(est(tiny, color="rgb"), list)
    assert len(est(np.zeros((300, 200, 3), np.uint8), color="rgb")) <= 30
    nobody = OracleRunner(np.zeros((0, 17, 3)), (300, 200), 256, (1.0,))
    people, scores = bottomup_keypoints(nobody, np.zeros((300, 200, 3), np.uint8), (0, 0, 0),
                                        (1, 1, 1), 256, COCO.flip_index)
    assert people.shape == (0, 17, 3) and scores.shape == (0,)
    with pytest.raises(HrposeError, match="empty"):
        est(np.zeros((0, 10, 3), np.uint8), color="rgb")
    with pytest.raises(HrposeError, match="takes no boxes"):
        est(tiny, [[0, 0, 2, 3]], color="rgb")
    with pytest.raises(HrposeError, match="multiple of 64"):
        load_config(ROOT / "configs/synthetic/bottomup_quickstart.yaml",
                    ["data.input_wh=[160,160]", "data.heatmap_wh=[40,40]"])


@pytest.mark.slow
def test_two_process_ddp_equals_one_process_with_the_same_global_batch(tmp_path):
    """torchrun, gloo, two processes of batch 2 against one of batch 4, synchronised BN: the
    same weights after three steps; evaluation split by image and gathered."""
    root = tmp_path / "data"
    write_dataset(root, train=12, val=2, seed=6, workers=1, progress=False)
    common = [*TINY, f"data.root={root}", "model.sync_bn=true", "train.lr=1e-3",
              "train.amp=none", "train.channels_last=false", "train.draw_images=0"]
    overrides = [arg for o in common for arg in ("-o", o)]
    config = str(ROOT / "configs/synthetic/bottomup_quickstart.yaml")

    def run(*args: str) -> subprocess.CompletedProcess:
        import os

        return subprocess.run(list(args), capture_output=True, text=True, timeout=300,
                              cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})

    one = run(sys.executable, "-m", "hrpose", "train", config, "--out", str(tmp_path / "one"),
              *overrides, "-o", "train.batch=4", "--json")
    assert one.returncode == 0, one.stderr[-2000:]
    two = run(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
              "2", "-m", "hrpose", "train", config, "--out", str(tmp_path / "two"), *overrides,
              "-o", "train.batch=2", "--json")
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count('"AP"') == 1
    a = torch.load(tmp_path / "one" / "latest.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "two" / "latest.pt", weights_only=True)["model"]
    for name in a:
        if a[name].is_floating_point():
            torch.testing.assert_close(b[name], a[name], rtol=1e-3, atol=1e-4, msg=name)
    m1 = json.loads((tmp_path / "one" / "metrics.json").read_text())
    m2 = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert m1["step"] == m2["step"] == 3 and m2["AP"] == pytest.approx(m1["AP"], abs=1e-6)


def test_the_coco_recipe_is_the_published_one():
    config = load_config(ROOT / "configs/coco/higherhrnet_w32_512.yaml")
    assert (config.model.kind, config.model.width, config.model.init) == ("bottomup", 32,
                                                                            "imagenet")
    assert (config.train.optimizer, config.train.lr, config.train.epochs) == ("adam", 1e-3, 300)
    assert (config.train.lr_steps, config.train.batch) == ((200, 260), 12)
    assert (config.bottomup.pull_weight, config.bottomup.push_weight) == (1e-3, 1e-3)
    aug = config.bottomup.augment
    assert (aug.rotation, aug.min_scale, aug.max_scale, aug.translation) == (30, 0.75, 1.5, 40)
    g = config.test.grouping
    assert (config.test.flip, g.det_threshold, g.tag_threshold, g.nms_kernel, g.max_people,
            g.adjust, g.refine) == (True, 0.1, 1.0, 5, 30, True, True)
    from hrpose.models.arch import model_from_arch
    from hrpose.models.zoo import zoo_name_for

    assert zoo_name_for(config.model.to_dict(), (512, 512)) == "higherhrnet_w32_512"
    model = model_from_arch(config.model.to_dict())
    assert sum(p.numel() for p in model.parameters()) == 28_645_331


def test_bottomup_resume_equals_an_uninterrupted_run(tmp_path):
    root = tmp_path / "data"
    write_dataset(root, train=12, val=2, seed=7, workers=1, progress=False)
    config = load_config(ROOT / "configs/synthetic/bottomup_quickstart.yaml",
                         [*TINY, f"data.root={root}", "train.epochs=2", "train.max_iters=2",
                          "train.eval_every=5", "train.amp=none", "test.flip=false"])
    train(config, tmp_path / "whole", progress=False)

    def interrupt(step: int) -> None:
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "cut", progress=False, on_step=interrupt)
    train(config, tmp_path / "cut", resume=True, progress=False)
    a = torch.load(tmp_path / "whole" / "latest.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "cut" / "latest.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
