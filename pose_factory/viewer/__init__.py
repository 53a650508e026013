"""What the in-graph 3D viewer shows, computed by the core's own rig (never a copy in JavaScript).

``mesh(height, build, shape)`` is a mannequin's rest mesh: vertices, the joint each vertex moves
with, triangles and body-part labels; ``scene(body)`` poses every person of the scene (one subject,
or a Scene node's ``{"type": "scene", "subjects": [...]}``, each with its own poses or the shared
ones and its place on the floor): per person its joint positions and rotations (the browser moves
each vertex rigidly with its joint, ``v' = R_j (v - rest_j) + p_j``, exactly
``rig.Posed.transform_points``; the place is already in them) and its 136 keypoints, and the
cameras the worker will use (built by ``cameras.build_cameras`` from the same framing points as
the render: every person's posed vertices, every frame). ``limits()`` is the
joint-limits table the core enforces, for the posing gizmo. ``remember(poses)`` keeps the poses a
node made when the prompt ran (Motion Clip, Pose From Photo: known only then) under a key the node
sends with its UI output; ``recall(key)`` gives them back to the viewer (in memory, the last few).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
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


def _build(subject: dict) -> mq.Mannequin:
    """The mannequin of a normalized mannequin subject (its body shape when it has one)."""
    return mq.build(subject["height"], subject["build"], subject.get("shape"))


@functools.lru_cache(maxsize=16)
def _mesh(height: float, build: str, shape_json: str) -> dict:
    shape = json.loads(shape_json)
    body = _build({"height": height, "build": build, "shape": shape})
    verts, joints = body.all_vertices()
    labels = np.concatenate([np.full(len(p.triangles()[0]), mq.PART_LABEL[p.name]) for p in body.parts])
    return {"height": height, "build": build, **({"shape": shape} if shape is not None else {}),
            "joint_names": list(rig.JOINT_NAMES),
            "parents": [int(p) for p in rig.PARENT_INDEX],
            "rest": np.round(body.rest, DIGITS).ravel().tolist(),
            "vertices": np.round(verts, DIGITS).ravel().tolist(),
            "vertex_joint": joints.astype(int).tolist(),
            "triangles": body.all_triangles().astype(int).ravel().tolist(),
            "triangle_part": labels.astype(int).tolist(), "parts": list(mq.PARTS)}


BODY_KEYS = ("height", "build", "shape")  # what makes a mannequin's mesh


def _body_of(subject: dict) -> dict:
    return {k: subject[k] for k in BODY_KEYS if k in subject}


def mesh(height=1.75, build="average", shape=None) -> dict:
    """A mannequin's rest mesh (height, build and body shape validated by the spec's own rules)."""
    raw = {"type": "mannequin", "height": height, "build": build, "poses": ["rest"]}
    if shape is not None:
        raw["shape"] = shape
    s = spec_mod.normalize_spec({"subjects": [raw]})["subjects"][0]
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


def _people(subject, shared_poses) -> list[dict]:
    """The scene's subjects as raw spec subjects, in order: one subject, or a Scene node's
    {"type": "scene", "subjects": [...]}; a subject without poses takes the shared poses (the
    request's), else the rest pose."""
    subject = {} if subject is None else subject
    if not isinstance(subject, dict):
        raise SpecError("subject", f"got {type(subject).__name__}",
                        'a subject object {"type": "mannequin", "height": metres, ...} or a scene {"type": "scene", "subjects": [...]}')
    if subject.get("type") == "scene":
        subjects = subject.get("subjects")
        if not isinstance(subjects, list) or not subjects:
            raise SpecError("subject.subjects", f"got {str(subjects)[:60]}", "a list of subjects")
    else:
        subjects = [subject]
    out = []
    for k, s in enumerate(subjects):
        if not isinstance(s, dict):
            raise SpecError(f"subject.subjects[{k}]", f"got {type(s).__name__}", "a subject object")
        s = dict(s)
        if s.get("poses") is None:
            s["poses"] = shared_poses or ["rest"]
        out.append(s)
    return out


def _spec_subject(s: dict) -> dict:
    """A raw subject as the spec checks it here: a rig is checked for its poses and place only (its
    file is read by rigview, its other keys by the Custom Rig node and the worker)."""
    if s.get("type", "mannequin") == "mannequin":
        return s
    return {k: v for k, v in s.items() if k in ("poses", "place")}


def _rig_person(person: dict, given: dict, entries: list, frame: int, frames: int, framing: list,
                worker_python: str | None) -> str | None:
    """Fills a rig person's drawing (rigview: its bones posed, placed and grounded, each vertex with
    its dominant bone); returns a note when it cannot be drawn here (then nothing stands in for it)."""
    from . import rigview

    if given.get("unreadable"):  # the Custom Rig node's own refusal (nodes/routes.py)
        return (f"person {person['index']} (custom rig) is not drawn here: {given['unreadable']}; it is in the batch's "
                "images after the render")
    try:
        view = rigview.load(given, python=worker_python)
    except SpecError as e:
        ref = (given.get("rig") or {}).get("file")
        text = str(e).replace(str(ref), os.path.basename(str(ref))) if ref else str(e)
        return f"person {person['index']} (custom rig) is not drawn here: {text}; it is in the batch's images after the render"
    world = [view.posed(e, person["place"]) for e in entries]
    for f in range(frames):
        framing[f].append(view.vertices(poses_mod.frame_entry(world, f)))
    shown = poses_mod.frame_entry(world, frame)
    kp = view.keypoints(shown)
    missing = np.isnan(kp).any(axis=1)
    person.update({"drawn": True, "rig": view.key, "height": round(float(view.rt.height), 4),
                   "skin": np.round(view.skin(shown)[:, :3, :], 6).ravel().tolist(),
                   "keypoints": np.round(np.nan_to_num(kp), DIGITS).ravel().tolist(),
                   "missing": np.flatnonzero(missing).tolist()})
    return None


def scene(body, worker_python: str | None = None) -> dict:
    """body: {"subject": a subject {height, build, shape} or a scene {"type": "scene", "subjects":
    [...]}, "poses": the shared pose entries (a subject without its own takes them), "frame": i,
    "cameras": a spec cameras object, "render": {"width", "height"}} (every key optional).
    Returns "people": per person k (subjects[k], in order) its subject (height, build, shape), its
    place, the shown frame's normalized pose (a 1-pose person holds it), its effective angles, each
    DOF's world axis (dof_axes), its posed joints (positions, rotations as row-major 3x3) and
    keypoints (136 x 3), all placed in the world; the first mannequin's the same at the top level
    (as before several people); "frames" (the longest pose list) and the cameras (cameras.build_cameras,
    framed on every person's every pose as the worker frames them). A custom rig's person
    (rigview, Blender reading its file once in a child run by worker_python) has "rig" (the key
    of its mesh, rigview.loaded(key).mesh()), "skin" (a 3x4 matrix per bone moving its rest
    vertices), its keypoints and "missing" (the keypoints it has no bone for); a rig that cannot be
    read here (or a subject {"type": "rig", "unreadable": why}: a Custom Rig node that refused its
    widgets) has "drawn": false and a note. SpecError names a wrong field."""
    if not isinstance(body, dict):
        raise SpecError("body", f"got {type(body).__name__}", "an object with " + ", ".join(SCENE_KEYS))
    unknown = sorted(set(body) - set(SCENE_KEYS))
    if unknown:
        raise SpecError("body", f"unknown key(s) {unknown}", ", ".join(SCENE_KEYS))
    raw_people = _people(body.get("subject"), body.get("poses"))
    raw = {"subjects": [_spec_subject(s) for s in raw_people], "cameras": body.get("cameras") or {"type": "orbit"}}
    if body.get("render") is not None:
        r = body["render"]
        if not isinstance(r, dict) or set(r) - {"width", "height"}:
            raise SpecError("render", f"got {str(r)[:60]}", 'an object {"width": px, "height": px}')
        raw["render"] = dict(r)
    spec = spec_mod.normalize_spec(raw)
    subjects = spec["subjects"]
    frames = max(len(s["poses"]) for s in subjects)
    frame = body.get("frame", 0)
    if not isinstance(frame, int) or isinstance(frame, bool) or not 0 <= frame < frames:
        raise SpecError("frame", f"got {str(frame)[:40]}", f"an integer from 0 to {frames - 1}")
    people, framing, notes = [], [[] for _ in range(frames)], []
    for k, (s, given) in enumerate(zip(subjects, raw_people)):
        entries = s["poses"]
        entry = poses_mod.frame_entry(entries, frame)
        person = {"index": k, "type": given.get("type", "mannequin"),
                  "place": s.get("place") or {"position": [0.0, 0.0], "facing": 0.0}, "frames": len(entries), "pose": entry}
        if person["type"] != "mannequin":
            person["drawn"] = False
            note = _rig_person(person, given, entries, frame, frames, framing, worker_python)
            if note:
                notes.append(note)
            people.append(person)
            continue
        man = _build(s)
        # placed as the worker places a person (blender_scripts/people.py: grounded, then turned and moved)
        posed = [poses_mod.placed(poses_mod.pose_body(man, e), s.get("place")) for e in entries]
        for f in range(frames):
            framing[f].append(mq.posed_vertices(man, poses_mod.frame_entry(posed, f)))
        shown = poses_mod.frame_entry(posed, frame)
        angles, _, _ = poses_mod.pose_angles(entry)
        person.update({"drawn": True, "subject": _body_of(s), "angles": angles, "dof_axes": dof_axes(shown, angles),
                       "positions": np.round(shown.positions, DIGITS).ravel().tolist(),
                       "rotations": np.round(shown.rotations, 7).ravel().tolist(),
                       "keypoints": np.round(mq.posed_keypoints(man, shown), DIGITS).ravel().tolist()})
        people.append(person)
    drawn = [p for p in people if p["drawn"]]
    mannequins = [p for p in drawn if p["type"] == "mannequin"]
    # the worker's framing (blender_scripts/render_batch.py): every person's vertices, frame by frame
    points = [v for f in framing for v in f] if drawn else [np.zeros((1, 3))]
    cams = cameras_mod.build_cameras(spec, cameras_mod.framing_points(points))
    keep = ("index", "name", "location", "rotation", "intrinsics", "focal_length", "sensor_width",
            "orthographic", "ortho_scale", "shift", "roll")
    first = mannequins[0] if mannequins else {}
    out = {"subject": first.get("subject"), "render": {k: spec["render"][k] for k in ("width", "height")},
           "frame": frame, "frames": frames, "people": people,
           **{k: first[k] for k in ("pose", "angles", "dof_axes", "positions", "rotations", "keypoints") if k in first},
           "cameras": [{k: c[k] for k in keep if k in c} for c in cams]}
    if notes:
        out["notes"] = notes
    return out
