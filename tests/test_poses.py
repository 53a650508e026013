"""Presets, hand shapes, explicit-pose validation, mirroring and grounding (pose_factory/render/poses.py)."""
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from pose_factory.render import mannequin as mq
from pose_factory.render import poses, rig
from pose_factory.errors import SpecError

DOC = Path(__file__).resolve().parent.parent / "docs" / "poses.md"
FIELD = "subjects[0].poses[2]"
REQUIRED = ("rest", "a_pose", "t_pose", "standing", "walk_left_step", "walk_right_step", "running", "sitting",
            "sitting_floor", "kneeling", "kneeling_one_knee", "crouching", "squatting", "jumping", "lying_back",
            "lying_front", "reaching_up", "reaching_forward", "pointing", "waving", "arms_crossed",
            "hands_on_hips", "fighting_stance", "dance_disco", "dance_arabesque")


@pytest.fixture(scope="module")
def body():
    return mq.build(1.75, "average")


@pytest.fixture(scope="module")
def posed_presets(body):
    return {name: poses.pose_body(body, poses.normalize_pose_entry(name, FIELD)) for name in poses.PRESETS}


def reflect(p):
    return np.asarray(p) * np.array([-1.0, 1.0, 1.0])


def refused(entry, field, *fragments):
    """The entry is refused with one SpecError naming the field and saying each fragment."""
    with pytest.raises(SpecError) as info:
        poses.normalize_pose_entry(entry, FIELD)
    text = str(info.value)
    assert field in text or getattr(info.value, "field", None) == field, text
    for fragment in fragments:
        assert fragment in text, text
    return text


# --- presets ---------------------------------------------------------------------------------
def test_preset_names():
    assert len(poses.PRESETS) >= 24
    for name in REQUIRED:
        assert name in poses.PRESETS
    for name, p in poses.PRESETS.items():
        assert name.isidentifier() and name == name.lower()
        assert set(p) == {"joints", "hands", "offset", "grounded"}
        assert name in poses.PRESET_DESCRIPTIONS
    assert set(poses.PRESET_DESCRIPTIONS) == set(poses.PRESETS)


@pytest.mark.parametrize("name", list(poses.PRESETS))
def test_preset_valid_and_grounded(body, posed_presets, name):
    p = poses.PRESETS[name]
    for joint, dofs in p["joints"].items():
        for dof, value in dofs.items():
            assert poses.limit_problem(joint, dof, value) is None, (name, joint, dof)
    angles, offset, grounded = poses.pose_angles(poses.normalize_pose_entry(name, FIELD))
    for joint, dofs in angles.items():
        for dof, value in dofs.items():
            assert poses.limit_problem(joint, dof, value) is None, (name, joint, dof)
    posed = posed_presets[name]
    verts = mq.posed_vertices(body, posed)
    assert grounded == p["grounded"]
    if grounded:
        assert verts[:, 2].min() == pytest.approx(p["offset"][2], abs=1e-6)
    # mirrored, it is just as valid and grounded
    mirrored = poses.pose_body(body, poses.normalize_pose_entry({"preset": name, "mirror": True}, FIELD))
    if grounded:
        assert mq.posed_vertices(body, mirrored)[:, 2].min() == pytest.approx(p["offset"][2], abs=1e-6)


def test_jumping_leaves_the_floor(body, posed_presets):
    for name in ("jumping", "star_jump"):
        assert mq.posed_vertices(body, posed_presets[name])[:, 2].min() > 0.2


def test_presets_clearly_different(posed_presets):
    """Every pair of presets: mean distance over the rig's joints >= 10 cm (after grounding)."""
    close = []
    for a, b in itertools.combinations(posed_presets, 2):
        d = np.linalg.norm(posed_presets[a].positions - posed_presets[b].positions, axis=1).mean()
        if d < 0.10:
            close.append((a, b, round(float(d), 3)))
    assert not close


def test_walk_steps_are_mirror_images():
    a, _, _ = poses.pose_angles(poses.normalize_pose_entry("walk_left_step", FIELD))
    b, _, _ = poses.pose_angles(poses.normalize_pose_entry({"preset": "walk_right_step", "mirror": True}, FIELD))
    assert a == b


