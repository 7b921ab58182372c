import json

import numpy as np

from hrpose.cli import main
from hrpose.data.coco import load_coco
from hrpose.data.synthetic import draw_image, write_dataset
from hrpose.io import read_image


def test_the_same_seed_draws_the_same_data_set_with_any_number_of_workers(tmp_path):
    a = write_dataset(tmp_path / "a", train=70, val=3, seed=7, workers=1, progress=False)
    b = write_dataset(tmp_path / "b", train=70, val=3, seed=7, workers=2, progress=False)
    for split in ("train", "val"):
        ann = f"annotations/person_keypoints_{split}2017.json"
        assert (a / ann).read_bytes() == (b / ann).read_bytes()
    name = "train2017/000000000042.jpg"
    assert (a / name).read_bytes() == (b / name).read_bytes()
    other = write_dataset(tmp_path / "c", train=3, val=0, seed=8, workers=1, progress=False)
    assert (other / "train2017/000000000001.jpg").read_bytes() != (
        a / "train2017/000000000001.jpg").read_bytes()


def test_annotations_are_consistent_with_the_pictures(tmp_path):
    root = write_dataset(tmp_path, train=60, val=0, seed=1, workers=1, progress=False)
    data = load_coco(root / "annotations/person_keypoints_train2017.json")
    assert data.skeleton.name == "coco" and len(data) >= 60
    flags = data.keypoints[..., 2]
    assert set(np.unique(flags)) == {0.0, 1.0, 2.0}                 # all three occur
    assert 0.5 < (flags == 2).mean() < 0.9
    for i in range(len(data)):
        info = data.images[int(data.image_ids[i])]
        x, y, w, h = data.boxes[i]
        assert x >= 0 and y >= 0 and x + w <= info.width and y + h <= info.height
        assert 16 <= data.areas[i] <= w * h
        kp = data.keypoints[i]
        labelled = kp[:, 2] > 0
        assert (kp[labelled, 0] <= info.width - 1).all() and (kp[~labelled, :2] == 0).all()
        # A visible joint lies on a visible pixel of its person, which the box encloses.
        seen = kp[:, 2] == 2
        assert (kp[seen, 0] >= x - 0.5).all() and (kp[seen, 0] <= x + w - 0.5).all()
        assert (kp[seen, 1] >= y - 0.5).all() and (kp[seen, 1] <= y + h - 0.5).all()
        assert data.num_keypoints[i] == labelled.sum()
    image = read_image(root / "train2017" / data.images[1].file_name)
    assert image.shape == (data.images[1].height, data.images[1].width, 3)


def test_people_look_like_people():
    """Body proportions of standing, camera-facing figures are human: shoulders above hips
    above knees above ankles, the person's left on image-right, arms and legs of plausible
    length relative to the torso."""
    ratios, ordered, left_right = [], [], []
    for i in range(200):
        _, people = draw_image(np.random.default_rng((5, 0, i)))
        for p in people:
            k = np.array(p["keypoints"]).reshape(17, 3)
            if (k[5:, 2] == 0).any():          # a body joint outside the image
                continue
            shoulders, hips = k[[5, 6], :2].mean(0), k[[11, 12], :2].mean(0)
            torso = np.linalg.norm(shoulders - hips)
            leg = np.linalg.norm(k[11, :2] - k[13, :2]) + np.linalg.norm(k[13, :2] - k[15, :2])
            ratios.append(leg / torso)
            ordered.append(shoulders[1] < hips[1])
            if k[0, 2] == 2 and k[1, 2] == 2 and k[2, 2] == 2:    # face seen: facing us
                left_right.append(k[5, 0] > k[6, 0])
    assert len(ratios) > 100
    assert 1.2 < np.median(ratios) < 2.0          # legs ~1.6 torso lengths
    assert np.mean(ordered) > 0.9
    assert np.mean(left_right) > 0.9


def test_synth_cli(tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path), "--train", "4", "--val", "2",
                 "--seed", "3", "--workers", "1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["train"] == 4 and summary["val"] == 2
    import contextlib
    import io

    from pycocotools import coco as pycoco

    with contextlib.redirect_stdout(io.StringIO()):
        coco = pycoco.COCO(str(tmp_path / "annotations/person_keypoints_val2017.json"))
    assert len(coco.getImgIds()) == 2 and coco.loadCats(1)[0]["keypoints"][0] == "nose"
