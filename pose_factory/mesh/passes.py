"""Exact passes of any mesh (a reconstruct job's, a GLB/OBJ file's, ComfyUI core's MESH) from any
of our camera rigs: the spec (kind 'mesh_passes'), its batch id, and the render into a batch with
the mannequin's renderer (blender_scripts/render_mesh.py), file layout and manifest, so the depth /
normal loaders read it as they read a pose batch.

    {"kind": "mesh_passes", "project": "...", "render": {"width", "height", "passes", "depth_range",
     "shaded_samples", "device"}, "cameras": <a JobSpec camera rig>, "mesh": {"shading": "smooth"}}
"""
from __future__ import annotations

import hashlib
import os
import time

from .. import render as render_mod
from .. import spec as spec_mod
from .. import storage as storage_mod
from ..errors import SpecError
from ..validate import check_choice, check_int, check_object, describe
from . import meshdata

KIND = "mesh_passes"
RECIPE_VERSION = 1  # bump whenever a mesh's passes for the same spec change
PASSES = ("depth", "depth16", "normal", "seg", "shaded")


def normalize(raw: dict) -> dict:
    """A NEW dict with every default filled (SpecError naming the first wrong field)."""
    check_object(raw, "", ("kind", "project", "render", "cameras", "mesh"))
    if raw.get("kind", KIND) != KIND:
        raise SpecError("kind", f"got {raw.get('kind')!r}", repr(KIND))
    r = {"width": 512, "height": 512, "passes": list(PASSES), "depth_range": "batch", "shaded_samples": 1,
         "device": "auto"}
    check_object(raw.get("render", {}), "render", tuple(r))
    r.update(raw.get("render", {}))
    wanted = r["passes"]
    if not isinstance(wanted, (list, tuple)) or not wanted:
        raise SpecError("render.passes", f"got {describe(wanted)}", "a non-empty list of " + ", ".join(PASSES))
    for i, p in enumerate(wanted):
        check_choice(p, f"render.passes[{i}]", PASSES)
    m = {"shading": "smooth"}
    check_object(raw.get("mesh", {}), "mesh", tuple(m))
    m.update(raw.get("mesh", {}))
    return {
        "kind": KIND,
        "project": spec_mod.validate_project_name(raw.get("project", "default")),
        "render": {"width": check_int(r["width"], "render.width", 64, spec_mod.MAX_SIZE, 8),
                   "height": check_int(r["height"], "render.height", 64, spec_mod.MAX_SIZE, 8),
                   "passes": [p for p in PASSES if p in wanted],
                   "depth_range": check_choice(r["depth_range"], "render.depth_range", ("batch", "image")),
                   "shaded_samples": check_int(r["shaded_samples"], "render.shaded_samples", 1, 1024),
                   "device": check_choice(r["device"], "render.device", ("auto", "cpu", "gpu"))},
        "cameras": spec_mod.normalize_cameras(raw.get("cameras", {})),
        "mesh": {"shading": check_choice(m["shading"], "mesh.shading", ("smooth", "flat"))},
    }


def batch_id(spec: dict, mesh_digest: str) -> str:
    """16 hex chars over the spec without its project, the mesh's geometry and the recipe."""
    body = {k: v for k, v in spec.items() if k != "project"}
    payload = spec_mod.canonical_json({"recipe_version": RECIPE_VERSION, "spec": body, "mesh": mesh_digest})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def _mesh_source(mesh) -> tuple[str, bytes, str]:
    """(file extension, bytes to hand the renderer, geometry digest) of a mesh file path or (vertices, faces)."""
    if isinstance(mesh, (str, os.PathLike)):
        path = os.fspath(mesh)
        ext = os.path.splitext(path)[1].lower().lstrip(".")
        if ext not in meshdata.FILE_FORMATS + ("npz",):
            raise SpecError("mesh_file", f"a .{ext or '(no extension)'} file",
                            "one of " + ", ".join("." + e for e in meshdata.FILE_FORMATS + ("npz",)))
        if not os.path.isfile(path):
            raise SpecError("mesh_file", f"{path!r} does not exist", "a mesh file")
        with open(path, "rb") as fh:
            data = fh.read()
        return ext, data, "file:" + hashlib.sha256(data).hexdigest()
    vertices, faces = meshdata.check(*mesh)
    return "npz", meshdata.npz_bytes(vertices, faces), meshdata.digest(vertices, faces)


def render_mesh_passes(mesh, raw_spec: dict, storage, project: str | None = None, force: bool = False,
                       on_progress=None, python: str | None = None) -> tuple[dict, bool]:
    """(manifest, rendered): the passes of mesh — a file (.glb, .obj, .stl, .ply, read in the
    worker environment by meshdata.load_file; .npz as meshdata.npz_bytes) or (vertices, faces) Z-up —
    as a batch in storage (one entry per view, frame 0; view 0 also lists the mesh itself when it
    is GLB, OBJ or npz). The same mesh and spec are not rendered twice unless force is set."""
    spec = normalize(raw_spec)
    project = spec_mod.validate_project_name(project or spec["project"])
    spec["project"] = project
    ext, data, digest = _mesh_source(mesh)
    bid = batch_id(spec, digest)
    spec["mesh"] = dict(spec["mesh"], source=digest)  # for the record
    before = storage_mod.read_manifest(storage, project, bid)
    if before is not None and not force:
        return before, False
    with storage_mod.batch_lock(storage, project, bid):
        done = render_mod.done_meanwhile(storage, project, bid, force, before)
        if done is not None:
            return done, False
        t0 = time.perf_counter()
        with render_mod.work_folder() as work:
            mesh_file = os.path.join(work, f"mesh.{ext}")
            with open(mesh_file, "wb") as fh:
                fh.write(data)
            result = render_mod.run_blender(dict(spec, mesh_file=mesh_file), work, on_progress, python)
            if ext in ("glb", "obj", "npz"):
                key = f"mesh/v00_f0000.{ext}"
                os.makedirs(os.path.join(result["files_dir"], "mesh"), exist_ok=True)
                os.replace(mesh_file, os.path.join(result["files_dir"], key))
                result["entries"][0]["files"]["mesh"] = key
            manifest = render_mod.upload_result(spec, project, bid, result, storage, on_progress, t0,
                                          recipe_version=RECIPE_VERSION)
            return manifest, True