# --- hand shapes -----------------------------------------------------------------------------
def test_hand_shapes_complete_and_valid():
    for name in ("open", "relaxed", "fist", "point", "peace"):
        assert name in poses.HAND_SHAPES
    assert set(poses.HAND_DESCRIPTIONS) == set(poses.HAND_SHAPES)
    finger_joints = {j[2:] for j in poses.POSABLE_JOINTS if j.startswith("l_") and j[2:-1] in rig.FINGERS}
    assert set(poses.HAND_JOINTS) == finger_joints
    for name, shape in poses.HAND_SHAPES.items():
        assert set(shape) == finger_joints, name
        for side in rig.SIDES:
            for joint, dofs in poses.hand_angles(name, side).items():
                assert set(dofs) == {d.name for d in rig.JOINTS[joint].dofs}
                for dof, value in dofs.items():
                    assert poses.limit_problem(joint, dof, value) is None, (name, joint, dof)


def test_fist_and_open_hand_differ_at_every_fingertip(body):
    fist = poses.pose_body(body, poses.normalize_pose_entry({"hands": "fist"}, FIELD))
    open_ = poses.pose_body(body, poses.normalize_pose_entry({"hands": "open"}, FIELD))
    for side in rig.SIDES:
        for finger in rig.FINGERS:
            tip = f"{side}_{finger}4"
            d = np.linalg.norm(fist.position(tip) - open_.position(tip))
            assert d > (0.015 if finger == "thumb" else 0.03), (tip, d)


def test_point_and_peace_keep_their_fingers_straight(body):
    flat = poses.pose_body(body, poses.normalize_pose_entry({"hands": "flat"}, FIELD))
    point = poses.pose_body(body, poses.normalize_pose_entry({"hands": "point"}, FIELD))
    peace = poses.pose_body(body, poses.normalize_pose_entry({"hands": "peace"}, FIELD))
    for side in rig.SIDES:
        assert np.allclose(point.position(f"{side}_index4"), flat.position(f"{side}_index4"))
        for f in ("middle", "ring", "pinky"):
            assert np.linalg.norm(point.position(f"{side}_{f}4") - flat.position(f"{side}_{f}4")) > 0.03
        for f in ("index", "middle"):  # spread, not curled: the tip stays as far from the knuckle
            def length(p):
                return np.linalg.norm(p.position(f"{side}_{f}4") - p.position(f"{side}_{f}1"))
            assert length(peace) == pytest.approx(length(flat))


def test_hands_per_side_and_partial(body):
    e = poses.normalize_pose_entry({"preset": "pointing", "hands": {"left": "fist"}}, FIELD)
    assert e["hands"] == {"left": "fist", "right": "point"}  # the missing side keeps the preset's
    angles, _, _ = poses.pose_angles(e)
    assert angles["l_index1"]["curl"] == poses.HAND_SHAPES["fist"]["index1"]["curl"]
    assert angles["r_index1"]["curl"] == poses.HAND_SHAPES["point"]["index1"]["curl"]
    assert poses.normalize_pose_entry({"hands": "peace"}, FIELD)["hands"] == {"left": "peace", "right": "peace"}


# --- explicit poses --------------------------------------------------------------------------
def test_normalize_fills_every_key_deterministically():
    e = poses.normalize_pose_entry("waving", FIELD)
    assert e == {"preset": "waving", "mirror": False, "hands": None, "joints": {}, "offset": [0.0, 0.0, 0.0],
                 "grounded": True}
    assert poses.normalize_pose_entry({"preset": "waving"}, FIELD) == e
    assert poses.normalize_pose_entry({}, FIELD)["preset"] == "rest"
    raw = {"joints": {"r_knee": {"flex": 10}, "l_elbow": {"twist": -0.0, "flex": 30.123456}, "neck": {}},
           "offset": [1, -0.0, 0.5], "mirror": True}
    e = poses.normalize_pose_entry(raw, FIELD)
    assert list(e["joints"]) == ["l_elbow", "r_knee"]  # sorted; an empty joint is dropped
    assert list(e["joints"]["l_elbow"]) == ["flex", "twist"]
    assert e["joints"]["l_elbow"] == {"flex": 30.1235, "twist": 0.0}  # zeros kept, rounded
    assert math.copysign(1, e["joints"]["l_elbow"]["twist"]) == 1 and math.copysign(1, e["offset"][1]) == 1
    assert e["offset"] == [1.0, 0.0, 0.5] and all(type(c) is float for c in e["offset"])
    assert json.dumps(e, sort_keys=True) == json.dumps(poses.normalize_pose_entry(e, FIELD), sort_keys=True)
    assert poses.normalize_pose_entry("jumping", FIELD)["offset"] == poses.PRESETS["jumping"]["offset"]


