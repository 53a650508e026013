"""Keyframed pose sequences: key poses with in-between frames, joint rotations interpolated by
quaternion slerp (each joint's local rotation, the root's included), eased, and a root path.

A key is a normalized pose entry with ``frames`` (how many frames its segment lasts: the key
itself, then frames-1 in-betweens towards the next key; on the last key the pose is held) and
``ease`` (``linear`` or ``in_out``: smoothstep, slow at both keys). Keys are returned as they are;
each in-between is an explicit entry (preset "rest", every non-zero angle). A slerped rotation is
decomposed back into the joint's DOFs (dofs.py); a joint with fewer than three DOFs takes the
nearest rotation it can make. Where a joint's shortest arc would leave its limits (a shoulder
swinging through its singular 90-degree abduction), that joint interpolates its DOF angles for the
segment instead, counted in the report: every frame is a valid pose, never a clamped one.
"""
from __future__ import annotations

import numpy as np

from ..render import poses, rig
from .dofs import matrix, quaternion, slerp, solve_dofs

EASES = ("linear", "in_out")
PATHS = ("none", "walk_forward", "turn_in_place")


def ease(t: float, kind: str) -> float:
    return t * t * (3 - 2 * t) if kind == "in_out" else t


def _vec(angles: dict, joint: str) -> np.ndarray:
    return np.array([angles[joint].get(d.name, 0.0) for d in rig.JOINTS[joint].dofs])


def _within(joint: str, a) -> bool:
    return all(d.lo - 1e-6 <= v <= d.hi + 1e-6 for d, v in zip(rig.JOINTS[joint].dofs, a))


def _entry(angles: dict, offset, grounded: bool) -> dict:
    """An explicit pose entry of {joint: DOF angle array} (every non-zero angle, rounded)."""
    joints = {}
    for j in poses.POSABLE_JOINTS:
        values = {d.name: round(float(v), 4) + 0.0 for d, v in zip(rig.JOINTS[j].dofs, angles[j])}
        values = {k: v for k, v in values.items() if v}
        if values:
            joints[j] = values
    return {"preset": "rest", "hands": "flat", "joints": joints,
            "offset": [round(float(c), 4) + 0.0 for c in offset], "grounded": grounded}


def _segment(a, b, n: int, kind: str, by_angle: dict) -> list:
    """The n-1 in-betweens of key a towards key b (normalized entries)."""
    aa, oa, ga = poses.pose_angles(a)
    ab, ob, gb = poses.pose_angles(b)
    ts = [ease(k / n, kind) for k in range(1, n)]
    per_joint = {}
    for j in poses.POSABLE_JOINTS:
        va, vb = _vec(aa, j), _vec(ab, j)
        qa, qb = quaternion(rig.local_rotation(j, aa[j])), quaternion(rig.local_rotation(j, ab[j]))
        sols, prev = [], va
        for t in ts:
            prev = solve_dofs(j, matrix(slerp(qa, qb, t)), prev)
            if not _within(j, prev):
                break
            sols.append(prev)
        if len(sols) < len(ts):  # the shortest arc leaves the joint's limits: its angles instead
            by_angle[j] = by_angle.get(j, 0) + 1
            sols = [va + t * (vb - va) for t in ts]
        per_joint[j] = sols
    return [_entry({j: per_joint[j][k] for j in per_joint}, oa + t * (ob - oa), ga and gb)
            for k, t in enumerate(ts)]


def _with_root(entry, yaw: float, move) -> dict:
    """entry turned by yaw degrees about the vertical through its root, and moved."""
    angles, offset, grounded = poses.pose_angles(entry)
    root = rig.rotation((0, 0, 1), yaw) @ rig.local_rotation("root", angles["root"])
    vecs = {j: _vec(angles, j) for j in poses.POSABLE_JOINTS}
    vecs["root"] = solve_dofs("root", root, vecs["root"])  # the root turns freely: +-180 on every DOF
    return _entry(vecs, offset + np.asarray(move, float), grounded)


def expand(keys: list, path: str = "none", amount: float = 0.0) -> tuple[list, dict]:
    """(pose entries, {"by_angle": {joint: segments}}). keys: [{"pose": entry, "frames": n,
    "ease": kind}]. path: none; walk_forward (amount metres over the whole sequence, towards -Y,
    where the mannequin faces at rest); turn_in_place (amount degrees, to the subject's left)."""
    out, by_angle = [], {}
    for i, key in enumerate(keys):
        a = poses.normalize_pose_entry(key["pose"], f"key {i}")
        n = int(key.get("frames", 1))
        out.append(key["pose"])  # a key as it was given
        if n <= 1:
            continue
        if i + 1 == len(keys):  # the last key is held
            out.extend([key["pose"]] * (n - 1))
            continue
        b = poses.normalize_pose_entry(keys[i + 1]["pose"], f"key {i + 1}")
        out.extend(_segment(a, b, n, key.get("ease", "linear"), by_angle))
    if path != "none" and len(out) > 1:
        total = len(out) - 1
        for f in range(len(out)):
            s = f / total
            if path == "walk_forward":
                out[f] = _with_root(out[f], 0.0, [0.0, -amount * s, 0.0])
            else:
                out[f] = _with_root(out[f], amount * s, [0.0, 0.0, 0.0])
    return out, {"by_angle": by_angle}
