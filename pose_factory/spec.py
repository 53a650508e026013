"""The versioned JobSpec: validation with every default filled, canonical JSON and the batch id.

A spec is a plain JSON-able dict (DESIGN.md §4). ``normalize_spec`` refuses the first problem
with one SpecError naming the field and what is allowed; what it returns has every key filled and
every float rounded, so equal requests hash to the same batch id. Pose content (presets, joints,
hand shapes) is validated by ``poses.normalize_pose_entry``, each field by the checkers of
``validate.py``. Standard library only at import.
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import re
import unicodedata

from .errors import SpecError
from .parsing import loads_json, loads_yaml, read_text
from .validate import (check_bool, check_choice, check_int, check_number, check_number_or_auto, check_object,
                       check_vector, describe, subfield)

SPEC_SCHEMA_VERSION = "1.0"
RECIPE_VERSION = 5  # 5: keypoints carry the feet (foot_keypoints_2d); 4: depth range from the rendered depth, mirror-symmetric triangles, tighter hip visibility; 3: keypoints keep covered points and depths; 2: batch depth range from the geometry (shards agree); bump whenever the render output for the same spec changes
KINDS = ("pose_batch",)  # posture and inline extract take no JobSpec (pod_worker/request.py); reconstruct and mesh_passes have their own specs (pose_factory/mesh)
ALL_PASSES = ("openpose", "keypoints", "depth", "depth16", "normal", "seg", "shaded")
MAX_VIEWS = 64
MAX_POSES = 256
MAX_SIZE = 2048  # render.width and render.height; also the most a loader accepts from a manifest
# image files each pass writes per (view, frame); keypoints is one small JSON, counted as none
PASS_FILES = {"openpose": 1, "keypoints": 0, "depth": 1, "depth16": 1, "normal": 3, "seg": 3, "shaded": 1}
PROJECT_RULE = ("1 to 64 characters: lowercase letters, digits, '-' and '_', starting with a letter or digit, "
                "not a Windows device name (con, prn, aux, nul, com0-com9, lpt0-lpt9)")
_PROJECT_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# A folder of these names cannot be made on Windows (with or without an extension).
WINDOWS_RESERVED = frozenset(["con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
                              *(f"lpt{i}" for i in range(10))])
_SCHEMA_RE = re.compile(r"1(\.\d+)?")

_ORBIT_DEFAULTS = {"type": "orbit", "views": 4, "elevation": 10.0, "start_azimuth": 0.0, "distance": "auto",
                   "focal_length": 50.0, "orthographic": False, "ortho_scale": "auto", "roll": 0.0,
                   "sensor_width": 36.0, "margin": 0.08}
_LIST_CAMERA_KEYS = ("location", "look_at", "roll", "focal_length", "orthographic", "ortho_scale", "shift",
                     "sensor_width")


# --- sections ---------------------------------------------------------------------------------------
def check_schema_version(v) -> str:
    """The schema version a spec of this major version is read as (any "1.x"), else SpecError."""
    if not isinstance(v, str) or not _SCHEMA_RE.fullmatch(v):
        raise SpecError("schema_version", f"got {describe(v)}",
                        f'"1.x" (this version reads JobSpec schema {SPEC_SCHEMA_VERSION})')
    return SPEC_SCHEMA_VERSION  # minor versions only add optional keys with defaults


def _render(raw) -> dict:
    f = "render"
    d = {"width": 512, "height": 512, "passes": list(ALL_PASSES), "depth_range": "batch", "shaded_samples": 1,
         "openpose": {}, "device": "auto"}
    check_object(raw, f, tuple(d))
    d.update(raw)
    passes = d["passes"]
    if not isinstance(passes, (list, tuple)) or not passes:
        raise SpecError(subfield(f, "passes"), f"got {describe(passes)}",
                        "a non-empty list of " + ", ".join(ALL_PASSES))
    for i, p in enumerate(passes):
        check_choice(p, subfield(subfield(f, "passes"), i), ALL_PASSES)
    op = {"hands": True, "face": True, "sdxl_sticks": False, "occluded": "hide", "feet": False}
    check_object(d["openpose"], subfield(f, "openpose"), tuple(op))
    op.update(d["openpose"])
    from .render.openpose import OCCLUDED_MODES  # lazy, as poses below: it brings numpy

    occluded = check_choice(op.pop("occluded"), subfield(subfield(f, "openpose"), "occluded"), OCCLUDED_MODES)
    # feet (core's foot points drawn) is written only when true, so a spec without it keeps its batch id
    feet = check_bool(op.pop("feet"), subfield(subfield(f, "openpose"), "feet"))
    return {
        "width": check_int(d["width"], subfield(f, "width"), 64, MAX_SIZE, 8),
        "height": check_int(d["height"], subfield(f, "height"), 64, MAX_SIZE, 8),
        # keypoints are always written: every other pass is drawn from them or checked against them
        "passes": [p for p in ALL_PASSES if p in passes or p == "keypoints"],
        "depth_range": check_choice(d["depth_range"], subfield(f, "depth_range"), ("batch", "image")),
        "shaded_samples": check_int(d["shaded_samples"], subfield(f, "shaded_samples"), 1, 1024),
        "openpose": {**{k: check_bool(v, subfield(subfield(f, "openpose"), k)) for k, v in op.items()},
                     "occluded": occluded, **({"feet": True} if feet else {})},
        "device": check_choice(d["device"], subfield(f, "device"), ("auto", "cpu", "gpu")),
    }


def _lens(d: dict, f: str) -> dict:
    """The lens settings an orbit and a listed camera share."""
    return {"roll": check_number(d["roll"], subfield(f, "roll"), -180, 180, " degrees"),
            "focal_length": check_number(d["focal_length"], subfield(f, "focal_length"), 5, 300, " mm"),
            "orthographic": check_bool(d["orthographic"], subfield(f, "orthographic")),
            "sensor_width": check_number(d["sensor_width"], subfield(f, "sensor_width"), 1, 100, " mm")}


def normalize_cameras(raw) -> dict:
    """A camera rig (an orbit or a list of cameras) with every default filled, as in a JobSpec."""
    f = "cameras"
    if not isinstance(raw, dict):
        raise SpecError(f, f"got {describe(raw)}", "an object")
    kind = check_choice(raw.get("type", "orbit"), subfield(f, "type"), ("orbit", "list"))
    if kind == "orbit":
        d = dict(_ORBIT_DEFAULTS)
        check_object(raw, f, (*d, "follow"))
        d.update(raw)
        # follow: written only when true, so that every spec made before it keeps its batch id
        follow = {"follow": True} if check_bool(d.get("follow", False), subfield(f, "follow")) else {}
        return {"type": "orbit", **_lens(d, f), **follow,
                "views": check_int(d["views"], subfield(f, "views"), 1, MAX_VIEWS),
                "elevation": check_number(d["elevation"], subfield(f, "elevation"), -89, 89, " degrees"),
                "start_azimuth": check_number(d["start_azimuth"], subfield(f, "start_azimuth"), -360, 360, " degrees"),
                "distance": check_number_or_auto(d["distance"], subfield(f, "distance"), 0.5, 100, " m"),
                "ortho_scale": check_number_or_auto(d["ortho_scale"], subfield(f, "ortho_scale"), 0.01, 100, " m"),
                "margin": check_number(d["margin"], subfield(f, "margin"), 0, 0.45)}
    check_object(raw, f, ("type", "cameras"), required=("cameras",))
    cams = raw["cameras"]
    lf = subfield(f, "cameras")
    if not isinstance(cams, (list, tuple)) or not 1 <= len(cams) <= MAX_VIEWS:
        raise SpecError(lf, f"got {describe(cams)}", f"a list of 1 to {MAX_VIEWS} cameras")
    out = []
    for i, c in enumerate(cams):
        cf = subfield(lf, i)
        d = {"roll": 0.0, "focal_length": 50.0, "orthographic": False, "ortho_scale": 2.5, "shift": [0.0, 0.0],
             "sensor_width": 36.0}
        check_object(c, cf, _LIST_CAMERA_KEYS, required=("location", "look_at"))
        d.update(c)
        cam = {"location": check_vector(d["location"], subfield(cf, "location"), 3, -1000, 1000, " m"),
               "look_at": check_vector(d["look_at"], subfield(cf, "look_at"), 3, -1000, 1000, " m"),
               **_lens(d, cf),
               "ortho_scale": check_number(d["ortho_scale"], subfield(cf, "ortho_scale"), 0.01, 100, " m"),
               "shift": check_vector(d["shift"], subfield(cf, "shift"), 2, -2, 2)}
        if math.dist(cam["location"], cam["look_at"]) < 1e-3:  # no view direction
            raise SpecError(subfield(cf, "look_at"), "got the camera's own location", "a point away from the camera")
        out.append(cam)
    return {"type": "list", "cameras": out}


MAX_SUBJECTS = 8
SUBJECT_TYPES = ("mannequin", "rig")
PLACE_DEFAULT = {"position": [0.0, 0.0], "facing": 0.0}


def _place(raw, field: str) -> dict:
    """A subject's place on the floor: position [x, y] (m) and facing (degrees about the vertical,
    0 = facing -Y as the mannequin does), every default filled."""
    check_object(raw, field, tuple(PLACE_DEFAULT))
    d = {**PLACE_DEFAULT, **raw}
    return {"position": check_vector(d["position"], subfield(field, "position"), 2, -50, 50, " m"),
            "facing": check_number(d["facing"], subfield(field, "facing"), -360, 360, " degrees")}


def _pose_list(raw, field: str) -> list:
    from .render import poses  # lazy: poses pulls in the rig and mannequin (numpy)

    if not isinstance(raw, (list, tuple)) or not 1 <= len(raw) <= MAX_POSES:
        raise SpecError(field, f"got {describe(raw)}", f"a list of 1 to {MAX_POSES} poses")
    for i, p in enumerate(raw):
        if not isinstance(p, (str, dict)):
            raise SpecError(subfield(field, i), f"got {describe(p)}", "a preset name or a pose object")
    return [poses.normalize_pose_entry(p, subfield(field, i)) for i, p in enumerate(raw)]


def _mannequin(raw: dict, sf: str) -> dict:
    from .render.shape import normalize_shape  # lazy, as poses: it brings numpy

    check_object(raw, sf, ("type", "height", "build", "shape", "poses", "place"), required=("poses",))
    d = {"height": 1.75, "build": "average", **raw}
    subject = {"type": "mannequin",
               "height": check_number(d["height"], subfield(sf, "height"), 1.2, 2.2, " m"),
               "build": check_choice(d["build"], subfield(sf, "build"), ("slim", "average", "heavy"))}
    shape = normalize_shape(d.get("shape"), subfield(sf, "shape"))
    if shape is not None:  # written only when not the default body: older specs keep their batch id
        subject["shape"] = shape
    return subject


def _rig(raw: dict, sf: str) -> dict:
    try:
        from .rigs import normalize_rig_subject
    except ImportError:
        raise SpecError(subfield(sf, "type"), 'got "rig" (this build has no custom rigs)', "mannequin") from None
    # the rig's own keys (rig, bone_map, height); poses and place are checked here for every type
    return {"type": "rig", **normalize_rig_subject({k: v for k, v in raw.items() if k not in ("poses", "place")}, sf)}


def _subject(raw, sf: str) -> dict:
    """One subject: its type's own keys (_mannequin, _rig), then its poses and its place."""
    if not isinstance(raw, dict):
        raise SpecError(sf, f"got {describe(raw)}", "a subject object")
    kind = check_choice(raw.get("type", "mannequin"), subfield(sf, "type"), SUBJECT_TYPES)
    subject = _mannequin(raw, sf) if kind == "mannequin" else _rig(raw, sf)
    if "poses" not in raw:
        raise SpecError(subfield(sf, "poses"), "missing (required)")
    subject["poses"] = _pose_list(raw["poses"], subfield(sf, "poses"))
    place = _place(raw.get("place", {}), subfield(sf, "place"))
    if place != PLACE_DEFAULT:  # written only when not the default: every spec before keeps its batch id
        subject["place"] = place
    return subject


