"""The versioned JobSpec: validation with every default filled, canonical JSON and the batch id.

A spec is a plain JSON-able dict (DESIGN.md §4). ``normalize_spec`` refuses the first problem
with one SpecError naming the field and what is allowed; what it returns has every key filled and
every float rounded, so equal requests hash to the same batch id. Pose content (presets, joints,
hand shapes) is validated by ``poses.normalize_pose_entry``. Standard library only at import.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import math
import numbers
import os
import re
import unicodedata

from .errors import SpecError, echo
from .parsing import loads_json, loads_yaml, read_text

SPEC_SCHEMA_VERSION = "1.0"
RECIPE_VERSION = 4  # 4: depth range from the rendered depth, mirror-symmetric triangles, tighter hip visibility; 3: keypoints keep covered points and depths; 2: batch depth range from the geometry (shards agree); bump whenever the render output for the same spec changes
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


# --- small checkers: each returns the clean value or raises one SpecError --------------------------
def _at(field: str, key) -> str:
    return f"{field}[{key}]" if isinstance(key, int) else (f"{field}.{key}" if field else key)


def _describe(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, str):
        return repr(v) if len(v) <= 40 else repr(v[:37] + "...")
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, (list, tuple)):
        return f"a list of {len(v)}"
    return echo(v, 40) if isinstance(v, numbers.Number) else type(v).__name__


def _obj(raw, field: str, keys, required=()) -> dict:
    """raw must be a dict with only the given keys and every required one."""
    if not isinstance(raw, dict):
        raise SpecError(field or "spec", f"got {_describe(raw)}", "an object")
    for k in raw:
        if k not in keys:
            name = k if isinstance(k, str) and len(k) <= 60 else echo(k, 60)
            close = difflib.get_close_matches(name, list(keys), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SpecError(_at(field, name), f"unknown key {echo(k, 60)}{hint}", "keys " + ", ".join(keys))
    for k in required:
        if k not in raw:
            raise SpecError(_at(field, k), "missing (required)")
    return raw


def _int(v, field: str, lo: int, hi: int, step: int = 1) -> int:
    what = f"a multiple of {step} from {lo} to {hi}" if step > 1 else f"an integer from {lo} to {hi}"
    if not isinstance(v, numbers.Integral) or isinstance(v, bool) or not lo <= v <= hi or v % step:
        raise SpecError(field, f"got {_describe(v)}", what)  # 4.0, "4" and true are not integers
    return int(v)


def _finite(v) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an integer too large for a float (hundreds of digits)
        return False


def _num(v, field: str, lo: float, hi: float, unit: str = "") -> float:
    if not isinstance(v, numbers.Real) or isinstance(v, bool) or not _finite(v) or not lo <= v <= hi:
        raise SpecError(field, f"got {_describe(v)}", f"a number from {lo:g} to {hi:g}{unit}")
    return round(float(v), 4) + 0.0  # + 0.0: -0.0 becomes 0.0


def _num_or_auto(v, field, lo, hi, unit=""):
    if v == "auto":
        return "auto"
    try:
        return _num(v, field, lo, hi, unit)
    except SpecError as e:
        raise SpecError(field, e.message, f'"auto" or {e.allowed}') from None


def _bool(v, field: str) -> bool:
    if not isinstance(v, bool):
        raise SpecError(field, f"got {_describe(v)}", "true or false")
    return v


def _choice(v, field: str, choices) -> str:
    if not isinstance(v, str) or v not in choices:
        raise SpecError(field, f"got {_describe(v)}", "one of " + ", ".join(choices))
    return v


def _vec(v, field: str, n: int, lo: float, hi: float, unit: str = "") -> list:
    if not isinstance(v, (list, tuple)) or len(v) != n:
        raise SpecError(field, f"got {_describe(v)}", f"a list of {n} numbers")
    return [_num(c, _at(field, i), lo, hi, unit) for i, c in enumerate(v)]


# --- sections ---------------------------------------------------------------------------------------
def _schema_version(v) -> str:
    if not isinstance(v, str) or not _SCHEMA_RE.fullmatch(v):
        raise SpecError("schema_version", f"got {_describe(v)}",
                        f'"1.x" (this version reads JobSpec schema {SPEC_SCHEMA_VERSION})')
    return SPEC_SCHEMA_VERSION  # minor versions only add optional keys with defaults


def _render(raw) -> dict:
    f = "render"
    d = {"width": 512, "height": 512, "passes": list(ALL_PASSES), "depth_range": "batch", "shaded_samples": 1,
         "openpose": {}, "device": "auto"}
    _obj(raw, f, tuple(d))
    d.update(raw)
    passes = d["passes"]
    if not isinstance(passes, (list, tuple)) or not passes:
        raise SpecError(_at(f, "passes"), f"got {_describe(passes)}", "a non-empty list of " + ", ".join(ALL_PASSES))
    for i, p in enumerate(passes):
        _choice(p, _at(_at(f, "passes"), i), ALL_PASSES)
    op = {"hands": True, "face": True, "sdxl_sticks": False, "occluded": "hide"}
    _obj(d["openpose"], _at(f, "openpose"), tuple(op))
    op.update(d["openpose"])
    from .render.openpose import OCCLUDED_MODES  # lazy, as poses below: it brings numpy

    occluded = _choice(op.pop("occluded"), _at(_at(f, "openpose"), "occluded"), OCCLUDED_MODES)
    return {
        "width": _int(d["width"], _at(f, "width"), 64, MAX_SIZE, 8),
        "height": _int(d["height"], _at(f, "height"), 64, MAX_SIZE, 8),
        # keypoints are always written: every other pass is drawn from them or checked against them
        "passes": [p for p in ALL_PASSES if p in passes or p == "keypoints"],
        "depth_range": _choice(d["depth_range"], _at(f, "depth_range"), ("batch", "image")),
        "shaded_samples": _int(d["shaded_samples"], _at(f, "shaded_samples"), 1, 1024),
        "openpose": {**{k: _bool(v, _at(_at(f, "openpose"), k)) for k, v in op.items()}, "occluded": occluded},
        "device": _choice(d["device"], _at(f, "device"), ("auto", "cpu", "gpu")),
    }


def _lens(d: dict, f: str) -> dict:
    """The lens settings an orbit and a listed camera share."""
    return {"roll": _num(d["roll"], _at(f, "roll"), -180, 180, " degrees"),
            "focal_length": _num(d["focal_length"], _at(f, "focal_length"), 5, 300, " mm"),
            "orthographic": _bool(d["orthographic"], _at(f, "orthographic")),
            "sensor_width": _num(d["sensor_width"], _at(f, "sensor_width"), 1, 100, " mm")}


def _cameras(raw) -> dict:
    f = "cameras"
    if not isinstance(raw, dict):
        raise SpecError(f, f"got {_describe(raw)}", "an object")
    kind = _choice(raw.get("type", "orbit"), _at(f, "type"), ("orbit", "list"))
    if kind == "orbit":
        d = dict(_ORBIT_DEFAULTS)
        _obj(raw, f, (*d, "follow"))
        d.update(raw)
        # follow: written only when true, so that every spec made before it keeps its batch id
        follow = {"follow": True} if _bool(d.get("follow", False), _at(f, "follow")) else {}
        return {"type": "orbit", **_lens(d, f), **follow,
                "views": _int(d["views"], _at(f, "views"), 1, MAX_VIEWS),
                "elevation": _num(d["elevation"], _at(f, "elevation"), -89, 89, " degrees"),
                "start_azimuth": _num(d["start_azimuth"], _at(f, "start_azimuth"), -360, 360, " degrees"),
                "distance": _num_or_auto(d["distance"], _at(f, "distance"), 0.5, 100, " m"),
                "ortho_scale": _num_or_auto(d["ortho_scale"], _at(f, "ortho_scale"), 0.01, 100, " m"),
                "margin": _num(d["margin"], _at(f, "margin"), 0, 0.45)}
    _obj(raw, f, ("type", "cameras"), required=("cameras",))
    cams = raw["cameras"]
    lf = _at(f, "cameras")
    if not isinstance(cams, (list, tuple)) or not 1 <= len(cams) <= MAX_VIEWS:
        raise SpecError(lf, f"got {_describe(cams)}", f"a list of 1 to {MAX_VIEWS} cameras")
    out = []
    for i, c in enumerate(cams):
        cf = _at(lf, i)
        d = {"roll": 0.0, "focal_length": 50.0, "orthographic": False, "ortho_scale": 2.5, "shift": [0.0, 0.0],
             "sensor_width": 36.0}
        _obj(c, cf, _LIST_CAMERA_KEYS, required=("location", "look_at"))
        d.update(c)
        cam = {"location": _vec(d["location"], _at(cf, "location"), 3, -1000, 1000, " m"),
               "look_at": _vec(d["look_at"], _at(cf, "look_at"), 3, -1000, 1000, " m"),
               **_lens(d, cf),
               "ortho_scale": _num(d["ortho_scale"], _at(cf, "ortho_scale"), 0.01, 100, " m"),
               "shift": _vec(d["shift"], _at(cf, "shift"), 2, -2, 2)}
        if math.dist(cam["location"], cam["look_at"]) < 1e-3:  # no view direction
            raise SpecError(_at(cf, "look_at"), "got the camera's own location", "a point away from the camera")
        out.append(cam)
    return {"type": "list", "cameras": out}


def _subjects(raw) -> list:
    f = "subjects"
    if not isinstance(raw, (list, tuple)) or len(raw) != 1:
        n = f"{len(raw)} subjects" if isinstance(raw, (list, tuple)) else _describe(raw)
        raise SpecError(f, f"got {n}", "a list of exactly 1 subject (several people in one scene come later)")
    from .render import poses  # lazy: poses pulls in the rig and mannequin (numpy)

    sf = _at(f, 0)
    d = {"type": "mannequin", "height": 1.75, "build": "average"}
    _obj(raw[0], sf, ("type", "height", "build", "poses"), required=("poses",))
    d.update(raw[0])
    subject = {"type": _choice(d["type"], _at(sf, "type"), ("mannequin",)),
               "height": _num(d["height"], _at(sf, "height"), 1.2, 2.2, " m"),
               "build": _choice(d["build"], _at(sf, "build"), ("slim", "average", "heavy"))}
    pose_list, pf = d["poses"], _at(sf, "poses")
    if not isinstance(pose_list, (list, tuple)) or not 1 <= len(pose_list) <= MAX_POSES:
        raise SpecError(pf, f"got {_describe(pose_list)}", f"a list of 1 to {MAX_POSES} poses")
    for i, p in enumerate(pose_list):
        if not isinstance(p, (str, dict)):
            raise SpecError(_at(pf, i), f"got {_describe(p)}", "a preset name or a pose object")
    subject["poses"] = [poses.normalize_pose_entry(p, _at(pf, i)) for i, p in enumerate(pose_list)]
    return [subject]


def normalize_spec(raw: dict) -> dict:
    """A NEW dict: raw validated, every default filled, floats rounded to 4 decimals.
    Raises SpecError naming the first wrong field. Idempotent."""
    _obj(raw, "", ("schema_version", "kind", "project", "render", "cameras", "subjects", "props"),
         required=("subjects",))
    spec = {
        "schema_version": _schema_version(raw.get("schema_version", SPEC_SCHEMA_VERSION)),
        "kind": _choice(raw.get("kind", "pose_batch"), "kind", KINDS),
        "project": validate_project_name(raw.get("project", "default")),
        "render": _render(raw.get("render", {})),
        "cameras": _cameras(raw.get("cameras", {})),
        "subjects": _subjects(raw["subjects"]),
    }
    if raw.get("props"):  # written only when there are props: every spec before them keeps its batch id
        from .mesh.props import normalize_props  # lazy: it brings numpy

        spec["props"] = normalize_props(raw["props"])
    elif "props" in raw and not isinstance(raw["props"], (list, tuple)):
        raise SpecError("props", f"got {_describe(raw['props'])}", "a list of props")
    return spec


# --- size of the work -----------------------------------------------------------------------------
def n_views(spec: dict) -> int:
    """Views of a normalized spec's camera rig."""
    c = spec["cameras"]
    return c["views"] if c["type"] == "orbit" else len(c["cameras"])


def job_size(spec: dict, views: int | None = None) -> dict:
    """What a normalized spec asks the renderer for (``views``: only that many of its views, a
    shard): images (views x poses), width, height, megapixels (of all images together), image
    files per image (PASS_FILES of its passes) and the shaded pass's samples (0 without it)."""
    r = spec["render"]
    views = n_views(spec) if views is None else views
    poses = len(spec["subjects"][0]["poses"])
    images = views * poses
    return {"views": views, "poses": poses, "images": images, "width": r["width"], "height": r["height"],
            "megapixels": images * r["width"] * r["height"] / 1e6,
            "files_per_image": sum(PASS_FILES[p] for p in r["passes"]),
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
    raise SpecError("project", f"got {_describe(name)}{hint}", PROJECT_RULE)


def sanitize_project_name(text) -> str:
    """'My Poses (v2)' -> 'my-poses-v2': the slug of project_slug, validated."""
    s = project_slug(str(text))
    if not s:
        raise SpecError("project", f"nothing usable left of {_describe(text)}", PROJECT_RULE)
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
        raise SpecError(path, f"got {_describe(data)}", "a JobSpec object")
    return data
