"""BVH clips through Blender's importer and our retargeting: clips made here (the mannequin
animated in Blender and written by Blender's BVH exporter under each supported naming) come back
with keypoints within 1 px of the original animation, for every frame and view at 512x512."""
import json
import sys
import types

import numpy as np
import pytest

from pose_factory import spec as spec_mod
from pose_factory.render import cameras, mannequin as mq, poses, rig
from pose_factory.motion import clip as clip_mod
from pose_factory.errors import SpecError
from pose_factory.motion import names

pytestmark = pytest.mark.blender

HEIGHT = 1.75
# presets that reach far into the limits (abduct 130, elbow 134, twist -75, a lunge, a bow)
ANIMATION = [{"preset": p, "offset": [0.0, -0.12 * i, 0.02 * (i % 2)]} for i, p in enumerate(
    ["a_pose", "walk_left_step", "cheering", "thinking", "lunge", "waving", "bowing", "fighting_stance"])]
NAMINGS = {"cmu": ("", names.MAPS["cmu"]), "mixamo": ("", names.MAPS["mixamo"]),
           "mixamorig": ("mixamorig:", names.MAPS["mixamo"]), "smpl": ("", names.MAPS["smpl"]),
           "mannequin": ("", names.MAPS["mannequin"])}


def make_clip(blender, tmp_path, animation, rename, height=HEIGHT, name="clip"):
    job = tmp_path / f"{name}.json"
    job.write_text(json.dumps({"height": height, "poses": animation, "rename": rename}))
    out = tmp_path / f"{name}.bvh"
    blender("make_bvh_clip.py", job, out)
    return out


def keypoints_2d(entries, cams, height=HEIGHT):
    body = mq.build(height, "average")
    out = []
    for e in entries:
        kp = mq.posed_keypoints(body, poses.pose_body(body, poses.normalize_pose_entry(e, "pose")))
        out.append([cameras.project(c, kp)[0] for c in cams])
    return np.array(out)  # (frames, views, keypoints, 2)


def two_views(entries, height=HEIGHT):
    body = mq.build(height, "average")
    verts = np.concatenate([mq.posed_vertices(body, poses.pose_body(body, e))[::5] for e in entries])
    spec = spec_mod.normalize_spec({"render": {"width": 512, "height": 512},
                                    "cameras": {"views": 2, "start_azimuth": 30, "elevation": 15},
                                    "subjects": [{"height": height, "poses": ["rest"]}]})
    return cameras.build_cameras(spec, verts)


@pytest.mark.parametrize("naming", list(NAMINGS))
def test_round_trip_keypoints_within_1px(blender, tmp_path, naming):
    prefix, joint_map = NAMINGS[naming]
    rename = {j: prefix + b for j, b in joint_map.items() if j != b}
    bvh_path = make_clip(blender, tmp_path, ANIMATION, rename)
    entries, report = clip_mod.load_clip(bvh_path, height=HEIGHT)  # naming "auto"
    assert len(entries) == len(ANIMATION)
    assert f"naming: {'mixamo' if naming == 'mixamorig' else naming}" in report
    cams = two_views(ANIMATION)
    want, got = keypoints_2d(ANIMATION, cams), keypoints_2d(entries, cams)
    hands = naming in ("mixamo", "mixamorig", "mannequin")  # the others have no finger bones
    parts = [mq.KP_BODY, mq.KP_FACE] + ([mq.KP_LHAND, mq.KP_RHAND] if hands else [])
    for sl in parts:
        err = np.linalg.norm(want[:, :, sl] - got[:, :, sl], axis=-1)
        assert err.max() < 1.0, (naming, sl, err.max(), np.unravel_index(err.argmax(), err.shape))
    # every pose is a valid JobSpec pose (within the limits) and nothing was clamped
    spec_mod.normalize_spec({"subjects": [{"poses": entries}]})
    assert "clamped: nothing" in report
    if not hands:  # the mannequin's finger bones kept their names: listed, not silently dropped
        assert "l_index1" in report.split("clip bones not used:")[1]


