"""Retargeting a clip (bone world matrices, read by Blender's BVH importer) onto the mannequin.

For every mapped joint the source bone's world rotation relative to its rest (its "delta") is
carried over in the mannequin's frame, after aligning the two rest poses (a source bone's rest
direction may differ: a T-pose clip has its arms out where the mannequin's hang). Joint by joint,
parents first, the local rotation is decomposed into the joint's DOFs (rig.py: an Euler
decomposition about the DOF axes; numerically for the thumb's oblique axes), the solution within
the limits and nearest the previous frame is taken, and what is still beyond a limit is clamped
and counted in the report.

The root's motion is scaled by the legs' length ratio (so a 1.6 m actor's stride fits a 1.9 m
mannequin), in the clip's world axes (its vertical is the coordinate axis nearest its rest
root-to-neck line: a forward walk stays level): horizontally it starts at the origin; vertically it
is measured from the clip's floor, the lowest point its feet reach over the whole clip (docs/motion.md,
"The floor"), never from the clip's origin (mocap writes the hips' absolute height, which would
lift the mannequin by a metre). Pure numpy.
"""
from __future__ import annotations

import numpy as np

from ..render import mannequin as mq
from ..render import poses, rig
from ..render.poses import MAX_OFFSET, POSABLE_JOINTS
from .dofs import solve_dofs

ANGLE_DECIMALS = 4  # as the JobSpec rounds
TOUCH_TOLERANCE = 0.01  # metres: selected frames whose clip feet are this near the lowest stand as it does
SNAP_UP_DEGREES = 20.0  # a rest root-to-neck line this close to a coordinate axis: that axis is up
FOOT_JOINTS = ("l_ankle", "l_toe", "r_ankle", "r_toe")
LEG_JOINTS = ("l_hip", "l_knee", "r_hip", "r_knee")  # a map without feet: the legs' lowest point


def foot_bones(found: dict) -> list:
    """The clip's bones whose heads and tails are its foot points (the floor is the lowest of them
    over the clip): the mapped ankles and toes, else the mapped hips and knees."""
    return [found[j] for j in FOOT_JOINTS if j in found] or [found[j] for j in LEG_JOINTS if j in found]


def _frame(v_left, v_up) -> np.ndarray:
    """The rotation taking world vectors into the frame of a left and an up direction."""
    x = v_left / np.linalg.norm(v_left)
    z = v_up - (v_up @ x) * x
    z = z / np.linalg.norm(z)
    return np.stack([x, np.cross(z, x), z])


def _upright(v_left, v_up) -> np.ndarray:
    """As _frame, the up direction kept exactly (the left one made horizontal)."""
    z = v_up / np.linalg.norm(v_up)
    x = v_left - (v_left @ z) * z
    x = x / np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])


def clip_vertical(v_up) -> np.ndarray:
    """The clip's world up: the coordinate axis nearest its rest root-to-neck line when within
    SNAP_UP_DEGREES of it (files are written with an axis up; a skeleton's spine may lean a
    little), else that line."""
    v = np.asarray(v_up, float) / np.linalg.norm(v_up)
    i = int(np.argmax(np.abs(v)))
    axis = np.zeros(3)
    axis[i] = np.sign(v[i])
    return axis if v @ axis >= np.cos(np.radians(SNAP_UP_DEGREES)) else v


def lowest_foot(body: mq.Mannequin, entry: dict) -> float:
    """The height of the lowest point of the mannequin's feet (their mesh) in a pose entry."""
    posed = poses.pose_body(body, poses.normalize_pose_entry(entry, "pose"))
    return min(float(posed.transform_points(p.joints, p.verts, body.rest)[:, 2].min())
               for p in body.parts if p.name in ("foot_l", "foot_r"))


