"""A BVH clip is user input: checked before Blender reads it, every refusal naming the line (and
the joint or channel) and what is allowed. And the bone-name maps."""
import pytest

from pose_factory.errors import SpecError
from pose_factory.motion import bvh, names

GOOD = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT LeftUpLeg
  {
    OFFSET 0.1 0 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 -0.4 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.033333
0 0.9 0 0 0 0 0 0 0
0 0.9 0.1 0 5 0 1 2 3
"""


def refusal(text):
    with pytest.raises(SpecError) as e:
        bvh.parse(text, "walk.bvh")
    return str(e.value)


def test_good_clip():
    c = bvh.parse(GOOD)
    assert c.names == ["Hips", "LeftUpLeg"] and c.frames == 2 and abs(c.fps - 30) < 1e-3
    assert c.joints[1].parent == 0 and c.joints[1].channels == ("Zrotation", "Xrotation", "Yrotation")


def test_truncated_motion_names_the_frame_count():
    msg = refusal(GOOD.rsplit("\n", 2)[0] + "\n")
    assert "walk.bvh line 20" in msg and "1 frame lines, 'Frames: 2' (truncated?)" in msg


def test_truncated_hierarchy():
    msg = refusal(GOOD[:GOOD.index("End Site")])
    assert "line 11" in msg and "ends inside the HIERARCHY" in msg


def test_wrong_channel_count_names_the_line_and_joint():
    msg = refusal(GOOD.replace("CHANNELS 3 Zrotation", "CHANNELS 4 Zrotation"))
    assert "walk.bvh line 9" in msg and "'LeftUpLeg': CHANNELS '4'" in msg and "3 (rotations) or 6" in msg


def test_wrong_value_count_per_frame():
    msg = refusal(GOOD.replace("0 0.9 0.1 0 5 0 1 2 3", "0 0.9 0.1 0 5 0 1 2"))
    assert "line 20" in msg and "frame 1: 8 values" in msg and "9 values, one per channel" in msg


@pytest.mark.parametrize("bad", ["nan", "NaN", "inf", "-Infinity", "1e999", "x"])
def test_nan_names_the_channel(bad):
    msg = refusal(GOOD.replace("0 0.9 0.1 0 5 0 1 2 3", f"0 0.9 0.1 0 5 0 1 {bad} 3"))
    assert "line 20" in msg and "frame 1, channel 8 (LeftUpLeg Xrotation)" in msg


def test_names_and_structure_refused():
    assert "joint name" in refusal(GOOD.replace("LeftUpLeg", "Left$Leg", 1))
    assert "used twice" in refusal(GOOD.replace("LeftUpLeg", "Hips", 1))
    assert "unknown channel 'Wrotation'" in refusal(GOOD.replace("CHANNELS 3 Zrotation", "CHANNELS 3 Wrotation"))
    assert "'HIERARCHY'" in refusal("MOTION\n")
    assert "Frame Time" in refusal(GOOD.replace("0.033333", "0"))


@pytest.mark.parametrize("prefix", ["", "mixamorig:", "mixamorig1:"])
def test_mixamo_names_with_or_without_namespace(prefix):
    bones = [prefix + b for b in ("Hips", "Spine", "Spine1", "Spine2", "Neck", "Head", "LeftShoulder", "LeftArm",
                                  "LeftUpLeg", "RightUpLeg", "LeftHandIndex1", "Extra_Bone")]
    used, found, unknown = names.resolve(bones)
    assert used == "mixamo"
    assert bones[found["l_index1"]] == prefix + "LeftHandIndex1" and bones[found["chest"]] == prefix + "Spine2"
    assert unknown == [prefix + b for b in ("Spine1", "LeftShoulder", "Extra_Bone")]


def test_custom_map_and_missing_root():
    bones = ["pelvis_jnt", "hip_L", "hip_R", "knee_L"]
    used, found, unknown = names.resolve(bones, "custom",
                                         '{"root": "pelvis_jnt", "l_hip": "hip_L", "r_hip": "hip_R"}')
    assert found == {"root": 0, "l_hip": 1, "r_hip": 2} and unknown == ["knee_L"]
    with pytest.raises(SpecError, match="finds no bone for root"):
        names.resolve(bones, "cmu")
    with pytest.raises(SpecError, match="unknown joint 'elbow'"):
        names.resolve(bones, "custom", '{"elbow": "x"}')
    used, found, _ = names.resolve(["Hips", "LeftUpLeg", "RightUpLeg", "Spine"], "custom",
                                   '{"base": "mixamo", "joints": {"chest": "Spine", "spine": null}}')
    assert found == {"root": 0, "l_hip": 1, "r_hip": 2, "chest": 3}


def test_frame_selection_range_step_and_rate():
    from pose_factory.motion.clip import select_frames

    assert select_frames(10, 30.0) == list(range(10))
    assert select_frames(10, 30.0, 2, 8, 3) == [2, 5, 8]
    assert select_frames(10, 30.0, fps=15.0) == [0, 2, 4, 6, 8]  # half the rate: every other frame
    assert select_frames(4, 30.0, fps=60.0) == [0, 1, 1, 2, 2, 3, 3]  # double: the nearest frame (ties up)
    with pytest.raises(SpecError, match="^start: got 10, allowed: 0 to 9"):
        select_frames(10, 30.0, 10)
    with pytest.raises(SpecError, match="^step: got 0"):
        select_frames(10, 30.0, step=0)


def test_motion_clip_node_reruns_when_its_file_changes(tmp_path):
    import os

    from nodes.motion_nodes import NO_FILE, PoseFactoryMotionClip

    clip = tmp_path / "walk.bvh"
    clip.write_text(GOOD)
    first = PoseFactoryMotionClip.IS_CHANGED(NO_FILE, str(clip))
    assert first == PoseFactoryMotionClip.IS_CHANGED(NO_FILE, str(clip))  # unchanged: cached
    clip.write_text(GOOD.replace("0.033333", "0.04"))
    os.utime(clip, ns=(os.stat(clip).st_atime_ns, os.stat(clip).st_mtime_ns + 10**9))
    assert PoseFactoryMotionClip.IS_CHANGED(NO_FILE, str(clip)) != first
    assert PoseFactoryMotionClip.IS_CHANGED(NO_FILE, "key:clips/a.bvh") == "key:clips/a.bvh"
    assert PoseFactoryMotionClip.IS_CHANGED(NO_FILE, str(tmp_path / "gone.bvh")).startswith("unavailable")


def test_motion_clip_node_quotes_the_file_name_whole(tmp_path):
    """The node's refusal names the file as it is ('walk.bvh line 20', 'my.walk.v2.bvh'), not
    with its dots turned into spaces as a JobSpec path's ('walk bvh line 20')."""
    from nodes.motion_nodes import NO_FILE, PoseFactoryMotionClip

    node = PoseFactoryMotionClip()
    for name in ("walk.bvh", "my.walk.v2.bvh"):
        clip = tmp_path / name
        clip.write_text(GOOD.replace("0 0.9 0.1 0 5 0 1 2 3", "0 0.9 0.1 0 5 0 1 nan 3"))
        with pytest.raises(SpecError) as e:
            node.load(NO_FILE, str(clip), 0, -1, 1, 0.0, "auto")
        assert str(e.value) == (f"{name} line 20: frame 1, channel 8 (LeftUpLeg Xrotation): got 'nan', "
                                "allowed: a finite number (no NaN or infinity)")
        clip.write_bytes(b"HIERARCHY\n\xff\xfe\n")  # not UTF-8: refused by read_text, named by the file
        with pytest.raises(SpecError, match=rf"^{name.replace('.', '[.]')}: "):
            node.load(NO_FILE, str(clip), 0, -1, 1, 0.0, "auto")