def test_root_motion_scaled_to_the_mannequin(blender, tmp_path):
    """A clip of a 1.5 m actor walking 0.6 m: on a 1.9 m mannequin the stride scales by 1.9/1.5."""
    walk = [{"preset": "walk_left_step", "offset": [0.0, -0.2 * i, 0.0]} for i in range(4)]
    bvh_path = make_clip(blender, tmp_path, walk, {}, height=1.5)
    entries, report = clip_mod.load_clip(bvh_path, height=1.9, naming="mannequin")
    ys = [e["offset"][1] for e in entries]
    np.testing.assert_allclose(ys, [-0.2 * i * 1.9 / 1.5 for i in range(4)], atol=2e-3)
    assert "root motion scale: 1.2667" in report


def test_limits_clamped_and_reported(blender, tmp_path):
    """A source elbow bent backwards (beyond the mannequin's -5 degrees) is clamped, reported, and
    the poses stay valid; nothing crashes."""
    bent = [{"preset": "rest"}, {"preset": "rest", "joints": {"l_knee": {"flex": 150}}}]
    bvh_path = make_clip(blender, tmp_path, bent, {})
    text = bvh_path.read_text()
    # mirror the knee's bend: the exporter wrote the knee's rotation about X; negate every channel
    # of l_knee in the second frame, so the clip bends it backwards by 150 degrees
    lines = text.splitlines()
    header = lines[:lines.index("MOTION") + 3]
    chans = []
    for ln in header:
        t = ln.split()
        if t and t[0] in ("ROOT", "JOINT"):
            current = t[1]
        if t and t[0] == "CHANNELS":
            chans += [(current, c) for c in t[2:]]
    idx = [i for i, (j, c) in enumerate(chans) if j == "l_knee" and c.endswith("rotation")]
    vals = lines[-1].split()
    for i in idx:
        vals[i] = f"{-float(vals[i]):.6f}"
    lines[-1] = " ".join(vals)
    bvh_path.write_text("\n".join(lines) + "\n")
    entries, report = clip_mod.load_clip(bvh_path, naming="mannequin")
    assert entries[1]["joints"]["l_knee"]["flex"] == -5.0
    assert "l_knee.flex: 1 frames" in report
    spec_mod.normalize_spec({"subjects": [{"poses": entries}]})


