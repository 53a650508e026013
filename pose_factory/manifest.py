"""The batch manifest: what a batch holds, written last (DESIGN.md §3, §4).

File keys are relative to the batch folder: ``openpose/v00_f0000.png``,
``keypoints/v00_f0000.json``; a forced re-render writes its files under a generation folder
(``gen-3f2a…/openpose/v00_f0000.png``) so the batch it replaces stays whole until its manifest is
switched (storage.BatchWriter). A reader refuses a manifest whose major version it does not know;
keys it does not know (a newer minor version) are kept, not refused. Standard library only.
"""
from __future__ import annotations

import datetime
import json
import numbers
import re

from .errors import ManifestError, SpecError, echo
from .spec import validate_project_name

MANIFEST_SCHEMA_VERSION = "1.0"
GENERATION_RE = re.compile(r"gen-[0-9a-f]{12}")
KEY_RE = re.compile(r"(gen-[0-9a-f]{12}/)?[a-z0-9_]+/v\d\d_f\d{4}\.(png|json|exr|npz|glb|obj|fbx)")  # meshes: a reconstruct batch
_NAME_RE = re.compile(r"[a-z0-9_]+")
_SHA_RE = re.compile(r"[0-9a-f]{64}")
_BATCH_RE = re.compile(r"[0-9a-f]{16}")


def image_key(pass_name: str, view: int, frame: int, ext: str = "png") -> str:
    """'openpose', 0, 0 -> 'openpose/v00_f0000.png'."""
    key = f"{pass_name}/v{view:02d}_f{frame:04d}.{ext}"
    check_file_key(key, "key")
    return key


def check_file_key(key, field: str) -> str:
    """A safe relative key of one batch file (no '..', no absolute path, no backslash)."""
    if not isinstance(key, str) or not KEY_RE.fullmatch(key):
        raise ManifestError(field, f"got {echo(key, 80)}, allowed: a key like 'openpose/v00_f0000.png' "
                                   "(or 'gen-<12 hex digits>/openpose/v00_f0000.png')")
    return key


def _camera(cam: dict) -> dict:
    """A camera dict from cameras.py with its extrinsics grouped; the flat fields stay so that
    cameras.project() works on a manifest view as it does on a camera."""
    return dict(cam, extrinsics={"world_to_camera": cam["world_to_camera"], "location": cam["location"],
                                 "rotation": cam["rotation"]})


