"""Random COCO keypoint sets for checking the metric against pycocotools and timing it.

People have partly labelled joints (some none, a few crowd regions); results are noisy copies of
people (0-2 each, tied scores included) plus random false positives."""

from __future__ import annotations

import numpy as np

from hrpose.skeletons import COCO, COCO_WHOLEBODY


def random_keypoint_set(n_images: int, n_people: int, n_results: int, seed: int = 0,
                        k: int = 17, fine: bool = False) -> tuple[dict, list[dict]]:
    """`fine`: result noise log-uniform from 0.2 px (small-sigma joints reach high OKS)."""
    rng = np.random.default_rng(seed)
    image_ids = np.arange(1, n_images + 1) * 7
    images = [{"id": int(i), "file_name": f"{i:012d}.jpg", "width": 640, "height": 480}
              for i in image_ids]
    owner = rng.choice(image_ids, n_people)
    wh = rng.uniform(10, 300, (n_people, 2))
    xy = rng.uniform(0, 300, (n_people, 2))
    kp = np.zeros((n_people, k, 3))
    kp[..., :2] = xy[:, None] + rng.uniform(0, 1, (n_people, k, 2)) * wh[:, None]
    kp[..., 2] = rng.choice([0, 1, 2], (n_people, k), p=[0.3, 0.2, 0.5])
    crowd = rng.random(n_people) < 0.03
    kp[crowd | (rng.random(n_people) < 0.08)] = 0
    kp[kp[..., 2] == 0] = 0
    area = wh.prod(1) * rng.uniform(0.4, 0.9, n_people)
    anns = [{"id": j + 1, "image_id": int(owner[j]), "category_id": 1,
             "bbox": np.round([*xy[j], *wh[j]], 2).tolist(), "area": float(area[j]),
             "iscrowd": int(crowd[j]), "num_keypoints": int((kp[j, :, 2] > 0).sum()),
             "keypoints": np.round(kp[j], 2).ravel().tolist()} for j in range(n_people)]
    # Results: about 60% noisy copies of people, the rest random poses.
    n_true = int(n_results * 0.6)
    src = rng.integers(0, n_people, n_true)
    det = np.empty((n_results, k, 3))
    base = xy[src, None] + rng.uniform(0, 1, (n_true, k, 2)) * wh[src, None]
    det[:n_true, :, :2] = np.where(kp[src, :, :2] > 0, kp[src, :, :2], base)
    spread = (np.exp(rng.uniform(np.log(0.2), np.log(15), (n_true, 1, 1))) if fine
              else rng.uniform(1, 15, (n_true, 1, 1)))
    det[:n_true, :, :2] += rng.normal(0, 1, (n_true, k, 2)) * spread
    det[n_true:, :, 0] = rng.uniform(0, 600, (n_results - n_true, k))
    det[n_true:, :, 1] = rng.uniform(0, 400, (n_results - n_true, k))
    det[..., 2] = rng.uniform(0, 1, (n_results, k))
    det_image = np.concatenate([owner[src], rng.choice(image_ids, n_results - n_true)])
    scores = np.round(rng.uniform(0, 1, n_results), 2)        # rounded: many ties
    order = rng.permutation(n_results)
    results = [{"image_id": int(det_image[j]), "category_id": 1,
                "keypoints": np.round(det[j], 3).ravel().tolist(), "score": float(scores[j])}
               for j in order]
    gt = {"images": images, "annotations": anns,
          "categories": [{"id": 1, "name": "person", "supercategory": "person",
                          "keypoints": list(COCO.joints), "skeleton": []}]}
    return gt, results


def random_crowd_set(n_images: int, n_people: int, n_results: int, seed: int = 0
                     ) -> tuple[dict, list[dict]]:
    """The same in CrowdPose's format: its 14 joints, no 'area', each image's crowdIndex spread
    over [0, 1] (the split bounds 0.2 and 0.8 included), num_keypoints counting only joints
    flagged visible (as CrowdPose's files often do), and some results with no scored joint."""
    from hrpose.skeletons import CROWDPOSE

    gt, results = random_keypoint_set(n_images, n_people, n_results, seed)
    rng = np.random.default_rng(seed + 1)
    keep = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]   # COCO rows standing in for 14
    crowd_levels = np.concatenate([[0.2, 0.8, 0.0, 1.0], rng.uniform(0, 1, n_images)])
    for image, level in zip(gt["images"], crowd_levels):
        image["crowdIndex"] = round(float(level), 2)
    for ann in gt["annotations"]:
        kp = np.asarray(ann["keypoints"]).reshape(17, 3)[keep]
        ann["keypoints"] = kp.ravel().tolist()
        ann["num_keypoints"] = int((kp[:, 2] == 2).sum())
        del ann["area"]
    for j, res in enumerate(results):
        kp = np.asarray(res["keypoints"]).reshape(17, 3)[keep]
        if j % 23 == 0:
            kp[:, 2] = 0
        res["keypoints"] = kp.ravel().tolist()
    gt["categories"][0]["keypoints"] = list(CROWDPOSE.joints)
    return gt, results


def random_wholebody_set(n_images: int, n_people: int, n_results: int, seed: int = 0
                         ) -> tuple[dict, list[dict]]:
    """The same in COCO-WholeBody's layout: 133 joints split into its part fields, parts left
    unlabelled (and flagged not valid) at random, num_keypoints counting the body only;
    results with parts not scored, some with their own part scores."""
    gt, results = random_keypoint_set(n_images, n_people, n_results, seed, k=133, fine=True)
    rng = np.random.default_rng(seed + 1000)
    for ann in gt["annotations"]:
        kp = np.array(ann["keypoints"]).reshape(133, 3)
        for field, valid, (_, start, stop) in zip(FIELDS, VALID, COCO_WHOLEBODY.parts):
            if valid and rng.random() < 0.3:
                kp[start:stop] = 0
            part = kp[start:stop]
            ann[field] = part.ravel().tolist()
            if valid:
                ann[valid] = bool((part[:, 2] > 0).any())
        ann["num_keypoints"] = int((kp[:17, 2] > 0).sum())
    for j, result in enumerate(results):
        kp = np.array(result["keypoints"]).reshape(133, 3)
        for field, (_, start, stop) in zip(FIELDS, COCO_WHOLEBODY.parts):
            if field != "keypoints" and rng.random() < 0.1:
                kp[start:stop, 2] = 0                          # a part not scored
            result[field] = kp[start:stop].ravel().tolist()
        if j % 3 == 0:
            for key in SCORES:
                result[key] = float(np.round(rng.uniform(0, 1), 2))
    return gt, results


FIELDS = ("keypoints", "foot_kpts", "face_kpts", "lefthand_kpts", "righthand_kpts")
VALID = (None, "foot_valid", "face_valid", "lefthand_valid", "righthand_valid")
SCORES = ("foot_score", "face_score", "lefthand_score", "righthand_score", "wholebody_score")