# --- the Motion Clip node -----------------------------------------------------------------------------
def test_motion_clip_node_from_a_path_a_storage_key_and_the_input_folder(blender, tmp_path, monkeypatch):
    from nodes import motion_nodes
    from pose_factory import settings as settings_mod
    from pose_factory import viewer
    from pose_factory.storage import LocalStorage

    walk = [{"preset": "walk_left_step", "offset": [0.0, -0.1 * i, 0.0]} for i in range(6)]
    prefix = "mixamorig:"
    bvh_path = make_clip(blender, tmp_path, walk, {j: prefix + b for j, b in names.MAPS["mixamo"].items()})
    node = motion_nodes.PoseFactoryMotionClip()
    subject = {"type": "mannequin", "height": 1.75, "build": "average"}
    out = node.load(motion_nodes.NO_FILE, str(bvh_path), 1, 4, 2, 0.0, "auto", subject)
    poses_p, report = out["result"]
    # the viewer shows the clip's poses after the run: the UI output's key gives them back
    assert viewer.recall(out["ui"]["pose_factory_poses"][0]) == poses_p
    assert len(poses_p) == 2 and "frames used: 2 (1..3)" in report and "naming: mixamo" in report
    store = LocalStorage(tmp_path / "store")
    store.put_bytes("clips/walk.bvh", bvh_path.read_bytes())
    monkeypatch.setattr(settings_mod, "make_storage", lambda settings, env=None: store)
    poses_k, report_k = node.load(motion_nodes.NO_FILE, "key:clips/walk.bvh", 1, 4, 2, 0.0, "auto", subject)["result"]
    assert poses_k == poses_p
    inputs = tmp_path / "input"
    (inputs / "mocap").mkdir(parents=True)
    (inputs / "mocap" / "walk.bvh").write_bytes(bvh_path.read_bytes())
    monkeypatch.setitem(sys.modules, "folder_paths", types.SimpleNamespace(get_input_directory=lambda: str(inputs)))
    assert "mocap/walk.bvh" in motion_nodes.PoseFactoryMotionClip.INPUT_TYPES()["required"]["clip"][0]
    poses_i, _ = node.load("mocap/walk.bvh", "", 1, 4, 2, 0.0, "mixamo", subject)["result"]
    assert poses_i == poses_p
    for bad, widget in (("../walk.bvh", "clip"), (motion_nodes.NO_FILE, "clip")):
        with pytest.raises(SpecError, match=f"^{widget}: "):
            node.load(bad, "", 0, -1, 1, 0.0, "auto", subject)
    with pytest.raises(SpecError, match="^path_or_key: no .bvh file at"):
        node.load(motion_nodes.NO_FILE, str(tmp_path / "nope.bvh"), 0, -1, 1, 0.0, "auto", subject)
    with pytest.raises(SpecError, match=r"^frames: the selection gives 300 frames, allowed: at most 256"):
        clip_mod.select_frames(300, 30.0)
    with pytest.raises(SpecError, match=r"^end: got 9, allowed: -1 \(the last frame\) or 0 to 5"):
        node.load(motion_nodes.NO_FILE, str(bvh_path), 0, 9, 1, 0.0, "auto", subject)


