"""What the in-graph 3D viewer shows, computed by the core's own rig (never a copy in JavaScript).

``mesh(height, build)`` is the mannequin's rest mesh: vertices, the joint each vertex moves with,
triangles and body-part labels; ``scene(body)`` poses it: joint positions and rotations (the
browser moves each vertex rigidly with its joint, ``v' = R_j (v - rest_j) + p_j``, exactly
``rig.Posed.transform_points``), the 130 keypoints, and the cameras the worker will use (built by
``cameras.build_cameras`` from the same framing points as the render). ``limits()`` is the
joint-limits table the core enforces, for the posing gizmo. ``remember(poses)`` keeps the poses a
node made when the prompt ran (Motion Clip, Pose From Photo: known only then) under a key the node
sends with its UI output; ``recall(key)`` gives them back to the viewer (in memory, the last few).
"""
from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections import OrderedDict

import numpy as np

from ..render import cameras as cameras_mod
from ..render import mannequin as mq
from ..render import poses as poses_mod
from ..render import rig
from .. import spec as spec_mod
from ..errors import SpecError

SCENE_KEYS = ("subject", "poses", "frame", "cameras", "render")
DIGITS = 5  # metres rounded to 10 µm: far below a pixel, keeps the JSON small
MAX_RESULTS = 32  # poses kept from runs (the viewer asks for the last of each node)
_results: OrderedDict = OrderedDict()
_results_lock = threading.Lock()


def remember(poses) -> str:
    """Keeps the poses a node made when the prompt ran; returns the key its UI output carries."""
    text = json.dumps(poses, sort_keys=True, default=str)
    key = hashlib.sha256(text.encode()).hexdigest()[:24]
    with _results_lock:
        _results[key] = json.loads(text)
        _results.move_to_end(key)
        while len(_results) > MAX_RESULTS:
            _results.popitem(last=False)
    return key


def recall(key):
    """The poses remembered under key, or None (never made here, or forgotten since)."""
    with _results_lock:
        got = _results.get(key) if isinstance(key, str) else None
        return None if got is None else json.loads(json.dumps(got))


@functools.lru_cache(maxsize=8)
def _mesh(height: float, build: str, shape_json: str = "null") -> dict:
    shape = json.loads(shape_json)
    body = mq.build(height, build, shape)
    verts, joints = body.all_vertices()
    labels = np.concatenate([np.full(len(p.triangles()[0]), mq.PART_LABEL[p.name]) for p in body.parts])
    return {"height": height, "build": build, **({"shape": shape} if shape else {}),
            "joint_names": list(rig.JOINT_NAMES),
            "parents": [int(p) for p in rig.PARENT_INDEX],
            "rest": np.round(body.rest, DIGITS).ravel().tolist(),
            "vertices": np.round(verts, DIGITS).ravel().tolist(),
            "vertex_joint": joints.astype(int).tolist(),
            "triangles": body.all_triangles().astype(int).ravel().tolist(),
            "triangle_part": labels.astype(int).tolist(), "parts": list(mq.PARTS)}