def test_overrides_apply_per_dof():
    e = poses.normalize_pose_entry({"preset": "waving", "joints": {"r_shoulder": {"twist": 40}}}, FIELD)
    angles, _, _ = poses.pose_angles(e)
    assert angles["r_shoulder"] == {"flex": 0.0, "abduct": 100.0, "twist": 40.0}
    assert angles["r_elbow"]["flex"] == 85.0


def test_overrides_beat_hand_shapes():
    e = poses.normalize_pose_entry({"hands": "fist", "joints": {"l_index2": {"curl": 5}}}, FIELD)
    angles, _, _ = poses.pose_angles(e)
    assert angles["l_index2"]["curl"] == 5.0
    assert angles["r_index2"]["curl"] == poses.HAND_SHAPES["fist"]["index2"]["curl"]


def test_ungrounded_pose_keeps_the_rig_height(body):
    posed = poses.pose_body(body, poses.normalize_pose_entry({"grounded": False, "offset": [0.5, 0, 1]}, FIELD))
    assert np.allclose(posed.position("root"), body.rest[rig.JOINT_INDEX["root"]] + [0.5, 0, 1])
    grounded = poses.pose_body(body, poses.normalize_pose_entry({"offset": [0.5, 0, 1]}, FIELD))
    assert mq.posed_vertices(body, grounded)[:, 2].min() == pytest.approx(1.0, abs=1e-9)


def test_elbow_bent_past_straight_is_refused():
    text = refused({"joints": {"l_elbow": {"flex": -20}}}, f"{FIELD}.joints.l_elbow.flex", "-20", "-5..150",
                   "bend the elbow")
    assert "allowed" in text


@pytest.mark.parametrize("entry,field,fragments", [
    ("jumpin", f"{FIELD}.preset", ["jumpin", "jumping", "t_pose"]),
    ({"preset": "no_such_pose"}, f"{FIELD}.preset", ["no_such_pose", "rest", "waving"]),
    ({"preset": 3}, f"{FIELD}.preset", ["preset name"]),
    ({"joints": {"l_elbw": {"flex": 10}}}, f"{FIELD}.joints.l_elbw", ["l_elbw", "l_elbow"]),
    ({"joints": {"l_toe": {"flex": 10}}}, f"{FIELD}.joints.l_toe", ["no degrees of freedom"]),
    ({"joints": {"l_elbow": {"abduct": 10}}}, f"{FIELD}.joints.l_elbow.abduct", ["abduct", "flex, twist"]),
    ({"joints": {"l_elbow": {"flex": True}}}, f"{FIELD}.joints.l_elbow.flex", ["number", "boolean"]),
    ({"joints": {"l_elbow": {"flex": "30"}}}, f"{FIELD}.joints.l_elbow.flex", ["number", "string"]),
    ({"joints": {"l_elbow": {"flex": None}}}, f"{FIELD}.joints.l_elbow.flex", ["number", "null"]),
    ({"joints": {"l_elbow": {"flex": float("nan")}}}, f"{FIELD}.joints.l_elbow.flex", ["finite"]),
    ({"joints": {"root": {"yaw": float("inf")}}}, f"{FIELD}.joints.root.yaw", ["finite"]),
    ({"joints": {"l_elbow": 30}}, f"{FIELD}.joints.l_elbow", ["flex, twist"]),
    ({"joints": [1]}, f"{FIELD}.joints", ["object"]),
    ({"joints": {"neck": {"twist": 71}}}, f"{FIELD}.joints.neck.twist", ["71", "-70..70"]),
    ({"mirror": "yes"}, f"{FIELD}.mirror", ["true or false"]),
    ({"mirror": 1}, f"{FIELD}.mirror", ["true or false"]),
    ({"grounded": 0}, f"{FIELD}.grounded", ["true or false"]),
    ({"hands": "claw"}, f"{FIELD}.hands", ["claw", "fist"]),
    ({"hands": {"left": "fist", "middle": "open"}}, f"{FIELD}.hands.middle", ["left, right"]),
    ({"hands": {"right": "fistt"}}, f"{FIELD}.hands.right", ["fistt", "fist"]),
    ({"hands": 5}, f"{FIELD}.hands", ["hand shape"]),
    ({"offset": [0, 0]}, f"{FIELD}.offset", ["[x, y, z]"]),
    ({"offset": [0, 6, 0]}, f"{FIELD}.offset[1]", ["6", "-5..5"]),
    ({"offset": [0, False, 0]}, f"{FIELD}.offset[1]", ["number"]),
    ({"offset": [0, 0, float("nan")]}, f"{FIELD}.offset[2]", ["finite"]),
    ({"preset": "rest", "pose": "x"}, f"{FIELD}.pose", ["pose", "preset"]),
    (42, FIELD, ["preset name or an object"]),
])
def test_bad_entries_name_the_field(entry, field, fragments):
    refused(entry, field, *fragments)


