import numpy as np
import pytest

from hrpose.codecs.heatmap import HeatmapCodec
from hrpose.data.coco import load_coco, load_detections
from hrpose.data.topdown import (
    Augmentation,
    ImageCrops,
    TopDownDataset,
    crop_batches,
    ground_truth_boxes,
)
from hrpose.errors import HrposeError

from .helpers import write_coco

NO_AUG = Augmentation(scale_factor=0, rotation_prob=0, flip_prob=0, half_body_prob=0)


def person(x0: float, y0: float) -> list[tuple[float, float, int]]:
    return [(x0 + 3 * j, y0 + 5 * j, 2) for j in range(17)]


@pytest.fixture
def coco_root(tmp_path):
    people = [person(40, 30), person(150, 60), [(0, 0, 0)] * 17]
    write_coco(tmp_path, people, [[30, 20, 70, 110], [140, 50, 70, 120], [5, 5, 20, 20]])
    return tmp_path


@pytest.mark.parametrize("method", ["classic", "udp"])
def test_training_sample_targets_sit_on_the_joints(coco_root, method):
    data = load_coco(coco_root / "annotations/person_keypoints_val2017.json")
    codec = HeatmapCodec((48, 64), (12, 16), method=method)
    ds = TopDownDataset(data, coco_root / "val2017", codec, NO_AUG)
    assert len(ds) == 2                                   # the keypoint-less person is skipped
    sample = ds[0]
    assert sample["image"].shape == (3, 64, 48) and sample["valid"]
    from hrpose.data.transforms import apply_affine, boxes_to_crops, crop_matrices

    c, s = boxes_to_crops(ds.boxes[:1], 48 / 64)
    m = crop_matrices(c, s, (48, 64), codec.udp)[0]
    expected = apply_affine(m, data.keypoints[0, :, :2].astype(float))
    coords, _ = codec.decode(sample["heatmaps"][None].numpy())
    inside = sample["weights"].numpy() > 0
    assert inside.sum() >= 10
    assert np.abs(coords[0][inside] - expected[inside]).max() <= 0.5 * codec.stride.max() + 1e-6


def test_flip_augmentation_mirrors_image_and_swaps_joints(coco_root):
    data = load_coco(coco_root / "annotations/person_keypoints_val2017.json")
    codec = HeatmapCodec((48, 64), (12, 16), method="udp")
    plain = TopDownDataset(data, coco_root / "val2017", codec, NO_AUG)[1]
    flipped = TopDownDataset(data, coco_root / "val2017", codec,
                             Augmentation(scale_factor=0, rotation_prob=0, flip_prob=1,
                                          half_body_prob=0))[1]
    # Equal up to cv2's fixed-point sampling (1/32 pixel): at most one grey level, rarely.
    diff = np.abs(flipped["image"].numpy().astype(int) - plain["image"].numpy()[..., ::-1])
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01
    index = data.skeleton.flip_index
    assert np.allclose(flipped["heatmaps"].numpy(), plain["heatmaps"].numpy()[index, :, ::-1],
                       atol=1e-6)


def test_augmentation_is_deterministic_per_seed_and_epoch(coco_root):
    data = load_coco(coco_root / "annotations/person_keypoints_val2017.json")
    codec = HeatmapCodec((48, 64), (12, 16))
    a = TopDownDataset(data, coco_root / "val2017", codec, seed=3)
    b = TopDownDataset(data, coco_root / "val2017", codec, seed=3)
    assert np.array_equal(a[0]["image"], b[0]["image"])
    a.set_epoch(1)
    assert not np.array_equal(a[0]["image"], b[0]["image"])


def test_missing_image_is_skipped_and_counted_in_training(coco_root, caplog):
    (coco_root / "val2017/000000000001.jpg").write_bytes(b"not a jpeg")
    data = load_coco(coco_root / "annotations/person_keypoints_val2017.json")
    ds = TopDownDataset(data, coco_root / "val2017", HeatmapCodec((48, 64), (12, 16)))
    sample = ds[0]
    assert not sample["valid"] and sample["weights"].sum() == 0
    assert "000000000001.jpg: cannot decode the image" in caplog.text
    crops = ImageCrops(ground_truth_boxes(data), data.images, coco_root / "val2017", (48, 64))
    with pytest.raises(HrposeError, match=r"000000000001\.jpg: cannot decode"):
        crops[0]


def test_eval_crops_come_in_full_batches_across_images(coco_root):
    data = load_coco(coco_root / "annotations/person_keypoints_val2017.json")
    boxes = ground_truth_boxes(data)
    assert np.allclose(boxes.boxes[0], [30, 20, 69, 109])   # clipped as published: x2 = x+w-1
    crops = ImageCrops(boxes, data.images, coco_root / "val2017", (48, 64))
    batches = list(crop_batches(crops, batch_size=1))
    assert [b[0].shape for b in batches] == [(1, 64, 48, 3)] * 2
    assert sorted(int(b[2][0]) for b in batches) == [0, 1]


def test_detections_file_filters_by_score_and_names_bad_ids(coco_root, tmp_path):
    import json

    data = load_coco(coco_root / "annotations/person_keypoints_val2017.json")
    dets = [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": s}
            for s in (0.9, 0.3, 0.05)]
    (tmp_path / "det.json").write_text(json.dumps(dets))
    assert len(load_detections(tmp_path / "det.json", data, 0.1).scores) == 2
    dets.append({"image_id": 5, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 1})
    (tmp_path / "det.json").write_text(json.dumps(dets))
    with pytest.raises(HrposeError, match=r"det.json: detection #3: image_id 5 is not in"):
        load_detections(tmp_path / "det.json", data)
