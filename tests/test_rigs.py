"""Users' rigs, the core side (pose_factory/rigs): the spec, the stored files and their checks, the
bone maps (Mixamo, Rigify, VRM 0.x/1.0 read from the file's JSON), the report and the retarget
math on a skeleton built from the mannequin's own joints (its exact answer is our forward
kinematics). The Blender side (real imports and renders) is in tests/test_user_rig.py."""
import hashlib
import json

import numpy as np
import pytest

from pose_factory import glb as glb_mod, rigs
from pose_factory import spec as spec_mod
from pose_factory.errors import SpecError
from pose_factory.motion import names
from pose_factory.render import mannequin as mq
from pose_factory.render import poses, rig
from pose_factory.rigs import bonemap, retarget
from pose_factory.storage import LocalStorage


def glb(doc: dict, payload: bytes = b"") -> bytes:
    return glb_mod.write(doc, payload)


def skeleton_rest(bone_names: dict, rest_rot=None, height=1.75):
    """A RigRest of the mannequin's own skeleton, its bones named by bone_names {joint: name};
    rest_rot {joint: world rotation of the rest pose} (e.g. the arms out for a T-pose)."""
    angles = rest_rot or {}
    posed = rig.forward_kinematics(rig.rest_positions(height), angles)
    joints = list(rig.JOINT_NAMES)
    mats = np.repeat(np.eye(4)[None], len(joints), 0)
    mats[:, :3, :3] = posed.rotations
    mats[:, :3, 3] = posed.positions
    tails = posed.positions + posed.rotations @ np.array([0, 0, 0.03])
    body = mq.build(height)
    verts, vj = body.all_vertices()
    pv = posed.transform_points(vj, verts, body.rest)
    return retarget.RigRest([bone_names.get(j, f"extra_{j}") for j in joints], rig.PARENT_INDEX.copy(), mats,
                            tails, pv, vj.copy(), 1000)


MIXAMO_NAMES = {j: "mixamorig:" + b for j, b in names.MAPS["mixamo"].items()}


def test_rig_subject_is_normalized_and_bad_input_named():
    sha = "ab" * 32
    s = spec_mod.normalize_spec({"subjects": [{"poses": ["rest"]}, {"type": "rig", "rig": {"sha256": sha, "format": "vrm"},
                                                                   "poses": ["waving"]}]})["subjects"][1]
    assert s["bone_map"] == "auto" and s["height"] == "auto" and s["poses"][0]["preset"] == "waving"
    cases = [({"height": 5}, "subjects[1].height"), ({"bone_map": "blender"}, "subjects[1].bone_map"),
             ({"bone_map": {"l_elbo": "X"}}, "subjects[1].bone_map.l_elbo"),
             ({"rig": {"sha256": sha, "format": "obj"}}, "subjects[1].rig.format"),
             ({"rig": {"file": "x.fbx"}}, "subjects[1].rig"), ({"poses": ["wavingg"]}, "subjects[1].poses[0].preset")]
    for change, field in cases:
        with pytest.raises(SpecError) as e:
            spec_mod.normalize_spec({"subjects": [{"poses": ["rest"]},
                                                  {"type": "rig", "rig": {"sha256": sha, "format": "fbx"}, "poses": ["rest"],
                                                   **change}]})
        assert e.value.field == field, (change, e.value)
    custom = {"base": "mixamo", "joints": {"l_elbow": "ForeArm.L"}}
    assert rigs.normalize_rig_subject({"rig": {"sha256": sha, "format": "fbx"}, "bone_map": custom,
                                       "height": 1.2}, "s")["bone_map"] == custom


