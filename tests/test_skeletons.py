import numpy as np
import pytest

from hrpose.errors import HrposeError
from hrpose.skeletons import COCO, CROWDPOSE, MPII, Skeleton, get_skeleton, skeleton_for


@pytest.mark.parametrize("skeleton", [COCO, MPII, CROWDPOSE])
def test_flip_index_is_an_involution_that_swaps_left_and_right(skeleton):
    index = skeleton.flip_index
    assert np.array_equal(index[index], np.arange(skeleton.num_joints))
    for j, name in enumerate(skeleton.joints):
        other = skeleton.joints[index[j]]
        assert other == name.replace("left", "@").replace("right", "left").replace("@", "right")


def test_builtin_sets_have_their_published_sizes():
    assert (COCO.num_joints, MPII.num_joints, CROWDPOSE.num_joints) == (17, 16, 14)
    assert COCO.sigmas[0] == pytest.approx(0.026) and COCO.sigmas[-1] == pytest.approx(0.089)
    assert len(COCO.links) == 19 and COCO.links[0] == (15, 13)     # COCO's [16, 14], 0-based
    assert skeleton_for(16) is MPII and get_skeleton("crowdpose") is CROWDPOSE


def test_custom_set_from_a_coco_category():
    category = {"name": "hand", "keypoints": ["wrist", "thumb", "index"],
                "skeleton": [[1, 2], [1, 3]]}
    s = Skeleton.from_coco_category(category, sigmas=[0.03, 0.02, 0.02])
    assert s.links == ((0, 1), (0, 2)) and s.num_joints == 3
    assert np.array_equal(s.flip_index, [0, 1, 2])
    with pytest.raises(HrposeError, match="2 sigmas for 3 joints"):
        Skeleton.from_coco_category(category, sigmas=[0.1, 0.1])
    with pytest.raises(HrposeError, match=r"joint pair \[0, 5\]"):
        Skeleton.from_coco_category(category, sigmas=[0.1] * 3, flip_pairs=[[0, 5]])
    with pytest.raises(HrposeError, match="no built-in keypoint set has 3 joints"):
        skeleton_for(3, category["keypoints"])