# --- a clip whose rest pose is not the mannequin's: a Y-up T-pose skeleton written by hand --------------
TPOSE_BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0.95 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT LeftUpLeg
  {
    OFFSET 0.09 -0.05 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT LeftLeg
    {
      OFFSET 0 -0.42 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      JOINT LeftFoot
      {
        OFFSET 0 -0.41 0
        CHANNELS 3 Zrotation Xrotation Yrotation
        End Site
        {
          OFFSET 0 -0.05 0.12
        }
      }
    }
  }
  JOINT RightUpLeg
  {
    OFFSET -0.09 -0.05 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT RightLeg
    {
      OFFSET 0 -0.42 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      JOINT RightFoot
      {
        OFFSET 0 -0.41 0
        CHANNELS 3 Zrotation Xrotation Yrotation
        End Site
        {
          OFFSET 0 -0.05 0.12
        }
      }
    }
  }
  JOINT Spine1
  {
    OFFSET 0 0.3 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT Neck
    {
      OFFSET 0 0.21 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      JOINT Head
      {
        OFFSET 0 0.11 0
        CHANNELS 3 Zrotation Xrotation Yrotation
        End Site
        {
          OFFSET 0 0.12 0
        }
      }
    }
    JOINT LeftArm
    {
      OFFSET 0.185 0.18 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      JOINT LeftForeArm
      {
        OFFSET 0.28 0 0
        CHANNELS 3 Zrotation Xrotation Yrotation
        JOINT LeftHand
        {
          OFFSET 0.25 0 0
          CHANNELS 3 Zrotation Xrotation Yrotation
          End Site
          {
            OFFSET 0.08 0 0
          }
        }
      }
    }
    JOINT RightArm
    {
      OFFSET -0.185 0.18 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      JOINT RightForeArm
      {
        OFFSET -0.28 0 0
        CHANNELS 3 Zrotation Xrotation Yrotation
        JOINT RightHand
        {
          OFFSET -0.25 0 0
          CHANNELS 3 Zrotation Xrotation Yrotation
          End Site
          {
            OFFSET -0.08 0 0
          }
        }
      }
    }
  }
}
MOTION
Frames: 3
Frame Time: 0.04
"""


def _frame(**channels):
    order = ["Hips"] * 2 + ["LeftUpLeg", "LeftLeg", "LeftFoot", "RightUpLeg", "RightLeg", "RightFoot", "Spine1", "Neck",
                            "Head", "LeftArm", "LeftForeArm", "LeftHand", "RightArm", "RightForeArm", "RightHand"]
    values = {"Hips_pos": [0, 0.95, 0], **channels}
    row = list(values["Hips_pos"])
    for name in order[1:]:
        row += values.get(name, [0, 0, 0])  # Z X Y rotation
    return " ".join(f"{v:g}" for v in row)


def test_t_pose_y_up_clip_lands_upright_with_its_arms_where_the_clip_has_them(blender, tmp_path):
    """A Y-up BVH facing +Z with a T-pose rest (arms out where the mannequin's hang): frame 0 is
    the T-pose (shoulders abducted 90), frame 1 lowers both arms (abduct 0), frame 2 turns the body
    90 degrees to its left (about the clip's up axis) and moves it 0.5 m forward."""
    text = TPOSE_BVH + "\n".join([
        _frame(),
        _frame(LeftArm=[-90, 0, 0], RightArm=[90, 0, 0]),
        _frame(Hips=[0, 0, 90], Hips_pos=[0, 0.95, 0.5]),
    ]) + "\n"
    path = tmp_path / "tpose.bvh"
    path.write_text(text)
    entries, report = clip_mod.load_clip(path, height=HEIGHT)
    assert "naming: cmu" in report
    # the clip's straight arm is about 6 degrees straighter than the mannequin's rest: its elbows
    # are held at their limit (-5), reported; nothing else is clamped (the hands follow the forearms)
    clamped = report.split("clamped to the joint limits (frames, worst excess in degrees):\n")[1].splitlines()
    assert [c.split(":")[0].strip() for c in clamped] == ["l_elbow.flex", "r_elbow.flex"]
    assert all(float(c.rsplit(",", 1)[1]) < 2.0 for c in clamped)
    angles = [poses.pose_angles(poses.normalize_pose_entry(e, "p"))[0] for e in entries]
    body = mq.build(HEIGHT, "average")

    def arm(entry, side):  # the upper arm's direction
        posed = poses.pose_body(body, poses.normalize_pose_entry(entry, "p"))
        d = posed.position(f"{side}_elbow") - posed.position(f"{side}_shoulder")
        return d / np.linalg.norm(d)

    # the clip's vertical (its rest root-to-neck line) is the mannequin's root-to-neck line, which
    # leans 2.2 degrees forward: a hanging arm hangs along it
    down = body.rest[rig.JOINT_INDEX["root"]] - body.rest[rig.JOINT_INDEX["neck"]]
    down /= np.linalg.norm(down)
    for side, out in (("l", [1, 0, 0]), ("r", [-1, 0, 0])):  # frame 0: straight out to the side
        assert np.degrees(np.arccos(np.clip(arm(entries[0], side) @ out, -1, 1))) < 0.5
        assert np.degrees(np.arccos(np.clip(arm(entries[1], side) @ down, -1, 1))) < 0.5  # frame 1: hanging
    assert angles[2]["root"]["yaw"] == pytest.approx(90, abs=0.5)
    for j in ("spine", "chest", "neck"):  # upright: the torso at rest
        assert all(abs(v) < 0.5 for v in angles[1][j].values()), (j, angles[1][j])
    for j in ("l_hip", "r_hip", "l_knee", "r_knee"):  # the legs follow the clip's straight legs: a few degrees
        assert all(abs(v) < 5 for v in angles[1][j].values()), (j, angles[1][j])  # from the mannequin's rest
    scale = float(report.split("root motion scale: ")[1].split()[0])
    assert entries[2]["offset"][1] == pytest.approx(-0.5 * scale, abs=1e-3)  # forward is -Y
    assert abs(entries[2]["offset"][0]) < 1e-3
