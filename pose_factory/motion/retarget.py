"""Retargeting a clip (bone world matrices, read by Blender's BVH importer) onto the mannequin.

For every mapped joint the source bone's world rotation relative to its rest (its "delta") is
carried over in the mannequin's frame, after aligning the two rest poses (a source bone's rest
direction may differ: a T-pose clip has its arms out where the mannequin's hang). Joint by joint,
parents first, the local rotation is decomposed into the joint's DOFs (rig.py: an Euler
decomposition about the DOF axes; numerically for the thumb's oblique axes), the solution within
the limits and nearest the previous frame is taken, and what is still beyond a limit is clamped
and counted in the report. The root's motion is scaled by the legs' length ratio (so a 1.6 m
actor's stride fits a 1.9 m mannequin) and starts at the origin. Pure numpy.
"""
from __future__ import annotations

import numpy as np

from ..render import rig
from ..render.poses import MAX_OFFSET, POSABLE_JOINTS
from .dofs import solve_dofs

ANGLE_DECIMALS = 4  # as the JobSpec rounds


def _frame(v_left, v_up) -> np.ndarray:
    """The rotation taking world vectors into the frame of a left and an up direction."""
    x = v_left / np.linalg.norm(v_left)
    z = v_up - (v_up @ x) * x
    z = z / np.linalg.norm(z)
    return np.stack([x, np.cross(z, x), z])


def _align(a, b) -> np.ndarray:
    """The smallest rotation turning direction a onto direction b."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    v, c = np.cross(a, b), float(a @ b)
    if c < -1 + 1e-9:  # opposite: half a turn about any perpendicular
        p = np.cross(a, [1.0, 0, 0]) if abs(a[0]) < 0.9 else np.cross(a, [0, 1.0, 0])
        return rig.rotation(p / np.linalg.norm(p), 180.0)
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k / (1 + c)


def retarget(data: dict, found: dict, height: float, frames_out=None) -> tuple[list, dict]:
    """(pose entries, report). data: the Blender dump (names, rest_heads, rest_rot, pose_heads,
    pose_rot); found: {joint: bone index} (names.resolve); height: the mannequin's."""
    rest_heads, rest_rot = np.asarray(data["rest_heads"], float), np.asarray(data["rest_rot"], float)
    pose_heads, pose_rot = np.asarray(data["pose_heads"], float), np.asarray(data["pose_rot"], float)
    ours = rig.rest_positions(height)
    up_joint = next((j for j in ("neck", "head", "chest", "spine") if j in found), None)
    up = (rest_heads[found[up_joint]] - rest_heads[found["root"]]) if up_joint else np.array([0, 0, 1.0])
    ji = rig.JOINT_INDEX
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
    root0 = pose_heads[0, found["root"]]
    clamps: dict = {}
    offset_clamped = 0
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
        move = scale * (f @ (pose_heads[t, found["root"]] - rest_heads[found["root"]]))
        move[:2] -= scale * (f @ (root0 - rest_heads[found["root"]]))[:2]  # the clip starts at the origin
        if np.abs(move).max() > MAX_OFFSET:
            offset_clamped += 1
            move = np.clip(move, -MAX_OFFSET, MAX_OFFSET)
        entries.append({"preset": "rest", "joints": joints,
                        "hands": {"left": "flat" if mapped_fingers["l"] else "relaxed",
                                  "right": "flat" if mapped_fingers["r"] else "relaxed"},
                        "offset": [round(float(c), ANGLE_DECIMALS) + 0.0 for c in move], "grounded": False})
    report = {"scale": scale, "clamped": clamps, "offset_clamped_frames": offset_clamped,
              "unmapped_joints": [j for j in POSABLE_JOINTS if j not in found
                                  and not (rig.side_of(j) and j[2:].rstrip("123") in rig.FINGERS)],
              "hands": mapped_fingers}
    return entries, report