def test_file_checks_name_what_is_wrong(tmp_path):
    ok = {"fbx": b"Kaydara FBX Binary  \0\x1a\0" + b"\0" * 40, "glb": glb({"asset": {"version": "2.0"}}),
          "vrm": glb({"asset": {"version": "2.0"}, "extensions": {"VRMC_vrm": {}}}),
          "gltf": json.dumps({"asset": {"version": "2.0"}, "buffers": [{"uri": "data:application/octet-stream;base64,AAAA"}]}).encode(),
          "blend": b"BLENDER-v405" + b"\0" * 40}
    for fmt, data in ok.items():
        rigs.check_bytes(data, fmt)
    import gzip
    rigs.check_bytes(gzip.compress(ok["blend"]), "blend")
    bad = {"fbx": (b"PK\3\4 not fbx", "not an FBX file"), "glb": (b"glTF" + b"\2\0\0\0" + b"\0" * 16, "not a whole JSON chunk"),
           "vrm": (ok["glb"], "without a VRM humanoid"), "blend": (b"\x89PNG....", "not a .blend file"),
           "gltf": (json.dumps({"asset": {}, "buffers": [{"uri": "body.bin"}]}).encode(), "outside file")}
    for fmt, (data, said) in bad.items():
        with pytest.raises(SpecError) as e:
            rigs.check_bytes(data, fmt, "subjects[0].rig")
        assert said in e.value.message and e.value.allowed, (fmt, e.value)
    big = tmp_path / "huge.fbx"
    with open(big, "wb") as fh:  # a sparse file: its size is all that is read
        fh.truncate(rigs.MAX_RIG_BYTES + 1)
    with pytest.raises(SpecError) as e:
        rigs.read_file(big)
    assert "at most 209715200 bytes" in str(e.value)
    with pytest.raises(SpecError) as e:
        rigs.read_file(tmp_path / "a.obj")
    assert ".fbx" in e.value.allowed


def test_resolve_stores_the_file_by_content_and_prepare_checks_it(tmp_path):
    storage = LocalStorage(str(tmp_path / "store"))
    data = glb({"asset": {"version": "2.0"}})
    (tmp_path / "hero.glb").write_bytes(data)
    raw = {"subjects": [{"poses": ["rest"]}, {"type": "rig", "rig": {"file": str(tmp_path / "hero.glb")}, "poses": ["rest"]}]}
    out = rigs.resolve(raw, storage, "demo")
    sha = hashlib.sha256(data).hexdigest()
    assert out["subjects"][1]["rig"] == {"sha256": sha, "format": "glb"} and out["subjects"][0] == raw["subjects"][0]
    assert storage.get_bytes(f"projects/demo/uploads/rigs/{sha}.glb") == data
    assert rigs.resolve(out, storage, "demo") == out
    with pytest.raises(SpecError) as e:
        rigs.resolve(out, storage, "other")
    assert "not stored in project 'other'" in e.value.message
    storage.put_bytes(f"projects/demo/uploads/rigs/{sha}.glb", data[:-1] + b"!")
    spec = spec_mod.normalize_spec(out)
    with pytest.raises(SpecError) as e:
        rigs.prepare_files(spec, storage, "demo", str(tmp_path / "work"))
    assert e.value.field == "subjects[1].rig" and "sha256" in e.value.message


def vrm_doc(version: str, node_names: list, table: dict) -> dict:
    nodes = [{"name": n} for n in node_names]
    if version == "1.0":
        ext = {"VRMC_vrm": {"specVersion": "1.0", "humanoid": {"humanBones": {h: {"node": i} for h, i in table.items()}}}}
    else:
        ext = {"VRM": {"specVersion": "0.0", "humanoid": {"humanBones": [{"bone": h, "node": i} for h, i in table.items()]}}}
    return {"asset": {"version": "2.0"}, "nodes": nodes, "extensions": ext}


