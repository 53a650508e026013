"""Choosing joints (pose_factory.render.hide): hidden points leave the image and the POSE_KEYPOINT
output, keep their place in our field and come back exactly; controlnet-aux's drawing (the oracle,
tests/oracles.py) of the remaining points is our image of the hidden frame, pixel for pixel."""
import copy
import json

import numpy as np
import pytest

from oracles import controlnet_aux_util, oracle_draw, sdpose_draw_node, sdpose_source
from test_openpose_drawing import _covered_frame, _promoted, random_frame
from pose_factory.render import hide as hd
from pose_factory.render import openpose as op

BODY, LH, RH, FACE = op.PART_KEYS[:4]  # the fifth, foot_keypoints_2d, only where a frame has feet
# OpenPose's COCO-18 body order, written out here from the OpenPose docs (not from our constants):
NOSE, R_KNEE, L_SHOULDER, L_ELBOW, L_WRIST, R_EYE, L_EYE = 0, 9, 5, 6, 7, 14, 15


@pytest.fixture(scope="module")
def oracle():
    return controlnet_aux_util()


def _zeroed(frame, where, people=None):
    """The frame with the points `where` ({part: indices or "all"}) written 0, 0, 0 by hand, on the
    people listed (all when None), our field dropped: what a reader should get."""
    out = json.loads(json.dumps(frame))
    for k, person in enumerate(out["people"]):
        person.pop(op.OWN_KEY, None)
        if people is not None and k not in people:
            continue
        for part, idx in where.items():
            flat = person.get(part) or []
            for j in range(len(flat) // 3):
                if idx == "all" or j in idx:
                    flat[3 * j:3 * j + 3] = [0.0, 0.0, 0.0]
    return out


def _public(frame):
    out = json.loads(json.dumps(frame))
    for person in out["people"]:
        person.pop(op.OWN_KEY, None)
    return out


def test_parse_names_groups_aliases_and_people():
    assert hd.parse_hide("") == [] and hd.parse_hide(None) == [] and hd.parse_hide(" , ") == []
    assert hd.parse_hide("Left_Wrist, l_wrist, left hand, 1:face, nose") == [
        (None, "l_wrist"), (None, "left_hand"), (1, "face"), (None, "nose")]
    assert hd.parse_hide("right-knee;feet;r_heel") == [(None, "r_knee"), (None, "feet"), (None, "r_heel")]
    for name in hd.GROUPS:
        assert hd.parse_hide(name) == [(None, name)]
    for name in op.BODY_NAMES + hd.FOOT_NAMES:
        assert hd.parse_hide(name) == [(None, name)]


@pytest.mark.parametrize("text, bad", [("left_hnd", "'left_hnd'"), ("nose, elbow", "'elbow'"),
                                        ("x:face", "person 'x'"), ("99:face", "person '99'"), (3, "got int")])
def test_unknown_names_are_refused_with_the_allowed_ones(text, bad):
    with pytest.raises(ValueError) as e:
        hd.parse_hide(text)
    msg = str(e.value)
    assert msg.startswith("hide: ") and bad in msg
    for name in ("left_hand", "face", "legs", "l_wrist", "left_wrist", "r_heel", "1:left_hand"):
        assert name in msg
    assert hd.validate_hide(text) == msg and hd.validate_hide("face, l_wrist") is True


def test_hidden_points_are_zero_kept_in_our_field_and_come_back_exactly(oracle):
    rng = np.random.default_rng(23)
    for _ in range(40):
        frame = random_frame(rng)
        before = copy.deepcopy(frame)
        hidden = hd.hide_frame(frame, "left_hand, nose, right_knee, eyes")
        assert frame == before  # the input is not changed
        where = {LH: "all", BODY: {NOSE, R_KNEE, R_EYE, L_EYE}}
        want = _zeroed(frame, where)
        assert _public(hidden) == want
        op.validate_pose_keypoint(hidden)
        assert json.loads(json.dumps(hidden)) == hidden
        for person, orig in zip(hidden["people"], frame["people"]):
            kept = person[op.OWN_KEY]["hidden"]
            assert kept["joints"] == ["left_hand", "nose", "r_knee", "eyes"]
            for part in (BODY, LH):
                for j in range(len(orig[part]) // 3):
                    hit = where[part] == "all" or j in where[part]
                    assert kept["keypoints"][part][3 * j:3 * j + 3] == (
                        orig[part][3 * j:3 * j + 3] if hit else [0.0, 0.0, 0.0]) or not any(orig[part][3 * j:3 * j + 3])
        assert hd.unhide_frame(hidden) == frame
        # controlnet-aux draws exactly the remaining points, and so do we
        np.testing.assert_array_equal(op.draw_pose(hidden), oracle_draw(oracle, want))
        # un-hidden: today's image
        np.testing.assert_array_equal(op.draw_pose(hd.unhide_frame(hidden)), oracle_draw(oracle, frame))


def test_groups_hide_what_they_say(oracle):
    frame = random_frame(np.random.default_rng(7))
    cases = {
        "face": {FACE: "all"}, "hands": {LH: "all", RH: "all"}, "right_hand": {RH: "all"},
        "left_arm": {BODY: {L_SHOULDER, L_ELBOW, L_WRIST}, LH: "all"},
        "legs": {BODY: {8, 9, 10, 11, 12, 13}}, "ears": {BODY: {16, 17}},
        "head": {FACE: "all", BODY: {0, 14, 15, 16, 17}}, "left_leg": {BODY: {11, 12, 13}},
    }
    for text, where in cases.items():
        hidden = hd.hide_frame(frame, text)
        assert _public(hidden) == _zeroed(frame, where), text
        np.testing.assert_array_equal(op.draw_pose(hidden), oracle_draw(oracle, _zeroed(frame, where)))
        assert hd.unhide_frame(hidden) == frame


def test_covered_points_are_hidden_too_and_come_back(oracle):
    frame, _ = _covered_frame(np.random.default_rng(11))
    hidden = hd.hide_frame(frame, "r_hand, l_elbow, face")
    where = {RH: "all", BODY: {L_ELBOW}, FACE: "all"}
    cov = hidden["people"][0][op.OWN_KEY]["occluded"]
    for part, idx in where.items():
        for j in range(len(cov[part]) // 3):
            if idx == "all" or j in idx:
                assert cov[part][3 * j:3 * j + 3] == [0.0, 0.0, 0.0]
    # occluded show draws the covered points too, but not the hidden ones
    np.testing.assert_array_equal(op.draw_pose(hidden, occluded="show"),
                                  oracle_draw(oracle, _zeroed(_promoted(frame), where)))
    np.testing.assert_array_equal(op.draw_pose(hidden), oracle_draw(oracle, _zeroed(frame, where)))
    assert hd.unhide_frame(hidden) == frame
    for mode in op.OCCLUDED_MODES:
        np.testing.assert_array_equal(op.draw_pose(hd.unhide_frame(hidden), occluded=mode),
                                      op.draw_pose(frame, occluded=mode))
    assert not np.array_equal(op.draw_pose(hidden, occluded="depth"), op.draw_pose(frame, occluded="depth"))
    # depth: as the frame whose hidden points were never there (public and covered), depths kept
    gone = json.loads(json.dumps(frame))
    person = gone["people"][0]
    for lists in (person, person[op.OWN_KEY]["occluded"]):
        for part, idx in where.items():
            for j in range(len(lists[part]) // 3):
                if idx == "all" or j in idx:
                    lists[part][3 * j:3 * j + 3] = [0.0, 0.0, 0.0]
    for mode in op.OCCLUDED_MODES:
        np.testing.assert_array_equal(op.draw_pose(hidden, occluded=mode), op.draw_pose(gone, occluded=mode))


def test_hiding_twice_keeps_both_and_unhides_both():
    frame = random_frame(np.random.default_rng(3))
    twice = hd.hide_frame(hd.hide_frame(frame, "left_hand, nose"), "nose, right_leg")
    assert _public(twice) == _zeroed(frame, {LH: "all", BODY: {NOSE, 8, 9, 10}})
    assert twice["people"][0][op.OWN_KEY]["hidden"]["joints"] == ["left_hand", "nose", "right_leg"]
    assert hd.unhide_frame(twice) == frame


def test_one_person_of_several():
    rng = np.random.default_rng(1)
    frame = random_frame(rng)
    frame = op.join_frames([frame, random_frame(np.random.default_rng(2)) | {
        "canvas_width": frame["canvas_width"], "canvas_height": frame["canvas_height"]}])
    frame["people"] = frame["people"][:2]
    hidden = hd.hide_frame(frame, "1:left_hand, neck")
    assert _public(hidden) == _zeroed(_zeroed(frame, {LH: "all"}, people={1}), {BODY: {1}})
    assert hidden["people"][0][op.OWN_KEY]["hidden"]["joints"] == ["neck"]
    assert hidden["people"][1][op.OWN_KEY]["hidden"]["joints"] == ["1:left_hand", "neck"]
    assert hd.unhide_frame(hidden) == frame
    assert hd.hide_frame(frame, "5:face") == frame  # a person the frame lacks: nothing hidden
    assert hd.unhide_frame(hd.hide_frame(frame, "0:left_hand")) == frame


def test_foot_points_where_a_frame_has_them():
    frame = random_frame(np.random.default_rng(4))
    feet = [float(v) for v in range(1, 19)]  # 6 points: l big toe, l small toe, l heel, r ...
    for i in range(2, 18, 3):
        feet[i] = 1.0
    frame["people"][0]["foot_keypoints_2d"] = feet
    hidden = hd.hide_frame(frame, "left_foot, r_heel")
    got = hidden["people"][0]["foot_keypoints_2d"]
    assert got == [0.0] * 9 + feet[9:15] + [0.0] * 3
    assert hidden["people"][0][op.OWN_KEY]["hidden"]["keypoints"]["foot_keypoints_2d"] == feet[:9] + [0.0] * 6 + feet[15:]
    assert hd.unhide_frame(hidden) == frame
    # a leg holds its foot; a frame without feet hides the leg's body points only
    assert hd.hide_frame(frame, "legs")["people"][0]["foot_keypoints_2d"] == [0.0] * 18
    plain = random_frame(np.random.default_rng(5))
    assert "foot_keypoints_2d" not in hd.hide_frame(plain, "feet, left_leg")["people"][0]
    assert _public(hd.hide_frame(plain, "feet")) == _public(plain)
    assert hd.unhide_frame(hd.hide_frame(plain, "feet")) == plain


def test_a_broken_hidden_field_is_refused():
    frame = hd.hide_frame(random_frame(np.random.default_rng(6)), "nose")
    frame["people"][0][op.OWN_KEY]["hidden"] = {"keypoints": []}
    with pytest.raises(ValueError, match="pose_factory.hidden must be a dict"):
        hd.hide_frame(frame, "neck")


def test_pose_keypoints_to_image_node(oracle):
    from nodes.keypoint_nodes import PoseFactoryPoseKeypointsToImage as Node

    assert Node.INPUT_TYPES()["optional"]["hide"][0] == "STRING"
    assert Node.VALIDATE_INPUTS(hide="face, left_wrist") is True
    assert "unknown joint or group 'toes'" in Node.VALIDATE_INPUTS(hide="toes")
    frame = random_frame(np.random.default_rng(8))
    (image,) = Node().draw([frame], True, True, False, hide="left_arm")
    want = oracle_draw(oracle, _zeroed(frame, {BODY: {L_SHOULDER, L_ELBOW, L_WRIST}, LH: "all"}))
    np.testing.assert_array_equal(np.rint(image[0].numpy() * 255).astype(np.uint8), want)
    with pytest.raises(ValueError, match="hide: unknown joint"):
        Node().draw([frame], True, True, False, hide="tail")


def test_core_sdpose_reader_draws_exactly_the_remaining_points():
    path = sdpose_source()
    if path is None:
        pytest.skip("ComfyUI core's comfy_extras/nodes_sdpose.py not found: set COMFYUI_DIR to a ComfyUI checkout")
    sdpose = sdpose_draw_node(path)
    rng = np.random.default_rng(12)
    frame = random_frame(rng)
    while any(len(p[FACE]) not in (0, 210) for p in frame["people"]):  # core reads 70 face points
        frame = random_frame(rng)
    for text, where in (("right_arm", {BODY: {2, 3, 4}, RH: "all"}), ("face, l_knee", {FACE: "all", BODY: {12}})):
        hidden = hd.hide_frame(frame, text)
        for threshold in (0.01, 0.3, 1.0):  # any threshold it offers above 0
            got = sdpose([hidden], score_threshold=threshold)[0]
            assert np.array_equal(got, sdpose([_zeroed(frame, where)], score_threshold=threshold)[0])
        assert not np.array_equal(sdpose([hidden])[0], sdpose([frame])[0])  # the points were drawn before
        assert np.array_equal(sdpose([hd.unhide_frame(hidden)])[0], sdpose([frame])[0])


def test_body_points_per_person_for_the_viewer():
    assert hd.body_hidden("", 2) == [[], []]
    assert hd.body_hidden("left_leg, 1:r_wrist, 1:face", 3) == [[11, 12, 13], [4, 11, 12, 13], [11, 12, 13]]
    assert hd.body_hidden("1:head", 2) == [[], [0, 14, 15, 16, 17]]
    assert hd.body_hidden("hands, feet", 1) == [[]]  # no body point among them
    with pytest.raises(ValueError, match="unknown joint"):
        hd.body_hidden("tail", 1)


def test_any_text_is_a_list_or_a_clear_error():
    rng = np.random.default_rng(0)
    pieces = list(hd.NAMES) + list(hd.ALIASES) + ["1:", "99:", ":", ",", ";", " ", "-", "x", "é", "\x00", "left", "0:"]
    for _ in range(2000):
        text = "".join(rng.choice(pieces, size=int(rng.integers(0, 6))))
        try:
            got = hd.parse_hide(text)
        except ValueError as e:
            assert str(e).startswith("hide: ") and "allowed: " in str(e)
            continue
        frame = random_frame(rng)
        assert hd.unhide_frame(hd.hide_frame(frame, got)) == frame
