"""Photo → mannequin pose: MediaPipe's world landmarks (metres) fitted onto the rig's joints
(rig.py) within their limits, as an explicit pose entry (docs/poses.md) that renders from any
camera.

The photo's camera is taken as the batch's front camera (orbit azimuth 0, looking along +Y at a
subject facing -Y), so MediaPipe's world axes (x to the image's right, y down, z away from the
camera) become the rig's (X = x, Y = z, Z = -y).

The fit (scipy's bounded least squares over the DOFs of FIT_DOFS, each within its joint limit)
matches, with the mannequin keeping its own proportions:
- the rig's joints seen from the front (orthographic, one free scale) to where the photo shows
  MediaPipe's image landmarks, centred on the hips and measured in hips-to-shoulders lengths: the
  image fixes each bone across the picture, the bone's own length how much of it points towards
  or away from the camera;
- each bone's direction to MediaPipe's world landmarks (weighted lower: its depth is the weak
  part), which says which way;
- a prior towards the rest pose that saturates past PRIOR_DEG, so it settles what the photo leaves
  open (small tilts, depth) without bending what it shows.
Stage 1 starts from four headings and keeps the best; stage 2 restarts from it with a stronger
prior. The residual per bone is the angle in degrees between the fitted and MediaPipe's 3D
direction. Measured (tests/test_extract.py): re-rendered from a 90° side view, 6 of 7 presets
lie within 10% of torso size of the original (median over joints); a trunk bent towards the
camera (reaching_forward) does not: MediaPipe sees little of that depth from the front.

Runs in the worker environment (scipy comes with MediaPipe's dependencies there).
"""
from __future__ import annotations

import numpy as np

from ..render import poses, rig

# the DOFs that move the body's keypoints (hands, wrists and the head's nod stay at rest)
FIT_DOFS = [("root", d) for d in ("yaw", "pitch", "roll")] + \
    [(j, d) for j in ("spine", "chest") for d in ("flex", "side", "twist")] + \
    [("neck", "flex"), ("neck", "side")] + \
    [(f"{s}_{j}", d) for s in rig.SIDES for j, ds in (("shoulder", ("flex", "abduct", "twist")), ("elbow", ("flex",)),
                                                      ("hip", ("flex", "abduct", "twist")), ("knee", ("flex",)),
                                                      ("ankle", ("flex",))) for d in ds]
# MediaPipe pose landmark per rig point; a pair is a midpoint
LANDMARK = {"l_shoulder": 11, "r_shoulder": 12, "l_elbow": 13, "r_elbow": 14, "l_wrist": 15, "r_wrist": 16,
            "l_hip": 23, "r_hip": 24, "l_knee": 25, "r_knee": 26, "l_ankle": 27, "r_ankle": 28, "l_toe": 31,
            "r_toe": 32, "head": (7, 8)}
# (from, to, named for the residual)
BONES = [("hips", "shoulders", "trunk"), ("r_hip", "l_hip", "pelvis"), ("r_shoulder", "l_shoulder", "shoulders"),
         ("shoulders", "head", "head")] + \
    [(f"{s}_{a}", f"{s}_{b}", f"{s}_{b}") for s in rig.SIDES for a, b in
     (("shoulder", "elbow"), ("elbow", "wrist"), ("hip", "knee"), ("knee", "ankle"), ("ankle", "toe"))]