def _subjects(raw) -> list:
    """1 to MAX_SUBJECTS subjects, in order (person k everywhere is subjects[k]). Each pose list
    has 1 pose (held in every frame) or as many as the longest list."""
    f = "subjects"
    if not isinstance(raw, (list, tuple)) or not 1 <= len(raw) <= MAX_SUBJECTS:
        n = f"{len(raw)} subjects" if isinstance(raw, (list, tuple)) else describe(raw)
        raise SpecError(f, f"got {n}", f"a list of 1 to {MAX_SUBJECTS} subjects")
    out = [_subject(s, subfield(f, k)) for k, s in enumerate(raw)]
    frames = max(len(s["poses"]) for s in out)
    for k, s in enumerate(out):
        if len(s["poses"]) not in (1, frames):
            longest = next(i for i, t in enumerate(out) if len(t["poses"]) == frames)
            raise SpecError(subfield(subfield(f, k), "poses"),
                            f"got {len(s['poses'])} poses while subjects[{longest}] has {frames}",
                            f"1 pose (held in every frame) or {frames}, as many as the longest list")
    return out


def n_frames(spec: dict) -> int:
    """Frames of a normalized spec: its longest pose list (a 1-pose subject holds its pose)."""
    return max(len(s["poses"]) for s in spec["subjects"])


