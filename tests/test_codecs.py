import numpy as np
import pytest
import torch

from hrpose.codecs.heatmap import HeatmapCodec, gaussian_blur
from hrpose.errors import HrposeError
from hrpose.skeletons import COCO


def random_keypoints(n: int, margin: float, seed: int = 0) -> np.ndarray:
    """(n, 17, 3) visible joints at least `margin` input pixels inside a 192 x 256 crop."""
    rng = np.random.default_rng(seed)
    kp = np.ones((n, 17, 3))
    kp[..., 0] = rng.uniform(margin, 191 - margin, (n, 17))
    kp[..., 1] = rng.uniform(margin, 255 - margin, (n, 17))
    return kp


@pytest.mark.parametrize("method", ["dark", "udp"])
def test_subpixel_round_trip(method):
    codec = HeatmapCodec((192, 256), (48, 64), 2.0, method)
    kp = random_keypoints(32, margin=20)
    heatmaps, weights = codec.encode(kp)
    coords, scores = codec.decode(heatmaps)
    assert heatmaps.shape == (32, 17, 64, 48) and weights.all()
    assert np.abs(coords - kp[..., :2]).max() < 0.05
    assert scores.min() > 0.9


def test_classic_round_trip_is_the_nearest_heatmap_pixel():
    codec = HeatmapCodec((192, 256), (48, 64))
    kp = random_keypoints(16, margin=12)
    coords, _ = codec.decode(codec.encode(kp)[0])
    # Targets sit on the nearest pixel, the peak is symmetric so no quarter shift applies.
    assert np.array_equal(coords, np.floor(kp[..., :2] / 4 + 0.5) * 4)


def test_quarter_shift_moves_towards_the_higher_neighbour():
    hm = np.zeros((1, 1, 64, 48), np.float32)
    hm[0, 0, 30, 20] = 1.0
    hm[0, 0, 30, 21] = 0.5          # right neighbour higher than left
    hm[0, 0, 29, 20] = 0.5          # upper neighbour higher than lower
    coords, scores = HeatmapCodec((192, 256), (48, 64)).decode(hm)
    assert np.allclose(coords[0, 0], [(20 + 0.25) * 4, (30 - 0.25) * 4]) and scores[0, 0] == 1


def test_invisible_and_out_of_crop_joints_get_zero_weight():
    codec = HeatmapCodec((192, 256), (48, 64))
    kp = np.array([[[100, 100, 2], [100, 100, 0], [-40, 100, 2], [-10, 100, 1]]], float)
    heatmaps, weights = codec.encode(kp)
    assert weights.tolist() == [[1, 0, 0, 1]]            # -10 px: its 3-sigma window overlaps
    assert heatmaps[0, 1].max() == 0 and heatmaps[0, 2].max() == 0
    assert heatmaps[0, 0].max() == pytest.approx(1.0)
    # The classic window is 3 sigma: 6 heatmap pixels either side of the centre, no more.
    row = heatmaps[0, 0, 25]
    assert row[25 + 6] > 0 and row[25 + 7] == 0


def test_decode_is_batched_and_takes_tensors():
    codec = HeatmapCodec((192, 256), (48, 64), method="dark")
    hm = codec.encode(random_keypoints(5, 12, seed=3))[0]
    hm += np.random.default_rng(0).uniform(0, 0.05, hm.shape).astype(np.float32)
    batch, _ = codec.decode(torch.from_numpy(hm))
    single = np.concatenate([codec.decode(hm[i : i + 1])[0] for i in range(5)])
    assert np.array_equal(batch, single)


def test_blur_equals_a_direct_2d_convolution():
    maps = np.random.default_rng(0).random((2, 3, 20, 16)).astype(np.float32)
    blurred = gaussian_blur(maps, 11)
    g = np.exp(-((np.arange(11) - 5) ** 2) / 8.0)   # cv2's sigma for size 11 is 2.0
    g /= g.sum()
    padded = np.pad(maps, ((0, 0), (0, 0), (5, 5), (5, 5)))
    direct = np.zeros_like(maps)
    for dy in range(11):
        for dx in range(11):
            direct += g[dy] * g[dx] * padded[..., dy : dy + 20, dx : dx + 16]
    assert np.abs(blurred - direct).max() < 1e-6


def test_flip_back_udp_is_exact_and_twice_is_identity():
    codec = HeatmapCodec((192, 256), (48, 64), method="udp")
    kp = random_keypoints(4, 20, seed=1)
    mirrored = kp.copy()
    mirrored[..., 0] = 191 - kp[..., 0]                  # the mirrored crop's joints ...
    mirrored = mirrored[:, COCO.flip_index]              # ... with left and right swapped
    back = codec.flip_back(codec.encode(mirrored)[0], COCO.flip_index)
    assert np.abs(codec.decode(back)[0] - kp[..., :2]).max() < 0.05
    hm = codec.encode(kp)[0]
    assert np.array_equal(codec.flip_back(codec.flip_back(hm, COCO.flip_index),
                                          COCO.flip_index), hm)


def test_classic_flip_back_shifts_one_pixel_right():
    codec = HeatmapCodec((192, 256), (48, 64))
    hm = np.zeros((1, 17, 64, 48), np.float32)
    hm[0, 5, 10, 30] = 1                                  # left shoulder at column 30
    back = codec.flip_back(hm, COCO.flip_index)
    # Mirrored to column 17, moved to the right shoulder, shifted right by one: column 18.
    assert back[0, 6, 10, 18] == 1 and back[0, 5].max() == 0


def test_unknown_method_is_an_error():
    with pytest.raises(HrposeError, match="unknown heatmap decoding 'dsnt'"):
        HeatmapCodec((192, 256), (48, 64), method="dsnt")
