import json

import numpy as np
import pytest

from hrpose.errors import HrposeError
from hrpose.skeletons import (
    COCO,
    CROWDPOSE,
    DEFAULT_SIGMA,
    MPII,
    SKELETONS,
    builtin_for_names,
    get_skeleton,
    infer_flip_pairs,
    load_skeleton_file,
    parse_skeleton,
    skeleton_from_category,
    write_skeleton_file,
)

FACE = {"name": "face5", "joints": ["snout", "eye_l", "eye_r", "ear_l", "ear_r"],
        "flip_pairs": [["eye_l", "eye_r"], ["ear_l", "ear_r"]],
        "links": [["snout", "eye_l"], ["snout", "eye_r"], ["eye_l", "ear_l"], ["eye_r", "ear_r"]],
        "sigmas": [0.026, 0.025, 0.025, 0.035, 0.035], "upper_body": ["snout", "eye_l"]}


@pytest.mark.parametrize("skeleton", [COCO, MPII, CROWDPOSE])
def test_flip_index_is_an_involution_that_swaps_left_and_right(skeleton):
    index = skeleton.flip_index
    assert np.array_equal(index[index], np.arange(skeleton.num_joints))
    for j, name in enumerate(skeleton.joints):
        other = skeleton.joints[index[j]]
        assert other == name.replace("left", "@").replace("right", "left").replace("@", "right")
    for left, right in skeleton.flip_pairs:          # stored as (left, right)
        assert skeleton.joints[left].startswith("left")
        assert skeleton.joints[right].startswith("right")


def test_builtin_sets_have_their_published_sizes():
    assert (COCO.num_joints, MPII.num_joints, CROWDPOSE.num_joints) == (17, 16, 14)
    assert COCO.sigmas[0] == pytest.approx(0.026) and COCO.sigmas[-1] == pytest.approx(0.089)
    assert len(COCO.links) == 19 and COCO.links[0] == (15, 13)     # COCO's [16, 14], 0-based
    assert builtin_for_names(MPII.joints) is MPII and get_skeleton("crowdpose") is CROWDPOSE
    assert builtin_for_names(COCO.joints[::-1]) is None
    # the official HigherHRNet grouping order: head, shoulders, hips, elbows, knees, ...
    assert COCO.order == (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16)
    assert MPII.order == tuple(range(16))


@pytest.mark.parametrize("name", list(SKELETONS))
def test_the_serial_form_names_joints_and_reads_back_as_the_same_set(name):
    builtin = SKELETONS[name]
    value = json.loads(json.dumps(builtin.to_dict()))
    assert all(isinstance(j, str) for pair in value["flip_pairs"] for j in pair)
    assert parse_skeleton(value) is builtin


def test_a_custom_set_reads_by_joint_name(tmp_path):
    face = parse_skeleton(FACE)
    assert face.flip_pairs == ((1, 2), (3, 4)) and face.links[2] == (1, 3)
    assert face.upper_body == (0, 1) and face.order == (0, 1, 2, 3, 4)
    assert list(face.flip_index) == [0, 2, 1, 4, 3] and not face.builtin
    write_skeleton_file(tmp_path / "keypoints.yaml", face, "made by a test")
    assert load_skeleton_file(tmp_path / "keypoints.yaml") == face
    # sigmas may be a mapping of joint name -> sigma
    by_name = parse_skeleton({**FACE, "sigmas": dict(zip(FACE["joints"], FACE["sigmas"]))})
    assert by_name == face


@pytest.mark.parametrize("change, message", [
    ({"flip_pairs": [["eye_l", "eye_x"]]}, r"keypoints.flip_pairs\[0\]: 'eye_x' is not a joint"),
    ({"flip_pairs": [["eye_l", "eye_r"], ["eye_r", "ear_r"]]}, "eye_r is in two flip pairs"),
    ({"flip_pairs": [["eye_l", "eye_l"]]}, "pairs a joint with itself"),
    ({"sigmas": [0.1, 0.1]}, r"keypoints.sigmas: expected 5 sigmas"),
    ({"sigmas": [0.1, 0.1, 0.1, 0.1, -1]}, r"keypoints.sigmas\[4\]: expected a positive"),
    ({"sigmas": {"snout": 0.1}}, "no sigma for eye_l"),
    ({"joints": ["a", "b", "a"]}, "'a' appears twice"),
    ({"links": [["snout"]]}, r"keypoints.links\[0\]: expected two joint names"),
    ({"upper_body": ["tail"]}, "keypoints.upper_body: 'tail' is not a joint"),
    ({"colour": "red"}, "keypoints.colour: unknown key"),
    ({"name": "coco"}, "keypoints.name: 'coco' is a built-in set's name"),
])
def test_a_bad_set_is_one_line_naming_the_field(change, message):
    value = {**FACE, **change}
    if "joints" in change:
        value = {"joints": change["joints"], "sigmas": [0.1] * 3}
    with pytest.raises(HrposeError, match=message) as e:
        parse_skeleton(value)
    assert "\n" not in str(e.value)


def test_missing_sigmas_are_the_documented_default_with_a_warning():
    value = {k: v for k, v in FACE.items() if k != "sigmas"}
    with pytest.warns(UserWarning, match="not comparable"):
        face = parse_skeleton(value)
    assert face.sigmas == (DEFAULT_SIGMA,) * 5


@pytest.mark.parametrize("names, pairs", [
    (["nose", "left_eye", "right_eye"], [(1, 2)]),
    (["eye_l", "snout", "eye_r"], [(0, 2)]),
    (["r_ear", "l_ear"], [(1, 0)]),
    (["LeftPaw", "RightPaw", "Tail"], [(0, 1)]),
    (["frontLeftPaw", "frontRightPaw", "hindLeftPaw", "hindRightPaw"], [(0, 1), (2, 3)]),
    (["leftear", "rightear", "snout", "tailbase"], [(0, 1)]),        # DeepLabCut's style
    (["EyeL", "EyeR", "Mouth_L", "Mouth_R"], [(0, 1), (2, 3)]),
    (["wrist", "ring", "rib", "lip"], []),          # letters inside words are no side
    (["left_hand", "tail"], []),                    # no twin: not paired
])
def test_flip_pairs_are_inferred_from_side_words(names, pairs):
    assert list(infer_flip_pairs(names)) == pairs


def test_a_coco_category_gives_names_links_and_inferred_flips():
    category = {"id": 1, "name": "hand", "keypoints": ["wrist", "thumb_l", "thumb_r"],
                "skeleton": [[1, 2], [1, 3]]}
    with pytest.warns(UserWarning, match="no sigmas"):
        s = skeleton_from_category(category)
    assert s.name == "hand" and s.links == ((0, 1), (0, 2)) and s.flip_pairs == ((1, 2),)
    assert skeleton_from_category({"keypoints": list(COCO.joints)}) is COCO
    with pytest.raises(HrposeError, match="'skeleton' must be"):
        skeleton_from_category({**category, "skeleton": [[1, 4]]})