def normalize_spec(raw: dict) -> dict:
    """A NEW dict: raw validated, every default filled, floats rounded to 4 decimals.
    Raises SpecError naming the first wrong field. Idempotent."""
    check_object(raw, "", ("schema_version", "kind", "project", "render", "cameras", "subjects", "props"),
                 required=("subjects",))
    spec = {
        "schema_version": check_schema_version(raw.get("schema_version", SPEC_SCHEMA_VERSION)),
        "kind": check_choice(raw.get("kind", "pose_batch"), "kind", KINDS),
        "project": validate_project_name(raw.get("project", "default")),
        "render": _render(raw.get("render", {})),
        "cameras": normalize_cameras(raw.get("cameras", {})),
        "subjects": _subjects(raw["subjects"]),
    }
    if raw.get("props"):  # written only when there are props: every spec before them keeps its batch id
        spec["props"] = normalize_props(raw["props"])
    elif "props" in raw and not isinstance(raw["props"], (list, tuple)):
        raise SpecError("props", f"got {describe(raw['props'])}", "a list of props")
    return spec


# --- props -------------------------------------------------------------------------------------
# A prop names its mesh by content (its bytes are stored under the project's uploads/meshes/, see
# pose_factory/mesh/props.py, which places, stores and reads them):
#     {"mesh": {"sha256": "<64 hex>", "format": one of PROP_FORMATS}, "location": [x, y, z] (m),
#      "rotation": [x, y, z] (degrees, XYZ Euler as Blender's default), "scale": [sx, sy, sz],
#      "shading": "smooth" | "flat"}
MAX_PROPS = 16
MESH_FILE_FORMATS = ("glb", "obj", "stl", "ply")  # single-file formats the mesh reader takes (mesh/meshdata.py)
PROP_FORMATS = MESH_FILE_FORMATS + ("npz",)
PROP_KEYS = ("mesh", "location", "rotation", "scale", "shading")
_SHA_RE = re.compile(r"[0-9a-f]{64}")