def _subject(raw) -> dict:
    """The subject part of a spec (height, build, and shape when not the default body), validated
    by the spec's own rules."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise SpecError("subject", f"got {type(raw).__name__}", 'an object {"height": metres, "build": name}')
    full = spec_mod.normalize_spec({"subjects": [dict(raw, poses=["rest"])]})["subjects"][0]
    return {k: full[k] for k in ("height", "build", "shape") if k in full}


def mesh(height=1.75, build="average", shape=None) -> dict:
    """shape: a body shape as a spec takes it (shape.normalize_shape: a preset name or an object)."""
    s = _subject({"type": "mannequin", "height": height, "build": build, **({"shape": shape} if shape else {})})
    return _mesh(s["height"], s["build"], json.dumps(s.get("shape"), sort_keys=True))


def limits() -> dict:
    """Every posable joint with its parent and DOFs ({name, axis, lo, hi, meaning}), in the rig's
    order; the presets and hand shapes a pose may start from."""
    joints = []
    for name in poses_mod.POSABLE_JOINTS:
        j = rig.JOINTS[name]
        joints.append({"name": name, "parent": j.parent, "mirror": rig.mirror_name(name),
                       "dofs": [{"name": d.name, "axis": [float(c) for c in rig.dof_axis(name, d)],
                                 "lo": d.lo, "hi": d.hi, "meaning": d.meaning,
                                 "mirror_sign": poses_mod.mirror_sign(name, d.name)} for d in j.dofs]})
    return {"joints": joints, "presets": list(poses_mod.PRESETS), "hand_shapes": list(poses_mod.HAND_SHAPES),
            "keypoint_names": mq.keypoint_names(), "body_keypoints": list(mq.BODY_KEYPOINTS)}


def dof_axes(posed: rig.Posed, angles: dict) -> dict:
    """{joint: [world axis of each DOF]} of a posed body: a DOF turns about its axis carried by the
    parent's rotation and the joint's earlier DOFs (rig.local_rotation's order), the ring the
    viewer's gizmo draws."""
    out = {}
    for name in poses_mod.POSABLE_JOINTS:
        i = rig.JOINT_INDEX[name]
        p = rig.PARENT_INDEX[i]
        r = posed.rotations[p] if p >= 0 else np.eye(3)
        axes = []
        for dof in rig.JOINTS[name].dofs:
            axis = rig.dof_axis(name, dof)
            axes.append(np.round(r @ axis, 6).tolist())
            r = r @ rig.rotation(axis, angles[name].get(dof.name, 0.0))
        out[name] = axes
    return out


def scene(body) -> dict:
    """body: {"subject": {height, build, shape}, "poses": [pose entries], "frame": i, "cameras": a spec
    cameras object, "render": {"width", "height"}} (every key optional). Returns the shown
    frame's normalized pose, its effective angles (preset, hands, overrides, mirror), each DOF's
    world axis (dof_axes) and its posed joints (positions, rotations as row-major 3x3),
    keypoints (130 x 3) and the cameras (cameras.build_cameras, framed on every pose as the
    worker frames them). SpecError names a wrong field."""
    if not isinstance(body, dict):
        raise SpecError("body", f"got {type(body).__name__}", "an object with " + ", ".join(SCENE_KEYS))
    unknown = sorted(set(body) - set(SCENE_KEYS))
    if unknown:
        raise SpecError("body", f"unknown key(s) {unknown}", ", ".join(SCENE_KEYS))
    subject = _subject(body.get("subject"))
    raw = {"subjects": [dict(subject, type="mannequin", poses=body.get("poses") or ["rest"])],
           "cameras": body.get("cameras") or {"type": "orbit"}}
    if body.get("render") is not None:
        r = body["render"]
        if not isinstance(r, dict) or set(r) - {"width", "height"}:
            raise SpecError("render", f"got {str(r)[:60]}", 'an object {"width": px, "height": px}')
        raw["render"] = dict(r)
    spec = spec_mod.normalize_spec(raw)
    entries = spec["subjects"][0]["poses"]
    frame = body.get("frame", 0)
    if not isinstance(frame, int) or isinstance(frame, bool) or not 0 <= frame < len(entries):
        raise SpecError("frame", f"got {str(frame)[:40]}", f"an integer from 0 to {len(entries) - 1}")
    man = mq.build(subject["height"], subject["build"], subject.get("shape"))
    posed = [poses_mod.pose_body(man, e) for e in entries]
    cams = cameras_mod.build_cameras(spec, cameras_mod.framing_points([mq.posed_vertices(man, p) for p in posed]))
    shown = posed[frame]
    keep = ("index", "name", "location", "rotation", "intrinsics", "focal_length", "sensor_width",
            "orthographic", "ortho_scale", "shift", "roll")
    angles, _, _ = poses_mod.pose_angles(entries[frame])
    return {"subject": subject, "render": {k: spec["render"][k] for k in ("width", "height")},
            "frame": frame, "frames": len(entries), "pose": entries[frame], "angles": angles,
            "dof_axes": dof_axes(shown, angles),
            "positions": np.round(shown.positions, DIGITS).ravel().tolist(),
            "rotations": np.round(shown.rotations, 7).ravel().tolist(),
            "keypoints": np.round(mq.posed_keypoints(man, shown), DIGITS).ravel().tolist(),
            "cameras": [{k: c[k] for k in keep if k in c} for c in cams]}
