"""Keyframed sequences: in-betweens by quaternion slerp (not Euler lerp), easing, a root path,
and every frame a valid pose (within the joint limits)."""
import numpy as np
import pytest

from nodes.spec_nodes import parse_keys, parse_sequence
from pose_factory import spec as spec_mod
from pose_factory.render import poses, rig
from pose_factory.errors import SpecError
from pose_factory.motion import sequence


def local(entry, joint):
    angles = poses.pose_angles(poses.normalize_pose_entry(entry, "p"))[0]
    return rig.local_rotation(joint, angles[joint])


def angle_between(a, b):
    return np.degrees(np.arccos(np.clip((np.trace(a.T @ b) - 1) / 2, -1, 1)))


def test_frames_per_line_and_keys_as_written():
    out = parse_sequence("a_pose frames=4\nwaving hands=open frames=3 ease=in_out\npointing frames=2")
    assert len(out) == 4 + 3 + 2
    assert out[0] == {"preset": "a_pose"} and out[4] == {"preset": "waving", "hands": "open"}
    assert out[7] == out[8] == {"preset": "pointing"}  # the last line is held
    assert parse_sequence("a_pose\nwaving") == [{"preset": "a_pose"}, {"preset": "waving"}]  # as before
    spec_mod.normalize_spec({"subjects": [{"poses": out}]})


def test_in_betweens_follow_the_shortest_arc():
    """The midpoint of A -> B is as far from A as from B, half the whole turn, for every joint: what
    slerp gives and an Euler lerp of the DOF angles does not (checked on the same poses)."""
    a = {"preset": "rest", "joints": {"l_shoulder": {"flex": 90}, "l_hip": {"flex": 60, "abduct": 30}}}
    b = {"preset": "rest", "joints": {"l_shoulder": {"abduct": 90, "twist": 40}, "l_hip": {"twist": 45}}}
    out, rep = sequence.expand([{"pose": a, "frames": 2}, {"pose": b}])
    assert rep["by_angle"] == {}  # both arcs are within the limits: pure slerp
    for joint in ("l_shoulder", "l_hip"):
        ra, rm, rb = local(a, joint), local(out[1], joint), local(b, joint)
        whole = angle_between(ra, rb)
        assert angle_between(ra, rm) == pytest.approx(whole / 2, abs=0.01)
        assert angle_between(rm, rb) == pytest.approx(whole / 2, abs=0.01)
    lerp = {"preset": "rest", "joints": {"l_shoulder": {"flex": 45, "abduct": 45, "twist": 20}}}
    assert abs(angle_between(local(a, "l_shoulder"), local(lerp, "l_shoulder"))
               - angle_between(local(lerp, "l_shoulder"), local(b, "l_shoulder"))) > 1.0


def test_ease_in_out_is_slow_at_the_keys():
    keys = [{"pose": "rest", "frames": 4, "ease": "in_out"}, {"pose": {"preset": "rest", "joints": {"root": {"yaw": 90}}}}]
    out, _ = sequence.expand(keys)
    yaw = [poses.pose_angles(poses.normalize_pose_entry(e, "p"))[0]["root"]["yaw"] for e in out]
    np.testing.assert_allclose(yaw, [0, 90 * 0.15625, 45, 90 * 0.84375, 90], atol=1e-3)
    out, _ = sequence.expand([dict(keys[0], ease="linear"), keys[1]])
    yaw = [poses.pose_angles(poses.normalize_pose_entry(e, "p"))[0]["root"]["yaw"] for e in out]
    np.testing.assert_allclose(yaw, [0, 22.5, 45, 67.5, 90], atol=1e-3)


@pytest.mark.parametrize("a,b,by_angle", [
    ("walk_left_step", "walk_right_step", {}), ("a_pose", "waving", {}), ("standing", "running", {}),
    ("squatting", "jumping", {}), ("thinking", "arms_crossed", {}),
    # the arms swing up through 90 degrees of abduction: there the shortest arc needs flex beyond -60
    ("rest", "cheering", {"l_shoulder": 1, "r_shoulder": 1})])
def test_every_frame_within_the_limits(a, b, by_angle):
    out, rep = sequence.expand([{"pose": a, "frames": 8, "ease": "in_out"}, {"pose": b, "frames": 8}, {"pose": a}])
    assert rep["by_angle"] == by_angle  # slerp everywhere else
    for i, e in enumerate(out):
        angles = poses.pose_angles(poses.normalize_pose_entry(e, f"frame {i}"))[0]
        for j, dofs in angles.items():
            for d, v in dofs.items():
                assert poses.limit_problem(j, d, v) is None, (i, j, d, v)


def test_root_paths():
    walk = parse_sequence("walk_left_step frames=6\nwalk_right_step frames=6\nwalk_left_step", "walk_forward", 1.2)
    ys = [poses.normalize_pose_entry(e, "p")["offset"][1] for e in walk]
    assert ys[0] == 0 and ys[-1] == pytest.approx(-1.2) and all(b < a for a, b in zip(ys, ys[1:]))
    turn = parse_sequence("standing frames=5\nstanding", "turn_in_place", 90)
    yaw = [poses.pose_angles(poses.normalize_pose_entry(e, "p"))[0]["root"]["yaw"] for e in turn]
    np.testing.assert_allclose(yaw, np.linspace(0, 90, 6), atol=1e-3)


def test_bad_options_name_the_line():
    with pytest.raises(SpecError, match=r"^line 2 frames: got '0', allowed: an integer from 1 to 256"):
        parse_keys("a_pose\nwaving frames=0")
    with pytest.raises(SpecError, match=r"^line 1 ease: got 'fast', allowed: linear, in_out"):
        parse_keys("a_pose ease=fast")
    with pytest.raises(SpecError, match=r"the lines make 300 frames, allowed: at most 256"):
        parse_keys("a_pose frames=200\nwaving frames=100")
    with pytest.raises(SpecError, match=r"^path_amount: got 9, allowed: -5 to 5 \(metres\)"):
        parse_sequence("a_pose", "walk_forward", 9)


def test_follow_is_optional_and_keeps_old_batch_ids():
    base = {"cameras": {"views": 2}, "subjects": [{"poses": ["rest"]}]}
    before = spec_mod.batch_id(base)
    assert "follow" not in spec_mod.normalize_spec(base)["cameras"]
    assert spec_mod.batch_id({"cameras": {"views": 2, "follow": False}, "subjects": [{"poses": ["rest"]}]}) == before
    following = spec_mod.normalize_spec({"cameras": {"views": 2, "follow": True}, "subjects": [{"poses": ["rest"]}]})
    assert following["cameras"]["follow"] is True and spec_mod.batch_id(following) != before
    with pytest.raises(SpecError, match=r"^cameras.follow: got 'yes', allowed: true or false"):
        spec_mod.normalize_spec({"cameras": {"follow": "yes"}, "subjects": [{"poses": ["rest"]}]})