def normalize_mesh_ref(v, field: str) -> dict:
    """A prop's stored mesh {"sha256", "format"}, else SpecError."""
    if not isinstance(v, dict) or "sha256" not in v:
        raise SpecError(field, f"got {describe(v)} (not stored yet: run_job and Request Pose Batch "
                               "store a file, a batch's mesh or MESH arrays and write this)",
                        "a stored mesh {\"sha256\": 64 hex digits, \"format\"}")
    check_object(v, field, ("sha256", "format"), required=("sha256", "format"))
    sha = v["sha256"]
    if not isinstance(sha, str) or not _SHA_RE.fullmatch(sha):
        raise SpecError(f"{field}.sha256", f"got {describe(sha)}", "64 lowercase hex digits")
    return {"sha256": sha, "format": check_choice(v["format"], f"{field}.format", PROP_FORMATS)}


def normalize_props(raw, field: str = "props") -> list:
    """The props of a spec, validated, every default filled (SpecError naming the first wrong field)."""
    if not isinstance(raw, (list, tuple)) or len(raw) > MAX_PROPS:
        raise SpecError(field, f"got {describe(raw)}", f"a list of at most {MAX_PROPS} props")
    out = []
    for i, p in enumerate(raw):
        pf = f"{field}[{i}]"
        check_object(p, pf, PROP_KEYS, required=("mesh",))
        out.append({"mesh": normalize_mesh_ref(p["mesh"], f"{pf}.mesh"), **normalize_placement(p, pf)})
    return out


def normalize_placement(p: dict, pf: str = "prop") -> dict:
    """A prop's location, rotation, scale (a number: the same on every axis) and shading, with defaults."""
    d = {"location": [0.0, 0.0, 0.0], "rotation": [0.0, 0.0, 0.0], "scale": 1.0, "shading": "smooth", **p}
    scale = d["scale"]
    if isinstance(scale, numbers.Real) and not isinstance(scale, bool):
        scale = [scale] * 3
    elif not isinstance(scale, (list, tuple)):
        raise SpecError(f"{pf}.scale", f"got {describe(scale)}",
                        "a number or a list of 3 numbers from 0.001 to 100")
    return {"location": check_vector(d["location"], f"{pf}.location", 3, -100, 100, " m"),
            "rotation": check_vector(d["rotation"], f"{pf}.rotation", 3, -360, 360, " degrees"),
            "scale": check_vector(scale, f"{pf}.scale", 3, 0.001, 100),
            "shading": check_choice(d["shading"], f"{pf}.shading", ("smooth", "flat"))}