BODY = [n for n in rig.JOINT_NAMES if n in {"root", "spine", "chest", "neck", "head"}
        or n[2:] in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle", "toe")]
_REST = dict(zip(rig.JOINT_NAMES, rig.rest_positions(rig.REFERENCE_HEIGHT)))
# least-squares weights, in residual units (a unit direction's difference; the image points' unit
# is the hips-to-shoulders length), chosen on our renders (tests/test_extract.py)
REGULARISE = 0.002      # per degree of a body DOF: among equal fits, the one nearest the rest pose
ROOT_TILT = 0.02        # per degree of the root's pitch and roll: people mostly stand upright
DEPTH_WEIGHT = 0.3      # MediaPipe's 3D directions, next to the image's 2D positions
STAGE2_REG = (0.012, 0.02)  # stage 2: what the image leaves open drawn harder to the rest pose
STAGE2_DEPTH = 0.15
PRIOR_DEG = 15.0        # the rest-pose prior grows like the angle up to about this, then saturates
DROPPED_WEIGHT = 0.3    # an image point below the visibility cut (mapping.MIN_VISIBILITY): kept, weighted low
HEADINGS = (0.0, 90.0, 180.0, -90.0)  # stage 1 starts from each (the root's yaw), the best kept


def mediapipe_world_to_rig(world) -> np.ndarray:
    """(33, 3+) MediaPipe world landmarks → (33, 3) in the rig's axes (module docstring)."""
    w = np.asarray(world, float)[:, :3]
    return np.stack([w[:, 0], w[:, 2], -w[:, 1]], axis=1)


def _points_from_landmarks(p: np.ndarray) -> dict:
    out = {n: p[list(i)].mean(0) if isinstance(i, tuple) else p[i] for n, i in LANDMARK.items()}
    out["hips"], out["shoulders"] = (out["l_hip"] + out["r_hip"]) / 2, (out["l_shoulder"] + out["r_shoulder"]) / 2
    return out


def angles_of(x) -> dict:
    angles: dict = {}
    for (j, d), v in zip(FIT_DOFS, x):
        angles.setdefault(j, {})[d] = float(v)
    return angles


def _dof_matrices(joint: str) -> list:
    """(dof name, K, K @ K) of each DOF of the joint, K its axis's cross-product matrix: rig.rotation's
    own Rodrigues terms, made once (the fit evaluates the rig thousands of times)."""
    out = []
    for dof in rig.JOINTS[joint].dofs:
        a = rig.dof_axis(joint, dof)
        k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
        out.append((dof.name, k, k @ k))
    return out


_DOFS = {n: _dof_matrices(n) for n in BODY}
_OFFSET = {n: _REST[n] - _REST[rig.JOINTS[n].parent] for n in BODY if rig.JOINTS[n].parent is not None}
_EYE = np.eye(3)


def _local_rotation(joint: str, angles: dict) -> np.ndarray:
    """rig.local_rotation with the DOF matrices made once: the same operations, the same numbers."""
    r = _EYE
    for name, k, k2 in _DOFS[joint]:
        deg = angles.get(name, 0.0)
        if deg:
            t = np.radians(deg)
            r = r @ (_EYE + np.sin(t) * k + (1 - np.cos(t)) * k2)
    return r


def _rig_points(angles: dict) -> dict:
    """Forward kinematics of the body joints only (rig.forward_kinematics without the hands)."""
    return body_kinematics(angles)[0]


def body_kinematics(angles: dict) -> tuple[dict, dict]:
    """({joint: world position}, {joint: world rotation}) of the body joints (BODY) of the
    reference-height rig, plus the hips' and shoulders' midpoints in the positions."""
    pos, rot = {}, {}
    for n in BODY:
        local = _local_rotation(n, angles.get(n, {}))
        parent = rig.JOINTS[n].parent
        if parent is None:
            pos[n], rot[n] = _REST[n], local
        else:
            pos[n] = pos[parent] + rot[parent] @ _OFFSET[n]
            rot[n] = rot[parent] @ local
    pos["hips"], pos["shoulders"] = (pos["l_hip"] + pos["r_hip"]) / 2, (pos["l_shoulder"] + pos["r_shoulder"]) / 2
    return pos, rot


def _unit(v):
    return v / max(np.linalg.norm(v), 1e-9)


def _directions(points: dict) -> np.ndarray:
    return np.array([_unit(points[b] - points[a]) for a, b, _ in BONES])


def saturate(degrees):
    """The prior's pull: like the angle itself up to about PRIOR_DEG, then no stronger, so it
    settles what the photo leaves open (small tilts, depth) without bending what it shows."""
    return PRIOR_DEG * np.tanh(degrees / PRIOR_DEG)


def _image_points(landmarks, width: int, height: int) -> tuple[list, np.ndarray]:
    """The image landmarks as rig-plane points (X right, Z up), centred on the hips' midpoint and
    divided by the image's hips-to-shoulders length: (names, (N, 2))."""
    lm = np.asarray(landmarks, float)
    xz = np.stack([lm[:, 0] * width, -lm[:, 1] * height], axis=1)
    pts = _points_from_landmarks(np.concatenate([xz, np.zeros((len(xz), 1))], axis=1))
    names = [n for n in LANDMARK]
    arr = np.array([pts[n][:2] for n in names]) - pts["hips"][:2]
    return names, arr / max(np.linalg.norm(pts["shoulders"][:2] - pts["hips"][:2]), 1e-9)


def image_weights(landmarks, min_visibility: float | None) -> np.ndarray:
    """Each image point's weight in the fit (LANDMARK's order): 1, or DROPPED_WEIGHT where MediaPipe's
    visibility (a pair's lower one) is below min_visibility (None: every point 1)."""
    lm = np.asarray(landmarks, float)
    if min_visibility is None or lm.shape[1] < 4:
        return np.ones(len(LANDMARK))
    vis = [lm[list(i) if isinstance(i, tuple) else [i], 3].min() for i in LANDMARK.values()]
    return np.where(np.array(vis) >= min_visibility, 1.0, DROPPED_WEIGHT)


def fit_world_landmarks(world, landmarks=None, width: int = 1, height: int = 1,
                        min_visibility: float | None = None) -> dict:
    """MediaPipe's 33 world landmarks (and, when given, its image landmarks, normalised, of a
    width × height image) → {"pose": an explicit pose entry (normalised, within every limit),
    "residual_deg": {bone: degrees}, "median_deg": float}.

    With the image landmarks, the fit also matches the rig's joints seen from the front camera
    (orthographic, scaled by the hips-to-shoulders length) to where the photo shows them: the
    image fixes each bone's direction across the picture, the mannequin's own bone lengths how
    much of it points towards or away from the camera, and MediaPipe's depth only which way. With
    min_visibility, an image point MediaPipe gives less visibility weighs DROPPED_WEIGHT."""
    from scipy.optimize import least_squares

    target = _directions(_points_from_landmarks(mediapipe_world_to_rig(world)))
    lo = np.array([rig.dof(j, d).lo for j, d in FIT_DOFS], float)
    hi = np.array([rig.dof(j, d).hi for j, d in FIT_DOFS], float)
    rest_torso = np.linalg.norm(_rig_points({})["shoulders"] - _rig_points({})["hips"])
    names, seen = _image_points(landmarks, width, height) if landmarks is not None else (None, None)
    weight = image_weights(landmarks, min_visibility)[:, None] if landmarks is not None else None

    def residuals(x, reg, depth_weight):
        pts = _rig_points(angles_of(x[:-1]))
        parts = [depth_weight * (_directions(pts) - target).ravel(), reg[0] * saturate(x[3:-1]),
                 reg[1] * saturate(x[1:3])]
        if seen is not None:
            rig_xz = np.array([pts[n][[0, 2]] for n in names]) - pts["hips"][[0, 2]]
            parts.append((weight * (rig_xz * x[-1] / rest_torso - seen)).ravel())
        return np.concatenate(parts)

    bounds = (np.append(lo, 0.5), np.append(hi, 2.0))
    scale = np.append(np.full(len(FIT_DOFS), 30.0), 0.2)
    best = None
    for heading in HEADINGS:  # stage 1: the shape, from four headings
        x0 = np.zeros(len(FIT_DOFS) + 1)
        x0[0], x0[-1] = heading, 1.0
        sol = least_squares(residuals, x0, bounds=bounds, x_scale=scale, diff_step=1e-3,
                            args=((REGULARISE, ROOT_TILT), 1.0 if seen is None else DEPTH_WEIGHT))
        if best is None or sol.cost < best.cost:
            best = sol
    if seen is not None:  # stage 2: from there, what the image cannot tell is drawn to the rest pose
        best = least_squares(residuals, best.x, bounds=bounds, x_scale=scale, diff_step=1e-3,
                             args=(STAGE2_REG, STAGE2_DEPTH))
    x = np.clip(np.round(best.x[:-1], 2), lo, hi)
    fitted = _directions(_rig_points(angles_of(x)))
    residual = {name: round(float(np.degrees(np.arccos(np.clip(f @ t, -1, 1)))), 1)
                for (_, _, name), f, t in zip(BONES, fitted, target)}
    joints = {j: {d: v for d, v in dofs.items() if v != 0.0} for j, dofs in angles_of(x).items()}
    entry = poses.normalize_pose_entry({"preset": "rest", "joints": {j: d for j, d in joints.items() if d}}, "pose")
    return {"pose": entry, "residual_deg": residual, "median_deg": float(np.median(list(residual.values())))}
