"""`PosePredictor`: a pose model as the batch function Ray Data and Spark call.

Ray Data's `map_batches(PosePredictor, fn_constructor_kwargs=..., concurrency=N)` builds one per
actor (the model loads once there) and calls it on dicts of columns; Spark's `predict_batch_udf`
calls the function its `make_predict_fn` returns the same way. Nothing here imports Ray.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import HrposeError
from ..inference.estimator import PoseEstimator
from ..inference.images import to_rgb
from ..inference.options import EstimatorOptions
from ..inference.person import Person, coco_result
from ..io import decode_image


class PosePredictor:
    """Callable on a batch `{"image": [H x W x 3 uint8 RGB, ...], "path": [...], ...}` (or with
    `"bytes"`: encoded image files, as Spark's binaryFile source gives them) -> the same dict
    with a `people` column: for each image, a list of people, each
    `{"bbox": [x, y, w, h], "box_score", "score", "keypoints": [x, y, score] * K}` in image
    pixels (the rows of `hrpose infer`'s results.json, rounded to 0.01 px).

    model, `options` and the keywords are `PoseEstimator`'s (an `EstimatorOptions`, or its
    names: backend, device, precision, weights, detector, box_threshold, flip, decode, batch,
    threads, streams, ...). All images of a call share model batches."""

    def __init__(self, model: str = "hrnet_w32_256x192",
                 options: EstimatorOptions | None = None, **keywords: Any) -> None:
        self.estimator = PoseEstimator(model, options, **keywords)
        self.card = self.estimator.card
        self.joints = list(self.estimator.skeleton.joints)

    def __call__(self, batch: dict) -> dict:
        images = self.images(batch)
        names = [str(p) for p in batch["path"]] if "path" in batch else [
            f"image {i}" for i in range(len(images))]
        found = self.estimator.predict_rgb(images, None, names)
        return {**batch, "people": [people_rows(people) for people in found]}

    @staticmethod
    def images(batch: dict) -> list[np.ndarray]:
        """The batch's images as RGB uint8 arrays: its "image" column (an (N, H, W, 3) array
        or a list of arrays, RGB as Ray's read_images gives them) or its "bytes" column."""
        if "image" in batch:
            column = batch["image"]
            return [to_rgb(np.asarray(im), "rgb", f"image {i}") for i, im in enumerate(column)]
        if "bytes" in batch:
            names = batch.get("path", [f"image {i}" for i in range(len(batch["bytes"]))])
            return [decode_image(bytes(data), str(name))
                    for data, name in zip(batch["bytes"], names)]
        raise HrposeError(f"a batch needs an 'image' or a 'bytes' column; it has "
                          f"{', '.join(map(repr, batch)) or 'none'}")


def people_rows(people: Sequence[Person]) -> list[dict]:
    """People as plain rows: results.json's fields less image_id and category_id."""
    rows = []
    for person in people:
        row = coco_result(person, 0)
        del row["image_id"], row["category_id"]
        rows.append(row)
    return rows
