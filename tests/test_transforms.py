import numpy as np
import pytest

from hrpose.data.transforms import (
    Crop,
    apply_affine,
    boxes_to_crops,
    crop_matrices,
    invert_affine,
    normalize,
    warp,
)


def test_box_to_crop_fixes_aspect_then_pads():
    centers, sizes = boxes_to_crops(np.array([[10, 20, 30, 120], [0, 0, 300, 100]]), 0.75)
    # Tall box: width grows to 0.75 * 120 = 90; wide box: height grows to 300 / 0.75 = 400.
    assert np.allclose(centers, [[25, 80], [150, 50]])
    assert np.allclose(sizes, [[90 * 1.25, 120 * 1.25], [300 * 1.25, 400 * 1.25]])


@pytest.mark.parametrize("udp", [False, True])
def test_crop_then_inverse_maps_points_back(udp):
    rng = np.random.default_rng(0)
    crop = Crop(np.array([123.4, 56.7]), np.array([90.0, 120.0]), rotation=33.0, flip=True)
    pts = rng.uniform(-50, 300, (40, 2))
    m = crop.matrix((192, 256), udp)
    back = crop.to_image(apply_affine(m, pts), (192, 256), udp)
    assert np.abs(back - pts).max() < 1e-9


def test_classic_and_udp_centre_the_box():
    c, s = np.array([[100.0, 50.0]]), np.array([[48.0, 64.0]])
    classic = crop_matrices(c, s, (192, 256))[0]
    udp = crop_matrices(c, s, (192, 256), udp=True)[0]
    assert np.allclose(apply_affine(classic, c[0]), [96, 128])           # out / 2
    assert np.allclose(apply_affine(udp, c[0]), [95.5, 127.5])           # (out - 1) / 2
    # The box's corners: classic maps them to the output's outer edges.
    assert np.allclose(apply_affine(classic, np.array([76.0, 18.0])), [0, 0])


def test_rotation_turns_about_the_centre():
    m = crop_matrices(np.array([[50.0, 50.0]]), np.array([[20.0, 20.0]]), (20, 20),
                      rotations=np.array([90.0]))[0]
    # +90 degrees: the content turns counter-clockwise on screen, so the image point above the
    # centre lands left of the crop's centre, at the same distance.
    assert np.allclose(apply_affine(m, np.array([50.0, 40.0])), [0, 10])
    assert np.allclose(apply_affine(m, np.array([60.0, 50.0])), [10, 0])


def test_warp_samples_where_the_matrix_says():
    image = np.zeros((100, 120, 3), np.uint8)
    image[37, 81] = 255                                  # a dot at x=81, y=37
    m = crop_matrices(np.array([[70.0, 40.0]]), np.array([[40.0, 40.0]]), (40, 40))[0]
    crop = warp(image, m, (40, 40))
    y, x = np.unravel_index(crop[..., 0].argmax(), crop.shape[:2])
    assert np.allclose(apply_affine(m, np.array([81.0, 37.0])), [x, y])


@pytest.mark.parametrize("udp", [False, True])
def test_flipped_crop_is_the_exact_mirror_and_flip_twice_is_identity(udp):
    image = np.random.default_rng(1).integers(0, 255, (80, 90, 3), dtype=np.uint8)
    c, s = np.array([[40.3, 41.7]]), np.array([[45.0, 60.0]])
    plain = crop_matrices(c, s, (48, 64), udp)[0]
    flipped = crop_matrices(c, s, (48, 64), udp, flips=np.array([True]))[0]
    assert np.array_equal(warp(image, flipped, (48, 64)), warp(image, plain, (48, 64))[:, ::-1])
    mirror = np.array([[-1.0, 0, 47], [0, 1, 0]])
    twice = apply_affine(mirror, apply_affine(flipped, np.array([[10.0, 20.0]])))
    assert np.allclose(twice, apply_affine(plain, np.array([[10.0, 20.0]])))
    assert np.allclose(invert_affine(invert_affine(flipped)), flipped)


def test_normalize_matches_the_formula():
    crops = np.random.default_rng(0).integers(0, 255, (2, 4, 5, 3), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    x = normalize(crops, mean, std)
    ref = ((crops / 255.0 - mean) / std).transpose(0, 3, 1, 2)
    assert x.shape == (2, 3, 4, 5) and x.dtype == np.float32 and np.abs(x - ref).max() < 1e-5
