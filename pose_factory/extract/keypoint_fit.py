"""2D keypoints → mannequin pose: a POSE_KEYPOINT person (ours, DWPose's, SDPose's, an OpenPose
editor's JSON) seen in one or more views, fitted onto the rig's joint angles within their limits
so that the mannequin's own body keypoints project onto the given ones (docs/extraction.md,
"Pose From Keypoints").

What is fitted: the 18 COCO body points (nose, neck, shoulders, elbows, wrists, hips, knees,
ankles, eyes, ears) of the reference mannequin (1.75 m, average build), through the DOFs of
KEYPOINT_DOFS (fit.FIT_DOFS plus the head's nod and the neck's turn); hands, fingers and the face
stay at rest (a frame's hand and face points are not used). A point with confidence below
``threshold`` (or written 0, 0, 0) is missing and simply left out; at least MIN_POINTS of the
body points must be present in some view. Our own keypoints also give the points the body
covers (their true place, kept in our field: openpose.OWN_KEY).

The camera:
- given (a list of finished camera dicts, one per view: cameras.explicit / cameras.orbit): the
  rig's root is placed freely in the world (3 unknowns), the cameras stay as given; an orbit
  whose distance is "auto" gets its distance fitted too (its target is where the body is);
- not given (one view): a pinhole camera with DEFAULT_LENS (50 mm on a 36 mm sensor, the
  orbit's default), centred, looking horizontally at a subject facing it, and tilted down by
  an elevation the fit estimates; the subject is assumed upright (the root-tilt prior), so a
  camera above the subject shows as the camera's elevation and not as a leaning body. The pose
  comes back as seen from that camera: azimuth 0 is the photo's camera (as Pose From Photo).

The prior (what settles depth, which a single view cannot see): least squares adds, per body
DOF, REGULARISE × saturate(angle) (fit.saturate: like the angle up to about 15°, then no
stronger), pulling towards the rest pose without bending what the image shows, and ROOT_TILT ×
saturate(root pitch and roll). Each arm and leg also has a depth-mirrored twin (its shoulder's
or hip's flex and twist negated, the limb swung to the other side of the image plane); each
twin is refitted and the lower total cost (image + prior) kept. When a twin's image error is
within AMBIGUOUS_PX of the kept one and its hand or foot lies more than AMBIGUOUS_TORSO torso
lengths away, the limb is reported as ambiguous. With two or more views the depth is seen and
the same fit runs over every view at once (a joint least-squares triangulation through the rig).

Residuals are in pixels, divided per view by the view's torso length on the image (neck to the
hips' midpoint) so every view weighs the same; the result reports each body point's residual in
pixels (the median over the views where it was given).
"""
from __future__ import annotations

import math

import numpy as np

from ..render import cameras as cam_mod
from ..render import mannequin as mq
from ..render import openpose, poses, rig
from . import fit

KEYPOINT_DOFS = fit.FIT_DOFS + [("neck", "twist"), ("head", "flex")]
N_BODY = 18
MIN_POINTS = 6
DEFAULT_THRESHOLD = 0.3   # core's SDPose drawing's default score threshold
DEFAULT_LENS = {"focal_length": 50.0, "sensor_width": 36.0}
DEFAULT_DISTANCE = 4.0    # metres from the virtual camera to the rig's rest root, before the fit moves it
REGULARISE = 0.004        # per degree of a body DOF, in torso lengths of image error
ROOT_TILT = 0.02          # per degree of the root's pitch and roll
MULTI_VIEW_PRIOR = 0.1    # with two or more views the depth is seen: the prior only breaks ties
HEADINGS = (0.0, 90.0, 180.0, -90.0)
# each heading starts from each of these (a seated start finds thighs towards the camera)
START_POSES = {"rest": {}, "seated": {f"{s}_{j}": {"flex": 90.0} for s in rig.SIDES for j in ("hip", "knee")}}
AMBIGUOUS_PX = 2.0
AMBIGUOUS_TORSO = 0.25
LIMBS = {"left arm": ("l_shoulder", "l_wrist"), "right arm": ("r_shoulder", "r_wrist"),
         "left leg": ("l_hip", "l_ankle"), "right leg": ("r_hip", "r_ankle")}