def _align(a, b) -> np.ndarray:
    """The smallest rotation turning direction a onto direction b."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    v, c = np.cross(a, b), float(a @ b)
    if c < -1 + 1e-9:  # opposite: half a turn about any perpendicular
        p = np.cross(a, [1.0, 0, 0]) if abs(a[0]) < 0.9 else np.cross(a, [0, 1.0, 0])
        return rig.rotation(p / np.linalg.norm(p), 180.0)
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k / (1 + c)


def retarget(data: dict, found: dict, height: float, frames=None, shape: dict | None = None) -> tuple[list, dict]:
    """(pose entries, report). data: the Blender dump (names, rest_heads, rest_rot, pose_heads,
    pose_rot at the selected frames; feet: the foot_bones' heads and tails at every clip frame);
    found: {joint: bone index} (names.resolve); height: the mannequin's; frames: the clip frames
    (0-based) the pose_ arrays hold, 0, 1, ... by default; shape: the mannequin's body shape
    (shape.normalize_shape; None = the default body), whose legs the root motion and the floor
    follow."""
    rest_heads, rest_rot = np.asarray(data["rest_heads"], float), np.asarray(data["rest_rot"], float)
    pose_heads, pose_rot = np.asarray(data["pose_heads"], float), np.asarray(data["pose_rot"], float)
    ours = rig.rest_positions(height, shape)
    ji = rig.JOINT_INDEX
    up_joint = next((j for j in ("neck", "head", "chest", "spine") if j in found), None)
    up = (rest_heads[found[up_joint]] - rest_heads[found["root"]]) if up_joint else np.array([0, 0, 1.0])
    # the clip's world axes (its vertical, its hips' left) onto the mannequin's: for its root's motion
    axes = (_upright(ours[ji["l_hip"]] - ours[ji["r_hip"]], np.array([0, 0, 1.0])).T
            @ _upright(rest_heads[found["l_hip"]] - rest_heads[found["r_hip"]], clip_vertical(up)))
    our_up = ours[ji[up_joint]] - ours[ji["root"]] if up_joint else np.array([0, 0, 1.0])
    # the clip's rest frame (hips' left-right line, root to neck) onto the mannequin's same frame
    f = _frame(ours[ji["l_hip"]] - ours[ji["r_hip"]], our_up).T @ _frame(
        rest_heads[found["l_hip"]] - rest_heads[found["r_hip"]], up)
    # scale: the legs' length (hip centre to ankle centre), else the hips' width
    if "l_ankle" in found and "r_ankle" in found:
        src = np.linalg.norm(rest_heads[[found["l_hip"], found["r_hip"]]].mean(0)
                             - rest_heads[[found["l_ankle"], found["r_ankle"]]].mean(0))
        dst = np.linalg.norm(ours[[rig.JOINT_INDEX["l_hip"], rig.JOINT_INDEX["r_hip"]]].mean(0)
                             - ours[[rig.JOINT_INDEX["l_ankle"], rig.JOINT_INDEX["r_ankle"]]].mean(0))
    else:
        src = np.linalg.norm(rest_heads[found["l_hip"]] - rest_heads[found["r_hip"]])
        dst = np.linalg.norm(ours[rig.JOINT_INDEX["l_hip"]] - ours[rig.JOINT_INDEX["r_hip"]])
    scale = float(dst / src) if src > 1e-9 else 1.0
    # rest alignment per mapped joint: our rest bone direction onto the clip's
    # (an end of a chain, e.g. a hand without finger bones, has no direction to compare: it keeps
    # the alignment of the nearest mapped joint above it, so it stays straight as in the clip)
    align = {}
    for j in rig.JOINT_NAMES:
        if j not in found:
            continue
        kids = sorted((c for c in rig.JOINT_NAMES if rig.JOINTS[c].parent == j and c in found),
                      key=lambda c: not c.endswith("middle1"))  # a hand points along its middle finger
        if rig.side_of(j) is None:
            align[j] = np.eye(3)
            continue
        if not kids:
            up = rig.JOINTS[j].parent
            while up is not None and up not in align:
                up = rig.JOINTS[up].parent
            align[j] = align[up] if up is not None and rig.side_of(up) else np.eye(3)
            continue
        d_src = f @ (rest_heads[found[kids[0]]] - rest_heads[found[j]])
        d_our = ours[rig.JOINT_INDEX[kids[0]]] - ours[rig.JOINT_INDEX[j]]
        align[j] = _align(d_our, d_src) if np.linalg.norm(d_src) > 1e-9 else np.eye(3)
    mapped_fingers = {s: any(f"{s}_{fj}" in found for fj in ("thumb1", "index1", "middle1", "ring1", "pinky1"))
                      for s in rig.SIDES}
    n_frames = pose_rot.shape[0]
    frames = list(range(n_frames)) if frames is None else list(frames)
    clamps: dict = {}
    entries = []
    previous = {j: np.zeros(len(rig.JOINTS[j].dofs)) for j in POSABLE_JOINTS}
    for t in range(n_frames):
        world = {}
        for j, bi in found.items():
            delta = pose_rot[t, bi] @ rest_rot[bi].T
            world[j] = f @ delta @ f.T @ align[j]
        actual = {}
        joints = {}
        for name in rig.JOINT_NAMES:
            parent = rig.JOINTS[name].parent
            pw = actual[parent] if parent else np.eye(3)
            if not rig.JOINTS[name].dofs or name not in world:
                actual[name] = pw  # an unmapped joint keeps its rest (local identity)
                continue
            local = pw.T @ world[name]
            angles = solve_dofs(name, local, previous[name])
            for d, v in zip(rig.JOINTS[name].dofs, angles):
                if not d.lo - 1e-6 <= v <= d.hi + 1e-6:
                    c = clamps.setdefault(f"{name}.{d.name}", {"frames": 0, "worst": 0.0})
                    c["frames"] += 1
                    c["worst"] = max(c["worst"], float(v - d.hi if v > d.hi else d.lo - v))
            angles = np.clip(angles, [d.lo for d in rig.JOINTS[name].dofs], [d.hi for d in rig.JOINTS[name].dofs])
            previous[name] = angles
            values = {d.name: round(float(v), ANGLE_DECIMALS) + 0.0 for d, v in zip(rig.JOINTS[name].dofs, angles)}
            values = {k: v for k, v in values.items() if v}
            if values:
                joints[name] = values
            actual[name] = pw @ rig.local_rotation(name, values)
        entries.append({"preset": "rest", "joints": joints,
                        "hands": {"left": "flat" if mapped_fingers["l"] else "relaxed",
                                  "right": "flat" if mapped_fingers["r"] else "relaxed"},
                        "offset": [0.0, 0.0, 0.0], "grounded": False})
    moves, floor = root_motion(data, found, scale, frames, height, entries, axes, shape)
    offset_clamped = 0
    for entry, move in zip(entries, moves):
        if np.abs(move).max() > MAX_OFFSET:
            offset_clamped += 1
            move = np.clip(move, -MAX_OFFSET, MAX_OFFSET)
        entry["offset"] = [round(float(c), ANGLE_DECIMALS) + 0.0 for c in move]
    report = {"scale": scale, "clamped": clamps, "offset_clamped_frames": offset_clamped, "floor": floor,
              "unmapped_joints": [j for j in POSABLE_JOINTS if j not in found
                                  and not (rig.side_of(j) and j[2:].rstrip("123") in rig.FINGERS)],
              "hands": mapped_fingers}
    return entries, report


def root_motion(data: dict, found: dict, scale: float, frames: list, height: float, entries: list,
                axes: np.ndarray, shape: dict | None = None) -> tuple[np.ndarray, dict]:
    """(F, 3) offsets of the root, and how the floor was found. axes: the clip's world axes onto
    the mannequin's (its vertical onto z). Horizontally the clip's root motion from its first
    selected frame; vertically from the clip's floor, the lowest of its foot points (foot_bones'
    heads and tails) over every frame of the clip. The selected frames whose feet are lowest
    (within TOUCH_TOLERANCE of the lowest of them: a stance lasts several frames, and its foot
    points are not its sole) stand where that lowest frame's feet are above the clip's floor: the
    mannequin's feet (their mesh) nowhere lower than that above z = 0, and that high in one of
    them; on the floor when they are the clip's lowest (a whole clip, a walk's every step)."""
    roots = scale * (data["pose_heads"][:, found["root"]] @ axes.T)
    moves = roots.copy()
    moves[:, :2] -= roots[0, :2]  # the clip starts at the origin
    feet = np.asarray(data["feet"], float) @ axes[2]  # (clip frames, points): heights in clip units
    floor, lowest = float(feet.min()), int(np.unravel_index(feet.argmin(), feet.shape)[0])
    above = scale * (feet[frames].min(axis=1) - floor)  # each selected frame's feet above the floor (m)
    body = mq.build(height, shape=shape)
    lift = {k: above.min() - lowest_foot(body, dict(entries[k], offset=[0.0, 0.0, float(moves[k, 2])]))
            for k in np.nonzero(above <= above.min() + TOUCH_TOLERANCE)[0]}
    k = max(lift, key=lambda i: (lift[i], -i))  # the frame that needs the most lift touches
    moves[:, 2] += lift[k]
    return moves, {"clip_frame": lowest, "frame": int(k), "above": float(above.min()),
                   "clip_frames": int(feet.shape[0])}