def test_limits_apply_to_the_final_angles():
    # an override may take a joint anywhere within its limits, whatever the preset had
    poses.normalize_pose_entry({"preset": "t_pose", "joints": {"l_shoulder": {"abduct": -30}}}, FIELD)
    refused({"preset": "t_pose", "joints": {"l_shoulder": {"abduct": 181}}}, f"{FIELD}.joints.l_shoulder.abduct",
            "-30..180")
    # limits are mirror symmetric: mirroring never makes a valid pose invalid
    for joint in poses.POSABLE_JOINTS:
        for dof in rig.JOINTS[joint].dofs:
            for value in (dof.lo, dof.hi):
                entry = {"joints": {joint: {dof.name: value}}}
                poses.normalize_pose_entry({**entry, "mirror": True}, FIELD)


# --- mirroring -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(poses.PRESETS))
def test_mirroring_twice_is_identity(body, name):
    angles, offset, _ = poses.pose_angles(poses.normalize_pose_entry(name, FIELD))
    assert poses.mirror_angles(poses.mirror_angles(angles)) == angles
    entry = {"preset": name, "offset": [0.3, -0.2, 0.1], "joints": {"spine": {"twist": 12}, "root": {"yaw": 30}}}
    once = poses.pose_body(body, poses.normalize_pose_entry({**entry, "mirror": True}, FIELD))
    plain = poses.pose_body(body, poses.normalize_pose_entry(entry, FIELD))
    # mirroring the mirror image is the original: reflect the mirrored pose back
    back = reflect(once.positions[[rig.JOINT_INDEX[rig.mirror_name(n)] for n in rig.JOINT_NAMES]])
    assert np.allclose(back, plain.positions, atol=1e-9)


def test_mirror_puts_the_left_wrist_where_the_right_one_was(body):
    entry = {"preset": "pointing", "joints": {"l_elbow": {"flex": 70}, "chest": {"side": 10}}}
    plain = poses.pose_body(body, poses.normalize_pose_entry(entry, FIELD))
    mirrored = poses.pose_body(body, poses.normalize_pose_entry({**entry, "mirror": True}, FIELD))
    assert np.allclose(mirrored.position("l_wrist"), reflect(plain.position("r_wrist")), atol=1e-9)
    assert np.allclose(mirrored.position("r_index4"), reflect(plain.position("l_index4")), atol=1e-9)
    assert not np.allclose(mirrored.position("l_wrist"), plain.position("l_wrist"), atol=0.05)


@pytest.mark.parametrize("name", list(poses.PRESETS))
def test_mirror_is_the_reflection_of_every_joint_and_vertex(body, posed_presets, name):
    mirrored = poses.pose_body(body, poses.normalize_pose_entry({"preset": name, "mirror": True}, FIELD))
    swap = [rig.JOINT_INDEX[rig.mirror_name(n)] for n in rig.JOINT_NAMES]
    assert np.allclose(mirrored.positions, reflect(posed_presets[name].positions[swap]), atol=1e-9)


def test_mirror_swaps_hands_and_negates_offset_x():
    entry = {"preset": "pointing", "hands": {"left": "fist", "right": "peace"}, "offset": [0.4, 0.1, 0],
             "mirror": True}
    angles, offset, _ = poses.pose_angles(poses.normalize_pose_entry(entry, FIELD))
    assert angles["r_index1"] == {"curl": 90.0, "spread": 0.0} and angles["l_middle1"]["spread"] == -10.0
    assert offset.tolist() == [-0.4, 0.1, 0.0]


# --- documentation ---------------------------------------------------------------------------
def test_doc_states_the_rig_and_presets_exactly():
    doc = DOC.read_text()
    assert poses.joint_limits_markdown() in doc
    assert poses.presets_markdown() in doc
    assert poses.hand_shapes_markdown() in doc