@pytest.mark.parametrize("version", ["0.x", "1.0"])
def test_vrm_map_is_read_from_the_file_not_guessed(version):
    # bone names no built-in map knows: only the humanoid table can map them
    node_names = ["J_Hips", "J_Spine", "J_UpperChest", "J_Neck", "J_Head", "J_ArmL", "J_ElbowL", "J_HandL",
                  "J_ThighL", "J_ThighR", "J_T1", "J_T2", "J_T3", "J_EyeL", "J_Chest"]
    thumbs = ("ThumbMetacarpal", "ThumbProximal", "ThumbDistal") if version == "1.0" else \
        ("ThumbProximal", "ThumbIntermediate", "ThumbDistal")
    table = {"hips": 0, "spine": 1, "upperChest": 2, "neck": 3, "head": 4, "leftUpperArm": 5, "leftLowerArm": 6,
             "leftHand": 7, "leftUpperLeg": 8, "rightUpperLeg": 9, f"left{thumbs[0]}": 10, f"left{thumbs[1]}": 11,
             f"left{thumbs[2]}": 12, "leftEye": 13, "chest": 14}
    doc = vrm_doc(version, node_names, table)
    data = glb(doc)
    assert bonemap.vrm_version(rigs.check_bytes(data, "vrm")) == version
    used, found, unmapped = bonemap.map_bones(node_names + ["J_Hair"], "auto", doc)
    assert used == "vrm"
    assert found == {"root": "J_Hips", "spine": "J_Spine", "chest": "J_Chest", "neck": "J_Neck", "head": "J_Head",
                     "l_shoulder": "J_ArmL", "l_elbow": "J_ElbowL", "l_wrist": "J_HandL", "l_hip": "J_ThighL",
                     "r_hip": "J_ThighR", "l_thumb1": "J_T1", "l_thumb2": "J_T2", "l_thumb3": "J_T3", "l_eye": "J_EyeL"}
    assert unmapped == ["J_UpperChest", "J_Hair"]
    with pytest.raises(SpecError) as e:
        bonemap.map_bones(node_names, "auto", vrm_doc(version, node_names, {"hips": 0, "leftUpperLeg": 8}))
    assert "r_hip" in e.value.message


def test_mixamo_and_rigify_names_in_their_variants():
    for prefix in ("mixamorig:", "mixamorig7:", "mixamorig_", ""):
        bones = [prefix + b for b in ("Hips", "LeftUpLeg", "RightUpLeg", "Spine2", "LeftHandIndex1")]
        used, found, _ = bonemap.map_bones(bones)
        assert used == "mixamo" and found["chest"] == prefix + "Spine2" and found["l_index1"] == prefix + "LeftHandIndex1"
    gen = ["root", "ORG-spine", "DEF-spine", "DEF-thigh.L", "DEF-thigh.R", "thigh_ik.L", "DEF-f_index.01.R", "MCH-spine"]
    used, found, _ = bonemap.map_bones(gen)
    assert used == "rigify" and found == {"root": "DEF-spine", "l_hip": "DEF-thigh.L", "r_hip": "DEF-thigh.R",
                                          "r_index1": "DEF-f_index.01.R"}
    with pytest.raises(SpecError) as e:
        bonemap.map_bones(["Bone", "Bone.001"])
    assert e.value.field == "rig" and "hips" in e.value.allowed and "Bone.001" in e.value.message
    used, found, _ = bonemap.map_bones(["pelvis", "thigh.L", "thigh.R", "calf.L"],
                                       {"root": "pelvis", "l_hip": "thigh.L", "r_hip": "thigh.R", "l_knee": "calf.L"})
    assert used == "custom" and found["l_knee"] == "calf.L"


def joint_positions(rt: retarget.Retarget, mats):
    return {j: mats[rt.bone[j], :3, 3] for j in rig.JOINT_NAMES if j in rt.bone}