_MODEL: dict = {}


def _model() -> dict:
    """The reference mannequin's 18 body keypoints: their rest positions and joints."""
    if not _MODEL:
        m = mq.build()
        _MODEL.update(rest=m.keypoint_rest[mq.KP_BODY].copy(),
                      joint=[rig.JOINT_NAMES[i] for i in m.keypoint_joint[mq.KP_BODY]], rig_rest=m.rest.copy())
    return _MODEL


def body_keypoints(angles: dict, offset=(0.0, 0.0, 0.0)) -> np.ndarray:
    """(18, 3) world positions of the reference mannequin's body keypoints (mannequin.BODY_KEYPOINTS
    order) for joint angles {joint: {dof: deg}}, the root moved by offset (not grounded)."""
    md = _model()
    pos, rot = fit.body_kinematics(angles)
    rest = md["rig_rest"]
    out = np.array([pos[j] + rot[j] @ (p - rest[rig.JOINT_INDEX[j]]) for p, j in zip(md["rest"], md["joint"])])
    return out + np.asarray(offset, float)


def person_points(frame: dict, person: int = 0, threshold: float = DEFAULT_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """One POSE_KEYPOINT frame's person → ((18, 2) pixels, (18,) bool present). Raises ValueError
    naming what is wrong."""
    people = frame.get("people") or []
    if not 0 <= person < len(people):
        raise ValueError(f"person: got {person}, allowed: 0 to {len(people) - 1} (the frame has {len(people)} "
                         "people)" if people else f"person: got {person}, but the frame has no people")
    flat = people[person].get("pose_keypoints_2d") or []
    if len(flat) < 3 * N_BODY:
        raise ValueError(f"pose_keypoints_2d: got {len(flat) // 3} points, allowed: 18 (COCO body) or more")
    p = np.asarray(flat[:3 * N_BODY], float).reshape(N_BODY, 3)
    present = (p[:, 2] >= threshold) & (p[:, 2] > 0) & np.isfinite(p).all(1)
    own = ((people[person].get(openpose.OWN_KEY) or {}).get("occluded") or {}).get("pose_keypoints_2d") or []
    if len(own) >= 3 * N_BODY:  # ours: the points the body covers, at their true place
        q = np.asarray(own[:3 * N_BODY], float).reshape(N_BODY, 3)
        covered = ~present & (q[:, 2] > 0) & np.isfinite(q).all(1)
        p[covered] = q[covered]
        present |= covered
    return p[:, :2].copy(), present


def default_camera(width: int, height: int, elevation: float = 0.0) -> dict:
    """The virtual camera of a view without one (module docstring), elevation in degrees."""
    e = math.radians(elevation)
    target = np.array([0.0, 0.0, rig.JOINTS["root"].rest[2]])
    loc = target + DEFAULT_DISTANCE * np.array([0.0, -math.cos(e), math.sin(e)])
    cam = {"focal_length": DEFAULT_LENS["focal_length"], "sensor_width": DEFAULT_LENS["sensor_width"],
           "orthographic": False, "ortho_scale": None, "shift": [0.0, 0.0], "roll": 0.0,
           "location": loc, "rotation": cam_mod.look_at_rotation(loc, target)}
    return cam_mod.finish_camera(cam, width, height)


def _angles(x) -> dict:
    out: dict = {}
    for (j, d), v in zip(KEYPOINT_DOFS, x):
        out.setdefault(j, {})[d] = float(v)
    return out


def _torso_px(xy, ok) -> float:
    neck, hips = 1, (8, 11)
    if ok[neck] and ok[hips[0]] and ok[hips[1]]:
        return max(float(np.linalg.norm(xy[neck] - (xy[hips[0]] + xy[hips[1]]) / 2)), 1.0)
    pts = xy[ok]
    return max(float(np.ptp(pts, axis=0).max()) / 3.0, 1.0)


def fit_keypoints(views: list, cameras: list | None = None) -> dict:
    """views: [((18, 2) pixels, (18,) present, width, height)], one per view of the same moment;
    cameras: None (one view: the camera is estimated) or one finished camera dict per view, each
    optionally with "auto_distance": True (an orbit whose distance is fitted).

    Returns {"pose": an explicit pose entry (within every limit), "residual_px": {point: px or
    None}, "median_px": float, "ambiguous": [limb names], "camera": [the cameras used, fitted]}."""
    if not views:
        raise ValueError("views: got none, allowed: one or more views of the same moment")
    if cameras is None and len(views) > 1:
        raise ValueError(f"cameras: got none for {len(views)} views, allowed: one camera per view (two or more "
                         "views need their cameras)")
    if cameras is not None and len(cameras) != len(views):
        raise ValueError(f"cameras: got {len(cameras)} for {len(views)} views, allowed: one camera per view")
    if max(int(v[1].sum()) for v in views) < MIN_POINTS:
        raise ValueError(f"pose_keypoints_2d: fewer than {MIN_POINTS} body points found (confidence at or above "
                         "the threshold), allowed: at least 6 so the pose is determined")
    from scipy.optimize import least_squares  # ComfyUI brings scipy; imported once the input is checked

    n = len(KEYPOINT_DOFS)
    lo = np.array([rig.dof(j, d).lo for j, d in KEYPOINT_DOFS], float)
    hi = np.array([rig.dof(j, d).hi for j, d in KEYPOINT_DOFS], float)
    estimate = cameras is None
    auto = [bool(c.get("auto_distance")) for c in cameras] if cameras else [False]
    # extra unknowns: root offset (3), then the camera's elevation (estimated camera) or one
    # orbit distance (auto distance)
    extra_lo, extra_hi = [-10.0, -10.0, -10.0], [10.0, 10.0, 10.0]
    if estimate:
        extra_lo.append(-80.0), extra_hi.append(80.0)
    elif any(auto):
        extra_lo.append(0.5), extra_hi.append(100.0)
    weights = [1.0 / _torso_px(xy, ok) for xy, ok, _, _ in views]
    prior = 1.0 if len(views) == 1 else MULTI_VIEW_PRIOR

    def cams_for(x):
        if estimate:
            return [default_camera(views[0][2], views[0][3], x[n + 3])]
        if not any(auto):
            return cameras
        out = []
        for c, a in zip(cameras, auto):
            if a:
                rot = np.asarray(c["rotation"], float)
                loc = np.asarray(c["target"], float) + rot[:, 2] * x[n + 3]
                c = dict(c, location=loc)
            out.append(c)
        return out

    def residuals(x):
        pts = body_keypoints(_angles(x[:n]), x[n:n + 3])
        parts = []
        for (xy, ok, _, _), c, w in zip(views, cams_for(x), weights):
            proj, depth = cam_mod.project(c, pts)
            d = np.where(ok[:, None], proj - xy, 0.0) * w
            parts.append(np.nan_to_num(d, nan=10.0).ravel())
        parts.append(prior * REGULARISE * fit.saturate(x[3:n]))
        parts.append(prior * ROOT_TILT * fit.saturate(x[1:3]))
        return np.concatenate(parts)

    bounds = (np.concatenate([lo, extra_lo]), np.concatenate([hi, extra_hi]))
    scale = np.concatenate([np.full(n, 30.0), np.full(len(extra_lo) - 3 + 3, 0.3)])

    def solve(x0):
        return least_squares(residuals, np.clip(x0, *bounds), bounds=bounds, x_scale=scale, diff_step=1e-3)

    x_extra = np.zeros(len(extra_lo))
    if estimate:
        x_extra[3] = 0.0
    elif any(auto):
        x_extra[3] = float(np.median([c["distance"] for c in cameras]))
        x_extra[:3] = 0.0
    # start the root where the cameras see the hips (least squares over the views' rays)
    x_extra[:3] = _triangulated_root(views, cams_for(np.concatenate([np.zeros(n), x_extra])))
    starts = []
    for start in START_POSES.values():
        for heading in HEADINGS:
            x0 = np.concatenate([np.zeros(n), x_extra])
            for k, (j, d) in enumerate(KEYPOINT_DOFS):
                x0[k] = start.get(j, {}).get(d, 0.0)
            x0[0] = heading
            starts.append(x0)
    if len(views) > 1:  # triangulated points first: a 3D fit has few false minima
        seen3d, have = _triangulated(views, cams_for(starts[0]))
        if have.sum() >= MIN_POINTS:
            def residuals3d(x):
                d = body_keypoints(_angles(x[:n]), x[n:n + 3]) - seen3d
                return np.concatenate([(d[have] / _rest_torso()).ravel(), prior * REGULARISE * fit.saturate(x[3:n]),
                                       prior * ROOT_TILT * fit.saturate(x[1:3])])
            starts = [least_squares(residuals3d, np.clip(x0, *bounds), bounds=bounds, x_scale=scale,
                                    diff_step=1e-3).x for x0 in starts]
    best = None
    for x0 in starts:
        sol = solve(x0)
        if best is None or sol.cost < best.cost:
            best = sol
    ambiguous = []
    for limb, (top, _) in LIMBS.items():
        x0 = best.x.copy()
        for k, (j, d) in enumerate(KEYPOINT_DOFS):
            if j == top and d in ("flex", "twist"):
                x0[k] = -x0[k]
        if np.allclose(x0, best.x):
            continue
        twin = solve(x0)
        if twin.cost < best.cost:
            twin, best = best, twin
        if _image_error(residuals, twin.x, views) - _image_error(residuals, best.x, views) < AMBIGUOUS_PX:
            end = LIMBS[limb][1]
            i = mq.BODY_KEYPOINTS.index(end)
            a = body_keypoints(_angles(best.x[:n]))[i]
            b = body_keypoints(_angles(twin.x[:n]))[i]
            if np.linalg.norm(a - b) > AMBIGUOUS_TORSO * _rest_torso():
                ambiguous.append(limb)
    x = best.x
    angles = np.clip(np.round(x[:n], 2), lo, hi)
    cams = cams_for(x)
    pts = body_keypoints(_angles(angles), x[n:n + 3])
    per_point = {}
    for i, name in enumerate(mq.BODY_KEYPOINTS):
        errs = [float(np.linalg.norm(cam_mod.project(c, pts[i:i + 1])[0][0] - xy[i]))
                for (xy, ok, _, _), c in zip(views, cams) if ok[i]]
        per_point[name] = round(float(np.median(errs)), 2) if errs else None
    given = [v for v in per_point.values() if v is not None]
    joints = {j: {d: v for d, v in dofs.items() if v != 0.0} for j, dofs in _angles(angles).items()}
    entry = poses.normalize_pose_entry({"preset": "rest", "joints": {j: d for j, d in joints.items() if d}}, "pose")
    return {"pose": entry, "residual_px": per_point, "median_px": float(np.median(given)),
            "ambiguous": sorted(set(ambiguous)), "camera": cams, "root_offset": [float(v) for v in x[n:n + 3]],
            "keypoints_3d": pts}


def _rest_torso() -> float:
    p = body_keypoints({})
    return float(np.linalg.norm(p[1] - (p[8] + p[11]) / 2))


def _image_error(residuals, x, views) -> float:
    """The median image error (px) of a solution, from its residuals (undoing the weights)."""
    r = residuals(x)
    errs = []
    at = 0
    for xy, ok, _, _ in views:
        d = r[at:at + 2 * N_BODY].reshape(N_BODY, 2)
        errs.extend((np.linalg.norm(d, axis=1) * _torso_px(xy, ok))[ok])
        at += 2 * N_BODY
    return float(np.median(errs))


def _triangulated_root(views, cams) -> np.ndarray:
    """Where the views' rays through the hips' midpoint meet best (the rest root's offset); one
    view: along its ray at the camera's distance."""
    hips = []
    for xy, ok, _, _ in views:
        hips.append((xy[8] + xy[11]) / 2 if ok[8] and ok[11] else xy[ok].mean(0))
    a, b = np.zeros((3, 3)), np.zeros(3)
    origins, dirs = [], []
    for h, c in zip(hips, cams):
        k = c["intrinsics"]
        rot = np.asarray(c["rotation"], float)
        ray = rot @ np.array([(h[0] - k["cx"]) / k["fx"], -(h[1] - k["cy"]) / k["fy"], -1.0])
        ray /= np.linalg.norm(ray)
        o = np.asarray(c["location"], float)
        origins.append(o), dirs.append(ray)
        m = np.eye(3) - np.outer(ray, ray)
        a += m
        b += m @ o
    if len(views) == 1:
        o, ray = origins[0], dirs[0]
        xy, ok = views[0][0], views[0][1]
        p = o + ray * cams[0]["intrinsics"]["fx"] * _rest_torso() / _torso_px(xy, ok)
    else:
        p = np.linalg.solve(a, b)
    return p - np.array(rig.JOINTS["root"].rest)


def pose_keypoint_views(frames: list, person: int = 0, threshold: float = DEFAULT_THRESHOLD) -> list:
    """POSE_KEYPOINT frames (views of one moment) → the views fit_keypoints takes."""
    out = []
    for f in frames:
        xy, ok = person_points(f, person, threshold)
        out.append((xy, ok, int(f["canvas_width"]), int(f["canvas_height"])))
    return out


def cameras_from_spec(spec_cams: dict, width: int, height: int) -> list:
    """A camera rig as the camera nodes make it (POSE_FACTORY_CAMERAS: an orbit or a list) → the
    finished cameras fit_keypoints takes. An orbit is centred where the rest mannequin stands; the
    root's fitted offset moves the body to wherever the orbit looked; an orbit whose distance is
    "auto" (framed on the body) gets its distance fitted."""
    from .. import spec as spec_mod

    c = spec_mod.normalize_cameras(spec_cams)
    if c["type"] == "list":
        return cam_mod.explicit(c["cameras"], width, height)
    pts = body_keypoints({})
    out = cam_mod.orbit(c, width, height, pts)
    if c["distance"] == "auto":
        for cam in out:
            rot = np.asarray(cam["rotation"], float)
            cam["target"] = (np.asarray(cam["location"], float) - rot[:, 2] * cam["distance"]).tolist()
            cam["auto_distance"] = True
    return out


def report(result: dict) -> str:
    """fit_keypoints' result as the node's report: the median and per-point residual (px), a
    warning per ambiguous limb."""
    given = {k: v for k, v in result["residual_px"].items() if v is not None}
    missing = [k for k, v in result["residual_px"].items() if v is None]
    lines = [f"median residual {result['median_px']:.2f} px over {len(given)} body points; per point: "
             + ", ".join(f"{k} {v:.1f}" for k, v in sorted(given.items(), key=lambda kv: -kv[1]))]
    if missing:
        lines.append("not given (left to the prior): " + ", ".join(missing))
    for limb in result["ambiguous"]:
        lines.append(f"warning: {limb}: its depth is ambiguous (swung to the other side of the picture it fits "
                     "as well); kept the one nearer the rest pose: check it from the side")
    return "\n".join(lines)


def _triangulated(views, cams) -> tuple[np.ndarray, np.ndarray]:
    """(18, 3) points seen in two or more views, triangulated linearly (DLT), and (18,) which are."""
    out, have = np.zeros((N_BODY, 3)), np.zeros(N_BODY, bool)
    mats = []
    for c in cams:
        k = c["intrinsics"]
        kk = np.array([[k["fx"], 0, k["cx"]], [0, -k["fy"], k["cy"]], [0, 0, 1.0]])
        w2c = np.asarray(c["world_to_camera"], float) if "world_to_camera" in c else cam_mod.world_to_camera(c)
        flip = np.diag([1.0, 1.0, -1.0])  # camera looks along -Z: depth = -z
        mats.append(kk @ flip @ w2c[:3])
    for i in range(N_BODY):
        rows = []
        for (xy, ok, _, _), m in zip(views, mats):
            if ok[i]:
                rows += [xy[i, 0] * m[2] - m[0], xy[i, 1] * m[2] - m[1]]
        if len(rows) >= 4:
            _, _, vt = np.linalg.svd(np.array(rows))
            h = vt[-1]
            if abs(h[3]) > 1e-12:
                out[i], have[i] = h[:3] / h[3], True
    return out, have