# --- size of the work -----------------------------------------------------------------------------
def n_views(spec: dict) -> int:
    """Views of a normalized spec's camera rig."""
    c = spec["cameras"]
    return c["views"] if c["type"] == "orbit" else len(c["cameras"])


def job_size(spec: dict, views: int | None = None) -> dict:
    """What a normalized spec asks the renderer for (``views``: only that many of its views, a
    shard): images (views x frames, the longest pose list), width, height, megapixels (of all images together), image
    files per image (PASS_FILES of its passes) and the shaded pass's samples (0 without it)."""
    r = spec["render"]
    views = n_views(spec) if views is None else views
    poses = n_frames(spec)
    images = views * poses
    return {"views": views, "poses": poses, "images": images, "width": r["width"], "height": r["height"],
            "megapixels": images * r["width"] * r["height"] / 1e6,
            # several people: the seg pass also writes the instance map
            "files_per_image": sum(PASS_FILES[p] for p in r["passes"])
            + int("seg" in r["passes"] and len(spec["subjects"]) > 1),
            "shaded_samples": r["shaded_samples"] if "shaded" in r["passes"] else 0}


# --- hashing ------------------------------------------------------------------------------------
def _canon(obj):
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        return round(float(obj), 4) + 0.0  # + 0.0: -0.0 becomes 0.0
    if isinstance(obj, dict):
        return {str(k): _canon(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_canon(v) for v in obj]
    raise TypeError(f"not JSON-able: {type(obj).__name__}")


def canonical_json(obj) -> str:
    """Sorted keys, no whitespace, floats rounded to 4 decimals, -0.0 as 0.0 (NaN refused)."""
    return json.dumps(_canon(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def batch_id(spec_normalized: dict, recipe_version: int = RECIPE_VERSION) -> str:
    """16 hex chars of sha256 over the spec (normalized again, so a raw spec gives the same id)
    without its project, plus the recipe version."""
    spec = normalize_spec({k: v for k, v in spec_normalized.items() if k != "project"})
    del spec["project"]  # a rename or a second project does not change the batch
    payload = canonical_json({"recipe_version": int(recipe_version), "spec": spec})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


# --- projects -----------------------------------------------------------------------------------
def project_slug(text) -> str | None:
    """The project name ``text`` would become: Unicode folded to its plain form (NFKC, so
    full-width letters become ASCII), lowercase, every run of other characters one '-', at most 64
    characters, a Windows device name suffixed with '-project'. None when nothing usable is left."""
    if not isinstance(text, str):
        return None
    s = unicodedata.normalize("NFKC", text).lower()
    s = re.sub(r"[^a-z0-9_]+", "-", s).strip("-_")
    s = re.sub(r"-{2,}", "-", s)[:64].rstrip("-_")
    if s in WINDOWS_RESERVED:
        s += "-project"
    return s or None


def validate_project_name(name) -> str:
    """name when it is a valid project name (the one rule for projects everywhere: storage keys,
    folders, routes, the CLI), else SpecError saying what is allowed and the slug it would use."""
    if isinstance(name, str) and _PROJECT_RE.fullmatch(name) and name not in WINDOWS_RESERVED:
        return name
    slug = project_slug(name)
    hint = f" (as a project name: {slug!r})" if slug else ""
    raise SpecError("project", f"got {describe(name)}{hint}", PROJECT_RULE)


def sanitize_project_name(text) -> str:
    """'My Poses (v2)' -> 'my-poses-v2': the slug of project_slug, validated."""
    s = project_slug(str(text))
    if not s:
        raise SpecError("project", f"nothing usable left of {describe(text)}", PROJECT_RULE)
    return validate_project_name(s)


# --- files --------------------------------------------------------------------------------------
def load_spec_file(path) -> dict:
    """The raw spec in a JSON or YAML file (.yaml/.yml); normalize it with normalize_spec.
    SpecError (naming the file) when it is not UTF-8, not valid JSON/YAML (a YAML key given twice
    included) or not an object; OSError when it cannot be read."""
    path = os.fspath(path)

    def error(message):
        return SpecError(path, message)

    text = read_text(path, error)
    data = loads_yaml(text, error) if path.lower().endswith((".yaml", ".yml")) else loads_json(text, error)
    if not isinstance(data, dict):
        raise SpecError(path, f"got {describe(data)}", "a JobSpec object")
    return data