def _tolist(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON-able: {type(o).__name__}")


def _plain(obj):
    """JSON types only (numpy arrays and scalars from the renderer become lists and numbers)."""
    return json.loads(json.dumps(obj, default=_tolist))


def build_manifest(*, batch_id: str, project: str, spec: dict, recipe_version: int, worker_version: str,
                   blender_version: str, width: int, height: int, views: list, frames: int, entries: list,
                   joints_3d: list | None = None, depth_range: dict | None = None, timings: dict | None = None,
                   cost: dict | None = None, created_at: str | None = None, rig_reports: dict | None = None) -> dict:
    """The manifest dict, validated. views: camera dicts (cameras.build_cameras); entries:
    [{view, frame, files: {name: {key, sha256, size}}}]; joints_3d[f]: person 0's "joints" and
    "keypoints", and with several people "people": [{"joints", "keypoints"}, ...] in subject order;
    rig_reports: {"<k>": person k's rig report}, written only when a subject is a rig."""
    m = _plain({
        "schema_version": MANIFEST_SCHEMA_VERSION, "batch_id": batch_id, "project": project, "spec": spec,
        "recipe_version": recipe_version, "worker_version": worker_version, "blender_version": blender_version,
        "created_at": created_at or datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "width": width, "height": height, "views": [_camera(c) for c in views], "frames": frames,
        "entries": entries, "joints_3d": joints_3d, "depth_range": depth_range, "timings": timings or {},
        "cost": cost or {}, **({"rig_reports": rig_reports} if rig_reports else {}),
    })
    return validate_manifest(m)


# --- validation ---------------------------------------------------------------------------------
def _need(ok: bool, field: str, what: str, got):
    if not ok:
        text = echo(got, 60) if isinstance(got, (str, int, float, bool, type(None))) else type(got).__name__
        raise ManifestError(field, f"got {text}, expected {what}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _matrix(v, field: str, rows: int, cols: int):
    ok = (isinstance(v, list) and len(v) == rows
          and all(isinstance(r, list) and len(r) == cols and all(map(_is_num, r)) for r in v))
    _need(ok, field, f"a {rows}x{cols} list of numbers", v)


def check_view(cam, i: int):
    """A manifest's view i (a resolved camera: index, name, intrinsics, extrinsics), else ManifestError."""
    f = f"views[{i}]"
    _need(isinstance(cam, dict), f, "an object", cam)
    _need(cam.get("index") == i and _is_int(cam.get("index")), f"{f}.index", str(i), cam.get("index"))
    _need(isinstance(cam.get("name"), str), f"{f}.name", "a string", cam.get("name"))
    k = cam.get("intrinsics")
    _need(isinstance(k, dict), f"{f}.intrinsics", "an object", k)
    for name in ("fx", "fy", "cx", "cy"):
        _need(_is_num(k.get(name)), f"{f}.intrinsics.{name}", "a number", k.get(name))
    for name in ("width", "height"):
        _need(_is_int(k.get(name)), f"{f}.intrinsics.{name}", "an integer", k.get(name))
    _need(isinstance(k.get("orthographic"), bool), f"{f}.intrinsics.orthographic", "true or false",
          k.get("orthographic"))
    s = k.get("ortho_scale")
    _need(s is None or s == "auto" or _is_num(s), f"{f}.intrinsics.ortho_scale", "a number or null", s)
    e = cam.get("extrinsics")
    _need(isinstance(e, dict), f"{f}.extrinsics", "an object", e)
    _matrix(e.get("world_to_camera"), f"{f}.extrinsics.world_to_camera", 4, 4)
    _matrix(e.get("rotation"), f"{f}.extrinsics.rotation", 3, 3)
    loc = e.get("location")
    _need(isinstance(loc, list) and len(loc) == 3 and all(map(_is_num, loc)), f"{f}.extrinsics.location",
          "[x, y, z]", loc)


def _entries(entries, n_views: int, n_frames: int):
    _need(isinstance(entries, list), "entries", "a list", entries)
    seen = set()
    for i, e in enumerate(entries):
        f = f"entries[{i}]"
        _need(isinstance(e, dict), f, "an object", e)
        v, fr = e.get("view"), e.get("frame")
        _need(_is_int(v) and 0 <= v < n_views, f"{f}.view", f"an integer from 0 to {n_views - 1}", v)
        _need(_is_int(fr) and 0 <= fr < n_frames, f"{f}.frame", f"an integer from 0 to {n_frames - 1}", fr)
        if (v, fr) in seen:
            raise ManifestError(f, f"(view {v}, frame {fr}) listed twice; expected each (view, frame) once")
        seen.add((v, fr))
        files = e.get("files")
        _need(isinstance(files, dict) and files, f"{f}.files", "a non-empty object", files)
        for name, info in files.items():
            ff = f"{f}.files.{name}"
            _need(isinstance(name, str) and bool(_NAME_RE.fullmatch(name)), f"{f}.files", "names of [a-z0-9_]", name)
            _need(isinstance(info, dict), ff, "an object {key, sha256, size}", info)
            key = check_file_key(info.get("key"), f"{ff}.key")
            # the key names this file of this entry: a mix-up between views or frames is refused
            _need(key.split("/", 1)[-1].startswith(f"{name}/v{v:02d}_f{fr:04d}.") if key.startswith("gen-")
                  else key.startswith(f"{name}/v{v:02d}_f{fr:04d}."), f"{ff}.key",
                  f"'{name}/v{v:02d}_f{fr:04d}.*'", key)
            _need(isinstance(info.get("sha256"), str) and bool(_SHA_RE.fullmatch(info["sha256"])),
                  f"{ff}.sha256", "64 lowercase hex digits", info.get("sha256"))
            _need(_is_int(info.get("size")) and info["size"] >= 0, f"{ff}.size", "a byte count", info.get("size"))
    if len(seen) != n_views * n_frames:
        v, fr = next((v, fr) for fr in range(n_frames) for v in range(n_views) if (v, fr) not in seen)
        raise ManifestError("entries", f"no entry for (view {v}, frame {fr}); expected one per (view, frame)")


def validate_manifest(obj) -> dict:
    """obj when it is a manifest this reader understands; else ManifestError naming the field."""
    _need(isinstance(obj, dict), "manifest", "an object", obj)
    ver = obj.get("schema_version")
    _need(isinstance(ver, str) and ver.split(".")[0] == MANIFEST_SCHEMA_VERSION.split(".")[0], "schema_version",
          f"1.x (this reader knows manifest schema {MANIFEST_SCHEMA_VERSION})", ver)
    _need(isinstance(obj.get("batch_id"), str) and bool(_BATCH_RE.fullmatch(obj["batch_id"])), "batch_id",
          "16 lowercase hex digits", obj.get("batch_id"))
    try:
        validate_project_name(obj.get("project"))
    except SpecError as e:
        raise ManifestError("project", f"{e.message}, expected {e.allowed}") from None
    _need(isinstance(obj.get("spec"), dict), "spec", "an object", obj.get("spec"))
    _need(_is_int(obj.get("recipe_version")), "recipe_version", "an integer", obj.get("recipe_version"))
    for name in ("worker_version", "blender_version", "created_at"):
        _need(isinstance(obj.get(name), str), name, "a string", obj.get(name))
    for name in ("width", "height"):
        _need(_is_int(obj.get(name)) and obj[name] > 0, name, "a positive integer", obj.get(name))
    views = obj.get("views")
    _need(isinstance(views, list) and views, "views", "a non-empty list of cameras", views)
    for i, cam in enumerate(views):
        check_view(cam, i)
    frames = obj.get("frames")
    _need(_is_int(frames) and frames > 0, "frames", "a positive integer", frames)
    _entries(obj.get("entries"), len(views), frames)
    j3d = obj.get("joints_3d")
    _need(j3d is None or (isinstance(j3d, list) and len(j3d) == frames and all(isinstance(j, dict) for j in j3d)),
          "joints_3d", f"null or a list of {frames} objects (one per frame)", j3d)
    for i, j in enumerate(j3d or []):
        people = j.get("people")
        _need(people is None or (isinstance(people, list) and people and all(isinstance(p, dict) for p in people)),
              f"joints_3d[{i}].people", "a list of objects (one per person)", people)
    reports = obj.get("rig_reports")
    _need(reports is None or (isinstance(reports, dict) and all(
        isinstance(k, str) and k.isdigit() and isinstance(v, dict) for k, v in reports.items())),
        "rig_reports", 'an object {"<person index>": report object}', reports)
    dr = obj.get("depth_range")
    _need(dr is None or (isinstance(dr, dict) and _is_num(dr.get("near")) and _is_num(dr.get("far"))
                         and dr["near"] <= dr["far"]), "depth_range", "null or {near, far} with near <= far", dr)
    t = obj.get("timings")
    _need(isinstance(t, dict) and all(_is_num(x) for x in t.values()), "timings", "an object of numbers", t)
    _need(isinstance(obj.get("cost"), dict), "cost", "an object", obj.get("cost"))
    return obj


def asset_key(manifest: dict, fmt: str = "glb") -> str | None:
    """The key (under the batch folder) of a reconstruct batch's mesh in fmt (its manifest's
    "asset" section), or None when it has none."""
    folder = (manifest.get("asset") or {}).get("files", {}).get(fmt)
    view0 = next(e for e in manifest["entries"] if e["view"] == 0)
    return None if folder is None else view0["files"][folder]["key"]