def test_retarget_of_our_own_skeleton_is_our_forward_kinematics():
    rest = skeleton_rest(MIXAMO_NAMES)
    used, found, unmapped = bonemap.map_bones(rest.names)
    rt = retarget.Retarget(rest, found)
    for preset in ("waving", "sitting", "t_pose", "fighting_stance"):
        entry = poses.normalize_pose_entry(preset, "p")
        angles, offset, _ = poses.pose_angles(entry)
        ours = rig.forward_kinematics(rig.rest_positions(1.75), angles, offset)
        mats, _ = rt.pose(entry)
        got = joint_positions(rt, mats)  # the rig's rest stands its lowest vertex on z = 0: compare to the root
        err = max(np.linalg.norm(got[j] - got["root"] - ours.position(j) + ours.position("root")) for j in got)
        assert err < 1e-9, (preset, err)
    assert rt.rest_pose == "arms-down" and abs(rt.height - 1.75) < 0.05


def test_a_t_pose_rigs_and_a_turned_file_take_a_preset_the_same_way():
    arms = {"t-pose": 88.0, "a-pose": 45.0}
    base = skeleton_rest(MIXAMO_NAMES)
    rt0 = retarget.Retarget(base, bonemap.map_bones(base.names)[1])
    entry = poses.normalize_pose_entry({"preset": "waving", "joints": {"l_index1": {"curl": 40}}}, "p")
    want = rt0.keypoints(rt0.pose(entry)[0])
    for kind, deg in arms.items():
        rest = skeleton_rest(MIXAMO_NAMES, {"l_shoulder": {"abduct": deg}, "r_shoulder": {"abduct": deg}})
        # the file faces +Z with Y up (as a glTF before import would): turn every rest matrix
        turn = np.eye(4)
        turn[:3, :3] = rig.rotation((1, 0, 0), -90) @ rig.rotation((0, 0, 1), 180)
        rest.matrices = np.einsum("ij,bjk->bik", turn, rest.matrices)
        rest.tails = rest.tails @ turn[:3, :3].T
        rest.vertices = rest.vertices @ turn[:3, :3].T
        rt = retarget.Retarget(rest, bonemap.map_bones(rest.names)[1])
        assert rt.rest_pose == kind
        got = rt.keypoints(rt.pose(entry)[0])
        err = np.nanmax(np.linalg.norm(got - want, axis=1))
        assert err < 2e-3, (kind, err)  # metres (a pixel at 512 px is about 4 mm): the arms lean 1 degree from vertical, so the smallest swing back twists them a little


def test_rig_without_a_hand_reports_it_and_has_empty_hand_keypoints():
    hand = {f"l_{j}" for j in mq.HAND_JOINTS if j != "wrist"}
    rest = skeleton_rest({j: b for j, b in MIXAMO_NAMES.items() if j not in hand})
    used, found, unmapped = bonemap.map_bones(rest.names)
    rt = retarget.Retarget(rest, found, height=1.5)
    kp = rt.keypoints(rt.pose(poses.normalize_pose_entry("waving", "p"))[0])
    assert np.isnan(kp[mq.KP_LHAND]).all() and not np.isnan(kp[mq.KP_RHAND]).any()
    assert not np.isnan(kp[mq.KP_BODY]).any() and not np.isnan(kp[mq.KP_FACE]).any()
    report = rt.report("hero.fbx", "fbx", used, unmapped)
    assert report["hands"] == {"left": False, "right": True} and "l_index1" in report["joints"]["missing"]
    assert report["joints"]["estimated"] == ["nose", "r_eye", "l_eye", "r_ear", "l_ear", "face", "feet"]
    assert abs(report["height"] - 1.5) < 1e-6
    text = rigs.report_text(report)
    assert "left no (empty hand keypoints)" in text and "bone map mixamo" in text
    json.dumps(report)


def test_part_labels_from_bones_follow_the_nearest_mapped_ancestor():
    rest = skeleton_rest(MIXAMO_NAMES)
    n = len(rest.names)
    # a hair bone under the head, a twist bone under the left forearm, a root bone above the hips
    rest.names += ["Hair", "LeftForeArmTwist", "Root"]
    head, elbow = rest.names.index("mixamorig:Head"), rest.names.index("mixamorig:LeftForeArm")
    rest.parents = np.concatenate([rest.parents, [head, elbow, -1]])
    rest.matrices = np.concatenate([rest.matrices, rest.matrices[[head, elbow, 0]]])
    rest.tails = np.concatenate([rest.tails, rest.tails[[head, elbow, 0]]])
    rt = retarget.Retarget(rest, bonemap.map_bones(rest.names)[1])
    labels = rt.part_labels()
    assert labels[n] == mq.PART_LABEL["head"] and labels[n + 1] == mq.PART_LABEL["forearm_l"]
    assert labels[n + 2] == mq.PART_LABEL["pelvis"]
    assert labels[rest.names.index("mixamorig:RightHandPinky2")] == mq.PART_LABEL["hand_r"]
    assert labels[rest.names.index("mixamorig:LeftToeBase")] == mq.PART_LABEL["foot_l"]
    assert sorted(set(labels)) == list(range(1, 18))
    mats, _ = rt.pose(poses.normalize_pose_entry("waving", "p"))  # an unmapped bone keeps its place on its parent
    np.testing.assert_allclose(mats[n], mats[head] @ np.linalg.inv(rt.canon[head]) @ rt.canon[n], atol=1e-12)


def test_rig_feet_are_the_mannequins_on_its_own_skeleton_and_marked_estimated():
    """The mannequin's own skeleton as a rig: its estimated foot points (scaled by the ankle-to-toe
    length, carried by the ankle and toe bones) are the mannequin's foot keypoints in every pose
    that leaves the toes straight; without toe bones they still come (from the rig's size), and
    without an ankle bone that foot has none. All are marked estimated ("feet" in the report)."""
    for height in (1.75, 1.5):
        rest = skeleton_rest(MIXAMO_NAMES, height=height)
        used, found, unmapped = bonemap.map_bones(rest.names)
        rt = retarget.Retarget(rest, found)
        body = mq.build(height)
        for preset in ("standing", "sitting", "lying_back", "running"):
            entry = poses.normalize_pose_entry(preset, "p")
            angles, offset, _ = poses.pose_angles(entry)
            want = mq.posed_keypoints(body, rig.forward_kinematics(body.rest, angles, offset))[mq.KP_FEET]
            mats, _ = rt.pose(entry)
            got = rt.keypoints(mats)[mq.KP_FEET]
            root = rt.keypoints(mats)[mq.BODY_KEYPOINTS.index("r_hip")] - mq.posed_keypoints(
                body, rig.forward_kinematics(body.rest, angles, offset))[mq.BODY_KEYPOINTS.index("r_hip")]
            assert np.abs(got - root - want).max() < 1e-6, (height, preset)
        assert rt.estimated()[mq.KP_FEET].all() and rt.report("a.fbx", "fbx", used, unmapped)["joints"]["estimated"][-1] == "feet"
    no_toes = skeleton_rest({j: b for j, b in MIXAMO_NAMES.items() if not j.endswith("_toe")})
    rt = retarget.Retarget(no_toes, bonemap.map_bones(no_toes.names)[1])
    kp = rt.keypoints(rt.pose(poses.normalize_pose_entry("standing", "p"))[0])
    assert not np.isnan(kp[mq.KP_FEET]).any() and rt.estimated()[mq.KP_FEET].all()
    no_ankle = skeleton_rest({j: b for j, b in MIXAMO_NAMES.items() if j not in ("l_ankle", "l_toe")})
    rt = retarget.Retarget(no_ankle, bonemap.map_bones(no_ankle.names)[1])
    kp = rt.keypoints(rt.pose(poses.normalize_pose_entry("standing", "p"))[0])[mq.KP_FEET]
    assert np.isnan(kp[:3]).all() and not np.isnan(kp[3:]).any()
    assert rt.estimated()[mq.KP_FEET].tolist() == [False] * 3 + [True] * 3
